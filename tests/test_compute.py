"""The compute resource on both backends (a process pool and a real local Ray cluster), and the
clips and scored assets on Ray against the real lakeFS, row for row equal to the local pool."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest
import yaml

from resources.compute import ComputeResource, StageResources, start_ray
from tests.video_factory import write_cut_video, write_static_video, write_video

if TYPE_CHECKING:
    from resources.lakefs import LakeFSResource
    from tests.conftest import Pipeline

# Worker processes import this module for its task functions. The assets, models and
# fixtures' modules cost about 14 s CPU to import, so they are imported inside the tests
# that need them, never at the top.

BACKENDS = ("local", "ray")
_CALLS = 0  # per worker process: proves a worker's module state outlives one task
_IMPORTED_IN = os.getpid()  # where this module was imported: a worker, or the forkserver


def double_or_fail(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative input {x}")
    time.sleep(0.01 * (x % 3))  # finish out of submission order
    return 2 * x


def die_on_five(x: int) -> int:
    if x == 5:
        os._exit(1)  # a worker killed mid-task, as a segfaulting decoder would
    return x


def count_calls(_: object) -> tuple[int, int]:
    global _CALLS
    _CALLS += 1
    return os.getpid(), _CALLS


def imported_in(_: object) -> tuple[int, int]:
    return os.getpid(), _IMPORTED_IN


def loaded_models(params: object) -> tuple[int, int]:
    from media.signals.clip_signals import models_for

    return os.getpid(), id(models_for(params))


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One local Ray for the module (it takes seconds to start on 2 cores)."""
    ray = start_ray(None, num_cpus=2, object_store_mb=256)
    yield
    ray.shutdown()


@pytest.fixture(params=BACKENDS)
def compute(request: pytest.FixtureRequest) -> ComputeResource:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return ComputeResource(executor=request.param, max_workers=2, max_in_flight=3,
                           stages={"batched": StageResources(batch_size=4)})


@pytest.mark.parametrize("stage", ["clips", "batched"])
def test_every_item_gets_its_result_or_its_error(compute: ComputeResource, stage: str):
    items = list(range(-3, 17))
    outcomes = list(compute.task_executor().map_unordered(stage, double_or_fail, items))
    assert sorted(o.item for o in outcomes) == items  # each item exactly once, in any order
    for item, result, error in outcomes:
        if item < 0:  # one failing item is one error row, even inside a batch of four
            assert result is None and error == f"ValueError: negative input {item}"
        else:
            assert (result, error) == (2 * item, "")


def test_backpressure_bounds_what_is_in_flight(compute: ComputeResource):
    executor = compute.task_executor()
    pulled = 0

    def items() -> Iterator[int]:
        nonlocal pulled
        for i in range(30):
            pulled += 1
            yield i

    gaps = []
    for consumed, _ in enumerate(executor.map_unordered("clips", double_or_fail, items()), start=1):
        gaps.append(pulled - consumed)
        time.sleep(0.02)  # a slow consumer: the executor must not race ahead of it
    assert max(gaps) <= executor.in_flight_limit == 3
    assert max(gaps) >= 2  # ... while it does keep several tasks running


def test_a_dead_worker_fails_only_its_item(compute: ComputeResource):
    executor = ComputeResource(executor=compute.executor, max_workers=2, max_in_flight=1).task_executor()
    outcomes = {o.item: o for o in executor.map_unordered("clips", die_on_five, range(8))}
    assert outcomes[5].result is None and outcomes[5].error.startswith("task failed:")
    assert {i: o.result for i, o in outcomes.items() if i != 5} == {i: i for i in range(8) if i != 5}


def test_ray_workers_keep_module_state_and_models_between_tasks(ray_cluster: None):
    executor = ComputeResource(executor="ray", max_workers=2).task_executor()
    with executor:  # two maps, one set of workers
        first = [o.result for o in executor.map_unordered("scored", count_calls, range(12))]
        second = [o.result for o in executor.map_unordered("scored", count_calls, range(12))]
    by_pid: dict[int, list[int]] = {}
    for pid, calls in first + second:
        by_pid.setdefault(pid, []).append(calls)
    assert len(by_pid) <= 2  # two CPUs, one CPU per task: never more than two workers
    for calls in by_pid.values():  # each worker counted every task it ran: nothing was reset
        assert sorted(calls) == list(range(1, len(calls) + 1))
    # the scored workers' models (PP-OCR, OpenNSFW) load once per worker, not once per task
    from media.signals.clip_signals import SignalParams

    params = SignalParams()
    models = [o.result for o in executor.map_unordered("scored", loaded_models, [params] * 6)]
    assert all(o is not None for o in models)
    assert len(set(models)) == len({pid for pid, _ in models})


def test_stage_requests_and_an_infeasible_gpu_request(ray_cluster: None):
    executor = ComputeResource(executor="ray", max_workers=2, stages={
        "scored": StageResources(num_cpus=1, memory_mb=512),
        "captioned": StageResources(num_gpus=0)}).task_executor()
    assert executor.request("scored").memory_bytes == 512 * 2**20
    assert executor.request("captioned", uses_gpu=True).num_gpus == 0  # configured wins
    assert executor.request("other", uses_gpu=True).num_gpus == 1  # a GPU backend asks for one
    assert executor.request("other").num_gpus == 0
    with pytest.raises(ValueError, match=r"compute\.stages\.other\.num_gpus"):
        list(executor.map_unordered("other", double_or_fail, [1], uses_gpu=True))


