"""Keyframes at captioning size, sampled during the one decode and chosen per clip afterwards.

Clip spans are only final after the whole video is seen, so the decode keeps a bounded
sample of frames (JPEG in memory, a few per second); when the sample grows past its cap it
keeps every other frame and halves its rate, so memory stays flat for any video length.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import cv2
import numpy as np

from media.shots.median import median

ROLES = ("start", "middle", "motion_peak", "end")


@dataclass
class KeyframeSampler:
    every: int = 1
    cap: int = 600
    quality: int = 90
    frames: dict[int, bytes] = field(default_factory=dict)

    def wants(self, index: int) -> bool:
        return index % self.every == 0

    def add(self, index: int, jpeg: bytes) -> None:
        self.frames[index] = jpeg
        if len(self.frames) > self.cap:
            self.every *= 2
            self.frames = {i: b for i, b in self.frames.items() if i % self.every == 0}

    def nearest(self, target: int, start: int, end: int) -> int | None:
        """The sampled frame inside [start, end) closest to `target`."""
        indices = sorted(i for i in self.frames if start <= i < end)
        if not indices:
            return None
        at = bisect.bisect_left(indices, target)
        near = indices[max(0, at - 1) : at + 1]
        return min(near, key=lambda i: abs(i - target))


def decode_keyframe(data: bytes) -> np.ndarray:
    """A stored keyframe JPEG as RGB uint8; ValueError when the bytes are not a JPEG."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("a keyframe is not a decodable JPEG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def keyframe_targets(start: int, end: int, sharpness: np.ndarray, motion: np.ndarray,
                     fps: float) -> dict[str, int]:
    """Wanted frame per role: a sharp start, the middle, the motion peak, the end."""
    head = sharpness[start : min(end, start + max(2, int(fps)))]
    sharp_enough = np.flatnonzero(head >= median(sharpness[start:end]))
    first_sharp = start + int(sharp_enough[0]) if len(sharp_enough) else start
    inner = motion[start + 1 : end] if end - start > 1 else motion[start:end]
    peak = start + 1 + int(np.argmax(inner)) if end - start > 1 else start
    return {"start": first_sharp, "middle": (start + end - 1) // 2, "motion_peak": peak,
            "end": end - 1}


def contact_sheet(rows: list[tuple[str, list[bytes | None]]], thumb_width: int = 192) -> bytes:
    """A PNG grid: one row per clip (label + one thumbnail per role)."""
    label_w, pad = 150, 4
    thumbs: list[list[np.ndarray | None]] = []
    height = 0
    made: dict[bytes, np.ndarray] = {}  # a frame that is several roles' keyframe: decoded once
    for _, images in rows:
        decoded = []
        for data in images:
            if data is None:
                decoded.append(None)
                continue
            if data not in made:
                img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                scale = thumb_width / img.shape[1]
                made[data] = cv2.resize(img, (thumb_width, max(1, int(img.shape[0] * scale))),
                                        interpolation=cv2.INTER_AREA)
            img = made[data]
            height = max(height, img.shape[0])
            decoded.append(img)
        thumbs.append(decoded)
    height = max(height, 24)
    cols = len(ROLES)
    header = 22
    sheet = np.full((header + len(rows) * (height + pad) + pad,
                     label_w + cols * (thumb_width + pad) + pad, 3), 32, np.uint8)
    for c, role in enumerate(ROLES):
        cv2.putText(sheet, role, (label_w + c * (thumb_width + pad) + 4, 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (220, 220, 220), 1, cv2.LINE_AA)
    for r, ((label, _), images) in enumerate(zip(rows, thumbs, strict=True)):
        top = header + r * (height + pad) + pad
        for line, text in enumerate(label.split("\n")):
            cv2.putText(sheet, text, (6, top + 16 + 16 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (230, 230, 230), 1, cv2.LINE_AA)
        for c, img in enumerate(images):
            if img is not None:
                left = label_w + c * (thumb_width + pad)
                sheet[top : top + img.shape[0], left : left + img.shape[1]] = img
    ok, png = cv2.imencode(".png", sheet)
    return png.tobytes() if ok else b""
