"""policy.raw_pool: prefilters for raw videos."""

from __future__ import annotations

from pydantic import Field, model_validator

from media.decode.probe import VideoProbe
from quality_checks.policy.base import Strict


class RawPoolPolicy(Strict):
    """Prefilters for raw videos; a video outside them is kept as a rejected row."""

    min_duration_s: float = Field(1.0, ge=0)
    max_duration_s: float = Field(3 * 3600, gt=0)
    min_fps: float = Field(8.0, ge=0)
    max_fps: float = Field(121.0, gt=0)
    min_bits_per_pixel: float = Field(0.005, ge=0)
    min_short_side: int = Field(144, ge=0)
    min_aspect_ratio: float = Field(0.3, gt=0)
    max_aspect_ratio: float = Field(3.6, gt=0)
    max_reject_rate: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _ranges(self) -> RawPoolPolicy:
        for low, high in (("min_duration_s", "max_duration_s"), ("min_fps", "max_fps"),
                          ("min_aspect_ratio", "max_aspect_ratio")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} ({getattr(self, low)}) is above {high} "
                                 f"({getattr(self, high)})")
        return self

    def reject_reason(self, probe: VideoProbe) -> tuple[str, str] | None:
        """(reason code, detail naming the policy field) for a readable video, or None."""
        short = min(probe.display_width, probe.display_height)
        aspect = probe.display_width / probe.display_height if probe.display_height else 0.0
        rules = (
            (probe.duration_s < self.min_duration_s, "too_short",
             f"{probe.duration_s:.2f} s < policy.raw_pool.min_duration_s {self.min_duration_s}"),
            (probe.duration_s > self.max_duration_s, "too_long",
             f"{probe.duration_s:.1f} s > policy.raw_pool.max_duration_s {self.max_duration_s}"),
            (not self.min_fps <= probe.fps <= self.max_fps, "fps_out_of_range",
             f"{probe.fps:.2f} fps outside policy.raw_pool.min_fps..max_fps "
             f"[{self.min_fps}, {self.max_fps}]"),
            (short < self.min_short_side, "too_small",
             f"short side {short} px < policy.raw_pool.min_short_side {self.min_short_side}"),
            (not self.min_aspect_ratio <= aspect <= self.max_aspect_ratio, "aspect_out_of_range",
             f"aspect {aspect:.2f} outside policy.raw_pool.min_aspect_ratio..max_aspect_ratio "
             f"[{self.min_aspect_ratio}, {self.max_aspect_ratio}]"),
            (probe.bits_per_pixel < self.min_bits_per_pixel, "low_bpp",
             f"{probe.bits_per_pixel:.4f} bits/pixel < policy.raw_pool.min_bits_per_pixel "
             f"{self.min_bits_per_pixel}"),
        )
        for failed, code, detail in rules:
            if failed:
                return code, detail
        return None
