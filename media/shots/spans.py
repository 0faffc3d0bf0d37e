"""From shot boundaries to clip spans: stitch, drop, trim, re-clip at motion spikes, split.

Spans are half-open frame ranges `[start, end)` over the decoded frame sequence; seconds
come from the frames' own timestamps, so variable frame rate stays exact.

A shot of at least `min_clip_s` always keeps a clip: trimming takes fewer frames where the
full trim would leave it short, and re-clipping at a motion spike happens only where the
part kept is long enough. A clip after a gradual transition starts at its first clean frame
(the transition's frames are already left out; `trim_after_transition` adds a margin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from media.shots.median import median

# Seconds a clip may fall short of `min_clip_s`: Matroska and WebM round timestamps to the
# millisecond, so exactly two seconds of frames can read as 1.999 s.
_ROUNDING_S = 1e-3


@dataclass(frozen=True)
class SpanParams:
    min_clip_s: float = 2.0
    max_clip_s: float = 16.0
    trim_frames: int = 2
    trim_after_transition: int = 0  # frames dropped after a dissolve or fade (its end is clean)
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


def clip_shots(cuts: list[int], frame_count: int, motion: np.ndarray, params: SpanParams,
               transitions: list[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """The shots clips are cut from: `shot_spans`, stitched where `params` says so."""
    shots = shot_spans(cuts, frame_count, list(transitions))
    if params.stitch_below_motion is not None:
        shots = _stitch(shots, motion, params.stitch_below_motion)
    return shots


def shot_boundaries(shot: tuple[int, int], frame_count: int,
                    transitions: list[tuple[int, int]] = ()) -> tuple[str, str]:
    """What bounds a shot of `clip_shots`: its start is the video's start, the frame after a
    gradual transition or a cut; its end the video's end, a transition's first frame or a cut."""
    start, end = shot
    start_kind = ("video_start" if start == 0 else
                  "transition" if any(e == start for _, e in transitions) else "cut")
    end_kind = ("video_end" if end >= frame_count else
                "transition" if any(s == end for s, _ in transitions) else "cut")
    return start_kind, end_kind


def clip_spans(
    cuts: list[int], starts_s: np.ndarray, ends_s: np.ndarray, motion: np.ndarray,
    params: SpanParams, transitions: list[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """Final clip spans for one video. `starts_s`/`ends_s` are per-frame times in seconds."""
    shots = clip_shots(cuts, len(starts_s), motion, params, transitions)
    after = {e for _, e in transitions}
    clips: list[tuple[int, int]] = []
    for start, end in shots:
        lead = params.trim_after_transition if start in after else params.trim_frames
        start, end = _trimmed(start, end, lead, params.trim_frames, starts_s, ends_s, params.min_clip_s)
        if end - start < 2:
            continue
        start, end = _reclip_at_spikes(start, end, motion, params, starts_s, ends_s)
        for a, b in _split_long(start, end, starts_s, ends_s, params.max_clip_s):
            if lasts(a, b, starts_s, ends_s, params.min_clip_s):
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


def _trimmed(start: int, end: int, lead: int, tail: int, starts_s: np.ndarray, ends_s: np.ndarray,
             min_s: float) -> tuple[int, int]:
    """`[start + lead, end - tail)`, trimming less (the larger side first) where the full trim
    would take a shot of `min_s` below it."""
    if lasts(start, end, starts_s, ends_s, min_s):
        while lead + tail > 0 and not lasts(start + lead, end - tail, starts_s, ends_s, min_s):
            lead, tail = (lead - 1, tail) if lead >= tail else (lead, tail - 1)
    return start + lead, end - tail


def lasts(start: int, end: int, starts_s: np.ndarray, ends_s: np.ndarray, min_s: float) -> bool:
    """Whether frames `[start, end)` last `min_s` seconds (to the millisecond)."""
    return end > start and ends_s[end - 1] - starts_s[start] >= min_s - _ROUNDING_S


def _reclip_at_spikes(start: int, end: int, motion: np.ndarray, p: SpanParams,
                      starts_s: np.ndarray, ends_s: np.ndarray) -> tuple[int, int]:
    """xGen-VideoSyn-1: split at a motion spike and keep the longer side, until none is left.

    Two spikes within `spike_window` frames are a flash (the picture changes and comes back),
    not a cut the detector missed: neither splits. When the strongest spike's longer side would
    be shorter than `min_clip_s` (the shot would be lost), the clip stays as it is."""
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
        spikes = [(d, i) for d, i in spikes if not any(0 < abs(i - j) <= p.spike_window for _, j in spikes)]
        if not spikes:
            break
        at = start + max(spikes)[1]
        a, b = (start, at) if at - start >= end - (at + 1) else (at + 1, end)
        if not lasts(a, b, starts_s, ends_s, p.min_clip_s):
            break
        start, end = a, b
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
