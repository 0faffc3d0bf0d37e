"""Samples a process tree (a process and all its descendants) with psutil while it runs: the
tree's CPU seconds and summed RSS every `interval` s. Used by bench/load.py, bench/pipeline.py
and bench/clips_partition.py."""

from __future__ import annotations

import threading
import time

import psutil


class TreeSampler:
    """`samples`: (time, tree CPU seconds so far, tree RSS) per sweep.

    A process's CPU is its last sampled user + system time (kept after it exits).
    `include_reaped` also counts what a process's reaped children used (children_user/system),
    for trees whose short-lived processes exit between sweeps; a child the sampler saw is
    already counted, so what it had used when last seen is taken off its parent's reaped time
    (a forkserver reaps every pool worker: counting both doubled the workers' CPU).
    `pid_samples` holds each sweep's CPU per process, for `window_by_process`."""

    def __init__(self, pid: int, interval: float = 0.25, include_reaped: bool = False):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.include_reaped = include_reaped
        self.samples: list[tuple[float, float, int]] = []
        self.pid_samples: list[tuple[float, dict[int, float]]] = []
        self.labels: dict[int, str] = {}
        self.peak_main_rss = 0
        self._own: dict[int, float] = {}
        self._reaped: dict[int, float] = {}
        self._parent: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _label(self, proc: psutil.Process) -> str:
        if proc.pid == self.root.pid:
            return "main"
        parent = self.labels.get(self._parent.get(proc.pid, -1), "")
        if parent.endswith("forkserver"):  # forked from it: same command line
            return parent.removesuffix("forkserver") + "pool worker"
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            return "other"
        if "forkserver" in cmd:
            return ("" if parent == "main" else parent + " ") + "forkserver"
        if "resource_tracker" in cmd:
            return "resource tracker"
        return parent + " child" if parent else proc.name()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total, alive = 0, set()
            for proc in procs:
                try:
                    with proc.oneshot():
                        rss = proc.memory_info().rss
                        times = proc.cpu_times()
                        if proc.pid not in self._parent:
                            self._parent[proc.pid] = proc.ppid()
                except psutil.Error:
                    continue
                if proc.pid not in self.labels:
                    self.labels[proc.pid] = self._label(proc)
                alive.add(proc.pid)
                total += rss
                self._own[proc.pid] = times.user + times.system
                self._reaped[proc.pid] = times.children_user + times.children_system
                if proc.pid == self.root.pid:
                    self.peak_main_rss = max(self.peak_main_rss, rss)
            per_pid = self._per_pid(alive)
            self.pid_samples.append((time.time(), per_pid))
            self.samples.append((time.time(), sum(per_pid.values()), total))
            self._stop.wait(self.interval)

    def _per_pid(self, alive: set[int]) -> dict[int, float]:
        per_pid = dict(self._own)
        if self.include_reaped:
            seen_dead: dict[int, float] = {}
            for pid, parent in self._parent.items():
                if pid not in alive:
                    seen_dead[parent] = seen_dead.get(parent, 0.0) + self._own[pid] + self._reaped[pid]
            for pid, reaped in self._reaped.items():
                per_pid[pid] += max(0.0, reaped - seen_dead.get(pid, 0.0))
        return per_pid

    @property
    def cpu_s(self) -> float:
        return self.samples[-1][1] if self.samples else 0.0

    @property
    def peak_rss(self) -> int:
        return max((s[2] for s in self.samples), default=0)

    def _bounds(self, start: float, end: float) -> tuple[int, int]:
        """Indices of the nearest samples at or before `start` and at or after `end`."""
        times = [s[0] for s in self.samples]
        before = max((i for i, t in enumerate(times) if t <= start), default=0)
        after = min((i for i, t in enumerate(times) if t >= end), default=len(times) - 1)
        return before, after

    def window(self, start: float, end: float) -> tuple[float, int]:
        """CPU seconds of the tree between two times (nearest samples) and the peak RSS inside."""
        before, after = self._bounds(start, end)
        inside = [s for s in self.samples if start <= s[0] <= end]
        peak = max((s[2] for s in inside),
                   default=max(self.samples[before][2], self.samples[after][2]))
        return self.samples[after][1] - self.samples[before][1], peak

    def window_by_process(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds between two times per kind of process (main, forkserver, pool worker,
        ...), summed over the processes of that kind."""
        before, after = self._bounds(start, end)
        first, last = self.pid_samples[before][1], self.pid_samples[after][1]
        out: dict[str, float] = {}
        for pid, cpu in last.items():
            label = self.labels.get(pid, "other")
            out[label] = out.get(label, 0.0) + cpu - first.get(pid, 0.0)
        return out
