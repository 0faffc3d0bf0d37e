"""Faults a long materialization meets in production, against the real lakeFS server.

kill -9 half-way, lakeFS going away half-way (and coming back, or not), one corrupt video in a
crowd: main never holds half a partition, the next run completes without duplicates, and
videos finished before the fault are not analysed again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, materialize
from dagster_aws.s3 import S3Resource

from assets.clips.asset import clips
from assets.common.layout import CACHE_ENTRY_SUFFIX, tier_path
from assets.common.progress import ProgressEvent, listening
from assets.raw_pool.asset import raw_pool
from orchestration.dev.lakefs_server import LocalLakeFS, free_port
from resources.lakefs import LakeFSResource
from tests.conftest import ACCESS_KEY, SECRET_KEY, Pipeline, materialization_metadata, write_registry
from tests.video_factory import write_cut_video

PROJECT = Path(__file__).resolve().parent.parent


def _videos(folder: Path, count: int, seconds: float = 4.0) -> int:
    """`count` different single-shot videos; returns the clips expected (one each)."""
    for i in range(count):  # scene and length vary, so no two files are alike (scene 3 is static)
        write_cut_video(folder / f"shot_{i:02d}.mp4", segment_seconds=(seconds + 0.25 * i,),
                        first_scene=(0, 1, 2, 4)[i % 4])
    return count


def _ingested(pipeline: Pipeline, workdir: Path, source: str, count: int,
              seconds: float = 4.0) -> tuple[Path, int]:
    """Register `count` videos as `source` and publish its raw_pool: (registry, clips expected)."""
    expected = _videos(workdir / "videos", count, seconds)
    registry = write_registry(workdir, [{"id": source, "kind": "local", "uri": "videos",
                                         "license": "CC0-1.0"}])
    pipeline.run(registry, source)
    return registry, expected


def _clips(pipeline: Pipeline, registry: Path, source: str, raise_on_error: bool = True):
    return materialize([raw_pool, clips], selection=[clips], partition_key=source,
                       resources=pipeline.resources(registry), instance=pipeline.instance,
                       raise_on_error=raise_on_error)


def _cached_analyses(cache: Path) -> set[str]:
    return {p.name for p in (cache / "analysis").rglob(f"*{CACHE_ENTRY_SUFFIX}")}


def _wait_until_group_gone(pgid: int, timeout_s: float = 30.0) -> None:
    """Wait until no live process of group `pgid` is left. SIGKILL reaches the pool's workers
    at once but each dies when it next leaves the kernel, and the leader's exit says nothing
    about them: a worker inside its final rename would add an entry after we counted."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # it ended while we looked
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(stat.parent.name)
        if not alive:
            return
        time.sleep(0.05)
    raise AssertionError(f"processes {alive} of the killed run still live after {timeout_s} s")


def _assert_one_row_per_clip(table) -> None:
    ids = table.column("clip_id").to_pylist()
    assert len(ids) == len(set(ids))
    spans = [(r["video_id"], r["start_frame"]) for r in table.to_pylist()]
    assert len(spans) == len(set(spans))


