"""Hostile input never escapes its root: a symlink out of a local source is a rejected row and is
never read; an S3 key with `..` never writes outside the cache. Real lakeFS, real Dagster runs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from assets.common.layout import tier_path
from resources.sources import fetch_s3_object, s3_cache_folder
from tests.conftest import Pipeline, write_registry
from tests.video_factory import write_video


def test_a_symlink_out_of_the_source_is_rejected_unread(pipeline: Pipeline, workdir: Path):
    for seed in range(3):  # enough readable videos that two rejects stay under the reject rate
        write_video(workdir / "videos" / f"inside{seed or ''}.mp4", seconds=2.0, seed=seed)
    outside = workdir / "elsewhere"
    outside.mkdir()
    write_video(outside / "secret.mp4", seconds=2.0, seed=7)
    secret = (outside / "secret.mp4").read_bytes()
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    os.symlink(outside / "secret.mp4", workdir / "videos" / "linked.mp4")
    os.symlink(outside / "passwd", workdir / "videos" / "passwd.mp4")
    os.symlink(workdir / "videos" / "inside.mp4", workdir / "videos" / "alias.mp4")  # stays inside
    registry = write_registry(workdir, [{"id": "films", "kind": "local", "uri": "videos",
                                         "license": "CC0-1.0"}])
    assert pipeline.run(registry, "films").success
    rows = {r["uri"]: r for r in pipeline.lakefs.read_table(tier_path("films", "raw_pool")).to_pylist()}
    for uri in ("videos/linked.mp4", "videos/passwd.mp4"):
        assert rows[uri]["status"] == "rejected" and rows[uri]["reason"] == "outside_source", rows[uri]
        assert rows[uri]["sha256"] == "" and rows[uri]["bytes"] == 0  # never read
    assert hashlib.sha256(secret).hexdigest() not in {r["sha256"] for r in rows.values()}
    assert rows["videos/inside1.mp4"]["status"] == "accepted"
    assert rows["videos/alias.mp4"]["sha256"] == rows["videos/inside.mp4"]["sha256"]


@pytest.mark.parametrize("key", ["landing/../../../escape.mp4", "landing//x.mp4", "./x.mp4"])
def test_an_s3_key_that_leaves_the_cache_is_refused(tmp_path: Path, key: str):
    cache = tmp_path / "objects"
    with pytest.raises(ValueError, match="component"):
        s3_cache_folder(cache, f"s3://bucket/{key}")
    with pytest.raises(ValueError, match="component"):  # before any request is made
        fetch_s3_object(None, f"s3://bucket/{key}", cache, "1:etag")
    assert not any(tmp_path.rglob("*"))  # nothing written anywhere
    assert s3_cache_folder(cache, "s3://bucket/landing/a.mp4") == cache / "bucket" / "landing" / "a.mp4"


def test_a_manifest_entry_for_a_missing_file_is_one_rejected_row(pipeline: Pipeline, workdir: Path):
    for seed in range(3):
        write_video(workdir / "videos" / f"v{seed}.mp4", seconds=2.0, seed=seed)
    (workdir / "list.txt").write_text("videos/v0.mp4\nvideos/v1.mp4\nvideos/v2.mp4\nvideos/gone.mp4\n")
    registry = write_registry(workdir, [{"id": "listed", "kind": "manifest", "uri": "list.txt",
                                         "license": "CC0-1.0"}])
    assert pipeline.run(registry, "listed").success  # published, not blocked
    rows = {r["uri"]: r for r in pipeline.lakefs.read_table(tier_path("listed", "raw_pool")).to_pylist()}
    assert rows["videos/gone.mp4"]["status"] == "rejected"
    assert rows["videos/gone.mp4"]["reason"] == "missing_file"
    assert "does not exist" in rows["videos/gone.mp4"]["reason_detail"]
    assert [rows[f"videos/v{i}.mp4"]["status"] for i in range(3)] == ["accepted"] * 3
