"""Sensors: new entries in the source registry become partitions and get ingested."""


from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets.common.partitions import SOURCE_PARTITIONS
from orchestration.jobs import materialize_source
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
