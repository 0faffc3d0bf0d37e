"""raw_pool end to end: real lakeFS, real Dagster runs, real video files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.compute as pc
import yaml
from dagster import materialize

from assets.clips.asset import clips
from assets.common.layout import tier_path
from assets.raw_pool.asset import raw_pool
from quality_checks import raw_pool as checks
from resources.lakefs import LakeFSResource
from resources.optout import redacted
from tests.conftest import Pipeline, materialization_metadata, write_policy, write_registry
from tests.video_factory import (
    write_bad_inputs,
    write_broken_duration_video,
    write_vfr_video,
    write_video,
)

PATH = tier_path("cams", "raw_pool")


def _good_source(workdir: Path, n: int = 3) -> Path:
    for i in range(n):
        write_video(workdir / "videos" / f"clip{i}.mp4", seconds=2.0, seed=i)
    return write_registry(workdir, [
        {"id": "cams", "kind": "local", "uri": "videos", "license": "cc-by-4.0"},
    ])


def _rows(pipeline: Pipeline, ref: str = "main") -> dict[str, dict]:
    table = pipeline.lakefs.read_table(PATH, ref=ref)
    assert table is not None
    return {row["uri"].split("/")[-1]: row for row in table.to_pylist()}


def test_materialization_merges_one_commit_with_lineage_metadata(
        pipeline: Pipeline, workdir: Path, blockstore: str):
    assert pipeline.lakefs.storage_namespace.startswith(f"{'s3' if blockstore == 's3' else 'local'}://")
    registry = _good_source(workdir)
    before = pipeline.lakefs.head()

    result = pipeline.run(registry, "cams")

    log = pipeline.lakefs.log(max_amount=10)
    merge = log[0]
    assert merge.parents[0] == before and len(merge.parents) == 2  # exactly one merge on main
    assert log[1].id == before or log[1].id == merge.parents[1]
    meta = merge.metadata
    assert meta["dagster_run_id"] == result.run_id
    assert meta["dagster_asset"] == "raw_pool" and meta["dagster_partition"] == "cams"
    assert meta["code_version"] == "raw_pool-1"
    assert len(meta["config_hash"]) == 16
    assert json.loads(meta["upstream_commits"]) == {}
    assert not pipeline.lakefs.branch_exists(meta["wap_branch"])  # cleaned up after merge

    metadata = materialization_metadata(result)
    assert metadata["lakefs_commit"] == merge.id
    assert merge.id in metadata["lakefs_commit_url"]
    assert metadata["dagster/row_count"] == 3 and metadata["accepted"] == 3
    assert metadata["charts"].count("data:image/png;base64") == 2  # statuses + accepted videos
    event = result.get_asset_materialization_events()[0].materialization
    assert event.tags["dagster/data_version"] == merge.id
    check_results = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert check_results == {spec.name: True for spec in checks.raw_pool_check_specs()}

    rows = _rows(pipeline)
    row = rows["clip0.mp4"]
    assert row["status"] == "accepted" and row["license"] == "CC-BY-4.0"
    assert row["width"] == 320 and row["height"] == 240 and row["frame_count"] == 48
    assert abs(row["duration_s"] - 2.0) < 0.01 and abs(row["fps"] - 24) < 0.01
    assert row["codec"] == "h264" and row["bits_per_pixel"] > 0
    assert row["video_id"].startswith("v") and len(row["sha256"]) == 64


def test_failing_blocking_check_leaves_main_untouched(pipeline: Pipeline, workdir: Path):
    registry = _good_source(workdir, n=2)
    write_bad_inputs(workdir / "videos")
    pipeline.policy_path = str(write_policy(workdir, max_reject_rate=0.9))
    pipeline.run(registry, "cams")
    head = pipeline.lakefs.head()

    # A stricter reject-rate ceiling must block the next materialization.
    pipeline.policy_path = str(write_policy(workdir, max_reject_rate=0.1))
    (workdir / "videos" / "late.mp4").write_bytes(b"\x00" * 100)  # a change, so a new commit
    result = pipeline.run(registry, "cams", raise_on_error=False)

    assert not result.success
    assert pipeline.lakefs.head() == head
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations[checks.REJECT_RATE].passed is False
    assert result.get_asset_materialization_events() == []
    failure = result.get_step_failure_events()[0].step_failure_data.error
    branch = next(word for word in failure.message.split() if word.startswith("wap-raw_pool-"))
    assert pipeline.lakefs.branch_exists(branch)
    on_branch = pipeline.lakefs.read_table(PATH, ref=branch)
    assert "videos/late.mp4" in on_branch.column("uri").to_pylist()
    assert "videos/late.mp4" not in pipeline.lakefs.read_table(PATH).column("uri").to_pylist()


def test_unchanged_source_probes_nothing_and_publishes_nothing(pipeline: Pipeline, workdir: Path):
    registry = _good_source(workdir)
    first = materialization_metadata(pipeline.run(registry, "cams"))
    head = pipeline.lakefs.head()

    second = materialization_metadata(pipeline.run(registry, "cams"))
    assert first["files_probed"] == 3
    assert second["files_probed"] == 0 and second["files_unchanged"] == 3
    assert second["published"] is False
    assert pipeline.lakefs.head() == head
    assert second["lakefs_commit"] == first["lakefs_commit"]

    write_video(workdir / "videos" / "clip9.mp4", seed=9)
    third = materialization_metadata(pipeline.run(registry, "cams"))
    assert third["files_probed"] == 1 and third["files_unchanged"] == 3
    assert pipeline.lakefs.head() != head


def test_revert_restores_previous_table_byte_for_byte(pipeline: Pipeline, workdir: Path):
    registry = _good_source(workdir, n=2)
    pipeline.run(registry, "cams")
    before = pipeline.lakefs.read_bytes(PATH)

    write_video(workdir / "videos" / "clip5.mp4", seed=5)
    pipeline.run(registry, "cams")
    changed_head = pipeline.lakefs.head()
    assert pipeline.lakefs.read_bytes(PATH) != before

    pipeline.lakefs.revert(changed_head)
    assert pipeline.lakefs.read_bytes(PATH) == before


def test_every_bad_input_gets_a_row_with_its_reason(pipeline: Pipeline, workdir: Path):
    expected = write_bad_inputs(workdir / "videos")
    write_broken_duration_video(workdir / "videos" / "broken_duration.mp4")
    write_vfr_video(workdir / "videos" / "vfr.mp4")
    write_video(workdir / "videos" / "good.mp4")
    shutil.copy(workdir / "videos" / "good.mp4", workdir / "videos" / "good_copy.mp4")
    write_video(workdir / "videos" / "tiny.mp4", width=96, height=64)
    registry = write_registry(workdir, [
        {"id": "cams", "kind": "local", "uri": "videos", "license": "MIT"},
    ])
    pipeline.policy_path = str(write_policy(workdir, max_reject_rate=0.9))

    result = pipeline.run(registry, "cams")
    assert result.success
    rows = _rows(pipeline)
    assert len(rows) == len(expected) + 5  # nothing lost
    for name, reason in expected.items():
        assert rows[name]["status"] == "rejected", name
        assert rows[name]["reason"] == reason, (name, rows[name]["reason_detail"])
        assert rows[name]["reason_detail"], name
    assert "declares 72 frames" in rows["truncated.mp4"]["reason_detail"]

    broken = rows["broken_duration.mp4"]
    assert broken["status"] == "accepted"
    assert abs(broken["duration_s"] - 3.0) < 0.05 and broken["container_duration_s"] < 0.01
    assert "container duration" in broken["notes"]
    vfr = rows["vfr.mp4"]
    assert vfr["status"] == "accepted" and vfr["vfr"] is True and vfr["frame_count"] == 48
    assert "variable frame rate" in vfr["notes"]
    assert rows["good.mp4"]["status"] == "accepted"
    assert rows["good_copy.mp4"]["reason"] == "duplicate_content"
    assert rows["tiny.mp4"]["reason"] == "too_small"
    assert "policy.raw_pool.min_short_side" in rows["tiny.mp4"]["reason_detail"]


def test_opt_outs_are_honoured(pipeline: Pipeline, workdir: Path):
    registry = _good_source(workdir)
    pipeline.run(registry, "cams")
    victim = _rows(pipeline)["clip1.mp4"]
    pipeline.optout_path.write_text(yaml.safe_dump({"videos": [{
        "video_id": victim["video_id"], "reason": "creator request", "requested_at": "2026-11-20",
        "requested_by": "legal@example.com",
    }]}))

    metadata = materialization_metadata(pipeline.run(registry, "cams"))
    assert metadata["files_probed"] == 0  # decisions re-derive from stored probes
    rows = _rows(pipeline)
    # The refusal names nothing of the video: its identifiers are digests, its probe is gone.
    refusal = rows[redacted("videos/clip1.mp4")]
    assert refusal["status"] == "opted_out" and refusal["reason"] == "opted_out_video"
    assert refusal["video_id"] == redacted(victim["video_id"]) and refusal["duration_s"] is None
    assert "legal@example.com" in refusal["reason_detail"]
    assert "clip1.mp4" not in rows and rows["clip0.mp4"]["status"] == "accepted"
    again = materialization_metadata(pipeline.run(registry, "cams"))
    assert again["files_probed"] == 0 and again["opted_out"] == 1  # the refusal is reused, not re-probed
    assert _rows(pipeline) == rows

    pipeline.optout_path.write_text(yaml.safe_dump({"sources": [{
        "source": "cams", "reason": "licence withdrawn", "requested_at": "2026-11-21",
        "requested_by": "partner",
    }]}))
    pipeline.run(registry, "cams")
    table = pipeline.lakefs.read_table(PATH)
    assert set(table.column("status").to_pylist()) == {"opted_out"}
    assert pc.sum(pc.equal(table.column("reason"), "opted_out_source")).as_py() == 3


def test_s3_source_through_the_lakefs_gateway_ingests_like_a_local_one(
    pipeline: Pipeline, workdir: Path
):
    local_registry = _good_source(workdir, n=2)
    pipeline.run(local_registry, "cams")
    local_rows = _rows(pipeline)

    # Upload the same files to a landing repository, read back over the S3 gateway.
    repo = f"{pipeline.lakefs.repository}-land"
    LakeFSResource(**{**pipeline.lakefs.model_dump(), "repository": repo,
                      "storage_namespace": f"local://{repo}"}).create_repository()
    s3 = pipeline.s3.get_client()
    for path in sorted((workdir / "videos").iterdir()):
        s3.upload_file(str(path), repo, f"main/landing/cams/{path.name}")
    registry = write_registry(workdir, [
        {"id": "cams-s3", "kind": "s3", "uri": f"s3://{repo}/main/landing/cams/",
         "license": "CC-BY-4.0"},
    ], name="s3_sources.yaml")
    result = pipeline.run(registry, "cams-s3")

    metadata = materialization_metadata(result)
    assert metadata["accepted"] == 2
    s3_table = pipeline.lakefs.read_table(tier_path("cams-s3", "raw_pool"))
    s3_rows = {r["uri"].split("/")[-1]: r for r in s3_table.to_pylist()}
    assert s3_rows["clip0.mp4"]["uri"] == f"s3://{repo}/main/landing/cams/clip0.mp4"
    for name in ("clip0.mp4", "clip1.mp4"):
        for column in ("video_id", "sha256", "duration_s", "fps", "width", "height", "status"):
            assert s3_rows[name][column] == local_rows[name][column], (name, column)

    again = materialization_metadata(pipeline.run(registry, "cams-s3"))
    assert again["files_probed"] == 0  # ETags unchanged

    # The next tier reads the S3 videos through the same cache: clips come out as usual.
    result = materialize([raw_pool, clips], partition_key="cams-s3", selection=[clips],
                         resources=pipeline.resources(registry), instance=pipeline.instance)
    assert materialization_metadata(result)["videos_analysed"] == 2
