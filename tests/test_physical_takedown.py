"""The physical takedown, proven down to the bytes: lakeFS on S3 storage (SeaweedFS), lakeFS's own
Spark garbage collector, then a scan of the object store itself.

Two sources go through a release; one video is opted out; the takedown purges it, deletes the
release tag that held it, re-cuts a release, expires history for one GC run and runs GC. Then
every object in the store is hashed: none matches any object that ever held the video (every
keyframe, sheet, media file and table version), while every other source's data and the
re-cut release still read back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from dagster import AssetKey, materialize

from assets.common.layout import audit_takedown_path, tier_path
from assets.upkeep.takedown import physical_takedown, takedown_materialization
from orchestration.dev.lakefs_server import LocalLakeFS
from orchestration.dev.seaweedfs import LocalS3
from resources.object_store import ObjectStore
from resources.optout import add_optout, load_optouts
from resources.spark_gc import GcUnavailable, gc_jars, spark_home
from tests.conftest import STORE_KEY, STORE_SECRET, Pipeline, new_repository
from tests.test_optout import EVERYTHING, films_source, ingest

try:
    spark_home()
    gc_jars(log=False)
    GC_MISSING = ""
except GcUnavailable as exc:  # the GC needs pyspark (uv extra `gc`), Java and Maven
    GC_MISSING = str(exc)


@pytest.fixture
def s3_pipeline(s3_lakefs_server: LocalLakeFS, s3_resource, workdir: Path) -> Pipeline:
    return Pipeline(new_repository(s3_lakefs_server), s3_resource, workdir)


def _release(pipeline: Pipeline, registry: Path) -> str:
    from assets.release.asset import release

    result = materialize(EVERYTHING, selection=[release], resources=pipeline.resources(registry),
                         instance=pipeline.instance)
    return result.get_asset_materialization_events()[0].materialization.metadata["release_tag"].value


@pytest.mark.skipif(bool(GC_MISSING), reason=GC_MISSING)
def test_a_physical_takedown_leaves_none_of_the_videos_bytes_in_the_object_store(
        s3_pipeline: Pipeline, object_store: LocalS3, workdir: Path):
    pipeline, lakefs = s3_pipeline, s3_pipeline.lakefs
    registry = films_source(pipeline, workdir, anim=True)
    ingest(pipeline, registry, ("films", "anim"))
    r1 = _release(pipeline, registry)
    r1_manifest = lakefs.read_table(f"releases/{r1}/manifest.parquet", ref=r1).to_pylist()
    raw = {r["uri"]: r for r in lakefs.read_table(tier_path("films", "raw_pool")).to_pylist()}
    bikes = raw["videos/bikes.mp4"]
    namespace = lakefs.repo().properties.storage_namespace
    assert namespace.startswith("s3://")  # lakeFS on the object store, not the local blockstore

    add_optout(pipeline.optout_path, {"uri": "videos/bikes.mp4", "source": "films", "reason": "creator",
                                      "requested_at": "2026-12-04", "requested_by": "trust@lab"},
               whole_source=False)
    store = ObjectStore(object_store.endpoint, STORE_KEY, STORE_SECRET)
    report = physical_takedown(
        lakefs, store, load_optouts(pipeline.optout_path), workdir / "cache", "test-run",
        lambda: _release(pipeline, registry), workdir, min_age_s=1)

    kinds = {h.kind for h in report.held}
    assert {"video_object", "tier_table", "route_sheet", "release_manifest"} <= kinds, kinds
    assert r1 in report.deleted_tags and report.release_tag not in (None, r1)
    assert report.gc_run_id and report.gc_deleted_objects >= len(report.held)
    left = [(h.kind, h.path) for h in report.held if h.physical_address in report.still_stored]
    assert not left and report.still_readable == [], (left, report.still_readable)

    # The store itself, read directly: no object's bytes are those of any object that held it.
    prefix = namespace.removeprefix(f"s3://{object_store.bucket}/").rstrip("/") + "/"
    stored = object_store.objects(prefix)
    hashes = {hashlib.sha256(blob).hexdigest() for blob in stored.values()}
    held = {h.sha256 for h in report.held}
    assert not hashes & held, f"{len(hashes & held)} objects in the store hold the video's bytes"
    assert not any(bikes["sha256"] in key or bikes["video_id"] in key for key in stored)

    # Everyone else's data, and the re-cut release, still read back.
    tag = report.release_tag
    manifest = lakefs.read_table(f"releases/{tag}/manifest.parquet", ref=tag).to_pylist()
    assert any(r["video_id"] == bikes["video_id"] for r in r1_manifest)
    assert {r["sample_id"] for r in manifest} == {
        r["sample_id"] for r in r1_manifest if r["video_id"] != bikes["video_id"]} != set()
    for row in manifest:
        assert lakefs.read_bytes(row["media_path"], ref=tag) is not None
    for source in ("films", "anim"):  # the other videos' clips and keyframes, on main
        clips = lakefs.read_table(tier_path(source, "clips")).to_pylist()
        assert clips and all(c["video_id"] != bikes["video_id"] for c in clips)
        assert all(lakefs.read_bytes(k["path"]) is not None for c in clips for k in c["keyframes"])

    # The report is in lakeFS, naming no path of the video, and shown in Dagster.
    stored_report = lakefs.read_bytes(audit_takedown_path(report.audit_id))
    assert stored_report and bikes["video_id"].encode() not in stored_report
    assert report.gc_run_id.encode() in stored_report
    instance = pipeline.instance
    instance.report_runless_asset_event(takedown_materialization(report, lakefs))
    shown = instance.get_latest_materialization_event(AssetKey("optout_takedown")).asset_materialization
    assert shown.metadata["gc_run_id"].value == report.gc_run_id
    assert shown.metadata["still_stored"].value == 0
    assert bikes["video_id"] not in str(shown.metadata)
