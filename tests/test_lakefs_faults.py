"""lakeFS faults that are not outages, against the real lakeFS server: a refusal (4xx) fails the
step at once with what went wrong, and a lost repository is never silently re-created."""

from __future__ import annotations

import time
from pathlib import Path

import lakefs
import pytest
from dagster import DagsterEventType
from lakefs.exceptions import ConflictException, NotAuthorizedException, NotFoundException, ServerException

from assets.common.outages import lakefs_outage, lakefs_refusal
from orchestration.dev.lakefs_server import LocalLakeFS, free_port
from resources.lakefs import LakeFSResource, RepositoryMissingError
from tests.conftest import ACCESS_KEY, SECRET_KEY, Pipeline, write_registry
from tests.video_factory import write_video

WRONG_SECRET = "not-the-secret-0123456789abcdefghijklmn"


def _raised(call) -> BaseException:
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the test inspects whatever the SDK raised
        return exc
    raise AssertionError("expected the call to raise")


def _source(workdir: Path) -> Path:
    write_video(workdir / "videos" / "clip0.mp4", seconds=1.0, seed=0)
    return write_registry(workdir, [{"id": "cams", "kind": "local", "uri": "videos", "license": "CC0-1.0"}])


def _delete_repository(resource: LakeFSResource) -> None:
    """Delete the repository and wait until the server says so: lakeFS caches repositories in
    memory for a few seconds, during which a deleted one still answers."""
    lakefs.Repository(resource.repository, client=resource.client()).delete()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            lakefs.Repository(resource.repository, client=resource.client()).properties  # noqa: B018
        except NotFoundException:
            return
        time.sleep(0.2)
    raise AssertionError(f"lakeFS still reports repository {resource.repository} after deleting it")


def _failure(result) -> str:
    failures = result.get_step_failure_events()
    assert len(failures) == 1
    return failures[0].step_failure_data.user_failure_data.description


def _retried(result) -> bool:
    return any(e.event_type == DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events)


def test_only_unreachable_lakefs_and_5xx_are_outages(lakefs_resource: LakeFSResource):
    repo = lakefs_resource.repo()
    missing_branch = _raised(lambda: repo.branch("no-such-branch").get_commit())
    assert isinstance(missing_branch, NotFoundException) and missing_branch.status_code == 404
    assert not lakefs_outage(missing_branch)
    assert "(404)" in lakefs_refusal(missing_branch, lakefs_resource)

    exists = _raised(lambda: repo.branch("main").create(source_reference="main"))
    assert isinstance(exists, ConflictException) and not lakefs_outage(exists)
    assert "conflict (409)" in lakefs_refusal(exists, lakefs_resource)

    wrong = LakeFSResource(**{**lakefs_resource.model_dump(), "secret_access_key": WRONG_SECRET})
    refused = _raised(wrong.head)
    assert isinstance(refused, NotAuthorizedException) and not lakefs_outage(refused)
    message = lakefs_refusal(refused, wrong)
    assert "refused the credentials (401)" in message and lakefs_resource.endpoint in message
    assert WRONG_SECRET not in message and SECRET_KEY not in message

    nobody = LakeFSResource(**{**lakefs_resource.model_dump(), "endpoint": f"http://127.0.0.1:{free_port()}"})
    unreachable = _raised(nobody.head)
    assert lakefs_outage(unreachable) and lakefs_refusal(unreachable, nobody) is None
    # A 5xx cannot be provoked from a healthy server; the classification is by status code.
    assert lakefs_outage(ServerException(503, "Service Unavailable"))
    assert not lakefs_outage(ServerException(422, "Unprocessable Entity"))


