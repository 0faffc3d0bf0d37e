"""The lakeFS resource and the local server, against the real binary."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from orchestration.dev.lakefs_server import LocalLakeFS, free_port, is_healthy
from resources.lakefs import CommitMetadata, LakeFSResource
from tests.conftest import ACCESS_KEY, SECRET_KEY

META = CommitMetadata(run_id="run-1234567890", asset="raw_pool", partition="cams",
                      code_version="raw_pool-1", config_hash="abc",
                      upstream_commits={"clips": "deadbeef"})


def test_wap_publish_tag_and_read_at_any_ref(lakefs_resource: LakeFSResource):
    base = lakefs_resource.head()
    wap = lakefs_resource.start_wap("raw_pool", "cams", META)
    assert wap.name == "wap-raw_pool-cams-run-1234"
    wap.write_table("sources/cams/t.parquet", pa.table({"x": [1, 2]}))
    wap.write_bytes("sources/cams/keyframes/a.txt", b"hello")
    commit = wap.commit("write")
    assert lakefs_resource.head() == base  # nothing on main before publish
    assert wap.read_table("sources/cams/t.parquet").column("x").to_pylist() == [1, 2]

    merged = wap.publish("publish")
    merge = lakefs_resource.log(max_amount=1)[0]
    assert merge.id == merged and set(merge.parents) == {base, commit}
    assert merge.metadata["upstream_commits"] == '{"clips": "deadbeef"}'
    assert merge.metadata["wap_commit"] == commit

    lakefs_resource.tag("release-test-1", merged)
    later = lakefs_resource.start_wap("raw_pool", "cams", META)
    later.write_table("sources/cams/t.parquet", pa.table({"x": [3]}))
    later.commit("again")
    later.publish("again")
    assert lakefs_resource.read_table("sources/cams/t.parquet").num_rows == 1
    at_tag = lakefs_resource.read_table("sources/cams/t.parquet", ref="release-test-1")
    assert at_tag.column("x").to_pylist() == [1, 2]
    assert lakefs_resource.read_table("sources/cams/missing.parquet") is None


def test_commit_of_identical_bytes_is_a_no_op(lakefs_resource: LakeFSResource):
    table = pa.table({"x": [1]})
    first = lakefs_resource.start_wap("raw_pool", "cams", META)
    first.write_table("t.parquet", table)
    first.commit("one")
    first.publish("one")
    again = lakefs_resource.start_wap("raw_pool", "cams", META)
    again.write_table("t.parquet", table)
    assert again.commit("two") is None
    with pytest.raises(RuntimeError, match="nothing committed"):
        again.publish("two")


def test_server_restarts_on_its_data_and_stops_its_process_group(tmp_path: Path):
    server = LocalLakeFS(data_dir=tmp_path / "lk", access_key_id=ACCESS_KEY,
                         secret_access_key=SECRET_KEY, port=free_port())
    resource = LakeFSResource(endpoint=server.endpoint, access_key_id=ACCESS_KEY,
                              secret_access_key=SECRET_KEY, repository="persist",
                              storage_namespace="local://persist")
    with server:
        resource.create_repository()
        wap = resource.start_wap("raw_pool", "cams", META)
        wap.write_bytes("a.txt", b"kept")
        wap.commit("c")
        head = wap.publish("p")
        pid = server.process.pid
    assert not is_healthy(server.endpoint)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # signal 0: does the group still exist?
    with server:  # same data dir: same credentials, same repository, same history
        assert resource.head() == head
        assert resource.read_bytes("a.txt") == b"kept"
