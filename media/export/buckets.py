"""Stage buckets: aspect ratio, output resolution and frame count of a training sample.

A stage (256p, 480p, 720p, …) exports each clip at one of a few named aspect ratios, centre
cropped to that aspect and scaled so its short side is the stage's, with both sides a
multiple of what the video VAE wants (16 by default), and with a frame count the VAE's
temporal compression accepts (4k+1 for Wan, HunyuanVideo and Open-Sora; 8k+1 for some).
Everything here is pure arithmetic on display sizes (rotation already applied) and seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Named aspect ratios (width / height). Landscape and portrait come in pairs.
ASPECT_BUCKETS: Mapping[str, float] = {
    "1:1": 1.0,
    "5:4": 5 / 4,
    "4:5": 4 / 5,
    "4:3": 4 / 3,
    "3:4": 3 / 4,
    "3:2": 3 / 2,
    "2:3": 2 / 3,
    "16:9": 16 / 9,
    "9:16": 9 / 16,
    "2:1": 2 / 1,
    "1:2": 1 / 2,
    "21:9": 21 / 9,
    "9:21": 9 / 21,
}

FRAME_RULES = ("4k+1", "8k+1", "any")


@dataclass(frozen=True)
class BucketParams:
    """One stage's export geometry and timing; mirrors the stage block of the policy."""

    short_side: int = 480  # output short side in pixels (rounded down to `multiple`)
    fps: float = 24.0  # constant output frame rate
    frame_rule: str = "4k+1"  # "4k+1", "8k+1" or "any"
    min_frames: int = 17  # a clip with fewer output frames is not exported at this stage
    max_frames: int = 129  # longer clips are cut to the largest allowed count below this
    multiple: int = 16  # both output sides are multiples of this (VAE stride)
    buckets: tuple[str, ...] = tuple(ASPECT_BUCKETS)  # aspect buckets this stage may use
    crf: int = 18  # x264 quality of the exported sample
    preset: str = "medium"  # x264 speed/size trade-off


@dataclass(frozen=True)
class StagePlan:
    """How one clip is exported at one stage, or why it is not (`skip` is a reason code)."""

    skip: str | None
    bucket: str = ""
    width: int = 0
    height: int = 0
    crop: tuple[int, int, int, int] | None = None  # x, y, w, h in source display pixels
    frames: int = 0
    fps: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


def aspect_bucket(width: int, height: int, buckets: Sequence[str] | None = None) -> str:
    """Name of the bucket nearest to width/height in log-ratio (ties go to the first listed)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"aspect_bucket: size must be positive, got {width}x{height}")
    names = list(buckets) if buckets is not None else list(ASPECT_BUCKETS)
    unknown = [n for n in names if n not in ASPECT_BUCKETS]
    if unknown or not names:
        raise ValueError(f"aspect_bucket: unknown buckets {unknown}; known: {list(ASPECT_BUCKETS)}")
    ratio = math.log(width / height)
    return min(names, key=lambda n: abs(ratio - math.log(ASPECT_BUCKETS[n])))


def stage_size(width: int, height: int, short_side: int, bucket: str,
               multiple: int = 16) -> tuple[int, int] | None:
    """Output (width, height) for a source of display size `width`x`height` at this stage.

    The short side is `short_side` rounded down to `multiple`; the long side is the nearest
    multiple to the bucket's aspect that still fits inside the centre crop, so the picture
    is never upscaled. Returns None when the source's crop to the bucket aspect is smaller
    than the stage (the clip is not eligible for this stage).
    """
    if multiple < 2 or multiple % 2:
        raise ValueError(f"stage_size: multiple must be even and >= 2, got {multiple}")
    aspect = ASPECT_BUCKETS[bucket]
    crop_w, crop_h = _crop_to_aspect(width, height, aspect)
    short = short_side // multiple * multiple
    crop_short, crop_long = (crop_h, crop_w) if aspect >= 1 else (crop_w, crop_h)
    if short <= 0 or crop_short < short:
        return None
    long_exact = short * max(aspect, 1 / aspect)
    long = max(round(long_exact / multiple), 1) * multiple
    if long > crop_long:  # rounding up would upscale a source that only just fits
        long -= multiple
    if long < short:
        return None
    return (long, short) if aspect >= 1 else (short, long)


def crop_box(width: int, height: int, out_width: int, out_height: int) -> tuple[int, int, int, int]:
    """Centre crop (x, y, w, h) of a `width`x`height` picture at out_width/out_height's aspect.

    Offsets and sizes are even (chroma-aligned for 4:2:0), so the crop may differ from the
    exact aspect by at most two pixels per side.
    """
    crop_w, crop_h = _crop_to_aspect(width, height, out_width / out_height)
    crop_w, crop_h = max(crop_w // 2 * 2, 2), max(crop_h // 2 * 2, 2)
    x, y = (width - crop_w) // 4 * 2, (height - crop_h) // 4 * 2
    return x, y, min(crop_w, width - x), min(crop_h, height - y)


def frames_available(duration_s: float, fps_out: float) -> int:
    """Output frames whose timestamps k/fps_out fall inside a clip of `duration_s` seconds."""
    if duration_s is None or duration_s <= 0 or fps_out <= 0:
        return 0
    # A hair of tolerance: 2.0 s at 24 fps is 48 frames even when 2.0 was summed from floats.
    return int(math.floor(duration_s * fps_out + 1e-6))


def frame_bucket(duration_s: float | None, fps_out: float, rule: str = "4k+1",
                 max_frames: int | None = None, min_frames: int = 1) -> int:
    """Largest frame count <= the clip's frames at `fps_out` (and <= max_frames) that fits `rule`.

    Rules: "4k+1" (1, 5, …, 17, 33, 49, …, 81, …, 121, 129), "8k+1" (1, 9, 17, 25, …) or "any".
    Returns 0 when that count is below `min_frames` (the clip is too short for the stage).
    """
    if rule not in FRAME_RULES:
        raise ValueError(f"frame_bucket: rule {rule!r} is not one of {FRAME_RULES}")
    available = frames_available(duration_s or 0.0, fps_out)
    if max_frames is not None:
        available = min(available, max_frames)
    if available < 1:
        return 0
    step = {"4k+1": 4, "8k+1": 8, "any": 1}[rule]
    count = (available - 1) // step * step + 1
    return count if count >= max(min_frames, 1) else 0


def plan_stage(width: int, height: int, duration_s: float | None, params: BucketParams) -> StagePlan:
    """Bucket, output size, crop and frame count of one clip (display size) at one stage.

    Skip reasons: "too_small" (the crop to the bucket's aspect is below the stage's short
    side) and "too_short" (fewer than `params.min_frames` frames at `params.fps`).
    """
    bucket = aspect_bucket(width, height, params.buckets)
    size = stage_size(width, height, params.short_side, bucket, params.multiple)
    if size is None:
        return StagePlan(skip="too_small", bucket=bucket)
    frames = frame_bucket(duration_s, params.fps, params.frame_rule, params.max_frames, params.min_frames)
    if frames == 0:
        return StagePlan(skip="too_short", bucket=bucket, width=size[0], height=size[1])
    return StagePlan(skip=None, bucket=bucket, width=size[0], height=size[1],
                     crop=crop_box(width, height, *size), frames=frames, fps=params.fps)


def _crop_to_aspect(width: int, height: int, aspect: float) -> tuple[int, int]:
    """Largest centred (w, h) inside width x height with w/h == aspect (floored to pixels)."""
    if width / height > aspect:
        return int(height * aspect + 1e-9), height
    return width, int(width / aspect + 1e-9)
