"""Per-frame statistics from the analysis stream: exposure, sharpness and xGen motion."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))


@dataclass
class FrameStats:
    """Columns of per-frame values, appended as frames arrive (index = frame number)."""

    seconds: list[float] = field(default_factory=list)
    luma_mean: list[float] = field(default_factory=list)
    luma_std: list[float] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)
    motion: list[float] = field(default_factory=list)
    _previous: np.ndarray | None = None
    motion_threshold: int = 20

    def add(self, seconds: float, luma: np.ndarray) -> None:
        self.seconds.append(seconds)
        mean, std = cv2.meanStdDev(luma)
        self.luma_mean.append(float(mean[0, 0]))
        self.luma_std.append(float(std[0, 0]))
        self.sharpness.append(float(cv2.meanStdDev(cv2.Laplacian(luma, cv2.CV_16S))[1][0, 0] ** 2))
        self.motion.append(motion_score(self._previous, luma, self.motion_threshold))
        self._previous = luma

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name), dtype=np.float64)
                for name in ("seconds", "luma_mean", "luma_std", "sharpness", "motion")}


def motion_score(previous: np.ndarray | None, current: np.ndarray, threshold: int = 20) -> float:
    """xGen-VideoSyn-1 motion: share of pixels in the cleaned frame-difference mask (0..1).

    Difference → threshold → blur → re-threshold → morphological opening, so sensor noise
    and compression flicker do not count as motion. The first frame of a video scores 0.
    """
    if previous is None or previous.shape != current.shape:
        return 0.0
    diff = cv2.absdiff(previous, current)
    _, mask = cv2.threshold(diff, threshold, 255, cv2.THRESH_BINARY)
    mask = cv2.GaussianBlur(mask, (5, 5), 0)
    _, mask = cv2.threshold(mask, 127, 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL)
    return float(np.count_nonzero(mask)) / mask.size
