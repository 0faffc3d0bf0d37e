"""Benchmark: exporting a release to WebDataset shards, and loading them back for training.

    uv run python -m bench.export_load [--tag release-…] [--to DIR] [--batch-size N] [--repeat N]
    uv run python -m bench.export_load --export-dir DIR   # the load half only, on an export on disk

Export: `vcurate export`'s own code (assets/upkeep/export.py) over the lakeFS of `.env` (the
`./dev demo` state), the newest release tag unless --tag: samples/s and MB/s of media written,
wall clock, reads from lakeFS included. Without --to the export goes to a temporary folder and
is recorded in a temporary ledger (it is deleted afterwards, so it is no copy to audit).

Load: the loader (media/export/loader.py) over every batch of the export, against plain PyAV
decoding of the same MP4 bytes into the same uint8 RGB arrays, passes interleaved in one run:
clips/s and frames/s of each and their ratio (above 1: the loader is faster than plain decode).

Results are printed as a Markdown table and written to .vcurate/bench/export_load.json.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from media.export.loader import BucketedVideoDataset, scan_export

STATE = Path(".vcurate/bench")


def export_phase(tag: str | None, to: Path | None) -> tuple[Path, dict]:
    from assets.upkeep.export import export_tag, ledger_path
    from orchestration.env import load_project_env
    from orchestration.resources import lakefs_from_env

    load_project_env()
    lakefs = lakefs_from_env()
    tag = tag or max((t.id for t in lakefs.repo().tags() if t.id.startswith("release-")), default=None)
    if tag is None:
        raise SystemExit("no release tag in lakeFS: run `./dev demo` (or `vcurate release`) first")
    temp = None if to else Path(tempfile.mkdtemp(prefix="vcurate-export-"))
    out = to or temp / "export"
    ledger = ledger_path() if to else temp / "exports.jsonl"
    summary = export_tag(lakefs, tag, "webdataset", out, ledger)
    seconds = max(summary.seconds, 1e-9)
    return out, {"tag": tag, "samples": summary.samples, "media_mb": round(summary.media_bytes / 1e6, 3),
                 "seconds": round(summary.seconds, 3), "samples_per_s": round(summary.samples / seconds, 2),
                 "mb_per_s": round(summary.media_bytes / 1e6 / seconds, 2), "kept": bool(to)}


def plain_decode(root: Path) -> tuple[int, int, float]:
    """(clips, frames, seconds): each MP4 read from its shard and decoded by PyAV, nothing else."""
    _, members = scan_export(root)
    clips = frames = 0
    started = time.perf_counter()
    for m in members:
        with m.shard.open("rb") as raw:
            raw.seek(m.mp4[0])
            data = raw.read(m.mp4[1])
        with av.open(io.BytesIO(data)) as container:
            video = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        clips, frames = clips + 1, frames + video.shape[0]
    return clips, frames, time.perf_counter() - started


def loader_decode(root: Path, batch_size: int) -> tuple[int, int, float]:
    clips = frames = 0
    started = time.perf_counter()
    for batch in BucketedVideoDataset(root, batch_size=batch_size, seed=0):
        count, length = batch["video"].shape[:2]
        clips, frames = clips + count, frames + count * length
    return clips, frames, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tag", help="release tag to export (default: the newest)")
    parser.add_argument("--to", type=Path, help="keep the export here (recorded in the ledger)")
    parser.add_argument("--export-dir", type=Path, help="skip the export; load this WebDataset export")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="load passes; the best is reported")
    args = parser.parse_args(argv)
    result: dict = {}
    root = args.export_dir
    if root is None:
        root, result["export"] = export_phase(args.tag, args.to.resolve() if args.to else None)
    # Interleaved passes, best of each: a busy shared machine drifts less between the two.
    passes = [(plain_decode(root), loader_decode(root, args.batch_size)) for _ in range(args.repeat)]
    plain = min((p for p, _ in passes), key=lambda r: r[2])
    loaded = min((lo for _, lo in passes), key=lambda r: r[2])
    assert plain[:2] == loaded[:2], (plain, loaded)  # the same clips and frames, both ways
    if "export" in result and not result["export"]["kept"]:
        shutil.rmtree(root.parent)  # the temporary export and its temporary ledger
    result["load"] = {"clips": plain[0], "frames": plain[1], "batch_size": args.batch_size,
                      "plain_clips_per_s": round(plain[0] / plain[2], 2),
                      "loader_clips_per_s": round(loaded[0] / loaded[2], 2),
                      "plain_frames_per_s": round(plain[1] / plain[2], 1),
                      "loader_frames_per_s": round(loaded[1] / loaded[2], 1),
                      "loader_vs_plain": round(plain[2] / loaded[2], 3)}
    print("| what | figure |\n|---|---|")
    for phase, figures in result.items():
        for key, value in figures.items():
            print(f"| {phase} {key} | {value} |")
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "export_load.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
