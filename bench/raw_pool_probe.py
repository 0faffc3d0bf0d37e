"""Benchmark: raw_pool's per-video cost on real footage, against baselines in the same run.

    uv run python bench/raw_pool_probe.py [DIR ...]      (default: data/sample, from the demo)

Reports, per file and in total: sha256, our probe (demux every packet + decode one frame),
and the full-decode baseline (PyAV decoding every frame, the cost a naive probe would pay).
The ratio full-decode / (hash + probe) is what raw_pool's probe design buys.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import av

from bench.footage import list_videos
from media.decode.hashing import sha256_file
from media.decode.probe import probe_video_file

SUFFIXES = {".mp4", ".mov", ".webm", ".avi", ".mkv", ".mpeg", ".ogv"}  # narrower than VIDEO_SUFFIXES


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def _decode_all(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def main(dirs: list[str]) -> None:
    files = sorted(p for d in dirs for p in list_videos(Path(d), SUFFIXES))
    if not files:
        sys.exit("no videos found: run `./dev demo` first or pass directories")
    totals = [0.0, 0.0, 0.0]
    print(f"{'file':44} {'MB':>6} {'frames':>6} {'hash s':>7} {'probe s':>8} {'decode s':>8}")
    for path in files:
        t_hash, _ = _timed(sha256_file, path)
        t_probe, probe = _timed(probe_video_file, path)
        t_decode, frames = _timed(_decode_all, path) if probe.error is None else (0.0, 0)
        totals = [totals[0] + t_hash, totals[1] + t_probe, totals[2] + t_decode]
        print(f"{path.name[:44]:44} {path.stat().st_size / 1e6:6.2f} {frames:6d} "
              f"{t_hash:7.4f} {t_probe:8.4f} {t_decode:8.3f}")
    ours = totals[0] + totals[1]
    print(f"\n{len(files)} videos: raw_pool hash+probe {ours:.3f} s "
          f"({ours / len(files):.4f} s/video); full decode {totals[2]:.3f} s; "
          f"full decode / raw_pool = {totals[2] / ours:.1f}x")


if __name__ == "__main__":
    main(sys.argv[1:] or ["data/sample"])
