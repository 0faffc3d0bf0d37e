"""Governance jobs a data team launches: audit opt-outs, purge them; the sensor that starts the audit."""

import hashlib
from pathlib import Path

from dagster import (
    AssetKey,
    AssetMaterialization,
    Config,
    DefaultSensorStatus,
    Failure,
    MetadataValue,
    OpExecutionContext,
    Output,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    job,
    op,
    sensor,
)
from pydantic import Field

from assets.common.layout import audit_findings_path
from assets.common.partitions import SOURCE_PARTITIONS
from assets.upkeep.purge import audit_optouts, delete_release_tags, purge_cache, purge_optouts
from resources.lakefs import LakeFSResource
from resources.optout import OptOutResource
from resources.sources import SourceRegistryResource


def _audit_metadata(report, lakefs: LakeFSResource) -> dict:
    return {
        "audit_id": report.audit_id,
        "report": MetadataValue.md(report.markdown),
        "derived_rows": report.findings.num_rows,
        "releases_audited": ", ".join(report.releases) or "none",
        "unmatched_entries": len(report.unmatched),
        "exports_with_opted_out": len(report.exports),
        "lakefs_commit": report.commit,
        "lakefs_commit_url": MetadataValue.url(lakefs.commit_url(report.commit)),
        "findings": f"lakefs://{lakefs.repository}/{report.commit[:12]}/{audit_findings_path(report.audit_id)}",
    }


@op(description="Audit main and every release tag for data derived from opted-out sources and videos.")
def audit_optouts_op(context: OpExecutionContext, lakefs: LakeFSResource, optouts: OptOutResource):
    report = audit_optouts(lakefs, optouts.load(), context.run.run_id)
    yield AssetMaterialization(asset_key=AssetKey("optout_audit"), metadata=_audit_metadata(report, lakefs))
    yield Output(report.audit_id)


class PurgeConfig(Config):
    delete_tags: bool = Field(
        default=False, description="also delete the release tags that held opted-out data, so that lakeFS "
        "GC (S3 storage) can remove their bytes; the deletion is recorded under audits/<id>/")


@op(description="Audit, then remove every opted-out row and file from every tier on main (one "
                "write-audit-publish commit); a whole-source opt-out also deletes its partition.")
def purge_optouts_op(context: OpExecutionContext, config: PurgeConfig, lakefs: LakeFSResource,
                     optouts: OptOutResource, sources: SourceRegistryResource):
    report = audit_optouts(lakefs, optouts.load(), context.run.run_id)
    yield AssetMaterialization(asset_key=AssetKey("optout_audit"), metadata=_audit_metadata(report, lakefs))
    try:
        result = purge_optouts(lakefs, report, context.run.run_id)
    except RuntimeError as exc:
        raise Failure(str(exc)) from exc
    if config.delete_tags:
        deleted = delete_release_tags(lakefs, report, context.run.run_id)
        context.log.info(f"deleted release tags that held opted-out data: {', '.join(deleted) or 'none'}")
    # After the publish: a cache entry left behind is recomputable, never published again.
    cleared = purge_cache(Path(sources.cache_dir), report)
    context.log.info(f"removed {len(cleared)} local cache entries of opted-out videos")
    if result.commit is None:
        context.log.info("nothing derived from opted-out lineage is on main")
    else:
        for key, rows in sorted(result.removed_rows.items()):
            source, tier = key.split(":")
            if tier != "*":  # the tier partition's data is now the purge commit
                yield AssetMaterialization(
                    asset_key=AssetKey(tier), partition=source,
                    tags={"dagster/data_version": result.commit},
                    metadata={"lakefs_commit": result.commit, "purged_rows": rows,
                              "purge_audit": report.audit_id,
                              "lakefs_commit_url": MetadataValue.url(lakefs.commit_url(result.commit))})
        for source in result.whole_sources:  # the data went first, now the partition
            context.instance.delete_dynamic_partition(SOURCE_PARTITIONS.name, source)
    yield Output(result.commit or "")


@job(tags={"vcurate/governance": "audit"},
     description="Audit an opt-out: list every derived raw video, clip, caption, stage sample, file "
                 "and release, on main and in every release tag; report stored under audits/.")
def audit_optout():
    audit_optouts_op()


@job(tags={"vcurate/governance": "purge", "vcurate/lakefs-writer": "purge"},
     description="Purge opted-out lineage from every tier on main, then run publish_release for a "
                 "release without it. Release tags stay as history until lakeFS GC.")
def purge_optout():
    purge_optouts_op()


@sensor(job=audit_optout, minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Runs the opt-out audit whenever the opt-out registry file changes.")
def optout_registry_sensor(context: SensorEvaluationContext, optouts: OptOutResource):
    path = Path(optouts.path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "none"
    if digest == context.cursor:
        return SkipReason("opt-out registry unchanged")
    context.update_cursor(digest)
    if not (optouts.load().sources or optouts.load().videos):
        return SkipReason("opt-out registry is empty")
    return RunRequest(run_key=f"optout-{digest}")
