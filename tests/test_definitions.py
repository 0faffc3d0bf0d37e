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
