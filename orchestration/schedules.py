"""Nightly backfill: re-materialize the source partitions whose code or policy changed."""

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from assets.captioned.asset import CODE_VERSION as captioned_code
from assets.clips.asset import CODE_VERSION as clips_code
from assets.common.partitions import SOURCE_PARTITIONS
from assets.scored.asset import CODE_VERSION as scored_code
from orchestration.jobs import materialize_source
from quality_checks.policy.resource import PolicyResource

# The tiers whose last materialization must match today's code version and policy hash.
WATCHED = {"clips": clips_code, "scored": scored_code, "captioned": captioned_code}


def stale_partitions(instance, partitions: list[str], policy_hash: str,
                     code_versions: dict[str, str]) -> dict[str, str]:
    """{partition: why} for partitions never materialized, or materialized by other code or
    under another policy."""
    stale = {}
    for partition in partitions:
        for asset, version in code_versions.items():
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition]), limit=1).records
            if not records:
                stale[partition] = f"{asset} never materialized"
                break
            materialization = records[0].asset_materialization
            tags = materialization.tags or {}
            if tags.get("dagster/code_version") not in (None, version):
                stale[partition] = f"{asset} code version {tags['dagster/code_version']} != {version}"
                break
            entry = materialization.metadata.get("policy_hash")
            if entry is not None and entry.value != policy_hash:
                stale[partition] = f"{asset} policy {entry.value} != {policy_hash}"
                break
    return stale


@schedule(job=materialize_source, cron_schedule="0 3 * * *", default_status=DefaultScheduleStatus.RUNNING,
          description="Every night, re-materialize source partitions whose tiers ran with older code or "
                      "another policy (run concurrency limits keep lakeFS writers in check).")
def nightly_backfill(context: ScheduleEvaluationContext, policy: PolicyResource):
    partitions = context.instance.get_dynamic_partitions(SOURCE_PARTITIONS.name)
    stale = stale_partitions(context.instance, partitions, policy.load().hash, WATCHED)
    if not stale:
        return SkipReason(f"all {len(partitions)} source partitions are current")
    return [RunRequest(partition_key=p, run_key=f"nightly-{context.scheduled_execution_time:%Y%m%d}-{p}",
                       tags={"vcurate/why": why[:200]}) for p, why in sorted(stale.items())]
