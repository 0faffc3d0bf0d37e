"""raw_pool: one row per file of a source, probed, hashed, prefiltered, opt-outs honoured."""

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
)

from assets.common.charts import bar_png, histograms_png, markdown_image
from assets.common.layout import tier_path
from assets.common.progress import Progress
from assets.common.publishing import commit_for_audit, publish_if_audited
from assets.common.tier import start_tier_wap, tier_asset
from assets.raw_pool.rows import RawPoolStats, build_raw_pool
from quality_checks.policy.resource import PolicyResource
from quality_checks.raw_pool import evaluate_raw_pool_checks, raw_pool_check_specs
from quality_checks.schemas import RAW_POOL_SCHEMA
from resources.lakefs import LakeFSResource
from resources.optout import OptOutResource
from resources.sources import SourceFile, SourceRegistryResource, list_source_files

TIER = "raw_pool"
CODE_VERSION = "raw_pool-1"
# Grouped, no row per video: Dagster's event log cannot be purged (assets/common/metadata.py)
PREVIEW_COLUMNS = ("status", "reason", "codec", "size", "fps", "videos")


@tier_asset(
    TIER,
    eager=False,
    group_name="ingest",
    code_version=CODE_VERSION,
    check_specs=raw_pool_check_specs(TIER),
    kinds={"lakefs", "parquet", "pyav"},
    description=(
        "Every file of a source: sha256, content-derived video_id, PyAV probe (duration, fps, "
        "frames, size, rotation, codec, bitrate, bits/pixel, audio), licence and fetch time. "
        "Unusable files and prefilter failures stay as `rejected` rows with a reason; opted-out "
        "videos are `opted_out`. Incremental: only new or changed files are probed. Written to "
        "lakeFS `sources/<source>/raw_pool.parquet` through write-audit-publish."
    ),
)
def raw_pool(
    context: AssetExecutionContext,
    lakefs: LakeFSResource,
    sources: SourceRegistryResource,
    policy: PolicyResource,
    optouts: OptOutResource,
) -> Iterator[MaterializeResult | object]:
    source_id = context.partition_key
    registry = sources.load()
    spec = registry.get(source_id)
    rules, opted = policy.load(), optouts.load()
    path = tier_path(source_id, TIER)

    needs_s3 = spec.kind == "s3" or spec.kind == "manifest"
    s3 = sources.s3_client() if needs_s3 else None
    files = list_source_files(registry, spec, s3)
    def fetch(file: SourceFile) -> Path | None:
        return file.local_path or sources.local_path(registry, file.uri, file.fingerprint, s3)

    report = Progress(context.log, TIER, source_id, "videos")
    table, stats = build_raw_pool(
        source_id, spec.license, files, lakefs.read_table(path), rules.raw_pool, opted, fetch,
        now=datetime.now(UTC), workers=min(4, os.cpu_count() or 1), progress=report,
    )
    context.log.info(f"{source_id}: {stats.listed} files, {stats.probed} probed, "
                     f"{stats.reused} unchanged, {dict(stats.by_status)}")

    config_hash = hashlib.sha256(json.dumps(
        {"policy": rules.raw_pool.model_dump(), "source": spec.model_dump()}, sort_keys=True
    ).encode()).hexdigest()[:16]
    wap = start_tier_wap(context, lakefs, TIER, CODE_VERSION, config_hash)
    wap.write_table(path, table)
    committed, audited = commit_for_audit(
        wap, f"raw_pool {source_id}: {stats.listed} files, {stats.by_status['accepted']} accepted",
        path, table,
    )
    results = evaluate_raw_pool_checks(audited, source_id, rules, opted)
    yield from publish_if_audited(context, lakefs, wap, TIER, committed, results, path, lambda _: {
        **_table_metadata(table),
        **_stats_metadata(stats), **report.metadata(),
        "policy_hash": rules.hash,
        "config_hash": config_hash,
    })


def _table_metadata(table) -> dict[str, object]:
    columns = [TableColumn(f.name, str(f.type)) for f in RAW_POOL_SCHEMA]
    rows = table.to_pylist()
    groups = Counter((r["status"], r["reason"], r["codec"],
                      f"{r['width']}x{r['height']}" if r["width"] else None,
                      round(r["fps"], 2) if r["fps"] else None) for r in rows)
    header = "| " + " | ".join(PREVIEW_COLUMNS) + " |\n|" + "---|" * len(PREVIEW_COLUMNS) + "\n"
    body = "".join("| " + " | ".join(_cell(v) for v in (*key, n)) + " |\n"
                   for key, n in groups.most_common(15))
    accepted = [r for r in rows if r["status"] == "accepted"]
    charts = markdown_image(bar_png(dict(Counter(r["reason"] or r["status"] for r in rows).most_common()),
                                    "videos by status / reason"), "statuses")
    if accepted:
        charts += "\n\n" + markdown_image(histograms_png({
            "duration s": [r["duration_s"] for r in accepted],
            "short side px": [min(r["display_width"], r["display_height"]) for r in accepted],
            "fps": [r["fps"] for r in accepted]}), "accepted videos")
    return {
        "dagster/row_count": table.num_rows,
        "dagster/column_schema": TableSchema(columns=columns),
        "preview": MetadataValue.md(header + body),
        "charts": MetadataValue.md(charts),
    }


def _stats_metadata(stats: RawPoolStats) -> dict[str, object]:
    reasons = "".join(f"| {reason} | {n} |\n" for reason, n in stats.by_reason.most_common())
    per_video = stats.seconds_probing / stats.probed if stats.probed else 0.0
    return {
        "files_listed": stats.listed,
        "files_probed": stats.probed,
        "files_unchanged": stats.reused,
        "files_removed": stats.removed,
        "accepted": stats.by_status["accepted"],
        "rejected": stats.by_status["rejected"],
        "opted_out": stats.by_status["opted_out"],
        "reasons": MetadataValue.md("| reason | rows |\n|---|---|\n" + reasons),
        "seconds_per_probed_video": round(per_video, 4),
    }


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else str(value).replace("|", "/")
