"""Shot boundaries: PySceneDetect's detectors (or TransNetV2), fed frame by frame from our decode."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scenedetect import (
    AdaptiveDetector,
    ContentDetector,
    FrameTimecode,
    HashDetector,
    HistogramDetector,
)

DETECTORS = {
    "adaptive": AdaptiveDetector,
    "content": ContentDetector,
    "hash": HashDetector,
    "histogram": HistogramDetector,
}


@dataclass
class ShotDetector:
    """Wraps one PySceneDetect detector; `cuts` are first-frame indices of new shots."""

    name: str = "adaptive"
    params: dict[str, Any] = field(default_factory=dict)
    fps: float = 25.0
    cuts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._last = 0
        self._transnet = None
        if self.name == "transnetv2":
            from media.transnet import TransNetV2Detector  # torch: only when asked for

            self._transnet = TransNetV2Detector(**self.params)
            return
        if self.name not in DETECTORS:
            known = ", ".join([*sorted(DETECTORS), "transnetv2"])
            raise ValueError(f"unknown shot detector {self.name!r}; use one of {known}")
        self._detector = DETECTORS[self.name](**self.params)

    def feed(self, index: int, bgr: np.ndarray) -> list[int]:
        """Process one frame; return the cuts this frame confirmed (may lag a few frames)."""
        self._last = index
        if self._transnet is not None:
            return self._transnet.feed(index, bgr)
        found = self._detector.process_frame(FrameTimecode(index, fps=self.fps), bgr)
        new = [tc.frame_num for tc in found if tc.frame_num > 0]
        self.cuts.extend(new)
        return new

    def finish(self) -> list[int]:
        if self._transnet is not None:
            new = self._transnet.finish()
            self.cuts.extend(new)
            return new
        found = self._detector.post_process(FrameTimecode(self._last, fps=self.fps))
        new = [tc.frame_num for tc in found if 0 < tc.frame_num <= self._last]
        self.cuts.extend(new)
        return new
