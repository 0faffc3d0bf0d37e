"""rollback_tier on a real lakeFS and a real Dagster instance: one partition goes back, nothing else."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow.parquet as pq
from dagster import AssetKey, AssetRecordsFilter, materialize

from assets.clips.asset import clips
from assets.common.layout import tier_path
from assets.raw_pool.asset import raw_pool
from assets.upkeep.rollback import DATA_VERSION_TAG, rollback_tier, tier_history
from tests.conftest import Pipeline, materialization_metadata, write_registry
from tests.video_factory import write_cut_video, write_static_video, write_video


def _registry(workdir: Path) -> Path:
    (workdir / "other").mkdir(exist_ok=True)
    return write_registry(workdir, [
        {"id": "cams", "kind": "local", "uri": "videos", "license": "CC0-1.0"},
        {"id": "other", "kind": "local", "uri": "other", "license": "CC0-1.0"},
    ])


def _rollback(pipeline: Pipeline, tier: str, source: str, to_commit: str, raise_on_error: bool = True):
    config = {"tier": tier, "source": source, "to_commit": to_commit, "requested_by": "ana",
              "reason": "trim_frames 8 dropped good frames"}
    return rollback_tier.execute_in_process(
        run_config={"ops": {"rollback_partition": {"config": config}}},
        resources={"lakefs": pipeline.lakefs}, instance=pipeline.instance,
        raise_on_error=raise_on_error,
    )


def _failure(result) -> str:
    assert not result.success
    (event,) = result.get_step_failure_events()
    return event.step_failure_data.user_failure_data.description


def _objects(pipeline: Pipeline, prefix: str, ref: str) -> dict[str, str]:
    return {o.path: o.checksum for o in pipeline.lakefs.repo().ref(ref).objects(prefix=prefix)}


def test_rollback_restores_one_partition_byte_for_byte(
        pipeline: Pipeline, workdir: Path, blockstore: str):
    assert pipeline.lakefs.storage_namespace.startswith(f"{'s3' if blockstore == 's3' else 'local'}://")
    write_cut_video(workdir / "videos" / "cuts.mp4", segment_seconds=(3.0, 3.0), fps=24)
    registry = _registry(workdir)
    write_static_video(workdir / "other" / "static.mp4", seconds=2)
    pipeline.run(registry, "cams")
    path = tier_path("cams", "clips")

    def run_clips() -> dict:
        result = materialize([raw_pool, clips], partition_key="cams", selection=[clips],
                             resources=pipeline.resources(registry), instance=pipeline.instance)
        return materialization_metadata(result)

    first = run_clips()["lakefs_commit"]
    first_bytes = pipeline.lakefs.read_bytes(path)
    first_objects = _objects(pipeline, "sources/cams/clips", first)
    # another source publishes in between: the rollback must leave it alone
    pipeline.run(registry, "other")
    other_bytes = pipeline.lakefs.read_bytes(tier_path("other", "raw_pool"))
    assert other_bytes is not None
    pipeline.policy_path = str(workdir / "policy.yaml")
    Path(pipeline.policy_path).write_text("clips:\n  trim_frames: 8\n")
    second = run_clips()["lakefs_commit"]
    assert pipeline.lakefs.read_bytes(path) != first_bytes

    result = _rollback(pipeline, "clips", "cams", first)

    head = pipeline.lakefs.head()
    assert head not in (first, second)
    assert pipeline.lakefs.read_bytes(path) == first_bytes
    assert _objects(pipeline, "sources/cams/clips", head) == first_objects  # keyframes, stats too
    assert pipeline.lakefs.read_bytes(tier_path("other", "raw_pool")) == other_bytes
    assert pipeline.lakefs.read_bytes(tier_path("cams", "raw_pool")) is not None

    merge = pipeline.lakefs.log(max_amount=1)[0]
    assert merge.metadata["rolled_back_to"] == first
    assert merge.metadata["reverted_commits"] == second  # the other source's publish is kept
    assert merge.metadata["dagster_asset"] == "clips" and merge.metadata["requested_by"] == "ana"
    assert merge.metadata["dagster_run_id"] == result.run_id

    record = pipeline.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("clips"), asset_partitions=["cams"]), limit=1).records[0]
    event = record.asset_materialization
    meta = {key: value.value for key, value in event.metadata.items()}
    assert meta["lakefs_commit"] == head and meta["rolled_back_to"] == first
    assert meta["requested_by"] == "ana" and meta["reverted_commits"] == second
    assert meta["dagster/row_count"] == pipeline.lakefs.read_table(path).num_rows
    assert event.tags[DATA_VERSION_TAG] == head
    assert event.tags["dagster/code_version"] == "clips-1"

    history = tier_history(pipeline.lakefs, "clips", "cams")
    assert [v.commit_id for v in history] == [head, second, first]
    assert history[0].run_id == result.run_id
    assert [v.commit_id for v in tier_history(pipeline.lakefs, "raw_pool", "other")] == [
        c.id for c in pipeline.lakefs.first_parent_log() if c.metadata.get("dagster_partition") == "other"]

    # Unchanged inputs afterwards: clips republishes nothing and reports the rolled-back commit.
    Path(pipeline.policy_path).write_text("{}\n")
    again = run_clips()
    assert again["published"] is False and again["lakefs_commit"] == head


def test_refused_rollbacks_leave_main_untouched(pipeline: Pipeline, workdir: Path):
    path = tier_path("cams", "raw_pool")
    write_video(workdir / "videos" / "a.mp4", seconds=1.0, seed=1)
    registry = _registry(workdir)
    pipeline.run(registry, "cams")
    first = pipeline.lakefs.head()
    # someone rewrites the table on main outside the pipeline: same rows, other bytes
    main = pipeline.lakefs.repo().branch("main")
    sink = io.BytesIO()
    pq.write_table(pipeline.lakefs.read_table(path), sink, compression="snappy")
    main.object(path).upload(sink.getvalue(), mode="wb", pre_sign=False)
    edited = main.commit("hand edit").get_commit().id
    write_video(workdir / "videos" / "b.mp4", seconds=1.0, seed=2)
    pipeline.run(registry, "cams")
    head = pipeline.lakefs.head()
    # a commit that exists but was never merged into main
    side = pipeline.lakefs.repo().branch("side").create(source_reference="main")
    side.object("notes.txt").upload(b"x", mode="wb", pre_sign=False)
    unmerged = side.commit("side note").get_commit().id

    cases = {
        "f" * 64: "names no commit",
        unmerged: "is not an ancestor of main",
        head: "nothing to revert",
        first: "differs from",  # the hand edit is not a raw_pool publish, so it stays
    }
    for to_commit, reason in cases.items():
        message = _failure(_rollback(pipeline, "raw_pool", "cams", to_commit, raise_on_error=False))
        assert reason in message and "main is untouched" in message
        assert pipeline.lakefs.head() == head
    branches = {b.id for b in pipeline.lakefs.repo().branches()}
    (audit_branch,) = branches - {"main", "side"}  # only the failed audit leaves its branch
    assert audit_branch.startswith("rollback-raw_pool-cams-") and audit_branch in message
    materializations = pipeline.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("raw_pool"), asset_partitions=["cams"]), limit=1).records
    assert "rolled_back_to" not in materializations[0].asset_materialization.metadata

    # rolled back to the hand-edited commit, the audit passes
    _rollback(pipeline, "raw_pool", "cams", edited[:12])  # as `vcurate history` prints it
    assert pipeline.lakefs.read_bytes(path) == pipeline.lakefs.read_bytes(path, ref=edited)
