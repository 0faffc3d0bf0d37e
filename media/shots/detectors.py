"""Shot boundaries: PySceneDetect's detectors (or TransNetV2), fed frame by frame from our decode,
behind the guards of media/shots/guards.py (repeated frames, flashes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from scenedetect import (
    AdaptiveDetector,
    ContentDetector,
    FrameTimecode,
    HashDetector,
    HistogramDetector,
)

from media.shots.guards import FlashGuard, RepeatedFrames


class _ContentScoreInTwoCalls:
    """ContentDetector's frame score, same value, from one HSV image instead of three planes.

    PySceneDetect splits the HSV frame and, per plane, widens both planes to int32 and sums
    |a - b| in NumPy: on analysis-size frames that costs more than the conversion itself.
    `cv2.absdiff` + `cv2.mean` give the three per-plane means of |a - b| in two calls. Edge
    scores (a non-zero edge weight) and stats files take PySceneDetect's own path.
    """

    _weights: ContentDetector.Components
    stats_manager: Any
    _last_hsv: np.ndarray | None = None

    def _calculate_frame_score(self, timecode: FrameTimecode, frame_img: np.ndarray) -> float:
        if self._weights.delta_edges > 0.0 or self.stats_manager is not None:
            return super()._calculate_frame_score(timecode, frame_img)  # type: ignore[misc]
        hsv = cv2.cvtColor(frame_img, cv2.COLOR_BGR2HSV)
        last, self._last_hsv = self._last_hsv, hsv
        if last is None:
            return 0.0
        hue, sat, lum, _ = cv2.mean(cv2.absdiff(hsv, last))
        weights = self._weights
        return (hue * weights.delta_hue + sat * weights.delta_sat + lum * weights.delta_lum) / sum(
            abs(w) for w in weights)


class FastAdaptiveDetector(_ContentScoreInTwoCalls, AdaptiveDetector):
    """PySceneDetect's AdaptiveDetector (content score computed faster), with a second trigger.

    AdaptiveDetector cuts where a frame's content score is `adaptive_threshold` (3) times the
    mean of its window; in fast footage (a bike race) the window's own scores are about 15, so a
    cut scoring 40-47 reads 2.2-3.0 and is missed. A frame scoring at least `strong_content_val`
    at `strong_threshold` times its window is also a cut (None: off). On the calibration builds
    of bench/shots.py no frame but a flash (which the flash guard drops) scores 25 at 1.5 times
    its window: the defaults sit in the middle of that free range.
    """

    def __init__(self, *args: Any, strong_content_val: float | None = 30.0, strong_threshold: float = 2.0,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strong_content_val = strong_content_val
        self.strong_threshold = strong_threshold

    def process_frame(self, timecode: FrameTimecode, frame_img: np.ndarray) -> list[FrameTimecode]:
        found = super().process_frame(timecode, frame_img)
        # PySceneDetect 0.7.2 keeps the last 2 * window_width + 1 (timecode, score) pairs in
        # `_buffer` and its last cut in `_last_cut` (tests/test_shots_accuracy.py
        # test_a_cut_inside_fast_footage_is_found fails without them).
        window = self.window_width
        if found or self.strong_content_val is None or len(self._buffer) < 2 * window + 1:
            return found
        target, score = self._buffer[window]
        around = sum(s for i, (_, s) in enumerate(self._buffer) if i != window) / (2 * window)
        if (score >= self.strong_content_val and score >= self.strong_threshold * around
                and self._last_cut is not None and target - self._last_cut >= self.min_scene_len):
            self._last_cut = target
            return [target]
        return found


class FastContentDetector(_ContentScoreInTwoCalls, ContentDetector):
    """PySceneDetect's ContentDetector; only its content score is computed faster."""


DETECTORS = {
    "adaptive": FastAdaptiveDetector,
    "content": FastContentDetector,
    "hash": HashDetector,
    "histogram": HistogramDetector,
}
# Where we differ from PySceneDetect's own defaults; `detector_params` (policy) override these.
# min_content_val 15 -> 10: a cut inside one film (same light and colours, another framing)
# often changes the content score by 10-15; bench/shots.py, calibration half (docs/benchmarks.md).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {"adaptive": {"min_content_val": 10.0}}


@dataclass
class ShotDetector:
    """Wraps one PySceneDetect detector; `cuts` are first-frame indices of new shots.

    `repeat_below`: frames closer than this (mean |difference|, 0..255) to the last new one
    are repeats and skip the detector (None: every frame is fed). `flash_frames`: a cut the
    picture comes back from within this many frames is a flash, not a cut (0: off). Neither
    applies to TransNetV2, which sees its own windows of frames.
    """

    name: str = "adaptive"
    params: dict[str, Any] = field(default_factory=dict)
    fps: float = 25.0
    cuts: list[int] = field(default_factory=list)
    repeat_below: float | None = None
    flash_frames: int = 0

    def __post_init__(self) -> None:
        self._last = 0
        self._repeats = RepeatedFrames(self.repeat_below) if self.repeat_below is not None else None
        self._flashes = FlashGuard(self.flash_frames) if self.flash_frames > 0 else None
        self._rate = FrameTimecode(0, fps=float(self.fps))
        self._transnet = None
        if self.name == "transnetv2":
            from media.shots.transnet import TransNetV2Detector  # torch: only when asked for

            self._transnet = TransNetV2Detector(**self.params)
            return
        if self.name not in DETECTORS:
            known = ", ".join([*sorted(DETECTORS), "transnetv2"])
            raise ValueError(f"unknown shot detector {self.name!r}; use one of {known}")
        self._detector = DETECTORS[self.name](**{**DEFAULT_PARAMS.get(self.name, {}), **self.params})

    def feed(self, index: int, bgr: np.ndarray) -> list[int]:
        """Process one frame; return the cuts this frame confirmed (may lag a few frames)."""
        self._last = index
        if self._transnet is not None:
            return self._transnet.feed(index, bgr)
        new: list[int] = []
        if self._repeats is None or not self._repeats.is_repeat(bgr):
            # A timecode as the rate: PySceneDetect then reuses its Fraction instead of rebuilding
            # one from the float on every frame (a third of the detector's own Python time).
            found = self._detector.process_frame(FrameTimecode(index, fps=self._rate), bgr)
            new = [tc.frame_num for tc in found if tc.frame_num > 0]
        if self._flashes is not None:
            new = self._flashes.feed(index, bgr, new)
        self.cuts.extend(new)
        return new

    def finish(self) -> list[int]:
        if self._transnet is not None:
            new = self._transnet.finish()
            self.cuts.extend(new)
            return new
        found = self._detector.post_process(FrameTimecode(self._last, fps=self._rate))
        new = [tc.frame_num for tc in found if 0 < tc.frame_num <= self._last]
        if self._flashes is not None:
            new = self._flashes.finish(new)
        self.cuts.extend(new)
        return new

    @property
    def flashes(self) -> list[int]:
        """Frames where the detector fired at a flash (dropped as cuts)."""
        return list(self._flashes.dropped) if self._flashes is not None else []
