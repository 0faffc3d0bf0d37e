"""Single-pass analysis of one video: shots, per-frame statistics, clips and keyframes.

`analyze_video_decoding_once` decodes the file exactly once; every consumer (shot detector,
frame statistics, keyframe sampler) reads the same frame stream.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from media.clip_spans import SpanParams, clip_spans
from media.dissolves import DissolveDetector
from media.frame_stats import FrameStats
from media.frames import decode_analysis_frames, frame_to_rgb, nominal_fps
from media.keyframes import ROLES, KeyframeSampler, contact_sheet, keyframe_targets
from media.shots import ShotDetector

ANALYSIS_VERSION = "analysis-2"  # analysis-2: camera-motion columns
_NEAR = 2  # frames: a cut this close to a dissolve's ends is that dissolve


@dataclass(frozen=True)
class AnalysisParams:
    detector: str = "adaptive"
    detector_params: dict[str, Any] = field(default_factory=dict)
    dissolves: bool = True  # also find gradual transitions (see media/dissolves.py)
    cut_files: bool = False  # also re-encode every clip to its own file (a second decode)
    analysis_short_side: int = 144
    keyframe_short_side: int = 384
    keyframes_per_second: float = 4.0
    motion_threshold: int = 20
    spans: SpanParams = field(default_factory=SpanParams)

    def fingerprint(self) -> str:
        """Changes whenever any parameter (or this code's version) changes: the cache key."""
        payload = json.dumps({"v": ANALYSIS_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class Clip:
    start: int
    end: int  # exclusive
    start_s: float
    end_s: float
    keyframes: dict[str, int]  # role -> frame index (a sampled frame)


@dataclass
class VideoAnalysis:
    frame_count: int
    fps: float
    width: int  # display size (rotation applied)
    height: int
    rotation: int
    cuts: list[int]
    transitions: list[tuple[int, int]]  # gradual transitions, half-open frame spans
    stats: dict[str, np.ndarray]
    clips: list[Clip]
    keyframe_jpegs: dict[int, bytes]
    clip_files: dict[int, str] = field(default_factory=dict)  # clip start frame -> MP4 path

    def clip_stats(self, clip: Clip) -> dict[str, float]:
        part = {k: v[clip.start : clip.end] for k, v in self.stats.items()}
        return {
            "motion_mean": float(part["motion"][1:].mean()) if clip.end - clip.start > 1 else 0.0,
            "motion_max": float(part["motion"][1:].max()) if clip.end - clip.start > 1 else 0.0,
            "sharpness_mean": float(part["sharpness"].mean()),
            "luma_mean": float(part["luma_mean"].mean()),
            "luma_std_mean": float(part["luma_std"].mean()),
        }

    def contact_sheet_png(self, clip_labels: list[str]) -> bytes:
        rows = [(label, [self.keyframe_jpegs.get(clip.keyframes.get(role, -1)) for role in ROLES])
                for label, clip in zip(clip_labels, self.clips, strict=True)]
        return contact_sheet(rows)


def analyze_video_decoding_once(path: Path, params: AnalysisParams) -> VideoAnalysis:
    """Decode `path` once; return its shots, per-frame statistics, clips and keyframes."""
    rate = nominal_fps(path)
    detector = ShotDetector(params.detector, dict(params.detector_params), fps=rate)
    dissolves = DissolveDetector() if params.dissolves else None
    stats = FrameStats(motion_threshold=params.motion_threshold)
    sampler = KeyframeSampler(every=max(1, round(rate / params.keyframes_per_second)))
    durations: list[float] = []
    count, width, height, rotation = 0, 0, 0, 0
    for frame in decode_analysis_frames(path, params.analysis_short_side):
        if count == 0:
            width, height = frame.source.width, frame.source.height
            rotation = int(round(frame.source.rotation or 0)) % 360
        count += 1
        detector.feed(frame.index, frame.bgr)
        if dissolves is not None:
            dissolves.feed(frame.index, frame.bgr)
        stats.add(frame.seconds, frame.luma)
        durations.append(frame.duration_s)
        if sampler.wants(frame.index):
            sampler.add(frame.index, frame_to_rgb(frame.source, params.keyframe_short_side,
                                                  rotation))
    detector.finish()
    if count == 0:
        raise ValueError(f"{path}: no frame could be decoded")

    arrays = stats.arrays()
    starts = arrays["seconds"]
    ends = np.append(starts[1:], starts[-1] + durations[-1])
    transitions = dissolves.finish() if dissolves is not None else []
    # A detector firing at or inside a dissolve saw the same transition: the dissolve wins.
    cuts = sorted({c for c in detector.cuts
                   if not any(s - _NEAR <= c <= e + _NEAR for s, e in transitions)})
    spans = clip_spans(cuts, starts, ends, arrays["motion"], params.spans, transitions)
    fps = count / (ends[-1] - starts[0]) if ends[-1] > starts[0] else rate
    clips = []
    for start, end in spans:
        wanted = keyframe_targets(start, end, arrays["sharpness"], arrays["motion"], fps)
        chosen = {role: sampler.nearest(target, start, end) for role, target in wanted.items()}
        clips.append(Clip(start, end, float(starts[start]), float(ends[end - 1]),
                          {r: i for r, i in chosen.items() if i is not None}))
    used = {i for clip in clips for i in clip.keyframes.values()}
    turned = rotation % 180 == 90
    return VideoAnalysis(
        frame_count=count, fps=fps,
        width=height if turned else width,
        height=width if turned else height,
        rotation=rotation, cuts=cuts, transitions=transitions, stats=arrays, clips=clips,
        keyframe_jpegs={i: b for i, b in sampler.frames.items() if i in used},
    )
