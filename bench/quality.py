"""Benchmark: technical quality on real footage frames, and what it costs per keyframe.

    uv run python -m bench.quality [--footage DIR] [--frames N] [--repeat N]

Frames are taken from the shared footage set (fetched with `../shared/footage/fetch.sh DIR
all`) at keyframe size (short side <= 384, as the clips tier stores them). Each frame is then
degraded four ways, strongly (Gaussian blur sigma 2, JPEG quality 10, Gaussian noise sigma 12,
darkened to 35%) and mildly (sigma 1, quality 30, sigma 5, 60%), and we report the share of
degraded frames whose technical_quality ranks below their original's (target >= 0.95 on the
strong set). Flat frames (luma std < 5: black or single-colour cards) have no detail to
blur and are counted apart. Throughput is CPU time per keyframe (time.process_time, one
OpenCV thread), since other work shares the cores; wall time is reported alongside.

Results are printed as Markdown and written to .vcurate/bench/quality.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from bench.footage import require_footage
from media.decode.frames import frame_to_rgb
from media.signals.quality import (
    QualityParams,
    blockiness,
    colourfulness,
    luma_of,
    noise_sigma,
    normalised_sharpness,
    quality_signals,
)

STATE = Path(".vcurate/bench")
FLAT_STD = 5.0
Degrade = Callable[[np.ndarray], np.ndarray]


def _jpeg(quality: int) -> Degrade:
    def degrade(rgb: np.ndarray) -> np.ndarray:
        _, data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)

    return degrade


def _noise(sigma: float, seed: int) -> Degrade:
    rng = np.random.default_rng(seed)
    return lambda rgb: np.clip(rgb + rng.normal(0, sigma, rgb.shape), 0, 255).astype(np.uint8)


def _darken(factor: float) -> Degrade:
    return lambda rgb: (rgb.astype(np.float32) * factor).round().astype(np.uint8)


def _blur(sigma: float) -> Degrade:
    return lambda rgb: cv2.GaussianBlur(rgb, (0, 0), sigma)


def degradations(seed: int) -> dict[str, dict[str, Degrade]]:
    return {
        "strong": {"blur σ2": _blur(2.0), "JPEG q10": _jpeg(10), "noise σ12": _noise(12.0, seed),
                   "darken 35%": _darken(0.35)},
        "mild": {"blur σ1": _blur(1.0), "JPEG q30": _jpeg(30), "noise σ5": _noise(5.0, seed),
                 "darken 60%": _darken(0.6)},
    }


def load_frames(footage: Path, per_video: int, span: int = 600) -> dict[str, np.ndarray]:
    """Up to `per_video` distinct frames per file, spread over its first `span` frames."""
    frames: dict[str, np.ndarray] = {}
    for path in sorted(p for p in footage.iterdir() if p.is_file()):
        decoded: list[np.ndarray] = []
        try:
            with av.open(str(path)) as container:
                for i, frame in enumerate(container.decode(video=0)):
                    if i % 10 == 0:
                        decoded.append(frame_to_rgb(frame, 384))
                    if i >= span:
                        break
        except (av.FFmpegError, IndexError) as exc:
            print(f"skipped {path.name}: {exc}", file=sys.stderr)
            continue
        picks = sorted(set(np.linspace(0, len(decoded) - 1, per_video).round().astype(int).tolist()))
        for k in picks if decoded else []:
            frames[f"{path.name}#{k * 10}"] = decoded[k]
    return frames


def _cpu_ms(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call, best of `repeat` rounds of 5 calls."""
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(5):
            fn()
        cpu.append((time.process_time() - c0) / 5 * 1000)
        wall.append((time.perf_counter() - w0) / 5 * 1000)
    return min(cpu), min(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--footage", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=4, help="frames per video")
    parser.add_argument("--repeat", type=int, default=3, help="timing rounds (best is kept)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    footage = require_footage(args.footage)
    frames = load_frames(footage, args.frames)
    if not frames:
        sys.exit(f"{footage}: no decodable video files")
    params = QualityParams()
    stats = {"luma_mean": np.full(100, 120.0), "luma_std": np.full(100, 40.0),
             "sharpness": np.full(100, 300.0)}
    originals = {name: quality_signals([rgb], stats, params) for name, rgb in frames.items()}
    flat = sorted(n for n, rgb in frames.items() if luma_of(rgb).std() < FLAT_STD)
    ranked = [n for n in frames if n not in flat]
    print(f"{len(frames)} frames from {len({n.split('#')[0] for n in frames})} videos "
          f"({len(flat)} flat, left out of the ranking)\n")

    report: dict[str, object] = {"frames": len(frames), "flat_frames": flat, "ranking": {}}
    print("| severity | degradation | ranked below original | mean Δ technical_quality |")
    print("|---|---|---:|---:|")
    for severity, kinds in degradations(args.seed).items():
        below_all = 0
        for kind, degrade in kinds.items():
            deltas, failures = [], []
            for name in ranked:
                score = quality_signals([degrade(frames[name])], stats, params).technical_quality
                deltas.append(score - originals[name].technical_quality)
                if deltas[-1] >= 0:
                    failures.append(name)
            share = 1 - len(failures) / len(ranked)
            below_all += len(ranked) - len(failures)
            report["ranking"][f"{severity}/{kind}"] = {  # type: ignore[index]
                "share_below": share, "mean_delta": float(np.mean(deltas)), "failures": failures}
            print(f"| {severity} | {kind} | {share:.3f} ({len(ranked) - len(failures)}/{len(ranked)}) "
                  f"| {np.mean(deltas):+.3f} |")
        total = below_all / (len(kinds) * len(ranked))
        report["ranking"][f"{severity}/all"] = {"share_below": total}  # type: ignore[index]
        print(f"| {severity} | **all** | **{total:.3f}** | |")

    sample = list(frames.values())
    lumas = [luma_of(rgb) for rgb in sample]
    parts: dict[str, Callable[[], object]] = {
        "quality_signals (all)": lambda: [quality_signals([rgb], stats, params) for rgb in sample],
        "  sharpness_norm": lambda: [normalised_sharpness(y, params, 1.0) for y in lumas],
        "  noise": lambda: [noise_sigma(y, params.noise_edge_share) for y in lumas],
        "  colourfulness": lambda: [colourfulness(rgb) for rgb in sample],
        "  blockiness": lambda: [blockiness(y, params.block_size) for y in lumas],
    }
    pixels = np.mean([rgb.shape[0] * rgb.shape[1] for rgb in sample])
    print(f"\nper keyframe (mean {pixels / 1000:.0f} kpixels, one OpenCV thread):\n")
    print("| step | CPU ms | wall ms |")
    print("|---|---:|---:|")
    timing = {}
    for name, fn in parts.items():
        cpu, wall = _cpu_ms(fn, args.repeat)
        timing[name.strip()] = {"cpu_ms": cpu / len(sample), "wall_ms": wall / len(sample)}
        print(f"| {name} | {cpu / len(sample):.2f} | {wall / len(sample):.2f} |")
    report["per_keyframe"] = timing
    report["technical_quality"] = {n: s.technical_quality for n, s in originals.items()}
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "quality.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {STATE / 'quality.json'}")


if __name__ == "__main__":
    main()
