"""From shot boundaries to clip spans: stitch, drop, trim, re-clip at motion spikes, split.

Spans are half-open frame ranges `[start, end)` over the decoded frame sequence; seconds
come from the frames' own timestamps, so variable frame rate stays exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from media.shots.median import median


@dataclass(frozen=True)
class SpanParams:
    min_clip_s: float = 2.0
    max_clip_s: float = 16.0
    trim_frames: int = 2
    spike_motion: float = 0.5  # a frame this busy ...
    spike_delta: float = 0.35  # ... and this far above its neighbours' median is a spike
    spike_window: int = 5
    stitch_below_motion: float | None = None  # stitch shots whose cut frame barely changes


def shot_spans(cuts: list[int], frame_count: int,
               transitions: list[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """Shots between cuts (first-frame indices) and gradual transitions (frames excluded)."""
    inside = [c for c in cuts if not any(s <= c < e for s, e in transitions)]
    edges = {*inside, *(s for s, _ in transitions), *(e for _, e in transitions)}
    bounds = [0, *sorted(c for c in edges if 0 < c < frame_count), frame_count]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False)
            if b > a and (a, b) not in transitions]


def clip_spans(
    cuts: list[int], starts_s: np.ndarray, ends_s: np.ndarray, motion: np.ndarray,
    params: SpanParams, transitions: list[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """Final clip spans for one video. `starts_s`/`ends_s` are per-frame times in seconds."""
    n = len(starts_s)
    shots = shot_spans(cuts, n, list(transitions))
    if params.stitch_below_motion is not None:
        shots = _stitch(shots, motion, params.stitch_below_motion)
    clips: list[tuple[int, int]] = []
    for start, end in shots:
        start, end = start + params.trim_frames, end - params.trim_frames
        if end - start < 2:
            continue
        start, end = _reclip_at_spikes(start, end, motion, params)
        for a, b in _split_long(start, end, starts_s, ends_s, params.max_clip_s):
            if ends_s[b - 1] - starts_s[a] >= params.min_clip_s:
                clips.append((a, b))
    return clips


def _stitch(shots: list[tuple[int, int]], motion: np.ndarray, below: float) -> list[tuple[int, int]]:
    merged = [shots[0]] if shots else []
    for start, end in shots[1:]:
        if motion[start] < below:  # the "cut" frame is nearly identical to the one before
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _reclip_at_spikes(start: int, end: int, motion: np.ndarray, p: SpanParams) -> tuple[int, int]:
    """xGen-VideoSyn-1: split at a motion spike and keep the longer side, until none is left."""
    while end - start > 2:
        segment = motion[start:end]
        spikes = []
        # Only a busy frame can be a spike: the median of its neighbours is needed for those alone.
        for i in (np.flatnonzero(segment[1:-1] >= p.spike_motion) + 1).tolist():
            lo, hi = max(0, i - p.spike_window), min(len(segment), i + p.spike_window + 1)
            neighbours = np.concatenate([segment[lo:i], segment[i + 1 : hi]])
            delta = segment[i] - median(neighbours)
            if delta >= p.spike_delta:
                spikes.append((delta, i))
        if not spikes:
            break
        _, at = max(spikes)
        cut = start + at
        start, end = (start, cut) if cut - start >= end - (cut + 1) else (cut + 1, end)
    return start, end


def _split_long(start: int, end: int, starts_s: np.ndarray, ends_s: np.ndarray,
                max_s: float) -> list[tuple[int, int]]:
    """Equal windows no longer than `max_s` (by time, so VFR windows stay within bounds)."""
    length = ends_s[end - 1] - starts_s[start]
    if length <= max_s:
        return [(start, end)]
    pieces = int(np.ceil(length / max_s))
    edges_s = starts_s[start] + length * np.arange(1, pieces) / pieces
    edges = [start, *(int(np.searchsorted(starts_s, e)) for e in edges_s), end]
    return [(a, b) for a, b in zip(edges, edges[1:], strict=False) if b > a]
