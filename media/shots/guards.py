"""What a frame-to-frame shot detector mistakes for cuts: repeated frames and flashes.

* Repeated frames. Footage converted from a lower frame rate (12.5 fps shown at 25, 3:2
  pulldown) repeats pictures. A detector that averages neighbouring frame scores
  (AdaptiveDetector) then sees scores like 0, x, 0, x; where the repetition pattern shifts
  (0, 0, x) the average falls and an ordinary frame change reads as a cut.
  `RepeatedFrames` holds back a frame that repeats the last one let through, at most
  `max_run` in a row (3:2 pulldown repeats a picture twice): the detector sees each picture
  once, at its first frame. A still shot still reaches the detector every `max_run` + 1
  frames, so the frames after a cut into one fill its window and the cut is confirmed.
* Flashes. A photographer's flash, a muzzle flash or a lightning strike changes every pixel
  for a few frames, then the picture comes back. `FlashGuard` holds each cut until it has
  seen `frames` frames past it, and drops it when a frame before the cut and a frame after it,
  at most `frames` + 1 apart, look alike again (closer than `ratio` times the cut's own change).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |a - b| over every pixel and channel (0..255 for uint8 frames)."""
    return cv2.norm(a, b, cv2.NORM_L1) / a.size


@dataclass
class RepeatedFrames:
    """`is_repeat(bgr)`: True when `bgr` is within `below` (mean |difference|, 0..255) of the
    last frame that was not a repeat. Measuring against that frame, not the one before, keeps
    a slow drift from going unseen: once it adds up to `below`, the frame counts as new."""

    below: float = 0.75
    max_run: int = 2
    _last: np.ndarray | None = None
    _run: int = 0

    def is_repeat(self, bgr: np.ndarray) -> bool:
        last = self._last
        if (self._run < self.max_run and last is not None and last.shape == bgr.shape
                and mean_abs_difference(bgr, last) < self.below):
            self._run += 1
            return True
        self._last, self._run = bgr, 0
        return False


@dataclass
class FlashGuard:
    """Confirms or drops cuts `frames` frames after them (see the module's docstring)."""

    frames: int = 4
    ratio: float = 0.5
    _history: deque = field(default_factory=deque)  # (index, frame) of the latest frames
    _pending: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # cuts found to be flashes

    def __post_init__(self) -> None:
        self._history = deque(maxlen=2 * self.frames + 3)

    def feed(self, index: int, bgr: np.ndarray, cuts: list[int]) -> list[int]:
        """Record frame `index`; `cuts` are the detector's new cuts. Returns the cuts confirmed."""
        self._history.append((index, bgr))
        self._pending.extend(cuts)
        ready = [c for c in self._pending if c + self.frames <= index]
        self._pending = [c for c in self._pending if c + self.frames > index]
        return self._confirm(ready)

    def finish(self, cuts: list[int] = ()) -> list[int]:
        """The cuts still held and `cuts` (the detector's last), judged on the frames there are."""
        ready, self._pending = [*self._pending, *cuts], []
        return self._confirm(ready)

    def _confirm(self, cuts: list[int]) -> list[int]:
        kept = []
        for cut in cuts:
            if self._is_flash(cut):
                self.dropped.append(cut)
            else:
                kept.append(cut)
        return kept

    def _is_flash(self, cut: int) -> bool:
        frames = dict(self._history)
        before, at = frames.get(cut - 1), frames.get(cut)
        if before is None or at is None or before.shape != at.shape:
            return False
        limit = self.ratio * mean_abs_difference(before, at)
        for a in range(cut - 1, cut - self.frames - 2, -1):
            for b in range(cut, a + self.frames + 2):
                if a in frames and b in frames and (a, b) != (cut - 1, cut) and \
                        frames[a].shape == frames[b].shape and \
                        mean_abs_difference(frames[a], frames[b]) < limit:
                    return True
        return False
