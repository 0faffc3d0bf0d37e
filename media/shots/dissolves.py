"""Gradual transitions (cross-dissolves, fades) found from the same analysis frames.

PySceneDetect's detectors look at neighbouring frames, so a dissolve, which changes the
picture a little on every frame, slips under their thresholds. A dissolve has a signature
motion lacks: every frame inside it is a linear blend of the frames on either side. For
window lengths L, the detector compares frame t-L (A), frame t (B) and the frames between
with the blends (1-a)·A + a·B. A window whose frames match their blends closely, while A and
B differ like two shots, is a candidate. Camera motion mostly fails the test, because the
average of two shifted pictures is a ghost, not the picture in between; what passes is
settled by contrast: a blend of two unrelated pictures is flatter in the middle than at
either end (a fade to or from black is exempt: one end is flat already). A light change
(a cloud, a lamp, auto-exposure) blends a picture with a darker or brighter copy of itself:
when the last frame is the first one relit (a gain and an offset per channel explain it),
the window is no transition. Overlapping candidates keep the best one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import accumulate

import cv2
import numpy as np

from media.decode.frames import shrink_by_whole_factors

_SHRINK = 2  # dissolve frames are the colour frames (media/decode/frames.py) shrunk by this whole factor


@dataclass
class DissolveDetector:
    lengths: tuple[int, ...] = tuple(range(6, 42, 3))
    min_change: float = 18.0  # mean |A - B| (0..255) for A and B to be different shots
    max_misfit: float = 0.33  # blend error relative to |A - B|
    max_contrast_ratio: float = 0.92  # mid-window contrast relative to the ends' mean
    max_step: float = 0.45  # no single frame step may carry this share of the change
    # Relit: the last frame is the first times a gain plus an offset (per channel), up to this
    # share of the last frame's own spread. 0 turns the test off.
    max_relit_misfit: float = 0.5
    _frames: deque = field(default_factory=deque)
    _steps: deque = field(default_factory=deque)
    _bounds: list[float] = field(default_factory=list)
    _candidates: list[tuple[float, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lengths = tuple(sorted(self.lengths))
        self._frames = deque(maxlen=self.lengths[-1] + 1)
        self._steps = deque(maxlen=self.lengths[-1])

    def feed(self, index: int, bgr: np.ndarray) -> None:
        small = _shrink(bgr).astype(np.float32)
        if self._frames and self._frames[-1].shape != small.shape:
            # A stream that changes size mid-way: no window spans the change.
            self._frames.clear()
            self._steps.clear()
            self._bounds.clear()
        # The step from the previous frame, computed once and reused by every window.
        step = _mean_abs(small, self._frames[-1]) if self._frames else 0.0
        self._frames.append(small)
        self._steps.append(step)
        # _bounds[i] never under-estimates |frames[i] - newest| (triangle inequality): it grows
        # by each step and is reset to the exact value whenever that is computed. Most windows
        # are settled by it without touching a pixel.
        self._bounds = [b + step for b in self._bounds[-self.lengths[-1] :]] + [0.0]
        count = len(self._frames)
        if count <= self.lengths[0]:
            return
        largest = list(accumulate(reversed(self._steps), max))  # largest of the last k steps
        frames: list[np.ndarray] | None = None
        for length in self.lengths:
            if count <= length:
                break
            first = count - 1 - length
            bound, biggest = self._bounds[first], largest[length - 1]
            # Too little change, or one step carrying too much of it (a hard cut or a flash).
            if bound < self.min_change or biggest > self.max_step * bound:
                continue
            frames = frames or list(self._frames)
            change = self._bounds[first] = _mean_abs(frames[first], small)
            fit = self._fit(frames[first:], change, biggest)
            if fit is not None:
                self._candidates.append((fit, index - length + 1, index))

    def _fit(self, window: list[np.ndarray], change: float, largest_step: float) -> float | None:
        """How well `window` forms one dissolve from its first to its last frame, or None.

        `change` is mean |first - last|; `largest_step` the largest change between neighbours.
        """
        length = len(window) - 1
        a, b = window[0], window[-1]
        if change < self.min_change:
            return None
        if largest_step > self.max_step * change:
            return None  # a hard cut (or a flash) inside: not a dissolve
        # The middle probe first: under camera motion its ghost fits worst, and once the
        # errors summed so far exceed the allowed mean the window is out.
        probes = [k for k in (length // 2, length // 4, 3 * length // 4) if 0 < k < length]
        allowed = self.max_misfit * change * len(probes)
        errors = 0.0
        for k in probes:
            errors += _mean_abs(window[k], cv2.addWeighted(a, 1 - k / length, b, k / length, 0))
            if errors > allowed:
                return None
        misfit = errors / len(probes) / change
        if misfit > self.max_misfit:
            return None
        contrast_a, contrast_b = _contrast(a), _contrast(b)
        if min(contrast_a, contrast_b) >= 0.25 * max(contrast_a, contrast_b):  # not a fade
            if _relit_misfit(a, b) < self.max_relit_misfit:
                return None  # the same picture, brighter or darker
            mid = _contrast(window[length // 2])
            if mid > self.max_contrast_ratio * (contrast_a + contrast_b) / 2:
                return None
        # A stretch inside a dissolve fits too, but carries less change; a window reaching
        # past either end carries the same change but fits worse. The whole dissolve wins.
        return change * (1.0 - misfit / self.max_misfit)

    @property
    def candidates(self) -> list[tuple[float, int, int]]:
        """Every window that passed, as (fit, first frame, last frame); `choose_transitions` picks."""
        return list(self._candidates)

    def finish(self) -> list[tuple[int, int]]:
        """Transitions as half-open frame spans: the best-fitting candidates, never overlapping."""
        return choose_transitions(self._candidates)


def choose_transitions(candidates: list[tuple[float, int, int]]) -> list[tuple[int, int]]:
    """Best-fitting candidates first, each kept unless it overlaps one kept already."""
    chosen: list[tuple[int, int]] = []
    for _, start, end in sorted(candidates, reverse=True):
        if all(end <= s or start >= e for s, e in chosen):
            chosen.append((start, end))
    return sorted(chosen)


def _shrink(bgr: np.ndarray) -> np.ndarray:
    """`bgr` area-averaged over _SHRINK-pixel squares (never below one pixel a side)."""
    fx, fy = min(_SHRINK, bgr.shape[1]), min(_SHRINK, bgr.shape[0])
    return shrink_by_whole_factors(bgr, fx, fy)


def _contrast(image: np.ndarray) -> float:
    """Mean per-channel spread: a uniform colour shift (exposure, white balance) leaves it alone."""
    return float(cv2.meanStdDev(image)[1].mean())


def _relit_misfit(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |b - (g·a + o)| with the least-squares gain g and offset o of each channel, relative
    to b's own mean |b - mean(b)|: near 0 when b is a relit a, near 1 when they are unrelated."""
    x = a.reshape(-1, a.shape[-1]).astype(np.float64)
    y = b.reshape(-1, b.shape[-1]).astype(np.float64)
    dx, dy = x - x.mean(axis=0), y - y.mean(axis=0)
    gain = (dx * dy).sum(axis=0) / np.maximum((dx * dx).sum(axis=0), 1e-9)
    return float(np.abs(dy - gain * dx).mean() / max(np.abs(dy).mean(), 1e-9))


def _mean_abs(x: np.ndarray, y: np.ndarray) -> float:
    return cv2.norm(x, y, cv2.NORM_L1) / x.size
