"""Letterbox and pillarbox bars over a clip's keyframes, and the crop that removes them.

A bar is a run of rows (or columns) from an edge of the frame whose pixels, along the whole
line and in every keyframe, nearly all have the colour of the outermost line. Black is the
usual case, but any constant colour counts. Needing all keyframes to agree keeps a dark sky
or floor in one frame from being taken for a bar; allowing a few off-colour pixels keeps
subtitles burned into a bar from cutting it short. A picture whose own background is one
constant colour in every keyframe (a logo on black) cannot be told from bars by pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Lines past a bar where its step is looked for: a bar edge off the 8x8 (or 16x16) block grid
# leaves the coding block it cuts through ringing, so the first lines past the flat run can be
# dark halos of the bar; the picture proper starts within a block.
_STEP_LINES = 8


@dataclass(frozen=True)
class BorderParams:
    """What a user tunes about bar detection (mirrored in the policy)."""

    colour_tolerance: int = 16  # a pixel has the bar colour within this (max over channels, 0-255)
    min_flat_share: float = 0.9  # share of a line's pixels (all keyframes) that must have it
    # Text burned into a bar interrupts it: up to this fraction of the extent of lines where at least
    # gap_share of pixels keep the bar colour may sit between bar lines.
    max_gap: float = 0.1
    gap_share: float = 0.5
    # A bar ends in a step: one of the _STEP_LINES lines past it must differ from the bar colour by
    # this much (median over the line); a sky or a wall that fades slowly is picture, not a bar.
    min_step: int = 28
    min_size: float = 0.01  # bars thinner than this fraction of the height/width are reported as 0
    max_total: float = 0.8  # bars covering more than this (both sides together) mean a flat frame


@dataclass(frozen=True)
class BorderSignals:
    """Bar sizes as fractions of the keyframe height (top, bottom) and width (left, right)."""

    top: float
    bottom: float
    left: float
    right: float
    crop: tuple[float, float, float, float]  # active picture x, y, w, h as fractions of the frame
    flat: bool  # the whole frame is one colour in every keyframe (no bars reported then)
    params: BorderParams


def _run_from_edge(edge: Callable[[int], np.ndarray], extent: int, params: BorderParams) -> int:
    """Lines from one edge that form a bar; `edge(n)` gives the n outermost lines (rows or
    columns of every keyframe, outermost first; shape n × samples × 3) of the `extent`."""
    # A bar longer than max_total is a flat frame anyway, and every other pixel along a line is
    # plenty to find its colour share: both keep this cheap next to the detector.
    total = min(extent, int(params.max_total * extent) + 2)
    colour = np.median(edge(1)[0, ::2], axis=0).astype(np.int16)
    max_gap = max(1, int(params.max_gap * extent))
    # Most frames have no bar, and the scan stops at the first line or two: measure the lines
    # nearest the edge first and more only when the scan runs past them (the same answer as
    # measuring every line at once, at a fraction of the cost).
    count = min(total, 16)
    while True:
        distance = np.abs(edge(count)[:, ::2].astype(np.int16) - colour).max(axis=2)
        near = (distance <= params.colour_tolerance).mean(axis=1)
        size, reached_end = _scan(near >= params.min_flat_share, near >= params.gap_share, max_gap)
        if count == total or (not reached_end and size + 2 <= count):
            break
        count = min(total, count * 4)
    if size == 0 or size == len(near):
        return size
    if np.median(distance[size : size + 2], axis=1).max() >= params.min_step:
        return size
    # No clean step: look a block further (rare, so the extra lines are read only here).
    far = min(total, size + _STEP_LINES)
    if far > len(distance):
        distance = np.abs(edge(far)[:, ::2].astype(np.int16) - colour).max(axis=2)
    step = np.median(distance[size + 2 : far], axis=1).max() if far > size + 2 else 0
    return size if step >= params.min_step else 0


def _scan(ok: np.ndarray, weak: np.ndarray, max_gap: int) -> tuple[int, bool]:
    """Bar lines from the edge (gaps of weak lines allowed), and whether the scan needed every line."""
    size = i = 0
    while i < len(ok):
        if ok[i]:
            i += 1
            size = i
            continue
        j = i
        while j < len(ok) and weak[j] and not ok[j] and j - i < max_gap:
            j += 1
        if j == len(ok):
            return size, True
        if j == i or not ok[j]:
            return size, False
        i = j
    return size, True


def border_signals(keyframes: list[np.ndarray], params: BorderParams = BorderParams()) -> BorderSignals:
    """Bars present in all `keyframes` (H×W×3 uint8, same shape; pass each distinct keyframe once)."""
    if not keyframes:
        raise ValueError("border_signals: no keyframes")
    shapes = {k.shape for k in keyframes}
    if len(shapes) != 1:
        raise ValueError(f"border_signals: keyframes differ in shape {sorted(shapes)}")
    stack = np.stack(keyframes)  # K × H × W × 3
    height, width = stack.shape[1:3]
    # Rows as (n, K·W, 3): flat along the row and equal across keyframes in one test; only the
    # lines a scan reads are gathered.
    def rows(n: int, flip: bool = False) -> np.ndarray:
        part = stack[:, ::-1][:, :n] if flip else stack[:, :n]
        return part.transpose(1, 0, 2, 3).reshape(n, -1, 3)

    def cols(n: int, flip: bool = False) -> np.ndarray:
        part = stack[:, :, ::-1][:, :, :n] if flip else stack[:, :, :n]
        return part.transpose(2, 0, 1, 3).reshape(n, -1, 3)

    top = _run_from_edge(rows, height, params)
    bottom = _run_from_edge(lambda n: rows(n, flip=True), height, params)
    left = _run_from_edge(cols, width, params)
    right = _run_from_edge(lambda n: cols(n, flip=True), width, params)
    if top + bottom >= params.max_total * height or left + right >= params.max_total * width:
        return BorderSignals(0.0, 0.0, 0.0, 0.0, (0.0, 0.0, 1.0, 1.0), True, params)

    def fraction(size: int, extent: int) -> float:
        return size / extent if size >= params.min_size * extent else 0.0

    t, b = fraction(top, height), fraction(bottom, height)
    left_f, right_f = fraction(left, width), fraction(right, width)
    return BorderSignals(t, b, left_f, right_f, (left_f, t, 1.0 - left_f - right_f, 1.0 - t - b), False,
                         params)


def active_picture(rgb: np.ndarray, crop: tuple[float, float, float, float]) -> np.ndarray:
    """`rgb` cut to `crop` (BorderSignals.crop: x, y, w, h as fractions of the frame), so a
    letterboxed or pillarboxed copy is hashed and embedded on the picture it shares with its
    original. A whole-frame crop returns `rgb` itself."""
    if crop == (0.0, 0.0, 1.0, 1.0):
        return rgb
    h, w = rgb.shape[:2]
    x0, y0 = round(crop[0] * w), round(crop[1] * h)
    x1, y1 = max(x0 + 1, round((crop[0] + crop[2]) * w)), max(y0 + 1, round((crop[1] + crop[3]) * h))
    return np.ascontiguousarray(rgb[y0:y1, x0:x1])
