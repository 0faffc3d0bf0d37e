"""A release written as trainers load it: WebDataset shards per bucket, or CSV / JSONL + MP4 files.

Pure: the caller hands over manifest rows, their caption variants and a way to fetch each MP4's
bytes; nothing here knows lakeFS. Every layout gets an `index.json` naming the release tag and
the manifest's sha256, so a copy on disk says which citable release it is.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import webdataset as wds

FORMATS = ("webdataset", "csv", "jsonl")
INDEX = "index.json"
SHARD_PATTERN = "shard-%06d.tar"
# What open video-generation trainers read (Open-Sora's CSV: path, text, num_frames, height,
# width, aspect_ratio = height / width, fps); `caption` and `frames` name the same values.
TABLE_COLUMNS = ("path", "caption", "frames", "height", "width", "aspect_ratio", "fps",
                 "text", "num_frames", "bucket", "weight", "sample_id")
CAPTION_FIELDS = ("caption_short", "caption_medium", "caption_dense", "caption_assembled", "original_text")
LINEAGE = ("source", "video_id", "clip_id", "sample_id")


@dataclass
class ExportSummary:
    index: dict[str, Any]
    samples: int = 0
    media_bytes: int = 0
    seconds: float = 0.0
    sample_ids: list[str] = field(default_factory=list)


def bucket_name(row: dict[str, Any]) -> str:
    """`<stage>-<aspect>-<w>x<h>-<frames>f`: one folder per batchable shape (`:` is not a safe
    path character on every file system, so 16:9 is written 16x9)."""
    aspect = str(row["bucket_aspect"]).replace(":", "x")
    return f"{row['stage']}-{aspect}-{row['width']}x{row['height']}-{row['frames']}f"


def sample_record(row: dict[str, Any], captions: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON stored next to a sample's MP4: its caption, every caption variant of its clip,
    weight, bucket and lineage ids (so a copy can be traced back and audited)."""
    variants = {k: (captions or {}).get(k) for k in CAPTION_FIELDS}
    return {
        "caption": row["caption"], "caption_variant": row["caption_variant"], "captions": variants,
        "weight": float(row["weight"]),
        "bucket": {"name": bucket_name(row), "stage": row["stage"], "aspect": row["bucket_aspect"],
                   "width": int(row["width"]), "height": int(row["height"]),
                   "frames": int(row["frames"]), "fps": float(row["out_fps"])},
        **{k: row[k] for k in LINEAGE},
    }


def _ordered(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    # Bucket by bucket, then by id: shards are written one bucket at a time, deterministically.
    return sorted(rows, key=lambda r: (bucket_name(r), r["sample_id"]))


def _bucket_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {"stage": row["stage"], "aspect": row["bucket_aspect"], "width": int(row["width"]),
            "height": int(row["height"]), "frames": int(row["frames"]), "fps": float(row["out_fps"]),
            "samples": 0}


def export_release(rows: Iterable[dict[str, Any]], captions: dict[tuple[str, str], dict[str, Any]],
                   fetch: Callable[[Iterable[dict[str, Any]]], Iterator[bytes]], out_dir: Path, fmt: str,
                   tag: str, manifest_sha256: str, max_samples_per_shard: int = 1000) -> ExportSummary:
    """Write `rows` (release manifest rows) to `out_dir` in `fmt` and its `index.json`.

    `captions` maps (source, clip_id) to the clip's captioned row; `fetch` yields the MP4 bytes of
    the rows it is given, in order (the caller may fetch them concurrently). `out_dir` must be
    empty or absent: an export never mixes with another one.
    """
    if fmt not in FORMATS:
        raise ValueError(f"export: format {fmt!r} is not one of {', '.join(FORMATS)}")
    if max_samples_per_shard < 1:
        raise ValueError(f"export: max_samples_per_shard must be >= 1, got {max_samples_per_shard}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"export: {out_dir} is not empty; export into a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    ordered = _ordered(rows)
    started = time.perf_counter()
    summary = ExportSummary(index={})
    buckets: dict[str, dict[str, Any]] = {}
    write = _write_shards if fmt == "webdataset" else _write_table
    write(ordered, captions, fetch(ordered), out_dir, fmt, buckets, summary, max_samples_per_shard)
    summary.seconds = time.perf_counter() - started
    summary.index = {"release_tag": tag, "manifest_sha256": manifest_sha256, "format": fmt,
                     "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                     "samples": summary.samples, "buckets": buckets}
    if fmt != "webdataset":
        summary.index["table"] = f"samples.{fmt}"
    (out_dir / INDEX).write_text(json.dumps(summary.index, indent=2, sort_keys=True) + "\n")
    return summary


def _write_shards(ordered: list[dict], captions: dict, media: Iterator[bytes], out_dir: Path, fmt: str,
                  buckets: dict[str, dict], summary: ExportSummary, per_shard: int) -> None:
    writer: wds.ShardWriter | None = None
    current = ""
    for row, data in zip(ordered, media, strict=True):
        name = bucket_name(row)
        if name != current:  # a new bucket starts its own numbered shards
            if writer is not None:
                writer.close()
            (out_dir / name).mkdir()
            writer = wds.ShardWriter(str(out_dir / name / SHARD_PATTERN), maxcount=per_shard,
                                     verbose=0, encoder=False, mtime=0.0)
            buckets[name] = _bucket_entry(row) | {"shards": []}
            current = name
        record = sample_record(row, captions.get((row["source"], row["clip_id"])))
        writer.write({"__key__": row["sample_id"], "mp4": data,
                      "json": json.dumps(record, sort_keys=True, ensure_ascii=False).encode()})
        shard = Path(writer.fname).relative_to(out_dir).as_posix()
        shards = buckets[name]["shards"]
        if not shards or shards[-1]["path"] != shard:
            shards.append({"path": shard, "samples": 0})
        shards[-1]["samples"] += 1
        _count(buckets[name], summary, row, data)
    if writer is not None:
        writer.close()


def _write_table(ordered: list[dict], captions: dict, media: Iterator[bytes], out_dir: Path, fmt: str,
                 buckets: dict[str, dict], summary: ExportSummary, per_shard: int) -> None:
    table = out_dir / f"samples.{fmt}"
    with table.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, TABLE_COLUMNS) if fmt == "csv" else None
        if writer is not None:
            writer.writeheader()
        for row, data in zip(ordered, media, strict=True):
            name = bucket_name(row)
            path = out_dir / "media" / name / f"{row['sample_id']}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            line = {"path": str(path.resolve()), "caption": row["caption"], "frames": int(row["frames"]),
                    "height": int(row["height"]), "width": int(row["width"]),
                    "aspect_ratio": round(int(row["height"]) / int(row["width"]), 6),
                    "fps": float(row["out_fps"]), "text": row["caption"], "num_frames": int(row["frames"]),
                    "bucket": name, "weight": float(row["weight"]), "sample_id": row["sample_id"]}
            if writer is not None:
                writer.writerow(line)
            else:
                record = sample_record(row, captions.get((row["source"], row["clip_id"])))
                extra = {k: record[k] for k in ("captions", "caption_variant", *LINEAGE[:3])}
                out.write(json.dumps(line | extra, sort_keys=True, ensure_ascii=False) + "\n")
            buckets.setdefault(name, _bucket_entry(row) | {"media": f"media/{name}"})
            _count(buckets[name], summary, row, data)


def _count(bucket: dict, summary: ExportSummary, row: dict, data: bytes) -> None:
    bucket["samples"] += 1
    summary.samples += 1
    summary.media_bytes += len(data)
    summary.sample_ids.append(row["sample_id"])
