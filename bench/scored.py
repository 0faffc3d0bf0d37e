"""Benchmark: scored-tier throughput per signal on real footage, the way the tier runs it.

    uv run python -m bench.scored [--footage DIR] [--embedder opennsfw|dinov2]

Each video goes through the clips tier's single-pass analysis (keyframes + per-frame
statistics), then `score_video_clips` computes every signal from those stored keyframes, as a
scored worker does (models loaded once, one thread). Reported: CPU ms per clip for each signal
family, clips per CPU second, and the model load time. Results go to .vcurate/bench/scored.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import cv2

from bench.footage import list_videos
from media.shots.analysis import AnalysisParams, analyze_video_decoding_once
from media.signals.clip_signals import ClipInput, SignalModels, SignalParams, score_video_clips

OUT = Path(".vcurate/bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", type=Path, default=Path("/tmp/footage"))
    parser.add_argument("--embedder", default="opennsfw", choices=("opennsfw", "dinov2"))
    parser.add_argument("--limit", type=int, default=12, help="videos to use")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    params = SignalParams(embedder=args.embedder, models_dir=str(OUT / "models"), threads=1)
    started = time.process_time()
    models = SignalModels(params)
    load_s = time.process_time() - started

    totals: dict[str, float] = defaultdict(float)
    clips = 0
    videos = list_videos(args.footage, {".mp4", ".webm", ".mov", ".avi"})
    for path in videos[: args.limit]:
        try:
            analysis = analyze_video_decoding_once(path, AnalysisParams())
        except Exception as exc:  # an undecodable file is skipped, as the clips tier would list it
            print(f"skip {path.name}: {exc}")
            continue
        inputs = [ClipInput(f"{path.stem}-{c.start}", c.start, c.end, analysis.fps,
                            [(role, f, analysis.keyframe_jpegs[f]) for role, f in c.keyframes.items()])
                  for c in analysis.clips if c.keyframes]
        if not inputs:
            continue
        for clip in score_video_clips(inputs, analysis.stats, params, models):
            for name, seconds in clip.seconds.items():
                totals[name] += seconds
        clips += len(inputs)
        print(f"{path.name}: {len(inputs)} clips")

    total = sum(totals.values())
    rows = {name: 1000 * seconds / clips for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1])}
    print(f"\n{clips} clips, embedder {args.embedder}, models loaded in {load_s:.1f} s CPU\n")
    print("| signal | CPU ms per clip | share |\n|---|---|---|")
    for name, ms in rows.items():
        print(f"| {name} | {ms:.1f} | {ms * clips / 1000 / total:.0%} |")
    print(f"| **all** | **{1000 * total / clips:.1f}** | {clips / total:.1f} clips per CPU second |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scored.json").write_text(json.dumps({
        "clips": clips, "embedder": args.embedder, "model_load_cpu_s": load_s,
        "cpu_ms_per_clip": rows, "clips_per_cpu_s": clips / total}, indent=2))


if __name__ == "__main__":
    main()