def test_wrong_credentials_fail_the_step_at_once_without_retries(
        pipeline: Pipeline, workdir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VCURATE_LAKEFS_RETRIES", "3")
    monkeypatch.setenv("VCURATE_LAKEFS_RETRY_WAIT_S", "30")  # a retry would show as a long wait
    registry = _source(workdir)
    pipeline.lakefs = LakeFSResource(**{**pipeline.lakefs.model_dump(), "secret_access_key": WRONG_SECRET})

    started = time.monotonic()
    result = pipeline.run(registry, "cams", raise_on_error=False)
    assert not result.success and time.monotonic() - started < 20
    assert not _retried(result)
    failure = _failure(result)
    assert "refused the credentials (401)" in failure and pipeline.lakefs.endpoint in failure
    assert "unavailable" not in failure
    logged = " ".join(str(r.user_message) for r in pipeline.instance.all_logs(result.run_id))
    assert WRONG_SECRET not in failure + logged and SECRET_KEY not in failure + logged


def test_a_lost_repository_fails_the_materialization_and_is_not_recreated(
        pipeline: Pipeline, workdir: Path):
    registry = _source(workdir)
    assert pipeline.run(registry, "cams").success  # history exists, and this process knows the repo
    lk = pipeline.lakefs
    _delete_repository(lk)  # what losing lakeFS's data leaves

    result = pipeline.run(registry, "cams", raise_on_error=False)
    assert not result.success and not _retried(result)
    failure = _failure(result)
    assert f"repository '{lk.repository}' does not exist on {lk.endpoint}" in failure
    assert "lakeFS data was lost" in failure and "vcurate lakefs create-repository" in failure
    assert lk.repository not in {r.id for r in lakefs.repositories(client=lk.client())}
    with pytest.raises(RepositoryMissingError):
        lk.repo()


def test_a_repository_is_created_only_on_first_setup_of_a_local_server(tmp_path: Path):
    server = LocalLakeFS(data_dir=tmp_path / "lk", access_key_id=ACCESS_KEY,
                         secret_access_key=SECRET_KEY, port=free_port())
    resource = LakeFSResource(endpoint=server.endpoint, access_key_id=ACCESS_KEY,
                              secret_access_key=SECRET_KEY, repository="setup",
                              storage_namespace="local://setup")
    with server:
        assert server.fresh  # a new data dir: first setup
        assert server.setup_repository(resource) is True
        assert server.setup_repository(resource) is False  # already there
    with server:  # the same data dir again: not a first setup
        assert not server.fresh
        _delete_repository(resource)
        with pytest.raises(RepositoryMissingError, match="lakeFS data was lost"):
            server.setup_repository(resource)
        assert "setup" not in {r.id for r in lakefs.repositories(client=resource.client())}


def test_lakefs_start_creates_the_repository_on_a_new_data_dir_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """The setup path `./dev demo` takes: `vcurate lakefs start` on a new local data dir creates the
    repository; on a data dir that held lakeFS a missing repository is an error, not a fresh start."""
    from orchestration import cli

    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.chdir(tmp_path)  # the CLI changes directory; monkeypatch changes it back
    monkeypatch.setattr(cli, "STATE_DIR", tmp_path / "state")
    for key, value in {"LAKECTL_SERVER_ENDPOINT_URL": endpoint,
                       "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": ACCESS_KEY,
                       "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": SECRET_KEY,
                       "VCURATE_LAKEFS_REPOSITORY": "demo", "VCURATE_LAKEFS_STORAGE_NAMESPACE": "local://demo",
                       "DAGSTER_HOME": str(tmp_path / "dagster")}.items():
        monkeypatch.setenv(key, value)
    resource = LakeFSResource(endpoint=endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                              repository="demo", storage_namespace="local://demo")
    try:
        assert cli.main(["lakefs", "start"]) == 0
        assert "created repository 'demo'" in capsys.readouterr().out
        assert cli.main(["lakefs", "start"]) == 0  # already running: the repository is there
        assert "created" not in capsys.readouterr().out
        _delete_repository(resource)
        cli.main(["lakefs", "stop"])
        with pytest.raises(SystemExit, match="repository 'demo' does not exist.*lakeFS data was lost"):
            cli.main(["lakefs", "start"])  # restarted on its old data dir
        assert "demo" not in {r.id for r in lakefs.repositories(client=resource.client())}
        # the server still runs; explicit setup works on any server (the old namespace still
        # holds the deleted repository's objects, so a new one is named)
        monkeypatch.setenv("VCURATE_LAKEFS_REPOSITORY", "other")
        monkeypatch.setenv("VCURATE_LAKEFS_STORAGE_NAMESPACE", "local://other")
        assert cli.main(["lakefs", "create-repository"]) == 0
        assert cli.main(["lakefs", "create-repository"]) == 0
        out = capsys.readouterr().out
        assert "repository 'other' on" in out and "created" in out and "already exists" in out
    finally:
        cli.main(["lakefs", "stop"])
