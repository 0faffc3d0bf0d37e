"""Blocking audits of a clips table, run on the write-audit-publish branch before merge."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from functools import partial

import pyarrow as pa
from dagster import AssetCheckResult, AssetCheckSpec

from quality_checks.check_results import check_result as _result
from quality_checks.check_results import check_spec, schema_matches
from quality_checks.policy import Policy
from quality_checks.schemas import CLIPS_SCHEMA

SCHEMA = "clips_schema"
SPANS_INSIDE_VIDEO = "clips_spans_inside_video"
NO_OVERLAPS = "clips_no_overlaps"
DURATION_BOUNDS = "clips_duration_within_bounds"
CLIPS_PER_VIDEO = "clips_per_video_within_limit"
KEYFRAMES_PRESENT = "clips_keyframes_present"
FAILED_VIDEOS = "clips_failed_videos_within_limit"
# One frame of slack: windows are split on frame boundaries.
_FRAME_SLACK = 1.0


def clips_check_specs(asset: str = "clips") -> list[AssetCheckSpec]:
    spec = partial(check_spec, asset)

    return [
        spec(SCHEMA, "Columns and types match the clips contract (quality_checks/schemas.py)."),
        spec(SPANS_INSIDE_VIDEO, "0 <= start_frame < end_frame <= the video's frame count."),
        spec(NO_OVERLAPS, "Clips of one video never share a frame."),
        spec(DURATION_BOUNDS, "Durations lie in policy.clips.min_clip_s..max_clip_s "
                              "(one frame of slack)."),
        spec(CLIPS_PER_VIDEO, "At most policy.clips.max_clips_per_video clips per video."),
        spec(KEYFRAMES_PRESENT, "Every clip has its keyframes, and every keyframe (and clip "
                                "file, with policy.clips.cut_files) exists on the branch."),
        spec(FAILED_VIDEOS, "At most policy.clips.max_failed_rate of the accepted videos failed "
                            "to be fetched or analysed (a fault of the machine fails the step)."),
    ]


def evaluate_clips_checks(table: pa.Table, policy: Policy, stored_paths: Iterable[str],
                          videos: int = 0, failed: dict[str, str] | None = None) -> list[AssetCheckResult]:
    """`videos`: accepted videos of the source; `failed`: uri -> why its analysis failed."""
    rows = table.to_pylist() if _schema_ok(table) else []
    return [
        _result(SCHEMA, _schema_ok(table)),
        _spans_inside(rows),
        _no_overlaps(rows),
        _durations(rows, policy),
        _per_video(rows, policy),
        _keyframes(rows, set(stored_paths)),
        _failed_videos(videos, failed or {}, policy),
    ]


def _schema_ok(table: pa.Table) -> bool:
    return schema_matches(table, CLIPS_SCHEMA)


def _spans_inside(rows: list[dict]) -> AssetCheckResult:
    bad = [r["clip_id"] for r in rows
           if not 0 <= r["start_frame"] < r["end_frame"] <= r["video_frame_count"]]
    return _result(SPANS_INSIDE_VIDEO, not bad, outside=len(bad), examples=str(bad[:10]))


def _no_overlaps(rows: list[dict]) -> AssetCheckResult:
    by_video: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for r in rows:
        by_video[r["video_id"]].append((r["start_frame"], r["end_frame"], r["clip_id"]))
    overlapping = []
    for spans in by_video.values():
        spans.sort()
        overlapping += [b[2] for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1]]
    return _result(NO_OVERLAPS, not overlapping, overlapping=len(overlapping),
                   examples=str(overlapping[:10]))


def _durations(rows: list[dict], policy: Policy) -> AssetCheckResult:
    low, high = policy.clips.min_clip_s, policy.clips.max_clip_s
    bad = [r["clip_id"] for r in rows
           if not low - _FRAME_SLACK / r["fps"] <= r["duration_s"] <= high + _FRAME_SLACK / r["fps"]]
    return _result(DURATION_BOUNDS, not bad, out_of_bounds=len(bad), min_clip_s=low,
                   max_clip_s=high, configured_at="policy.clips.min_clip_s / max_clip_s",
                   examples=str(bad[:10]))


def _per_video(rows: list[dict], policy: Policy) -> AssetCheckResult:
    counts = Counter(r["video_id"] for r in rows)
    limit = policy.clips.max_clips_per_video
    worst = max(counts.values(), default=0)
    return _result(CLIPS_PER_VIDEO, worst <= limit, most_clips_in_one_video=worst, limit=limit,
                   configured_at="policy.clips.max_clips_per_video")


def _keyframes(rows: list[dict], stored: set[str]) -> AssetCheckResult:
    missing_roles = [r["clip_id"] for r in rows if not r["keyframes"]]
    missing_files = [k["path"] for r in rows for k in (r["keyframes"] or [])
                     if k["path"] not in stored]
    missing_files += [r["clip_file_path"] for r in rows
                      if r["clip_file_path"] and r["clip_file_path"] not in stored]
    return _result(KEYFRAMES_PRESENT, not (missing_roles or missing_files),
                   clips_without_keyframes=len(missing_roles),
                   keyframe_files_missing=len(missing_files), examples=str(missing_files[:5]))


def _failed_videos(videos: int, failed: dict[str, str], policy: Policy) -> AssetCheckResult:
    rate = len(failed) / videos if videos else 0.0
    limit = policy.clips.max_failed_rate
    # reasons, never the uris (the event log outlives a takedown; which videos: the failures table)
    examples = "; ".join(sorted({why.replace(uri, "<video>") for uri, why in failed.items()})[:5])
    return _result(FAILED_VIDEOS, rate <= limit, failed=len(failed), videos=videos,
                   failed_rate=round(rate, 4), limit=limit, examples=examples or "none",
                   configured_at="policy.clips.max_failed_rate")
