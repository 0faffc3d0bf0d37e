"""Per-frame statistics from the analysis stream: exposure, sharpness, xGen motion and camera motion.

Camera-motion columns (`media.shots.camera_motion.COLUMNS`) are NaN on the first frame and after a
size change, where no previous frame of the same size exists; see that module for units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from media.shots.camera_motion import COLUMNS as CAMERA_COLUMNS
from media.shots.camera_motion import FlowParams, FrameMotion, GlobalMotion

_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))


@dataclass
class FrameStats:
    """Columns of per-frame values, appended as frames arrive (index = frame number)."""

    seconds: list[float] = field(default_factory=list)
    luma_mean: list[float] = field(default_factory=list)
    luma_std: list[float] = field(default_factory=list)
    sharpness: list[float] = field(default_factory=list)
    motion: list[float] = field(default_factory=list)
    camera: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CAMERA_COLUMNS})
    _previous: np.ndarray | None = None
    motion_threshold: int = 20
    flow: FlowParams = field(default_factory=FlowParams)
    _global_motion: GlobalMotion | None = None

    def add(self, seconds: float, luma: np.ndarray) -> None:
        self.seconds.append(seconds)
        mean, std = cv2.meanStdDev(luma)
        self.luma_mean.append(float(mean[0, 0]))
        self.luma_std.append(float(std[0, 0]))
        self.sharpness.append(laplacian_variance(luma))
        self.motion.append(motion_score(self._previous, luma, self.motion_threshold))
        self._previous = luma
        if self._global_motion is None:
            self._global_motion = GlobalMotion(self.flow)
        self._append_camera(self._global_motion.add(luma))

    def _append_camera(self, settled: list[FrameMotion]) -> None:
        for motion in settled:
            for name, value in motion.as_columns().items():
                self.camera[name].append(value)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every column as float64, one value per frame added (frames may be added after)."""
        if self._global_motion is not None:
            self._append_camera(self._global_motion.finish())
        columns = {name: np.asarray(getattr(self, name), dtype=np.float64)
                   for name in ("seconds", "luma_mean", "luma_std", "sharpness", "motion")}
        return columns | {name: np.asarray(values, dtype=np.float64) for name, values in self.camera.items()}


def laplacian_variance(luma: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian: the usual sharpness (focus) measure."""
    laplacian = cv2.Laplacian(luma, cv2.CV_16S)
    # The same figure as cv2.meanStdDev's, whose 16-bit path costs as much as the filter.
    mean = cv2.sumElems(laplacian)[0] / laplacian.size
    return max(0.0, cv2.norm(laplacian, cv2.NORM_L2SQR) / laplacian.size - mean * mean)


def motion_score(previous: np.ndarray | None, current: np.ndarray, threshold: int = 20) -> float:
    """xGen-VideoSyn-1 motion: share of pixels in the cleaned frame-difference mask (0..1).

    Difference → threshold → blur → re-threshold → morphological opening, so sensor noise
    and compression flicker do not count as motion. The first frame of a video scores 0.
    """
    if previous is None or previous.shape != current.shape:
        return 0.0
    diff = cv2.absdiff(previous, current)
    _, mask = cv2.threshold(diff, threshold, 255, cv2.THRESH_BINARY)
    if not cv2.hasNonZero(mask):  # still frames (half of a screen recording's): nothing to clean
        return 0.0
    mask = cv2.GaussianBlur(mask, (5, 5), 0)
    _, mask = cv2.threshold(mask, 127, 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL)
    return cv2.countNonZero(mask) / mask.size
