"""The Dagster code location: `dagster dev -w workspace.yaml` loads this module."""

from dagster import Definitions

from assets.captioned.asset import captioned
from assets.clips.asset import clips
from assets.raw_pool.asset import raw_pool
from assets.release.asset import release
from assets.scored.asset import scored
from assets.stages.asset import stage_assets
from assets.upkeep.export import export_release_job
from assets.upkeep.optout import audit_optout, optout_registry_sensor, purge_optout
from assets.upkeep.policy_preview import policy_preview
from assets.upkeep.rollback import rollback_tier
from orchestration.jobs import materialize_source, publish_release
from orchestration.resources import build_resources
from orchestration.schedules import nightly_backfill
from orchestration.sensors import review_decisions_sensor, source_registry_sensor

defs = Definitions(
    assets=[raw_pool, clips, scored, captioned, *stage_assets, release, policy_preview],
    jobs=[materialize_source, publish_release, audit_optout, purge_optout, rollback_tier,
          export_release_job],
    sensors=[source_registry_sensor, optout_registry_sensor, review_decisions_sensor],
    schedules=[nightly_backfill],
    resources=build_resources(),
)
