"""Declarative automation, the nightly backfill and run concurrency, on a real Dagster instance."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    build_schedule_context,
    evaluate_automation_conditions,
    instance_for_test,
)

from assets.captioned.asset import CODE_VERSION as CAPTIONED_CODE
from assets.clips.asset import CODE_VERSION as CLIPS_CODE
from assets.scored.asset import CODE_VERSION as SCORED_CODE
from orchestration.definitions import defs
from orchestration.schedules import nightly_backfill
from quality_checks.policy import load_policy
from quality_checks.policy.resource import PolicyResource


def _materialized(instance: DagsterInstance, asset: str, partition: str, **metadata: object) -> None:
    codes = {"clips": CLIPS_CODE, "scored": SCORED_CODE, "captioned": CAPTIONED_CODE}
    instance.report_runless_asset_event(AssetMaterialization(
        asset_key=AssetKey(asset), partition=partition, metadata=metadata,
        tags={"dagster/code_version": codes.get(asset, "raw_pool-1")}))


def test_a_new_source_flows_through_every_tier():
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("source", ["fresh"])
    result = evaluate_automation_conditions(defs=defs, instance=instance)
    assert result.total_requested == 0  # nothing upstream yet
    # the source sensor ingests raw_pool; every later tier follows in the same tick
    _materialized(instance, "raw_pool", "fresh")
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    downstream = ["clips", "scored", "captioned", "stage_256p", "stage_480p", "stage_720p", "sft"]
    assert {name: result.get_num_requested(AssetKey(name)) for name in downstream} == dict.fromkeys(
        downstream, 1)
    assert result.get_num_requested(AssetKey("release")) == 0  # releases are cut on purpose


def test_nightly_backfill_requests_only_stale_partitions():
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("source", ["current", "old-policy", "never"])
        policy_hash = load_policy().hash
        for asset in ("clips", "scored", "captioned"):
            _materialized(instance, asset, "current", policy_hash=policy_hash)
            _materialized(instance, asset, "old-policy", policy_hash="0123456789abcdef")
        context = build_schedule_context(instance=instance, resources={"policy": PolicyResource()},
                                         scheduled_execution_time=datetime(2026, 11, 21, 3, tzinfo=UTC))
        requests = nightly_backfill(context)
    assert sorted(r.partition_key for r in requests) == ["never", "old-policy"]
    why = {r.partition_key: r.tags["vcurate/why"] for r in requests}
    assert "policy" in why["old-policy"] and "never materialized" in why["never"]


def test_instance_limits_concurrent_lakefs_writers(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    from orchestration.env import load_project_env

    cwd = os.getcwd()
    try:
        load_project_env()
    finally:
        os.chdir(cwd)
    limits = DagsterInstance.get().get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": "vcurate/lakefs-writer", "limit": 2} in limits
