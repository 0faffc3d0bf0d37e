"""Logo / watermark evidence over a clip's keyframes: static edges in a corner, corner text.

A broadcaster's bug or a stock-footage watermark is drawn on top of the picture, so the same
edges sit at the same pixels of every keyframe while the picture underneath changes. A static
camera over a static scene is static everywhere, and a static camera over a moving subject
leaves a static background in the corners, so static edges only count when they form one
compact cluster (a logo, not a building), the rest of their corner changes, and the centre of
the frame too. A cluster that runs on across the corner's inner side (a subtitle line held over
the clip, a ticker strip, a top band) is part of something wider than a corner: not a logo.
A logo over a static background is therefore not seen here; persistent corner
text from `text_signals` is the second, independent piece of evidence and still sees a text bug.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from media.signals.text import CORNERS, TextSignals


@dataclass(frozen=True)
class WatermarkParams:
    """What a user tunes about watermark evidence (mirrored in the policy)."""

    corner_size: float = 0.25  # a corner region is this fraction of the width and of the height
    change_level: int = 24  # a pixel changes when its grey level spans more than this across keyframes
    canny_low: int = 60
    canny_high: int = 140
    full_edge_density: float = 0.01  # share of corner pixels on static edges that counts as full evidence
    full_corner_change: float = 0.6  # share of changing pixels in the rest of the corner for full evidence
    max_logo_area: float = 0.35  # a static cluster whose bounding box covers more of the corner is scenery
    # Static edges across the corner's inner side, on a cluster's rows and within this many px (or
    # the cluster's height), mean it continues beyond the corner (subtitles, tickers, bands).
    run_on_px: int = 6
    full_centre_change: float = 0.2  # share of changing centre pixels for full evidence
    text_evidence: float = 0.7  # evidence that persistent corner text alone gives
    min_keyframes: int = 2
    corner_min_score: float = 0.5  # a corner is named when its evidence reaches this


@dataclass(frozen=True)
class WatermarkSignals:
    """watermark_score in [0, 1]: the strongest corner's combined evidence."""

    watermark_score: float
    corner: str | None  # CORNERS name of the strongest corner when its score ≥ corner_min_score
    static_edge_corners: dict[str, float]  # per corner: static-edge evidence in [0, 1]
    corner_text: str | None  # the persistent text corner taken from TextSignals
    centre_change: float  # share of centre pixels that change across keyframes
    params: WatermarkParams


def _corner_slices(height: int, width: int, size: float) -> dict[str, tuple[slice, slice]]:
    h, w = max(1, int(size * height)), max(1, int(size * width))
    rows = {"top": slice(0, h), "bottom": slice(height - h, height)}
    cols = {"left": slice(0, w), "right": slice(width - w, width)}
    return {c: (rows[c.split("_")[0]], cols[c.split("_")[1]]) for c in CORNERS}


def static_edge_evidence(keyframes: list[np.ndarray], params: WatermarkParams = WatermarkParams(),
                         active: tuple[float, float, float, float] | None = None
                         ) -> tuple[dict[str, float], float]:
    """Per-corner evidence of static edges over changing picture, and the centre's change share.

    `keyframes`: RGB uint8 of one shape; `active`: the picture area (x, y, w, h fractions, e.g.
    BorderSignals.crop) so bar edges are not taken for a logo. Fewer than
    `params.min_keyframes` keyframes give no evidence.
    """
    if len(keyframes) < params.min_keyframes:
        return dict.fromkeys(CORNERS, 0.0), 0.0
    grey = np.stack([cv2.cvtColor(k, cv2.COLOR_RGB2GRAY) for k in keyframes])
    if active is not None:
        height, width = grey.shape[1:]
        x, y, w, h = active
        # A couple of pixels inside the bar edge: its ringing is static too.
        x0, y0 = int(round(x * width)) + 2, int(round(y * height)) + 2
        x1, y1 = int(round((x + w) * width)) - 2, int(round((y + h) * height)) - 2
        if x1 - x0 > 16 and y1 - y0 > 16:
            grey = grey[:, y0:y1, x0:x1]
    changed = (grey.max(axis=0).astype(np.int16) - grey.min(axis=0)) > params.change_level
    # One pixel of slack: JPEG moves an overlay's edge by a pixel from one background to the next.
    # Chance coincidences of a changing picture's edges are scattered, which the compactness test
    # below rejects.
    kernel = np.ones((3, 3), np.uint8)
    static_edges = ~changed
    for frame in grey:
        static_edges &= cv2.dilate(cv2.Canny(frame, params.canny_low, params.canny_high), kernel) > 0
    height, width = changed.shape
    centre = changed[height // 4 : height - height // 4, width // 4 : width - width // 4]
    centre_change = float(centre.mean())
    centre_factor = min(1.0, centre_change / params.full_centre_change)
    evidence = {}
    blob_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    for name, (rows, cols) in _corner_slices(height, width, params.corner_size).items():
        edges = static_edges[rows, cols].astype(np.uint8)
        if not edges.any():
            evidence[name] = 0.0
            continue
        _, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(edges, blob_kernel), connectivity=8)
        largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, w, h = (int(v) for v in stats[largest, :4])
        if w * h > params.max_logo_area * edges.size or _runs_on(static_edges, rows, cols, (x, y, w, h),
                                                                 name, params.run_on_px):
            evidence[name] = 0.0
            continue
        in_cluster = int(edges[labels == largest].sum())
        rest = np.ones(edges.shape, np.bool_)
        rest[max(0, y - 4) : y + h + 4, max(0, x - 4) : x + w + 4] = False
        rest_change = float(changed[rows, cols][rest].mean()) if rest.any() else 0.0
        evidence[name] = (min(1.0, in_cluster / edges.size / params.full_edge_density)
                          * (in_cluster / int(edges.sum()))
                          * min(1.0, rest_change / params.full_corner_change) * centre_factor)
    return evidence, centre_change


def _runs_on(static_edges: np.ndarray, rows: slice, cols: slice, cluster: tuple[int, int, int, int],
             corner: str, reach: int) -> bool:
    """Whether static edges go on across the corner's inner side on the rows of the cluster
    (x, y, w, h in the corner's pixels), within `reach` px or the cluster's height, whichever is
    more (a word gap of a line of text is about its height)."""
    _, y, _, h = cluster
    band, wide = slice(rows.start + y, rows.start + y + h), max(reach, h)
    if corner.endswith("left"):
        across = static_edges[band, cols.stop : cols.stop + wide]
    else:
        across = static_edges[band, max(0, cols.start - wide) : cols.start]
    return bool(across.any())


def watermark_signals(keyframes: list[np.ndarray], text: TextSignals | None = None,
                      params: WatermarkParams = WatermarkParams(),
                      active: tuple[float, float, float, float] | None = None) -> WatermarkSignals:
    """Combine static-edge evidence and persistent corner text (noisy-or per corner)."""
    edges, centre_change = static_edge_evidence(keyframes, params, active)
    corner_text = text.corner_text if text is not None else None
    combined = {}
    for name in CORNERS:
        from_text = params.text_evidence if name == corner_text else 0.0
        combined[name] = 1.0 - (1.0 - edges[name]) * (1.0 - from_text)
    best = max(CORNERS, key=lambda c: combined[c])
    score = combined[best]
    return WatermarkSignals(
        watermark_score=score,
        corner=best if score >= params.corner_min_score else None,
        static_edge_corners=edges,
        corner_text=corner_text,
        centre_change=centre_change,
        params=params,
    )
