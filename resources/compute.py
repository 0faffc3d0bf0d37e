"""Where per-video work runs: a local process pool (default) or a Ray cluster.

Assets hand a picklable function and an iterator of items to
`compute.task_executor().map_unordered(stage, fn, items)` and get one `Outcome` per item as
tasks finish. The same asset code runs on both backends; only this resource's configuration
changes. What a caller may rely on, on both backends:

* `fn(item)` runs in a worker process; an exception, or a worker that dies, becomes that
  item's `Outcome.error` (one bad video is one error row, never a failed run);
* the input iterator is read lazily and at most `max_in_flight` tasks are submitted but not
  yet yielded, so memory holds a bounded number of inputs and results;
* worker processes are reused across tasks, so models cached in module globals load once per
  worker (Ray tasks are submitted with `max_calls=0`, which Ray does not default to on GPUs).
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.forkserver
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from dagster import Config, ConfigurableResource
from pydantic import Field

T = TypeVar("T")
R = TypeVar("R")

REPO_ROOT = Path(__file__).resolve().parents[1]
# What a remote Ray cluster does not need from the checkout (data, caches, build trees).
_NOT_SHIPPED = [".venv", ".git", ".vcurate", "data", "docs", "lakefs-server", "tests", "bench"]


class StageResources(Config):
    """What one task of a stage asks Ray for. The local pool runs every task in one of its
    `max_workers` processes and uses only `batch_size`."""

    num_cpus: float = Field(default=1.0, description="CPUs per task")
    num_gpus: float | None = Field(
        default=None, description="GPUs per task; unset: 1 when the stage's backend runs on a GPU, else 0")
    memory_mb: int | None = Field(default=None, description="memory Ray reserves per task (MiB)")
    batch_size: int = Field(default=1, ge=1, description="items per task: batches small items so "
                                                         "task overhead is paid once per batch")


def default_stages() -> dict[str, StageResources]:
    """clips and scored take one CPU per video; captioned takes a GPU when its backend has one."""
    return {"clips": StageResources(), "scored": StageResources(), "captioned": StageResources()}


@dataclass(frozen=True)
class StageRequest:
    """A stage's resources, resolved for one map: what the tasks are submitted with."""

    stage: str
    num_cpus: float
    num_gpus: float
    memory_bytes: int | None
    batch_size: int


class Outcome(NamedTuple, Generic[T, R]):
    """One item's result: `result` is None and `error` says why when the item failed."""

    item: T
    result: R | None
    error: str


def run_batch(fn: Callable[[Any], Any], items: list[Any]) -> list[tuple[bool, Any]]:
    """Worker side of every task: (True, result) or (False, error text) per item, so one
    failing item does not fail the others in its batch."""
    out: list[tuple[bool, Any]] = []
    for item in items:
        try:
            out.append((True, fn(item)))
        except Exception as exc:  # reported as that item's error row
            out.append((False, describe_error(exc)))
    return out


def describe_error(exc: BaseException) -> str:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


class TaskExecutor(ABC):
    """Runs one stage's tasks; `with executor:` keeps one set of workers for several maps
    (e.g. a pipeline of two stages sharing the pool); without it each map opens and closes
    its own."""

    kind: str

    def __init__(self, stages: Mapping[str, StageResources], max_in_flight: int | None):
        self._stages = dict(stages)
        self._max_in_flight = max_in_flight
        self._depth = 0

    def __enter__(self) -> TaskExecutor:
        if self._depth == 0:
            self._open()
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._close()

    def request(self, stage: str, uses_gpu: bool = False) -> StageRequest:
        """The resources `stage` is submitted with (an unlisted stage gets the defaults)."""
        spec = self._stages.get(stage) or StageResources()
        gpus = spec.num_gpus if spec.num_gpus is not None else (1.0 if uses_gpu else 0.0)
        return StageRequest(stage, spec.num_cpus, gpus,
                            spec.memory_mb * 2**20 if spec.memory_mb else None, spec.batch_size)

    @property
    def in_flight_limit(self) -> int:
        """At most this many tasks are submitted but not yet consumed."""
        return max(1, self._max_in_flight or 2 * self.parallelism())

    def map_unordered(self, stage: str, fn: Callable[[T], R], items: Iterable[T], *,
                      uses_gpu: bool = False) -> Iterator[Outcome[T, R]]:
        """`fn(item)` for every item, yielded as tasks finish (in no particular order).

        `fn` must be picklable (a module-level function or a `functools.partial` of one).
        """
        request = self.request(stage, uses_gpu)
        with self:
            self._check_feasible(request)
            limit = self.in_flight_limit
            pending: dict[Any, list[T]] = {}
            source = iter(items)
            while batch := list(islice(source, request.batch_size)):
                pending[self._submit(request, fn, batch)] = batch
                while len(pending) >= limit:
                    yield from self._collect(pending, block=True)
                yield from self._collect(pending, block=False)
            while pending:
                yield from self._collect(pending, block=True)

    def _collect(self, pending: dict[Any, list[T]], block: bool) -> Iterator[Outcome[T, R]]:
        for handle in self._finished(list(pending), block):
            batch = pending.pop(handle)
            try:
                results = self._result(handle)
            except Exception as exc:  # the worker died or the task was lost: its batch fails
                results = [(False, f"task failed: {describe_error(exc)}")] * len(batch)
            for item, (ok, value) in zip(batch, results, strict=True):
                yield Outcome(item, value, "") if ok else Outcome(item, None, value)

    @abstractmethod
    def parallelism(self) -> int:
        """How many tasks can run at once (processes, or the cluster's CPUs)."""

    def _check_feasible(self, request: StageRequest) -> None:  # noqa: B027 (optional hook)
        """Raise when no worker could ever run the request (instead of waiting forever)."""

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _submit(self, request: StageRequest, fn: Callable[[Any], Any], batch: list[Any]) -> Any: ...

    @abstractmethod
    def _finished(self, handles: list[Any], block: bool) -> list[Any]: ...

    @abstractmethod
    def _result(self, handle: Any) -> list[tuple[bool, Any]]: ...


