"""The Dagster code location: `dagster dev -w workspace.yaml` loads this module."""

from dagster import Definitions

from assets.captioned import captioned
from assets.clips import clips
from assets.raw_pool import raw_pool
from assets.scored import scored
from orchestration.jobs import materialize_source
from orchestration.resources import build_resources
from orchestration.sensors import source_registry_sensor

defs = Definitions(
    assets=[raw_pool, clips, scored, captioned],
    jobs=[materialize_source],
    sensors=[source_registry_sensor],
    resources=build_resources(),
)
