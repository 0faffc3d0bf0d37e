"""Samples a process tree (a process and all its descendants) with psutil while it runs: the
tree's CPU seconds and summed RSS every `interval` s. Used by bench/load.py and bench/pipeline.py."""

from __future__ import annotations

import threading
import time

import psutil


class TreeSampler:
    """`samples`: (time, tree CPU seconds so far, tree RSS) per sweep. `include_reaped` adds each
    process's reaped children (children_user/system) to its CPU, for trees whose workers exit."""

    def __init__(self, pid: int, interval: float = 0.25, include_reaped: bool = False):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.include_reaped = include_reaped
        self.samples: list[tuple[float, float, int]] = []
        self.peak_main_rss = 0
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for proc in procs:
                try:
                    with proc.oneshot():
                        rss = proc.memory_info().rss
                        times = proc.cpu_times()
                except psutil.Error:
                    continue
                total += rss
                cpu = times.user + times.system
                if self.include_reaped:
                    cpu += times.children_user + times.children_system
                self._cpu[proc.pid] = cpu
                if proc.pid == self.root.pid:
                    self.peak_main_rss = max(self.peak_main_rss, rss)
            self.samples.append((time.time(), sum(self._cpu.values()), total))
            self._stop.wait(self.interval)

    @property
    def cpu_s(self) -> float:
        return sum(self._cpu.values())

    @property
    def peak_rss(self) -> int:
        return max((s[2] for s in self.samples), default=0)

    def window(self, start: float, end: float) -> tuple[float, int]:
        """CPU seconds of the tree between two times (nearest samples) and the peak RSS inside."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        before = [s for s in self.samples if s[0] <= start] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= end] or self.samples[-1:]
        peak = max((s[2] for s in inside), default=max(before[-1][2], after[0][2]))
        return after[0][1] - before[-1][1], peak
