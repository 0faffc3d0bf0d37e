"""Progress of a materialization's per-item work: done / total, rate and ETA.

Assets hand a `Progress` to the row builders as their `progress(done, total)` callback. It
logs to the Dagster run (so the UI's run log shows how far a long partition is, throttled to
one line every few seconds), returns the figures as metadata, and tells local listeners — the
CLI draws its progress bar from them, since `vcurate materialize` runs the job in process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    tier: str
    partition: str
    unit: str  # what is counted: "videos", "clips", "samples"
    done: int
    total: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None

    def line(self) -> str:
        eta = f", ETA {self.eta_s:.0f} s" if self.eta_s is not None and self.done < self.total else ""
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        return (f"{self.tier} {self.partition}: {self.done}/{self.total} {self.unit}{share}, "
                f"{self.rate:.2f} {self.unit}/s{eta}")


_listeners: list[Callable[[ProgressEvent], None]] = []


@contextmanager
def listening(listener: Callable[[ProgressEvent], None]) -> Iterator[None]:
    """Call `listener` with every progress event of runs executed in this process."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


class Progress:
    """A `progress(done, total)` callback for one tier and partition."""

    def __init__(self, log: logging.Logger | object, tier: str, partition: str, unit: str,
                 log_every_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._log, self._clock, self._log_every = log, clock, log_every_s
        self.tier, self.partition, self.unit = tier, partition, unit
        self._started = clock()
        self._last_logged = float("-inf")
        self.last: ProgressEvent | None = None

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        event = ProgressEvent(self.tier, self.partition, self.unit, done, total, now - self._started)
        self.last = event
        if done >= total or done == 1 or now - self._last_logged >= self._log_every:
            self._log.info(event.line())  # type: ignore[attr-defined]
            self._last_logged = now
        for listener in list(_listeners):
            listener(event)

    def metadata(self) -> dict[str, float | int]:
        """What the work did, for the materialization: items, seconds and rate."""
        if self.last is None:
            return {f"{self.unit}_processed": 0}
        return {f"{self.unit}_processed": self.last.done,
                "processing_seconds": round(self.last.elapsed_s, 2),
                f"{self.unit}_per_s": round(self.last.rate, 3)}
