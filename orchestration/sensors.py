"""Sensors: new entries in the source registry become partitions and get ingested; new review
decisions re-run scored (and what follows it) for their source."""

import json

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets.common.partitions import SOURCE_PARTITIONS
from assets.upkeep.reviews import review_tables
from orchestration.jobs import materialize_source
from resources.lakefs import LakeFSResource
from resources.sources import SourceRegistryResource


@sensor(job=materialize_source, minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Adds every source in the registry file as a `source` partition and "
                    "launches its first materialization.")
def source_registry_sensor(
    context: SensorEvaluationContext, sources: SourceRegistryResource
) -> SensorResult | SkipReason:
    registered = sources.load().sources
    known = set(context.instance.get_dynamic_partitions(SOURCE_PARTITIONS.name))
    new = sorted(set(registered) - known)
    if not new:
        return SkipReason(f"no new sources ({len(known)} registered)")
    return SensorResult(
        dynamic_partitions_requests=[SOURCE_PARTITIONS.build_add_request(new)],
        run_requests=[RunRequest(partition_key=s, run_key=f"new-source-{s}") for s in new],
    )


# scored and everything after it per source (release is cut by hand, never by a review)
REVIEWED_ASSETS = AssetSelection.assets("scored").downstream() - AssetSelection.assets("release")


@sensor(asset_selection=REVIEWED_ASSETS, minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="When review decisions land on main (`vcurate review`), re-materializes scored "
                    "and its downstream tiers for that source, so the decisions take effect.")
def review_decisions_sensor(context: SensorEvaluationContext, lakefs: LakeFSResource
                            ) -> SensorResult | SkipReason:
    seen = json.loads(context.cursor or "{}")
    known = set(context.instance.get_dynamic_partitions(SOURCE_PARTITIONS.name))
    current = {s: checksum for s, checksum in review_tables(lakefs).items() if s in known}
    changed = sorted(s for s, checksum in current.items() if seen.get(s) != checksum)
    if not changed:
        return SkipReason(f"no new review decisions ({len(current)} sources with decisions)")
    return SensorResult(
        run_requests=[RunRequest(partition_key=s, run_key=f"reviews-{s}-{current[s][:16]}") for s in changed],
        cursor=json.dumps({**seen, **current}, sort_keys=True),
    )
