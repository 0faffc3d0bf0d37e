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

Where the chosen window starts and ends is only as good as its fit: when either shot moves,
the blend of the window's end frames is a ghost, a shorter window inside the dissolve fits
better and ends early, and a window reaching into a moving shot gains change and ends late.
`refine_transition` places the ends again from tiny thumbnails (`THUMB`) of the frames around
each candidate: every frame's share of the way from the frame before the transition to the
frame after it follows a ramp 0 → 1 across a dissolve, and the ramp that fits best gives the
first and the first clean frame. A fade through black or white is no such ramp; it keeps the
window's ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import accumulate

import cv2
import numpy as np

from media.decode.frames import shrink_by_whole_factors

_SHRINK = 2  # dissolve frames are the colour frames (media/decode/frames.py) shrunk by this whole factor
THUMB = (16, 9)  # thumbnails kept around candidates for `refine_transition`: a blur that motion barely moves
REFINE_PAD = 10  # frames either side of a transition that `refine_transition` may move its ends by
_REFERENCE_GAP = 3  # the ramp's references: this many frames before the start and after the end ...
_REFERENCE_FRAMES = 5  # ... and this many frames each, averaged
_FADE_CONTRAST = 0.18  # a frame inside this flat, relative to the ends' contrast: a fade (not refined)


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
    # Keep thumbnails around every candidate so that `refine_transition` can place its ends.
    keep_thumbs: bool = True
    _frames: deque = field(default_factory=deque)
    _steps: deque = field(default_factory=deque)
    _bounds: list[float] = field(default_factory=list)
    _candidates: list[tuple[float, int, int]] = field(default_factory=list)
    thumbs: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> THUMB (uint8), near candidates
    _recent: deque = field(default_factory=deque)
    _keep_until: int = -1

    def __post_init__(self) -> None:
        self.lengths = tuple(sorted(self.lengths))
        self._frames = deque(maxlen=self.lengths[-1] + 1)
        self._steps = deque(maxlen=self.lengths[-1])
        self._recent = deque(maxlen=self.lengths[-1] + 2 + REFINE_PAD + _REFERENCE_GAP + _REFERENCE_FRAMES)

    def feed(self, index: int, bgr: np.ndarray) -> None:
        if self.keep_thumbs:
            thumb = cv2.resize(bgr, THUMB, interpolation=cv2.INTER_AREA)
            self._recent.append((index, thumb))
            if index <= self._keep_until:
                self.thumbs[index] = thumb
        found = len(self._candidates)
        self._scan(index, bgr)
        if self.keep_thumbs and len(self._candidates) > found:
            # This frame ends a candidate: keep the frames before its window and after it.
            margin = REFINE_PAD + _REFERENCE_GAP + _REFERENCE_FRAMES
            first = min(c[1] for c in self._candidates[found:]) - 1 - margin
            self.thumbs.update((i, t) for i, t in self._recent if i >= first)
            self._keep_until = index + margin

    def _scan(self, index: int, bgr: np.ndarray) -> None:
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


def refine_transition(thumbs: dict[int, np.ndarray], start: int, end: int,
                      pad: int = REFINE_PAD, gap: int = _REFERENCE_GAP) -> tuple[int, int]:
    """`(start, end)` (half-open, `end` the first clean frame) placed again by the ramp that best
    fits the thumbnails' progress from the frames before `start - gap` to those from `end + gap`
    on; unchanged for a fade through black or white, or where thumbnails are missing. Ends move
    by at most `pad` (the start by at most `pad // 2` later, the end by at most `pad // 2 + 2`
    earlier)."""
    before = [start - 1 - gap - k for k in range(_REFERENCE_FRAMES)]
    after = [end + gap + k for k in range(_REFERENCE_FRAMES)]
    lo, hi = start - pad, end + pad
    while lo < start and lo not in thumbs:
        lo += 1
    while hi > end and hi not in thumbs:
        hi -= 1
    frames = range(lo, hi + 1)
    if end - start < 2 or any(i not in thumbs for i in [*before, *after, *frames]):
        return start, end
    ends = max(_contrast(thumbs[before[0]]), _contrast(thumbs[after[0]]))
    if min(_contrast(thumbs[i]) for i in range(start, end)) < _FADE_CONTRAST * ends:
        return start, end  # through black or white: two ramps, not one
    # Each reference is the mean of a few frames: a single one would match itself best, and a
    # moving shot's other frames less, which bends the ramp towards it.
    first = np.mean([thumbs[i].astype(np.float32).ravel() for i in before], axis=0)
    last = np.mean([thumbs[i].astype(np.float32).ravel() for i in after], axis=0)
    direction = last - first
    norm = float(direction @ direction)
    if norm < 1e-6:
        return start, end
    stack = np.stack([thumbs[i].astype(np.float32).ravel() for i in frames])
    progress = (stack - first) @ direction / norm
    x = np.arange(lo, hi + 1, dtype=np.float64)
    best = (np.inf, start, end)
    for s in range(lo + 1, start + pad // 2 + 1):
        for e in range(max(s + 2, end - pad // 2 - 2), hi + 1):
            error = float(((progress - np.clip((x - (s - 1)) / (e - (s - 1)), 0.0, 1.0)) ** 2).sum())
            if error < best[0]:
                best = (error, s, e)
    return best[1], best[2]


def relit_across(thumbs: dict[int, np.ndarray], start: int, end: int,
                 gap: int = _REFERENCE_GAP) -> float | None:
    """How far the picture after a transition `[start, end)` is from the picture before it relit
    (`_relit_misfit` of the mean thumbnails of _REFERENCE_FRAMES frames, `gap` frames clear of
    each side): near 0 for a light change inside one shot, near 1 across two shots. None where
    the thumbnails are missing."""
    before = [start - 1 - gap - k for k in range(_REFERENCE_FRAMES)]
    after = [end + gap + k for k in range(_REFERENCE_FRAMES)]
    if any(i not in thumbs for i in [*before, *after]):
        return None
    first = np.mean([thumbs[i].astype(np.float32) for i in before], axis=0)
    last = np.mean([thumbs[i].astype(np.float32) for i in after], axis=0)
    return _relit_misfit(first, last)


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
