"""The production instance config (orchestration/dagster.production.yaml) on a real PostgreSQL.

PostgreSQL comes from PyPI (`pgserver`), so this runs offline like every other test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, DagsterRunStatus

from orchestration.env import PROJECT_ROOT
from tests.conftest import Pipeline, write_registry
from tests.video_factory import write_video


@pytest.fixture
def postgres_url(tmp_path_factory: pytest.TempPathFactory):
    pgserver = pytest.importorskip("pgserver")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    try:
        # the driver dagster-postgres installs (a bare postgresql:// means psycopg 3 to SQLAlchemy 2.1)
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg2://", 1)
    finally:
        server.cleanup()


def test_runs_and_materializations_live_in_postgres(
        postgres_url: str, pipeline: Pipeline, workdir: Path, monkeypatch: pytest.MonkeyPatch):
    home = workdir / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "orchestration" / "dagster.production.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres_url)

    instance = DagsterInstance.from_config(str(home))
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    assert instance.run_monitoring_enabled and instance.run_retries_enabled
    assert instance.run_retries_max_retries == 2 and not instance.run_retries_retry_on_asset_or_op_failure

    for i in range(2):
        write_video(workdir / "videos" / f"v{i}.mp4", seconds=2.0, seed=i)
    registry = write_registry(workdir, [{"id": "prod", "kind": "local", "uri": "videos",
                                         "license": "CC0-1.0"}])
    pipeline.instance = instance
    result = pipeline.run(registry, "prod")
    assert result.success

    # Another process (the webserver, the daemon) opening the same database sees the run.
    other = DagsterInstance.from_config(str(home))
    run = other.get_run_by_id(result.run_id)
    assert run is not None and run.status == DagsterRunStatus.SUCCESS
    records = other.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("raw_pool"), asset_partitions=["prod"]), limit=1).records
    commit = records[0].asset_materialization.metadata["lakefs_commit"].value
    assert commit == pipeline.lakefs.head()
    assert other.get_dynamic_partitions("source") == ["prod"]
