"""The Dagster code location: `dagster dev -w workspace.yaml` loads this module."""

from dagster import Definitions

from assets.captioned import captioned
from assets.clips import clips
from assets.policy_preview import policy_preview
from assets.raw_pool import raw_pool
from assets.release import release
from assets.rollback import rollback_tier
from assets.scored import scored
from assets.stages import stage_assets
from orchestration.governance import audit_optout, optout_registry_sensor, purge_optout
from orchestration.jobs import materialize_source, publish_release
from orchestration.resources import build_resources
from orchestration.schedules import nightly_backfill
from orchestration.sensors import source_registry_sensor

defs = Definitions(
    assets=[raw_pool, clips, scored, captioned, *stage_assets, release, policy_preview],
    jobs=[materialize_source, publish_release, audit_optout, purge_optout, rollback_tier],
    sensors=[source_registry_sensor, optout_registry_sensor],
    schedules=[nightly_backfill],
    resources=build_resources(),
)
