"""Every definition loads, and the source sensor turns registry entries into partitions."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance, build_sensor_context
from dagster_aws.s3 import S3Resource

from orchestration.sensors import source_registry_sensor
from resources.sources import SourceRegistryResource
from tests.conftest import write_registry

ENV = {
    "LAKECTL_SERVER_ENDPOINT_URL": "http://127.0.0.1:1",
    "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": "AKIAIOSFOLVCURATE001",
    "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": "x",
    "VCURATE_LAKEFS_REPOSITORY": "vcurate",
    "VCURATE_LAKEFS_STORAGE_NAMESPACE": "local://vcurate",
    "VCURATE_SOURCES": "sources.yaml",
    "VCURATE_POLICY": "",
    "VCURATE_OPTOUT": "optout.yaml",
    "VCURATE_CACHE_DIR": ".vcurate/cache",
    "VCURATE_S3_ENDPOINT_URL": "http://127.0.0.1:1",
    "VCURATE_S3_ACCESS_KEY_ID": "a",
    "VCURATE_S3_SECRET_ACCESS_KEY": "b",
    "VCURATE_S3_REGION": "us-east-1",
}


def test_definitions_load_with_partitioned_asset_and_checks(monkeypatch: pytest.MonkeyPatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    from orchestration.definitions import defs

    defs.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    raw_pool = graph.get(next(k for k in graph.get_all_asset_keys() if k.path == ["raw_pool"]))
    assert raw_pool.partitions_def.name == "source"
    check_names = {key.name for key in graph.asset_check_keys}
    assert "raw_pool_reject_rate" in check_names and "raw_pool_expectations" in check_names
    job = defs.resolve_job_def("materialize_source")
    assert job.partitions_def.name == "source"
    for resource in ("lakefs", "sources", "policy", "optouts"):
        assert resource in defs.resources


# Run history, automation and check history in a user's Dagster instance are keyed by these
# names: moving code must never change one (issue 18 moved every module and kept them all).
ASSET_KEYS = ['captioned', 'clips', 'policy_preview', 'raw_pool', 'release', 'scored', 'sft',
              'stage_256p', 'stage_480p', 'stage_720p']
JOBS = ['audit_optout', 'export_release', 'materialize_source', 'publish_release', 'purge_optout',
        'rollback_tier']
SENSORS = ['optout_registry_sensor', 'review_decisions_sensor', 'source_registry_sensor']
SCHEDULES = ['nightly_backfill']
CHECKS = [
    'captioned:captioned_every_routed_clip_has_caption_or_reason',
    'captioned:captioned_fields_valid',
    'captioned:captioned_no_opted_out_lineage',
    'captioned:captioned_schema',
    'clips:clips_duration_within_bounds',
    'clips:clips_failed_videos_within_limit',
    'clips:clips_keyframes_present',
    'clips:clips_no_opted_out_lineage',
    'clips:clips_no_overlaps',
    'clips:clips_per_video_within_limit',
    'clips:clips_schema',
    'clips:clips_spans_inside_video',
    'raw_pool:raw_pool_expectations',
    'raw_pool:raw_pool_no_opted_out_accepted',
    'raw_pool:raw_pool_reject_rate',
    'raw_pool:raw_pool_schema',
    'raw_pool:raw_pool_unique_video_id',
    'release:release_manifest_complete', 'release:release_samples_current',
    'scored:scored_distributions',
    'scored:scored_every_clip_scored',
    'scored:scored_no_opted_out_lineage',
    'scored:scored_one_kept_clip_per_duplicate_group',
    'scored:scored_routes_follow_policy',
    'scored:scored_schema',
    'scored:scored_signals_present_and_in_range',
    'sft:sft_distributions',
    'sft:sft_exported_media_match_manifest',
    'sft:sft_no_blocked_quarantined_or_opted_out_lineage',
    'sft:sft_samples_satisfy_stage_policy',
    'sft:sft_schema',
    'stage_256p:stage_256p_distributions',
    'stage_256p:stage_256p_exported_media_match_manifest',
    'stage_256p:stage_256p_no_blocked_quarantined_or_opted_out_lineage',
    'stage_256p:stage_256p_samples_satisfy_stage_policy',
    'stage_256p:stage_256p_schema',
    'stage_480p:stage_480p_distributions',
    'stage_480p:stage_480p_exported_media_match_manifest',
    'stage_480p:stage_480p_no_blocked_quarantined_or_opted_out_lineage',
    'stage_480p:stage_480p_samples_satisfy_stage_policy',
    'stage_480p:stage_480p_schema',
    'stage_720p:stage_720p_distributions',
    'stage_720p:stage_720p_exported_media_match_manifest',
    'stage_720p:stage_720p_no_blocked_quarantined_or_opted_out_lineage',
    'stage_720p:stage_720p_samples_satisfy_stage_policy',
    'stage_720p:stage_720p_schema',
]


def test_keys_users_history_depends_on_are_stable(monkeypatch: pytest.MonkeyPatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    assert sorted(k.to_user_string() for k in graph.get_all_asset_keys()) == ASSET_KEYS
    assert sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys) == CHECKS
    assert sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")) == JOBS
    assert sorted(s.name for s in defs.sensors) == SENSORS
    assert sorted(s.name for s in defs.schedules) == SCHEDULES

def test_sensor_adds_new_sources_as_partitions(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    registry = write_registry(tmp_path, [
        {"id": "alpha", "kind": "local", "uri": "a", "license": "MIT"},
        {"id": "beta", "kind": "local", "uri": "b", "license": "CC0-1.0"},
    ])
    resource = SourceRegistryResource(path=str(registry), s3=S3Resource())
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions("source", ["alpha"])
        with build_sensor_context(instance=instance, resources={"sources": resource}) as ctx:
            result = source_registry_sensor(ctx)
        assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["beta"]]
        assert [r.partition_key for r in result.run_requests] == ["beta"]
