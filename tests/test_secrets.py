"""No leaks: credentials carried in an endpoint URL (`http://KEY:SECRET@host:port`) or held as
configured secrets never reach what vcurate prints, stores as Dagster metadata or commits to
lakeFS, and the local lakeFS config (which holds the admin's secret) is private to its owner."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from dagster import serialize_value
from dagster_aws.s3 import S3Resource

from assets.common.outages import lakefs_refusal
from assets.raw_pool.rows import build_raw_pool
from orchestration import cli
from orchestration.dev.lakefs_server import LocalLakeFS, free_port
from quality_checks.policy import RawPoolPolicy
from resources.lakefs import CommitMetadata, LakeFSResource
from resources.optout import OptOutRegistry
from resources.sources import SourceFile, fetch_s3_object
from tests.conftest import (
    ACCESS_KEY,
    SECRET_KEY,
    Pipeline,
    materialization_metadata,
    write_policy,
    write_registry,
)
from tests.test_cli import cli_env  # noqa: F401 - the CLI's environment fixture
from tests.video_factory import write_video

META = CommitMetadata(run_id="run-secrets01", asset="raw_pool", partition="cams",
                      code_version="raw_pool-1", config_hash="abc")


def _with_credentials(endpoint: str) -> str:
    return endpoint.replace("http://", f"http://{ACCESS_KEY}:{SECRET_KEY}@", 1)


def _dead_endpoint() -> tuple[str, str]:
    """(the endpoint as shown, the same endpoint with credentials) of a port nothing serves."""
    plain = f"http://127.0.0.1:{free_port()}"
    return plain, _with_credentials(plain)


def _assert_clean(text: str) -> None:
    assert SECRET_KEY not in text and ACCESS_KEY not in text and "@127.0.0.1" not in text, text


def test_redact_strips_userinfo_from_every_url_and_known_secrets(monkeypatch: pytest.MonkeyPatch):
    from resources.redact import redact, strip_userinfo

    monkeypatch.setenv("VCURATE_S3_SECRET_ACCESS_KEY", "s3-secret-from-the-environment")
    text = (f'Could not connect to the endpoint URL: "http://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1:9/b/k" '
            "and https://user:p@ss@lakefs.example.com/api?x=a@b, s3://bucket/key@1, mail me@example.com")
    clean = redact(text, SECRET_KEY)
    assert clean == ('Could not connect to the endpoint URL: "http://127.0.0.1:9/b/k" and '
                     "https://lakefs.example.com/api?x=a@b, s3://bucket/key@1, mail me@example.com")
    assert redact(f"signed with {SECRET_KEY}; s3-secret-from-the-environment", SECRET_KEY) == \
        "signed with ***; ***"
    assert redact("short values such as 'abc' stay", "abc") == "short values such as 'abc' stay"
    assert strip_userinfo(f"http://{ACCESS_KEY}:{SECRET_KEY}@[::1]:8000/") == "http://[::1]:8000/"
    assert strip_userinfo("http://127.0.0.1:8000") == "http://127.0.0.1:8000"


def test_a_lakefs_endpoint_with_credentials_works_and_its_urls_and_messages_hold_none(
        pipeline: Pipeline, workdir: Path):
    plain = pipeline.lakefs.endpoint
    # the SDK accepts credentials in the endpoint (urllib3 drops them) and authenticates as usual
    pipeline.lakefs = LakeFSResource(**{**pipeline.lakefs.model_dump(), "endpoint": _with_credentials(plain)})
    write_video(workdir / "videos" / "clip0.mp4", seconds=1.0, seed=0)
    registry = write_registry(workdir, [{"id": "cams", "kind": "local", "uri": "videos", "license": "MIT"}])
    result = pipeline.run(registry, "cams")
    lk = pipeline.lakefs
    metadata = materialization_metadata(result)
    assert metadata["lakefs_commit_url"] == f"{plain}/repositories/{lk.repository}/commits/{lk.head()}"
    _assert_clean(serialize_value(list(pipeline.instance.all_logs(result.run_id))))
    object_url = f"{plain}/repositories/{lk.repository}/object?ref=main&path=a/b.png"
    assert lk.object_url("a/b.png", "main") == object_url
    _assert_clean(lk.missing_repository_message())
    wrong = LakeFSResource(**{**lk.model_dump(), "secret_access_key": "not-the-secret-0123456789abcdef"})
    with pytest.raises(Exception) as refused:
        wrong.head()
    message = lakefs_refusal(refused.value, wrong)
    assert "refused the credentials (401)" in message and f"lakeFS at {plain} " in message
    _assert_clean(message)


def test_an_unreachable_lakefs_with_credentials_fails_naming_it_without_them(
        pipeline: Pipeline, workdir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VCURATE_LAKEFS_RETRIES", "0")
    plain, dead = _dead_endpoint()
    pipeline.lakefs = LakeFSResource(**{**pipeline.lakefs.model_dump(), "endpoint": dead})
    write_video(workdir / "videos" / "clip0.mp4", seconds=1.0, seed=0)
    registry = write_registry(workdir, [{"id": "cams", "kind": "local", "uri": "videos", "license": "MIT"}])
    result = pipeline.run(registry, "cams", raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert f"lakeFS at {plain} is unavailable" in failure
    _assert_clean(serialize_value(list(pipeline.instance.all_logs(result.run_id))))


def test_a_failed_s3_stat_commits_a_row_without_the_endpoints_credentials(
        pipeline: Pipeline, workdir: Path):
    _, dead = _dead_endpoint()
    pipeline.s3 = S3Resource(endpoint_url=dead, aws_access_key_id=ACCESS_KEY,
                             aws_secret_access_key=SECRET_KEY, region_name="us-east-1", max_attempts=1)
    write_video(workdir / "videos" / "clip0.mp4", seconds=1.0, seed=0)
    (workdir / "manifest.txt").write_text("videos/clip0.mp4\ns3://landing/main/cams/clip1.mp4\n")
    registry = write_registry(workdir, [{"id": "cams", "kind": "manifest", "uri": "manifest.txt",
                                         "license": "MIT"}])
    pipeline.policy_path = str(write_policy(workdir, max_reject_rate=0.9))
    assert pipeline.run(registry, "cams").success
    rows = {r["uri"]: r for r in pipeline.lakefs.read_table("sources/cams/raw_pool.parquet").to_pylist()}
    row = rows["s3://landing/main/cams/clip1.mp4"]
    assert row["status"] == "rejected" and "Could not connect to the endpoint URL" in row["reason_detail"]
    _assert_clean(f"{row['reason_detail']} {row['probe_detail']}")


def test_a_failed_s3_fetch_records_a_row_without_the_endpoints_credentials(tmp_path: Path):
    _, dead = _dead_endpoint()
    s3 = S3Resource(endpoint_url=dead, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                    region_name="us-east-1", max_attempts=1).get_client()
    files = [SourceFile("s3://landing/main/cams/clip0.mp4", 10, "10:etag")]
    table, _ = build_raw_pool(
        "cams", "MIT", files, None, RawPoolPolicy(), OptOutRegistry(),
        lambda f: fetch_s3_object(s3, f.uri, tmp_path / "objects", f.fingerprint), now=datetime.now(UTC))
    row = table.to_pylist()[0]
    assert row["reason"] == "fetch_failed" and "Could not connect to the endpoint URL" in row["reason_detail"]
    _assert_clean(f"{row['reason_detail']} {row['probe_detail']}")


def test_the_cli_names_an_endpoint_without_its_credentials(
        cli_env: Path, lakefs_server: LocalLakeFS, capsys: pytest.CaptureFixture[str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch):
    (cli_env / "sources.yaml").write_text(yaml.safe_dump({"sources": [
        {"id": "known", "kind": "local", "uri": str(cli_env), "license": "CC0-1.0"}]}))
    plain, dead = _dead_endpoint()
    monkeypatch.setenv("LAKECTL_SERVER_ENDPOINT_URL", dead)
    assert cli.main(["materialize", "known"]) == 2
    assert f"lakeFS at {plain} is not reachable" in capsys.readouterr().err
    assert cli.main(["lakefs", "log"]) == 2
    assert f"lakeFS at {plain} is not reachable" in capsys.readouterr().err
    assert cli.main(["lakefs", "status"]) == 0
    assert f"lakeFS at {plain}: not running" in capsys.readouterr().out

    monkeypatch.setenv("LAKECTL_SERVER_ENDPOINT_URL", _with_credentials(lakefs_server.endpoint))
    assert cli.main(["lakefs", "status"]) == 0
    assert cli.main(["lakefs", "create-repository"]) == 0
    assert cli.main(["lakefs", "log"]) == 0
    out, err = capsys.readouterr()
    assert f"lakeFS at {lakefs_server.endpoint}: healthy" in out
    assert f"on {lakefs_server.endpoint} already exists" in out
    _assert_clean(out + err)


def _key(data_dir: Path) -> str:
    return yaml.safe_load((data_dir / "lakefs.yaml").read_text())["auth"]["encrypt"]["secret_key"]


def _assert_private(data_dir: Path) -> None:
    assert stat.S_IMODE((data_dir / "lakefs.yaml").stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def _server(data_dir: Path) -> tuple[LocalLakeFS, LakeFSResource]:
    server = LocalLakeFS(data_dir=data_dir, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                         port=free_port())
    return server, LakeFSResource(endpoint=server.endpoint, access_key_id=ACCESS_KEY,
                                  secret_access_key=SECRET_KEY, repository="keep",
                                  storage_namespace="local://keep")


def test_the_lakefs_config_is_private_with_a_random_key_kept_across_restarts(tmp_path: Path):
    keys = []
    for name in ("one", "two"):
        server, resource = _server(tmp_path / name)
        with server:
            resource.create_repository()
        _assert_private(server.data_dir)
        keys.append(_key(server.data_dir))
    assert keys[0] != keys[1] and ACCESS_KEY not in keys[0] and len(keys[0]) >= 32

    server, resource = _server(tmp_path / "one")
    with server:  # the same key, so lakeFS still decrypts its admin's credentials
        assert resource.head()
    assert _key(server.data_dir) == keys[0]
    _assert_private(server.data_dir)


def test_a_data_dir_from_older_code_keeps_its_derived_key(tmp_path: Path):
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    derived = f"vcurate-local-{ACCESS_KEY}"  # what older code derived from the access key
    (data_dir / "lakefs.yaml").write_text(yaml.safe_dump({"auth": {"encrypt": {"secret_key": derived}}}))
    (data_dir / "lakefs.yaml").chmod(0o644)
    server, resource = _server(data_dir)
    with server:
        resource.create_repository()
    with server:
        assert resource.head()
    assert _key(data_dir) == derived
    _assert_private(data_dir)

    (data_dir / "lakefs.yaml").unlink()  # its config lost: the database still needs that key
    with server:
        assert resource.head()
