"""Gradual transitions (cross-dissolves, fades) found from the same analysis frames.

PySceneDetect's detectors look at neighbouring frames, so a dissolve, which changes the
picture a little on every frame, slips under their thresholds. A dissolve has a signature
motion lacks: every frame inside it is a linear blend of the frames on either side. For
window lengths L, the detector compares frame t-L (A), frame t (B) and the frames between
with the blends (1-a)·A + a·B. A window whose frames match their blends closely, while A and
B differ like two shots, is a candidate. Camera motion mostly fails the test, because the
average of two shifted pictures is a ghost, not the picture in between; what passes is
settled by contrast: a blend of two unrelated pictures is flatter in the middle than at
either end (a fade to or from black is exempt: one end is flat already). Overlapping
candidates keep the best one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

_SHRINK = 4  # dissolve frames are the analysis frames shrunk by this integer factor


@dataclass
class DissolveDetector:
    lengths: tuple[int, ...] = tuple(range(6, 42, 3))
    min_change: float = 18.0  # mean |A - B| (0..255) for A and B to be different shots
    max_misfit: float = 0.33  # blend error relative to |A - B|
    max_contrast_ratio: float = 0.92  # mid-window contrast relative to the ends' mean
    max_step: float = 0.45  # no single frame step may carry this share of the change
    _frames: deque = field(default_factory=deque)
    _steps: deque = field(default_factory=deque)
    _candidates: list[tuple[float, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._frames = deque(maxlen=max(self.lengths) + 1)
        self._steps = deque(maxlen=max(self.lengths))

    def feed(self, index: int, bgr: np.ndarray) -> None:
        size = (max(1, bgr.shape[1] // _SHRINK), max(1, bgr.shape[0] // _SHRINK))
        small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        # The step from the previous frame, computed once and reused by every window.
        step = _mean_abs(small, self._frames[-1]) if self._frames else 0.0
        self._frames.append(small)
        self._steps.append(step)
        frames, steps = list(self._frames), list(self._steps)
        for length in self.lengths:
            # |A - B| never exceeds the sum of the steps between them: quiet stretches skip.
            if len(frames) > length and sum(steps[-length:]) >= self.min_change:
                fit = self._fit(frames[-length - 1 :], steps[-length:])
                if fit is not None:
                    self._candidates.append((fit, index - length + 1, index))

    def _fit(self, window: list[np.ndarray], steps: list[float]) -> float | None:
        """How well `window` forms one dissolve from its first to its last frame, or None."""
        length = len(window) - 1
        a, b = window[0], window[-1]
        change = _mean_abs(a, b)
        if change < self.min_change:
            return None
        if max(steps) > self.max_step * change:
            return None  # a hard cut (or a flash) inside: not a dissolve
        probes = (length // 4, length // 2, 3 * length // 4)
        errors = [_mean_abs(window[k], cv2.addWeighted(a, 1 - k / length, b, k / length, 0))
                  for k in probes if 0 < k < length]
        misfit = float(np.mean(errors)) / change
        if misfit > self.max_misfit:
            return None
        contrast_a, contrast_b = _contrast(a), _contrast(b)
        if min(contrast_a, contrast_b) >= 0.25 * max(contrast_a, contrast_b):  # not a fade
            mid = _contrast(window[length // 2])
            if mid > self.max_contrast_ratio * (contrast_a + contrast_b) / 2:
                return None
        # A stretch inside a dissolve fits too, but carries less change; a window reaching
        # past either end carries the same change but fits worse. The whole dissolve wins.
        return change * (1.0 - misfit / self.max_misfit)

    def finish(self) -> list[tuple[int, int]]:
        """Transitions as half-open frame spans: the best-fitting candidates, never overlapping."""
        chosen: list[tuple[int, int]] = []
        for _, start, end in sorted(self._candidates, reverse=True):
            if all(end <= s or start >= e for s, e in chosen):
                chosen.append((start, end))
        return sorted(chosen)


def _contrast(image: np.ndarray) -> float:
    """Mean per-channel spread: a uniform colour shift (exposure, white balance) leaves it alone."""
    return float(cv2.meanStdDev(image)[1].mean())


def _mean_abs(x: np.ndarray, y: np.ndarray) -> float:
    return cv2.norm(x, y, cv2.NORM_L1) / x.size