# --- the assets on Ray, against the real lakeFS ---------------------------------------------

POLICY = "licenses:\n  allowed: [CC0-1.0]\nclips:\n  min_clip_s: 1.0\n"
LINEAGE_COMMITS = ("upstream_commit",)


def _another_repository(lakefs: LakeFSResource) -> LakeFSResource:
    name = f"t-{uuid.uuid4().hex[:12]}"
    lakefs = type(lakefs)(endpoint=lakefs.endpoint, access_key_id=lakefs.access_key_id,
                          secret_access_key=lakefs.secret_access_key, repository=name,
                          storage_namespace=f"local://{name}")
    lakefs.create_repository()
    return lakefs


def _materialize(pipeline: Pipeline, registry: Path, compute: ComputeResource):
    from dagster import materialize

    from assets.clips.asset import clips
    from assets.common.layout import tier_path
    from assets.raw_pool.asset import raw_pool
    from assets.scored.asset import scored

    pipeline.policy_path = str(registry.parent / "policy.yaml")
    pipeline.run(registry, "mix")
    result = materialize([raw_pool, clips, scored], partition_key="mix", selection=[clips, scored],
                         resources={**pipeline.resources(registry), "compute": compute},
                         instance=pipeline.instance)
    assert result.success
    tables = {tier: pipeline.lakefs.read_table(tier_path("mix", tier)) for tier in ("clips", "scored")}
    return tables, result


def _without_commits(table: pa.Table) -> list[dict]:
    return table.drop_columns(list(LINEAGE_COMMITS)).to_pylist()


def test_clips_and_scored_on_ray_equal_the_local_pool(pipeline: Pipeline, workdir: Path,
                                                      ray_cluster: None):
    videos = workdir / "videos"
    write_cut_video(videos / "cuts.mp4", segment_seconds=(2.0, 2.5), fps=24)
    write_static_video(videos / "static.mp4", seconds=2)
    write_video(videos / "moving.mp4", seconds=2.5, seed=3)
    (videos / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    (workdir / "policy.yaml").write_text(POLICY)
    registry = workdir / "sources.yaml"
    registry.write_text(yaml.safe_dump({"sources": [
        {"id": "mix", "kind": "local", "uri": "videos", "license": "CC0-1.0"}]}))
    on_ray = type(pipeline)(_another_repository(pipeline.lakefs), pipeline.s3, workdir / "ray")
    on_ray.root.mkdir(exist_ok=True)  # its own analysis and signal caches: Ray computes everything again

    local_tables, local_result = _materialize(pipeline, registry, ComputeResource(max_workers=2))
    ray_tables, ray_result = _materialize(on_ray, registry,
                                          ComputeResource(executor="ray", max_workers=2))

    assert local_tables["clips"].num_rows == 4  # two shots, the static and the moving video
    for tier in ("clips", "scored"):
        assert _without_commits(ray_tables[tier]) == _without_commits(local_tables[tier])
    for result, kind in ((local_result, "local"), (ray_result, "ray")):
        events = result.get_asset_materialization_events()
        meta = {e.materialization.asset_key.to_user_string():
                {k: v.value for k, v in e.materialization.metadata.items()} for e in events}
        assert meta["clips"]["compute_executor"] == meta["scored"]["compute_executor"] == kind
        assert meta["clips"]["videos_analysed"] == 3 and meta["clips"]["videos_from_cache"] == 0
        assert meta["scored"]["videos_scored"] == 3 and meta["scored"]["videos_failed"] == 0


@pytest.mark.parametrize("preload", [True, False])
def test_local_workers_start_with_the_task_module_imported(preload: bool):
    """The forkserver imports the mapped function's module once; workers forked from it do not
    import it again. A fresh process: this one's forkserver may have started already."""
    import subprocess
    import sys

    code = ("from resources.compute import ComputeResource\n"
            "from tests.test_compute import imported_in\n"
            f"compute = ComputeResource(max_workers=2, preload_worker_imports={preload})\n"
            "outcomes = compute.task_executor().map_unordered('clips', imported_in, range(4))\n"
            "print(sorted({worker != module for worker, module in (o.result for o in outcomes)}))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.strip() == ("[True]" if preload else "[False]")


def test_a_worker_that_started_segment_workers_exits_when_its_module_was_preloaded():
    """media/shots/segments.py registers its pool's shutdown where the pool starts: registered at
    import in the forkserver, it would be cleared in forked workers, and a worker's exit would
    wait for ever on its idle segment workers."""
    import subprocess
    import sys

    code = ("from resources.compute import ComputeResource\n"
            "from media.shots.analysis import start_segment_workers\n"
            "outcomes = ComputeResource(max_workers=2).task_executor().map_unordered(\n"
            "    'clips', start_segment_workers, [2, 2])\n"
            "print([o.error for o in outcomes])\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert out.strip() == "['', '']"
