"""Consistency under concurrency: writers that overlap in time, on a real lakeFS server with real
Dagster runs, in threads and processes. Each test forces the interleaving that broke: the second
writer is started (or held) at the moment the first one is between reading main and merging."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, materialize

import assets.release.asset as release_module
import assets.scored.asset as scored_module
from assets.captioned.asset import captioned
from assets.clips.asset import clips
from assets.common.layout import tier_path
from assets.raw_pool.asset import raw_pool
from assets.release.asset import release
from assets.scored.asset import scored
from assets.stages.asset import stage_assets
from assets.upkeep.rollback import rollback_tier
from orchestration import cli
from quality_checks.policy.resource import PolicyResource
from quality_checks.policy.stages import STAGES
from quality_checks.schemas import STAGE_SCHEMA
from resources.lakefs import CommitMetadata, LakeFSResource, WapBranch
from tests.conftest import Pipeline, materialization_metadata, write_registry
from tests.test_cli import cli_env  # noqa: F401 - the fixture
from tests.video_factory import write_cut_video, write_video

ROOT = Path(__file__).resolve().parents[1]
EVERYTHING = [raw_pool, clips, scored, captioned, *stage_assets, release]
POLICY = "licenses:\n  allowed: [CC0-1.0]\nclips:\n  min_clip_s: 1.0\n"


def _failure(result) -> str:
    assert not result.success
    (event,) = result.get_step_failure_events()
    data = event.step_failure_data
    return data.user_failure_data.description if data.user_failure_data else data.error.message


def _in_thread(target: Callable[[], object]) -> tuple[threading.Thread, dict[str, object]]:
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["result"] = target()
        except BaseException as error:  # noqa: BLE001 - reported to the test thread
            out["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def _joined(thread: threading.Thread, out: dict[str, object], timeout: float = 300) -> object:
    thread.join(timeout)
    assert not thread.is_alive(), "the concurrent writer did not finish"
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out["result"]


def _materialize(pipeline: Pipeline, registry: Path, source: str, asset, policy: Path | None = None,
                 raise_on_error: bool = True):
    """One run on its own Dagster instance, as a second process or the UI would start it."""
    resources = pipeline.resources(registry)
    if policy is not None:
        resources["policy"] = PolicyResource(path=str(policy))
    with DagsterInstance.ephemeral() as instance:  # disposed in the thread that used it
        if source:
            instance.add_dynamic_partitions("source", [source])
        return materialize(EVERYTHING, partition_key=source or None, selection=[asset],
                           resources=resources, instance=instance, raise_on_error=raise_on_error)


# The lock itself: one holder at a time across processes; a dead holder's lock is taken over.
HOLDER = """
import json, os, signal, sys, time
from resources.lakefs import LakeFSResource
config = json.loads(os.environ["LOCK_HOLDER"])
with LakeFSResource(**config["lakefs"]).lock("demo", wait_s=30, what=config["what"]):
    print("in", time.time(), flush=True)
    if config["die"]:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(config["hold_s"])
    print("out", time.time(), flush=True)
