"""Opt-out lineage: which rows and files of which tables derive from opted-out sources or videos.

Every tier row carries its lineage columns (source, video_id, and from clips on, clip_id), so
one DuckDB query per table finds what derives from an opted-out video; the same query runs
on `main` and on every release tag.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa
from dagster import AssetCheckResult, AssetCheckSpec

from quality_checks.check_results import check_result, check_spec
from resources.optout import OptOutRegistry

TIER_KINDS = {"raw_pool": "raw_video", "clips": "clip", "scored": "scored_clip", "captioned": "caption",
              "stage_256p": "stage_sample", "stage_480p": "stage_sample", "stage_720p": "stage_sample",
              "sft": "stage_sample", "release": "release_sample", "export": "export_sample"}

FINDINGS_SCHEMA = pa.schema([
    ("ref", pa.string()), ("ref_kind", pa.string()), ("commit", pa.string()), ("table", pa.string()),
    ("kind", pa.string()), ("source", pa.string()), ("video_id", pa.string()), ("clip_id", pa.string()),
    ("sample_id", pa.string()), ("paths", pa.list_(pa.string())),
])


@dataclass(frozen=True)
class OptedOut:
    sources: frozenset[str]
    videos: frozenset[tuple[str | None, str]]  # (source or None for any, video_id)


def opted_out_ids(registry: OptOutRegistry, raw_pools: list[pa.Table]) -> OptedOut:
    """Resolve video entries given by sha256 or uri to video ids through the raw_pool tables."""
    videos: set[tuple[str | None, str]] = set()
    for entry in registry.videos:
        if entry.video_id:
            videos.add((entry.source, entry.video_id))
        for table in raw_pools:
            for row in table.select(["source", "video_id", "sha256", "uri"]).to_pylist():
                if entry.matches(row["source"], row["video_id"], row["sha256"], row["uri"]):
                    videos.add((entry.source, row["video_id"]))
    return OptedOut(frozenset(s.source for s in registry.sources), frozenset(videos))


def find_derived(table_name: str, table: pa.Table, opted: OptedOut) -> pa.Table:
    """The rows of one tier table that derive from opted-out lineage (DuckDB), with the object
    paths they cite (keyframes, frame statistics, contact sheets, clip files, exported media)."""
    con = duckdb.connect()
    con.register("t", table)
    con.register("opted_sources", pa.table({"source": pa.array(sorted(opted.sources), pa.string())}))
    con.register("opted_videos", pa.table({
        "source": pa.array([s for s, _ in sorted(opted.videos, key=str)], pa.string()),
        "video_id": pa.array([v for _, v in sorted(opted.videos, key=str)], pa.string())}))
    columns = set(table.column_names)
    paths = [f"[{c}]" for c in ("frame_stats_path", "contact_sheet_path", "clip_file_path", "media_path")
             if c in columns]
    if "keyframes" in columns:
        paths.append("list_transform(keyframes, lambda k: k.path)")
    path_expr = "list_filter(flatten([" + ", ".join(paths) + "]), lambda p: p IS NOT NULL)" if paths else \
        "CAST([] AS VARCHAR[])"
    clip = "clip_id" if "clip_id" in columns else "NULL"
    sample = "sample_id" if "sample_id" in columns else "NULL"
    query = f"""
        SELECT source, video_id, {clip} AS clip_id, {sample} AS sample_id, {path_expr} AS paths
        FROM t
        WHERE source IN (SELECT source FROM opted_sources)
           OR EXISTS (SELECT 1 FROM opted_videos o
                      WHERE o.video_id = t.video_id AND (o.source IS NULL OR o.source = t.source))
        ORDER BY source, video_id, clip_id, sample_id
    """
    found = con.execute(query).to_arrow_table()
    con.close()
    return found


def findings_rows(ref: str, ref_kind: str, commit: str, table_name: str, found: pa.Table) -> list[dict]:
    kind = TIER_KINDS.get(table_name.split(":")[0], table_name)
    return [{"ref": ref, "ref_kind": ref_kind, "commit": commit, "table": table_name, "kind": kind, **row}
            for row in found.to_pylist()]


NO_OPTED_OUT = "no_opted_out_lineage"


def no_opted_out_lineage(asset: str, table: pa.Table, registry: OptOutRegistry) -> AssetCheckResult:
    """Blocking on every tier: no row derives from an opted-out source or video."""
    columns = [c for c in ("source", "video_id", "sha256", "uri") if c in table.column_names]
    bad = [r.get("clip_id") or r["video_id"] for r in table.select(
        columns + (["clip_id"] if "clip_id" in table.column_names else [])).to_pylist()
        if registry.for_source(r["source"]) is not None
        or registry.for_video(r["source"], r["video_id"], r.get("sha256", ""), r.get("uri", "")) is not None]
    return check_result(f"{asset}_{NO_OPTED_OUT}", not bad, opted_out_rows=len(bad),
                        examples=str(bad[:10]), configured_at="optout.yaml (VCURATE_OPTOUT)")


def no_opted_out_spec(asset: str) -> AssetCheckSpec:
    return check_spec(asset, f"{asset}_{NO_OPTED_OUT}", "No row derives from a source or video in the "
                      "opt-out registry (optout.yaml); `vcurate purge` removes any that did.")
