"""`vcurate` as a data engineer types it: register a source, materialize it with progress bars,
and clear errors for the usual mistakes. Real lakeFS, real Dagster runs in process."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from orchestration import cli
from orchestration.dev.lakefs_server import LocalLakeFS, free_port
from resources.lakefs import LakeFSResource
from resources.optout import write_empty_registry
from tests.conftest import ACCESS_KEY, SECRET_KEY
from tests.video_factory import write_cut_video


@pytest.fixture
def cli_env(lakefs_server: LocalLakeFS, lakefs_resource: LakeFSResource, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment `vcurate` reads, pointed at the test lakeFS and a temp project state."""
    monkeypatch.chdir(tmp_path)  # the CLI changes directory; monkeypatch changes it back
    env = {
        "LAKECTL_SERVER_ENDPOINT_URL": lakefs_server.endpoint,
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": ACCESS_KEY,
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": SECRET_KEY,
        "VCURATE_LAKEFS_REPOSITORY": lakefs_resource.repository,
        "VCURATE_LAKEFS_STORAGE_NAMESPACE": lakefs_resource.storage_namespace,
        "VCURATE_SOURCES": str(tmp_path / "sources.yaml"),
        "VCURATE_POLICY": "",
        "VCURATE_OPTOUT": str(tmp_path / "optout.yaml"),
        "VCURATE_CACHE_DIR": str(tmp_path / "cache"),
        "VCURATE_S3_ENDPOINT_URL": lakefs_server.endpoint,
        "VCURATE_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "VCURATE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "VCURATE_S3_REGION": "us-east-1",
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    write_empty_registry(tmp_path / "optout.yaml")  # the registry fails closed when missing
    return tmp_path


def test_source_add_then_materialize_shows_progress_and_the_commit(
        cli_env: Path, lakefs_resource: LakeFSResource, capsys: pytest.CaptureFixture[str]):
    (cli_env / "videos").mkdir()
    for i, scene in enumerate((0, 1)):
        write_cut_video(cli_env / "videos" / f"v{i}.mp4", segment_seconds=(3.0 + i,), first_scene=scene)
    assert cli.main(["source", "add", "cli", "--kind", "local", "--uri", str(cli_env / "videos"),
                     "--license", "CC0-1.0"]) == 0
    assert [s["id"] for s in yaml.safe_load((cli_env / "sources.yaml").read_text())["sources"]] == ["cli"]
    capsys.readouterr()

    assert cli.main(["materialize", "cli"]) == 0
    out, err = capsys.readouterr()
    # one bar per tier that works through videos, each run to completion
    for tier in ("raw_pool", "clips", "scored"):
        bar = next(line for line in err.splitlines() if line.startswith(f"{tier}[cli]"))
        assert "2/2" in bar and "videos" in bar
    assert f"lakeFS commit: {lakefs_resource.head()}" in out  # the last tier's merge is main's head
    assert "raw_pool[cli]: 2 rows" in out and "checks passed:" in out


def test_materialize_explains_an_unknown_source_and_an_unreachable_lakefs(
        cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    (cli_env / "sources.yaml").write_text(yaml.safe_dump({"sources": [
        {"id": "known", "kind": "local", "uri": str(cli_env), "license": "CC0-1.0"}]}))
    assert cli.main(["materialize", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "unknown source 'nosuch'" in err and "registered: known" in err

    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("LAKECTL_SERVER_ENDPOINT_URL", dead)
    assert cli.main(["materialize", "known"]) == 2
    assert f"lakeFS at {dead} is not reachable" in capsys.readouterr().err
