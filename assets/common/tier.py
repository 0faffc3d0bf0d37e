"""What every per-source tier's asset shares: its decorator, and the write-audit-publish branch
it writes on (named for the run, with the lineage the merge commit records)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyarrow as pa
from dagster import AssetDep, AssetExecutionContext, AutomationCondition, Failure, asset

from assets.common.layout import tier_path
from assets.common.outages import retry_on_lakefs_outage
from assets.common.partitions import SOURCE_PARTITIONS
from resources.lakefs import CommitMetadata, LakeFSResource, WapBranch

OWNERS = ["team:data-platform"]


def tier_asset(name: str, *, deps: Sequence[str] = (), tier_tag: str | None = None, eager: bool = True,
               **spec: object) -> Callable:
    """`@asset` for a tier partitioned by source: retried on lakeFS outages, and (when `eager`)
    materialized automatically when its upstream changes, so new sources flow through every
    tier. `spec` holds what differs per tier: group_name, code_version, check_specs, kinds,
    description."""
    def decorate(fn: Callable) -> object:
        return asset(
            name=name,
            partitions_def=SOURCE_PARTITIONS,
            automation_condition=AutomationCondition.eager() if eager else None,
            deps=[AssetDep(dep) for dep in deps],
            owners=OWNERS,
            tags={"tier": tier_tag or name},
            **spec,
        )(retry_on_lakefs_outage(fn))
    return decorate


def start_tier_wap(context: AssetExecutionContext, lakefs: LakeFSResource, tier: str, code_version: str,
                   config_hash: str, upstream_commits: dict[str, str] | None = None,
                   name: str | None = None) -> WapBranch:
    """The branch a run of `tier` writes on; its merge records run, partition, code and config
    versions and the upstream commits read. `name` defaults to the partition (the source)."""
    partition = context.partition_key if context.has_partition_key else ""
    return lakefs.start_wap(tier, name or partition, CommitMetadata(
        run_id=context.run.run_id, asset=tier, partition=partition, code_version=code_version,
        config_hash=config_hash, upstream_commits=upstream_commits or {},
    ))


def read_upstream(lakefs: LakeFSResource, tier: str, source: str, upstream: str, ref: str) -> pa.Table:
    """The upstream tier's table for this source at `ref`; a clear failure when it was never
    materialized (the step stops before it writes anything)."""
    table = lakefs.read_table(tier_path(source, upstream), ref=ref)
    if table is None:
        raise Failure(f"{tier} {source}: no {upstream} table on main; materialize {upstream} first")
    return table