class LocalExecutor(TaskExecutor):
    """A process pool on this machine (forkserver: never a fork of a threaded Dagster process).
    A worker that dies fails only the tasks in flight; the next task starts a fresh pool."""

    kind = "local"

    def __init__(self, stages: Mapping[str, StageResources], max_in_flight: int | None, max_workers: int,
                 preload: bool = True):
        super().__init__(stages, max_in_flight)
        self.max_workers = max(1, max_workers)
        self.preload = preload
        self._pool: ProcessPoolExecutor | None = None

    def parallelism(self) -> int:
        return self.max_workers

    def _open(self) -> None:
        self._pool = None  # started on the first submit: an empty map costs nothing

    def _close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _submit(self, request: StageRequest, fn: Callable[[Any], Any], batch: list[Any]) -> Future:
        if self._pool is None:
            if self.preload:
                preload_in_forkserver(fn)
            context = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(max_workers=self.max_workers, mp_context=context)
        return self._pool.submit(run_batch, fn, batch)

    def _finished(self, handles: list[Future], block: bool) -> list[Future]:
        if block:
            return list(wait(handles, return_when=FIRST_COMPLETED).done)
        return [f for f in handles if f.done()]

    def _result(self, handle: Future) -> list[tuple[bool, Any]]:
        try:
            return handle.result()
        except BrokenProcessPool:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            raise


_PRELOADED: list[str] = ["__main__"]  # multiprocessing's default preload