def test_kill_9_mid_materialization_leaves_main_untouched_and_the_rerun_reuses_finished_videos(
        pipeline: Pipeline, workdir: Path, lakefs_server: LocalLakeFS):
    registry, expected_clips = _ingested(pipeline, workdir, "kill", 12, seconds=8.0)
    before = pipeline.lakefs.head()
    config = workdir / "run.json"
    config.write_text(json.dumps({
        "source": "kill", "registry": str(registry), "root": str(workdir),
        "lakefs": {"endpoint": lakefs_server.endpoint, "access_key_id": ACCESS_KEY,
                   "secret_access_key": SECRET_KEY, "repository": pipeline.lakefs.repository,
                   "storage_namespace": pipeline.lakefs.storage_namespace},
        "s3": {"endpoint_url": lakefs_server.endpoint, "aws_access_key_id": ACCESS_KEY,
               "aws_secret_access_key": SECRET_KEY, "region_name": "us-east-1"},
    }))
    # Its own session, so kill -9 of the group takes the process pool's workers down too.
    log = workdir / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen([sys.executable, "-m", "tests.materialize_in_subprocess", str(config)],
                               cwd=PROJECT, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while not _cached_analyses(workdir / "cache") and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert run.poll() is None, f"the run ended before it could be killed:\n{log.read_text()[-3000:]}"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    _wait_until_group_gone(run.pid)

    finished = _cached_analyses(workdir / "cache")
    assert 1 <= len(finished) < 12  # killed half-way: some videos done, some not
    assert pipeline.lakefs.head() == before  # main untouched
    assert pipeline.lakefs.read_table(tier_path("kill", "clips")) is None

    again = _clips(pipeline, registry, "kill")
    assert again.success
    meta = materialization_metadata(again)
    assert meta["videos_analysed"] == 12, {k: v for k, v in meta.items() if k.startswith("videos")}
    assert meta["videos_from_cache"] == len(finished)  # finished work was not redone
    table = pipeline.lakefs.read_table(tier_path("kill", "clips"))
    assert table.num_rows == expected_clips
    _assert_one_row_per_clip(table)


@pytest.fixture
def own_lakefs(tmp_path_factory: pytest.TempPathFactory):
    """A lakeFS server of its own, which the test may stop and start again."""
    server = LocalLakeFS(data_dir=tmp_path_factory.mktemp("lakefs-outage"), access_key_id=ACCESS_KEY,
                         secret_access_key=SECRET_KEY, port=free_port())
    with server:
        yield server


def _pipeline_on(server: LocalLakeFS, root: Path) -> Pipeline:
    lakefs = LakeFSResource(endpoint=server.endpoint, access_key_id=ACCESS_KEY,
                            secret_access_key=SECRET_KEY, repository="outage",
                            storage_namespace="local://outage")
    lakefs.create_repository()  # first setup of this server's repository: explicit
    s3 = S3Resource(endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY,
                    aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    return Pipeline(lakefs, s3, root)


def _stop_after_first_video(server: LocalLakeFS, restart_after_s: float | None):
    """A progress listener that stops lakeFS once clips has finished one video."""
    state = {"stopped": False}

    def listener(event: ProgressEvent) -> None:
        if event.tier == "clips" and event.done >= 1 and not state["stopped"]:
            state["stopped"] = True
            server.stop()
            if restart_after_s is not None:
                threading.Timer(restart_after_s, server.start).start()

    return listener


def test_lakefs_outage_mid_run_is_retried_and_publishes_once(
        own_lakefs: LocalLakeFS, workdir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VCURATE_LAKEFS_RETRIES", "3")
    monkeypatch.setenv("VCURATE_LAKEFS_RETRY_WAIT_S", "2")
    pipeline = _pipeline_on(own_lakefs, workdir)
    registry, expected_clips = _ingested(pipeline, workdir, "blip", 6)

    with listening(_stop_after_first_video(own_lakefs, restart_after_s=0.5)):
        result = _clips(pipeline, registry, "blip")
    assert result.success
    retries = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries, "the outage should have been retried"
    warnings = [r.user_message for r in pipeline.instance.all_logs(result.run_id)
                if "is unavailable" in r.user_message]
    assert warnings and own_lakefs.endpoint in warnings[0] and "Nothing was merged" in warnings[0]

    meta = materialization_metadata(result)
    assert meta["videos_from_cache"] >= 1  # the video finished before the outage
    table = pipeline.lakefs.read_table(tier_path("blip", "clips"))
    assert table.num_rows == expected_clips
    _assert_one_row_per_clip(table)
    merges = [c for c in pipeline.lakefs.log(max_amount=10) if c.message.startswith("publish clips")]
    assert len(merges) == 1


def test_lakefs_gone_for_good_fails_clearly_and_merges_nothing(
        own_lakefs: LocalLakeFS, workdir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VCURATE_LAKEFS_RETRIES", "1")
    monkeypatch.setenv("VCURATE_LAKEFS_RETRY_WAIT_S", "0.5")
    pipeline = _pipeline_on(own_lakefs, workdir)
    registry, expected_clips = _ingested(pipeline, workdir, "gone", 4)
    before = pipeline.lakefs.head()

    with listening(_stop_after_first_video(own_lakefs, restart_after_s=None)):
        result = _clips(pipeline, registry, "gone", raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert f"lakeFS at {own_lakefs.endpoint} is unavailable" in failure
    assert "Nothing was merged into main" in failure and "Gave up after 1 retries" in failure

    own_lakefs.start()
    assert pipeline.lakefs.head() == before
    assert pipeline.lakefs.read_table(tier_path("gone", "clips")) is None
    again = _clips(pipeline, registry, "gone")
    assert again.success
    table = pipeline.lakefs.read_table(tier_path("gone", "clips"))
    assert table.num_rows == expected_clips
    _assert_one_row_per_clip(table)


def test_one_corrupt_video_in_a_crowd_is_one_rejected_row(pipeline: Pipeline, workdir: Path):
    folder = workdir / "videos"
    _videos(folder, 24, seconds=2.5)
    good = (folder / "shot_07.mp4").read_bytes()
    (folder / "shot_20.mp4").write_bytes(good[:200] + bytes(len(good) - 200))  # header kept, rest zeroed
    registry = write_registry(workdir, [{"id": "crowd", "kind": "local", "uri": "videos",
                                         "license": "CC0-1.0"}])
    pipeline.run(registry, "crowd")
    raw = pipeline.lakefs.read_table(tier_path("crowd", "raw_pool")).to_pylist()
    rejected = [r for r in raw if r["status"] != "accepted"]
    assert len(raw) == 24 and len(rejected) == 1
    assert rejected[0]["uri"].endswith("shot_20.mp4") and rejected[0]["reason"]

    result = _clips(pipeline, registry, "crowd")
    meta = materialization_metadata(result)
    assert meta["videos"] == 23 and meta["videos_failed"] == 0
    table = pipeline.lakefs.read_table(tier_path("crowd", "clips"))
    assert set(table.column("video_id").to_pylist()) == {r["video_id"] for r in raw
                                                         if r["status"] == "accepted"}
