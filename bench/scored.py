"""Benchmark: scored-tier throughput per signal on real footage, the way the tier runs it.

    uv run python -m bench.scored [--footage DIR] [--embedder opennsfw|dinov2] [--baseline]

Each video goes through the clips tier's single-pass analysis (keyframes + per-frame
statistics), then `score_video_clips` computes every signal from those stored keyframes, as a
scored worker does (models loaded once, one thread). Reported: CPU ms per clip for each signal
family, clips per CPU second, and the model load time.

`--text-precision` picks the PP-OCR detector scored here: fp32 (the tier's default) or int8
(the opt-in int8 detector of media/signals/int8.py at box threshold 0.6). `--baseline` also
scores every video with the settings of issue 20's start (the fp32 detector at the tier's
default thresholds, OpenNSFW's graph as it ships, not folded, no crop embedding for dedup's crop
link), in the same process, alternating
which of the two goes first from video to video, so both see the same machine load. It prints
both columns, their ratio, and how far the signal values moved (NSFW and embeddings by float
rounding at most: the fold is exact arithmetic). The crop inference is timed as "embedding".
Results go to .vcurate/bench/scored.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from bench.footage import list_videos, require_footage
from media.shots.analysis import AnalysisParams, analyze_video_decoding_once
from media.signals.clip_signals import ClipInput, SignalModels, SignalParams, score_video_clips
from media.signals.embeddings import OpenNsfwEmbedder
from media.signals.nsfw import NsfwModel
from media.signals.text import TextParams

OUT = Path(".vcurate/bench")
# The tier's default: the packaged fp32 detector and its calibrated box threshold.
BASELINE_TEXT = TextParams()
TEXT = {"fp32": BASELINE_TEXT, "int8": TextParams(precision="int8", box_threshold=0.6)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footage", type=Path, default=None)
    parser.add_argument("--embedder", default="opennsfw", choices=("opennsfw", "dinov2"))
    parser.add_argument("--limit", type=int, default=12, help="videos to use")
    parser.add_argument("--text-precision", default="fp32", choices=tuple(TEXT))
    parser.add_argument("--baseline", action="store_true", help="also run the default settings, interleaved")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    params = {"new": SignalParams(text=TEXT[args.text_precision], embedder=args.embedder,
                                  models_dir=str(OUT / "models"), threads=1)}
    if args.baseline:
        params["baseline"] = replace(params["new"], text=BASELINE_TEXT, crop_embedding=False)
    models, load_s = {}, {}
    for name, p in params.items():
        started = time.process_time()
        models[name] = SignalModels(p)
        if name == "baseline":  # OpenNSFW's graph as it ships (the embedder shares this model)
            models[name].nsfw = NsfwModel(Path(p.models_dir), threads=1, regions=p.embedder == "opennsfw",
                                          fold=False)
            if p.embedder == "opennsfw":
                models[name].embedder = OpenNsfwEmbedder(models[name].nsfw)
        load_s[name] = time.process_time() - started

    totals: dict[str, dict[str, float]] = {name: defaultdict(float) for name in params}
    scored: dict[str, list] = {name: [] for name in params}
    clips = 0
    videos = list_videos(require_footage(args.footage), {".mp4", ".webm", ".mov", ".avi"})
    for index, path in enumerate(videos[: args.limit]):
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
        order = list(params) if index % 2 == 0 else list(reversed(params))
        for name in order:
            out = score_video_clips(inputs, analysis.stats, params[name], models[name])
            scored[name] += out
            for clip in out:
                for signal, seconds in clip.seconds.items():
                    totals[name][signal] += seconds
        clips += len(inputs)
        print(f"{path.name}: {len(inputs)} clips")

    report = {"clips": clips, "embedder": args.embedder, "model_load_cpu_s": load_s, "settings": {}}
    for name in params:
        total = sum(totals[name].values())
        rows = {s: 1000 * v / clips for s, v in sorted(totals[name].items(), key=lambda kv: -kv[1])}
        report["settings"][name] = {"cpu_ms_per_clip": rows, "all_cpu_ms_per_clip": 1000 * total / clips,
                                    "clips_per_cpu_s": clips / total}
    print(f"\n{clips} clips, embedder {args.embedder}, models loaded in "
          + ", ".join(f"{n} {s:.1f} s CPU" for n, s in load_s.items()) + "\n")
    names = list(params)
    new = report["settings"]["new"]["cpu_ms_per_clip"]
    head = " | ".join(f"{n} CPU ms per clip" for n in names) + (" | new / baseline" if args.baseline else "")
    print(f"| signal | {head} |\n|" + "---|" * (len(names) + args.baseline + 1))
    for signal in new:
        cells = [report["settings"][n]["cpu_ms_per_clip"].get(signal, 0.0) for n in names]
        ratio = "" if not args.baseline else f" | {cells[0] / cells[1]:.2f}" if cells[1] else " | -"
        print(f"| {signal} | " + " | ".join(f"{c:.1f}" for c in cells) + ratio + " |")
    alls = [report["settings"][n]["all_cpu_ms_per_clip"] for n in names]
    ratio = f" | **{alls[0] / alls[1]:.2f}**" if args.baseline else ""
    print("| **all** | " + " | ".join(f"**{a:.1f}**" for a in alls) + ratio + " |")
    if args.baseline:
        report["value_changes"] = value_changes(scored["baseline"], scored["new"])
        print("\nsignal values, new against baseline:", json.dumps(report["value_changes"]))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scored.json").write_text(json.dumps(report, indent=2))


def value_changes(before: list, after: list) -> dict[str, float]:
    """How far the stored signals moved between two runs over the same clips."""
    pairs = list(zip(before, after, strict=True))
    nsfw = max(abs(a.columns["nsfw_max"] - b.columns["nsfw_max"]) for a, b in pairs)
    embedding = max(float(np.abs(a.embedding - b.embedding).max()) for a, b in pairs)
    text_any = np.mean([(a.columns["text_keyframes"] > 0) == (b.columns["text_keyframes"] > 0)
                        for a, b in pairs])
    ratio = max(abs(a.columns["text_ratio_max"] - b.columns["text_ratio_max"]) for a, b in pairs)
    return {"nsfw_max_abs_diff": float(nsfw), "embedding_max_abs_diff": embedding,
            "clips_same_has_text": float(text_any), "text_ratio_max_abs_diff": float(ratio),
            "clips": len(before)}


if __name__ == "__main__":
    main()