def preload_in_forkserver(fn: Callable[[Any], Any]) -> None:
    """Have the forkserver import `fn`'s module before it forks workers, so each worker starts
    with it imported: the clips worker's imports (PyAV, OpenCV, PySceneDetect, pyarrow) cost
    about 1.8 CPU s, paid once per process instead of once per worker and pool. It takes
    effect when the forkserver starts (once per process, or again after it died); a module
    named later only joins the list for a restart. The forkserver imports nothing else and
    runs no code of the module but its import, so workers start as they did."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", None)
    if module and module not in _PRELOADED:
        _PRELOADED.append(module)
        multiprocessing.forkserver.set_forkserver_preload(list(_PRELOADED))


class RayExecutor(TaskExecutor):
    """Tasks on a Ray cluster, submitted with each stage's resource request; `ray.wait`
    bounds what is in flight. Ray is started (or connected to) once per process."""

    kind = "ray"

    def __init__(self, stages: Mapping[str, StageResources], max_in_flight: int | None,
                 address: str | None, max_workers: int, object_store_mb: int, max_retries: int):
        super().__init__(stages, max_in_flight)
        self.address = address
        self.max_retries = max_retries
        self.max_workers = max(1, max_workers)
        self.object_store_mb = object_store_mb
        self._ray: Any = None

    def parallelism(self) -> int:
        ray = self._ray or start_ray(self.address, self.max_workers, self.object_store_mb)
        return max(1, int(ray.cluster_resources().get("CPU", self.max_workers)))

    def _open(self) -> None:
        self._ray = start_ray(self.address, self.max_workers, self.object_store_mb)

    def _close(self) -> None:
        pass  # Ray stays up for the process's next map; Ray shuts it down at exit

    def _check_feasible(self, request: StageRequest) -> None:
        if self.address is not None:
            return  # an autoscaling cluster may add the nodes it lacks now
        total = self._ray.cluster_resources()
        for name, wanted in (("CPU", request.num_cpus), ("GPU", request.num_gpus)):
            if wanted > total.get(name, 0.0):
                raise ValueError(
                    f"compute.stages.{request.stage}.num_{name.lower()}s: a task asks for {wanted:g} "
                    f"{name}, the local Ray cluster has {total.get(name, 0.0):g}; lower the request "
                    f"or set compute.ray_address to a cluster that has them")

    def _submit(self, request: StageRequest, fn: Callable[[Any], Any], batch: list[Any]) -> Any:
        options: dict[str, Any] = {"num_cpus": request.num_cpus, "num_gpus": request.num_gpus,
                                   "max_retries": self.max_retries}
        if request.memory_bytes:
            options["memory"] = request.memory_bytes
        return _remote_run_batch(self._ray).options(**options).remote(fn, batch)

    def _finished(self, handles: list[Any], block: bool) -> list[Any]:
        ready, _ = self._ray.wait(handles, num_returns=1 if block else len(handles),
                                  timeout=None if block else 0)
        if block and len(handles) > 1:  # take everything else that is already done too
            more, _ = self._ray.wait([h for h in handles if h not in ready],
                                     num_returns=len(handles) - len(ready), timeout=0)
            ready += more
        return ready

    def _result(self, handle: Any) -> list[tuple[bool, Any]]:
        return self._ray.get(handle)


_REMOTE: dict[int, Any] = {}


def _remote_run_batch(ray: Any) -> Any:
    if id(ray) not in _REMOTE:
        # max_calls=0: workers are reused, so models stay loaded (Ray's GPU default is 1 call)
        _REMOTE[id(ray)] = ray.remote(max_calls=0)(run_batch)
    return _REMOTE[id(ray)]


def start_ray(address: str | None, num_cpus: int, object_store_mb: int) -> Any:
    """The `ray` module, initialised once per process: a local cluster of `num_cpus` CPUs when
    `address` is None, else a connection to `address` ("auto", "host:port", "ray://...")."""
    # Under `uv run`, Ray would start workers through `uv run` in a copy of the project and
    # re-install the whole environment there (minutes, and it needs the network). Workers
    # here use the driver's interpreter and environment, which are already synced; a remote
    # cluster's image carries the same locked environment. Set the variable to 1 to opt back in.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    import ray
    from ray._private import ray_constants

    if os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] == "0":
        ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False  # ray may have been imported before
    if ray.is_initialized():
        return ray
    if address is None:
        # Workers import test modules and benchmarks by reference: the checkout goes first on
        # their path (a top-level `tests` package from a wheel must not win). It goes through
        # the environment the local cluster inherits, not a job runtime_env: with one, Ray
        # cannot use its prestarted workers, which cost 8 s more on 2 cores (measured).
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        ray.init(num_cpus=num_cpus, include_dashboard=False, object_store_memory=object_store_mb * 2**20)
    else:
        ray.init(address=address, runtime_env={"working_dir": str(REPO_ROOT), "excludes": _NOT_SHIPPED})
    return ray


class ComputeResource(ConfigurableResource):
    """Where the per-video work of clips and scored (and later tiers) runs.

    `executor: local` (default) runs a process pool of `max_workers` on this machine.
    `executor: ray` starts a local Ray with `max_workers` CPUs when `ray_address` is unset,
    or connects to a cluster ("auto", "host:port", "ray://head:10001"); each stage's tasks
    ask for `stages[stage]`. On a multi-node cluster the source cache (VCURATE_CACHE_DIR) must
    be a shared filesystem: clips' workers read the fetched videos and write analyses there.
    """

    executor: Literal["local", "ray"] = Field(default="local", description="local | ray")
    ray_address: str | None = Field(
        default=None, description="unset: start a local Ray; 'auto' or 'host:port': connect")
    max_workers: int | None = Field(default=None, description="worker processes (local) or CPUs of a "
                                                              "local Ray; unset: os.cpu_count()")
    max_in_flight: int | None = Field(
        default=None, description="tasks submitted but not yet consumed; unset: 2 x parallelism")
    object_store_mb: int = Field(default=512, description="object store of a local Ray (MiB)")
    max_retries: int = Field(
        default=1, ge=0, description="Ray: reruns of a task whose worker or node died; a video that "
                                     "kills its worker every time is an error row after that")
    stages: dict[str, StageResources] = Field(default_factory=default_stages,
                                              description="resource requests per stage")
    preload_worker_imports: bool = Field(
        default=True, description="local: the forkserver imports each mapped function's module once, "
                                  "so pool workers start with it imported")

    def task_executor(self) -> TaskExecutor:
        """A fresh executor for this configuration (cheap: workers start on first use)."""
        workers = self.max_workers or os.cpu_count() or 1
        if self.executor == "ray":
            return RayExecutor(self.stages, self.max_in_flight, self.ray_address, workers,
                               self.object_store_mb, self.max_retries)
        return LocalExecutor(self.stages, self.max_in_flight, workers, self.preload_worker_imports)
