"""Single-pass analysis of one video: shots, per-frame statistics, clips and keyframes.

`analyze_video_decoding_once` decodes the file exactly once; every consumer (shot detector,
frame statistics, keyframe sampler) reads the same frame stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from media.camera_motion import FlowParams
from media.clip_spans import SpanParams, clip_spans
from media.dissolves import DissolveDetector
from media.frame_stats import FrameStats
from media.frames import decode_analysis_frames, frame_to_rgb, nominal_fps
from media.keyframes import ROLES, KeyframeSampler, contact_sheet, keyframe_targets
from media.shots import ShotDetector

# analysis-2: camera-motion columns. analysis-3: camera flow every `camera_frame_step` frames,
# shrinking by halvings (values within one grey level of before), dissolve bounds.
ANALYSIS_VERSION = "analysis-3"
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
    # Camera flow runs between frames this far apart; the frames between share its motion.
    # 1 measures every frame (shake faster than two frames reads in full, at twice the cost).
    camera_frame_step: int = 2
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


@contextlib.contextmanager
def _opencv_on_one_thread() -> Iterator[None]:
    """OpenCV's thread pool costs more CPU than it saves on analysis-size frames (a few
    hundred pixels a side), and the decode thread already keeps a second core busy."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


class _SideThread:
    """Calls `work(*args)` for every `put(*args)`, in order, on one background thread.

    Items cross in batches of `batch`. Leaving the `with` block waits for the backlog and
    re-raises the first error `work` raised (later items are skipped once one failed).
    """

    def __init__(self, work: Callable[..., None], batch: int = 8, backlog: int = 2) -> None:
        self._items: queue.Queue = queue.Queue(maxsize=backlog)
        self._batch = batch
        self._pending: list[tuple[Any, ...]] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name="analysis-side", daemon=True)

    def __enter__(self) -> _SideThread:
        self._thread.start()
        return self

    def put(self, *args: Any) -> None:
        if self._error is not None:
            raise self._error
        self._pending.append(args)
        if len(self._pending) >= self._batch:
            self._items.put(self._pending)
            self._pending = []

    def _run(self, work: Callable[..., None]) -> None:
        while (batch := self._items.get()) is not None:
            for args in batch:
                if self._error is None:
                    try:
                        work(*args)
                    except BaseException as exc:  # raised in the caller's thread
                        self._error = exc

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if self._pending and kind is None:
            self._items.put(self._pending)
        self._items.put(None)
        self._thread.join()
        if kind is None and self._error is not None:
            raise self._error


def analyze_video_decoding_once(path: Path, params: AnalysisParams) -> VideoAnalysis:
    """Decode `path` once; return its shots, per-frame statistics, clips and keyframes."""
    with _opencv_on_one_thread():
        return _analyze(path, params)


def _analyze(path: Path, params: AnalysisParams) -> VideoAnalysis:
    rate = nominal_fps(path)
    detector = ShotDetector(params.detector, dict(params.detector_params), fps=rate)
    dissolves = DissolveDetector() if params.dissolves else None
    stats = FrameStats(motion_threshold=params.motion_threshold,
                       flow=FlowParams(frame_step=params.camera_frame_step))
    sampler = KeyframeSampler(every=max(1, round(rate / params.keyframes_per_second)))
    durations: list[float] = []
    count, width, height, rotation = 0, 0, 0, 0

    def keep_keyframe(index: int, source: av.VideoFrame) -> None:
        # `every` only grows (the sampler thins itself out), so the caller's earlier look at
        # it sends every frame the sampler still wants, and perhaps a few it no longer does.
        if sampler.wants(index):
            sampler.add(index, frame_to_rgb(source, params.keyframe_short_side, rotation))

    # Statistics, camera flow and keyframe encoding are mostly OpenCV pixel loops, which
    # release the GIL: on threads of their own they run beside the detectors' Python.
    # Keyframe items hold full decoded frames: small batches keep few of them in flight.
    with _SideThread(stats.add) as measure, _SideThread(keep_keyframe, batch=2) as keyframes:
        for frame in decode_analysis_frames(path, params.analysis_short_side):
            if count == 0:
                width, height = frame.source.width, frame.source.height
                rotation = int(round(frame.source.rotation or 0)) % 360
            count += 1
            measure.put(frame.seconds, frame.luma)
            if sampler.wants(frame.index):
                keyframes.put(frame.index, frame.source)
            detector.feed(frame.index, frame.bgr)
            if dissolves is not None:
                dissolves.feed(frame.index, frame.bgr)
            durations.append(frame.duration_s)
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
