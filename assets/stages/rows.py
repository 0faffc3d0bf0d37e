"""Build one stage's manifest for one source: route from stored tables, export new samples.

A sample's id encodes (stage, clip, size, fps, frames), so a sample that survives a
re-route keeps its exported file; only new samples are transcoded, in one decode per video.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from assets.common.layout import stage_media_path
from media.export.buckets import crop_box
from media.export.transcode import ExportJob, export_spans_decoding
from quality_checks.policy.stages import StagePolicy
from quality_checks.routing.stages import route_stage
from quality_checks.schemas import STAGE_SCHEMA

CAPTION_COLUMNS = ("qc_status", "caption_short", "caption_medium", "caption_dense", "caption_assembled",
                   "original_text")


@dataclass
class StageStats:
    candidates: int = 0
    samples: int = 0
    exported: int = 0
    reused: int = 0
    rejected: dict[str, str] = field(default_factory=dict)  # clip_id -> first failed rule
    failed: dict[str, str] = field(default_factory=dict)  # video uri -> export error


def join_captions(scored: list[dict], captioned: list[dict] | None) -> list[dict]:
    """Scored rows with their caption fields (None when a clip has no caption)."""
    captions = {r["clip_id"]: r for r in captioned or []}
    return [{**row, **{k: captions.get(row["clip_id"], {}).get(k) for k in CAPTION_COLUMNS}}
            for row in scored]


def route(stage: str, scored: list[dict], captioned: list[dict] | None,
          policy: StagePolicy) -> tuple[list[dict], dict[str, str]]:
    return route_stage(stage, join_captions(scored, captioned), policy)


def build_stage(
    stage: str, source: str, scored: list[dict], captioned: list[dict] | None, policy: StagePolicy,
    previous: pa.Table | None, local_path: Callable[[dict], Path], write: Callable[[str, bytes], None],
    stored: set[str], scored_commit: str, policy_hash: str,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pa.Table, StageStats, list[str]]:
    """(manifest, stats, media paths no longer cited). `stored` are media paths on the branch."""
    samples, rejected = route(stage, scored, captioned, policy)
    stats = StageStats(candidates=len(scored), rejected=rejected)
    old = {r["sample_id"]: r for r in previous.to_pylist()} if previous is not None else {}
    todo: dict[str, list[dict]] = defaultdict(list)
    rows = []
    for sample in samples:
        path = stage_media_path(source, stage, sample["sample_id"])
        sample.update(media_path=path, scored_commit=scored_commit, policy_hash=policy_hash)
        if sample["sample_id"] in old and path in stored:
            sample["media_bytes"] = old[sample["sample_id"]]["media_bytes"]
            rows.append(sample)
            stats.reused += 1
        else:
            todo[sample["uri"]].append(sample)
    with tempfile.TemporaryDirectory(prefix=f"vcurate-{stage}-") as tmp:
        for done, (uri, group) in enumerate(todo.items(), start=1):
            jobs = [ExportJob(start_frame=s["start_frame"], end_frame=s["end_frame"],
                              output=Path(tmp) / f"{s['sample_id']}.mp4", width=s["width"],
                              height=s["height"], fps_out=s["out_fps"], frames=s["frames"],
                              crop=crop_box(s["source_width"], s["source_height"], s["width"], s["height"]))
                    for s in group]
            try:
                results = export_spans_decoding(local_path(group[0]), jobs)
            except Exception as exc:  # one unreadable video fails its samples, not the stage
                stats.failed[uri] = f"{type(exc).__name__}: {exc}"
            else:
                for sample, result in zip(group, results, strict=True):
                    if result.error:
                        stats.failed[uri] = result.error
                        continue
                    data = Path(result.path).read_bytes()
                    write(sample["media_path"], data)
                    sample["media_bytes"] = len(data)
                    rows.append(sample)
                    stats.exported += 1
            if progress:
                progress(done, len(todo))
    stats.samples = len(rows)
    cited = {r["media_path"] for r in rows}
    stale = sorted(p for p in stored if p not in cited)
    rows.sort(key=lambda r: (r["video_id"], r["start_frame"]))
    return pa.Table.from_pylist(rows, schema=STAGE_SCHEMA), stats, stale