"""


def _holder(lakefs: LakeFSResource, what: str, hold_s: float = 0.0, die: bool = False) -> subprocess.Popen:
    config = {"lakefs": lakefs.model_dump(), "what": what, "hold_s": hold_s, "die": die}
    return subprocess.Popen([sys.executable, "-c", HOLDER], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "LOCK_HOLDER": json.dumps(config)})


def _stamp(process: subprocess.Popen, word: str) -> float:
    said, at = process.stdout.readline().split()
    assert said == word
    return float(at)


def test_lakefs_lock_serializes_processes_and_takes_over_a_dead_holders_lock(
        lakefs_resource: LakeFSResource):
    from resources.locks import LockTimeout, lock_branch

    first = _holder(lakefs_resource, "first", hold_s=6.0)
    _stamp(first, "in")
    second = _holder(lakefs_resource, "second")  # starts waiting while the first holds it
    # held by a live process: a writer that may wait only briefly is told who holds it
    busy = f"first .*pid {first.pid}"
    with pytest.raises(LockTimeout, match=busy), lakefs_resource.lock("demo", wait_s=0.5):
        pass
    first_out = _stamp(first, "out")
    assert _stamp(second, "in") >= first_out  # it waited for the first to let go
    assert first.wait(30) == 0 and second.wait(30) == 0

    dead = _holder(lakefs_resource, "dead", die=True)
    _stamp(dead, "in")
    assert dead.wait(30) < 0  # killed while holding: its branch is still there
    assert lakefs_resource.branch_exists(lock_branch("demo"))
    started = time.monotonic()
    with lakefs_resource.lock("demo", wait_s=20), lakefs_resource.lock("demo", wait_s=0):  # re-entrant
        assert time.monotonic() - started < 10  # taken over at once, not after the wait
    assert not lakefs_resource.branch_exists(lock_branch("demo"))


# Rollback against a materialization of the same partition, both ways round.
def _policy(workdir: Path, name: str, text: str) -> Path:
    path = workdir / name
    path.write_text(text)
    return path


def test_rollback_and_a_publish_of_the_same_partition_never_undo_each_other(
        pipeline: Pipeline, workdir: Path, monkeypatch: pytest.MonkeyPatch):
    write_cut_video(workdir / "videos" / "cuts.mp4", segment_seconds=(3.0, 3.0), fps=24)
    registry = write_registry(workdir, [{"id": "cams", "kind": "local", "uri": "videos",
                                         "license": "CC0-1.0"}])
    lakefs, path = pipeline.lakefs, tier_path("cams", "clips")
    pipeline.run(registry, "cams")
    policies = {n: _policy(workdir, f"p{n}.yaml", f"clips:\n  trim_frames: {n}\n") for n in (0, 8, 4, 2)}

    def run_clips(trim: int, raise_on_error: bool = True):
        return _materialize(pipeline, registry, "cams", clips, policies[trim], raise_on_error)

    first = materialization_metadata(run_clips(0))["lakefs_commit"]
    run_clips(8)

    def rollback(raise_on_error: bool = True):
        return rollback_tier.execute_in_process(
            run_config={"ops": {"rollback_partition": {"config": {
                "tier": "clips", "source": "cams", "to_commit": first, "requested_by": "ana",
                "reason": "trim_frames 8 dropped good frames"}}}},
            resources={"lakefs": lakefs}, instance=pipeline.instance, raise_on_error=raise_on_error)

    # 1. A materialization publishes while the rollback has started (it is resolving its target).
    test_thread = threading.get_ident()
    resolve = LakeFSResource.resolve
    published: dict[str, object] = {}

    def resolve_while_a_run_publishes(self: LakeFSResource, ref: str) -> str | None:
        if threading.get_ident() == test_thread and not published:
            published["run"] = _joined(*_in_thread(lambda: run_clips(4)))
        return resolve(self, ref)

    monkeypatch.setattr(LakeFSResource, "resolve", resolve_while_a_run_publishes)
    refused = rollback(raise_on_error=False)
    monkeypatch.setattr(LakeFSResource, "resolve", resolve)
    run = published["run"]
    assert run.success
    landed = materialization_metadata(run)["lakefs_commit"]
    # the run reported success: its table is what main holds, the rollback did not revert it
    assert lakefs.read_bytes(path) == lakefs.read_bytes(path, ref=landed)
    message = _failure(refused)
    assert landed[:12] in message and "main is untouched" in message

    # 2. The rollback merges while a materialization is about to publish: the late run fails
    # clearly, with nothing merged, instead of publishing over the rollback.
    publish = WapBranch.publish
    rolled: dict[str, object] = {}

    def publish_after_a_rollback(self: WapBranch, message: str, extra_metadata=None) -> str:
        if threading.get_ident() == test_thread and not rolled:
            rolled["run"] = _joined(*_in_thread(rollback))
        return publish(self, message, extra_metadata)

    monkeypatch.setattr(WapBranch, "publish", publish_after_a_rollback)
    late = run_clips(2, raise_on_error=False)
    monkeypatch.setattr(WapBranch, "publish", publish)
    assert rolled["run"].success
    assert "main changed under this run" in _failure(late)
    assert lakefs.read_bytes(path) == lakefs.read_bytes(path, ref=first)
    assert lakefs.log(max_amount=1)[0].metadata["rolled_back_to"] == first


# Cross-source dedup: the same bytes in two sources, scored at the same time.
def test_identical_sources_scored_at_once_keep_one_copy(
        pipeline: Pipeline, workdir: Path, monkeypatch: pytest.MonkeyPatch):
    write_video(workdir / "videos" / "clip.mp4", seconds=3.0, seed=3)
    (workdir / "mirror").mkdir()
    shutil.copy(workdir / "videos" / "clip.mp4", workdir / "mirror" / "clip.mp4")
    pipeline.policy_path = str(_policy(workdir, "policy.yaml", POLICY))
    registry = write_registry(workdir, [
        {"id": "left", "kind": "local", "uri": "videos", "license": "CC0-1.0"},
        {"id": "right", "kind": "local", "uri": "mirror", "license": "CC0-1.0"},
    ])
    for source in ("left", "right"):
        pipeline.run(registry, source)
        _materialize(pipeline, registry, source, clips)

    # Each run waits here (after its dedup read, before it commits) for the other one, or gives
    # up after a while: a run that cannot reach this point while the other is here is serialized.
    both_read = threading.Barrier(2, timeout=10)
    commit_for_audit = scored_module.commit_for_audit

    def commit_when_both_read(*args, **kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait()
        return commit_for_audit(*args, **kwargs)

    monkeypatch.setattr(scored_module, "commit_for_audit", commit_when_both_read)
    runs = [_in_thread(lambda s=s: _materialize(pipeline, registry, s, scored)) for s in ("left", "right")]
    assert all(_joined(*run).success for run in runs)

    rows = {s: {r["clip_id"]: r for r in pipeline.lakefs.read_table(tier_path(s, "scored")).to_pylist()}
            for s in ("left", "right")}
    assert rows["left"] and rows["left"].keys() == rows["right"].keys()  # same bytes, same clips
    for clip_id in rows["left"]:
        kept = [s for s in rows if rows[s][clip_id]["duplicate_of"] is None]
        assert len(kept) == 1, f"{clip_id} kept by {kept or 'neither'}"
        other = "right" if kept == ["left"] else "left"
        assert rows[other][clip_id]["duplicate_of"] == f"{kept[0]}:{clip_id}"


# Releases: two at once never leave a release merge on main without its tag.
def test_two_releases_at_once_never_leave_an_untagged_release_merge(
        pipeline: Pipeline, workdir: Path, monkeypatch: pytest.MonkeyPatch):
    registry = write_registry(workdir, [{"id": "films", "kind": "local", "uri": "videos",
                                         "license": "CC0-1.0"}])
    lakefs = pipeline.lakefs
    stages = lakefs.start_wap("stages", "films", CommitMetadata(
        run_id="setup-0000", asset="stages", partition="films", code_version="", config_hash=""))
    for stage in STAGES:  # empty stage manifests: a release over them is still a tagged state
        stages.write_table(tier_path("films", stage), STAGE_SCHEMA.empty_table())
    stages.commit("empty stages")
    stages.publish("publish empty stages")

    # both releases have named their tag before either takes it
    both_named = threading.Barrier(2, timeout=60)
    start_tier_wap = release_module.start_tier_wap

    def start_when_both_named(*args, **kwargs):
        both_named.wait()
        return start_tier_wap(*args, **kwargs)

    monkeypatch.setattr(release_module, "start_tier_wap", start_when_both_named)
    runs = [_in_thread(lambda: _materialize(pipeline, registry, "", release, raise_on_error=False))
            for _ in range(2)]
    results = [_joined(*run) for run in runs]

    tags = {t.id: t.get_commit().id for t in lakefs.repo().tags()}
    merges = [c for c in lakefs.first_parent_log() if (c.metadata or {}).get("dagster_asset") == "release"]
    untagged = [c.id for c in merges if not {c.id, c.metadata.get("wap_commit")} & set(tags.values())]
    assert untagged == []
    succeeded = [r for r in results if r.success]
    released = {materialization_metadata(r)["release_tag"] for r in succeeded}
    assert succeeded and len(released) == len(succeeded) == len(merges) == len(tags)
    assert released == set(tags)
    for failed in (r for r in results if not r.success):
        assert "another release is running" in _failure(failed)


# Two `vcurate materialize` of the same new source: adding its partition twice is harmless.
def test_a_new_source_materialized_twice_at_once_adds_its_partition_harmlessly(
        cli_env: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    (cli_env / "empty").mkdir()
    (cli_env / "sources.yaml").write_text(yaml.safe_dump({"sources": [
        {"id": "fresh", "kind": "local", "uri": str(cli_env / "empty"), "license": "CC0-1.0"}]}))
    (cli_env / "dagster").mkdir(exist_ok=True)
    DagsterInstance.get().has_dynamic_partition("source", "fresh")  # the instance's tables exist
    index = next((cli_env / "dagster").rglob("index.db"))

    # The other `vcurate materialize` inserts the partition in a transaction it commits only
    # once this one has checked (not there yet) and is inserting too.
    adding = threading.Event()
    add = DagsterInstance.add_dynamic_partitions

    def add_seen(self: DagsterInstance, *args, **kwargs) -> None:
        adding.set()
        return add(self, *args, **kwargs)

    monkeypatch.setattr(DagsterInstance, "add_dynamic_partitions", add_seen)

    def other_process_adds() -> None:
        db = sqlite3.connect(index, isolation_level=None, timeout=30)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO dynamic_partitions (partitions_def_name, partition) "
                   "VALUES ('source', 'fresh')")
        assert adding.wait(60)
        time.sleep(1.0)  # this one is now waiting for the database to insert the same key
        db.execute("COMMIT")
        db.close()

    other = _in_thread(other_process_adds)
    try:
        code = cli.main(["materialize", "fresh"])
    finally:
        _joined(*other)
    assert code == 0
    assert DagsterInstance.get().get_dynamic_partitions("source") == ["fresh"]
