"""The routing policy: every threshold as data, loaded from one YAML file.

Code holds defaults only where the policy names none; the field path in this file is what
check descriptions and reject reasons cite (e.g. `policy.raw_pool.min_fps`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from media.decode.probe import VideoProbe
from media.shots.analysis import AnalysisParams
from media.shots.spans import SpanParams
from quality_checks.policy.captioned import CaptionedPolicy
from quality_checks.policy.scored import ScoredPolicy
from quality_checks.policy.stages import StagesPolicy
from resources.config_files import content_hash, load_model

DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LicensePolicy(_Strict):
    allowed: list[str] = Field(default_factory=list)
    # Allowed, but a person confirms the terms fit before the clip trains anything
    # (share-alike, copyleft): review_status needs_review.
    review: list[str] = Field(default_factory=list)


class RawPoolPolicy(_Strict):
    """Prefilters for raw videos; a video outside them is kept as a rejected row."""

    min_duration_s: float = Field(1.0, ge=0)
    max_duration_s: float = Field(3 * 3600, gt=0)
    min_fps: float = Field(8.0, ge=0)
    max_fps: float = Field(121.0, gt=0)
    min_bits_per_pixel: float = Field(0.0, ge=0)
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


class ClipsPolicy(_Strict):
    """Shot detection and clip shaping; spans outside these bounds never become clips."""

    detector: Literal["adaptive", "content", "hash", "histogram", "transnetv2"] = "adaptive"
    detector_params: dict[str, Any] = Field(default_factory=dict)
    min_clip_s: float = Field(2.0, gt=0)
    max_clip_s: float = Field(16.0, gt=0)
    trim_frames: int = Field(2, ge=0)
    spike_motion: float = Field(0.5, ge=0, le=1)
    spike_delta: float = Field(0.35, ge=0, le=1)
    stitch_below_motion: float | None = Field(None, ge=0, le=1)
    max_clips_per_video: int = Field(500, ge=1)
    analysis_short_side: int = Field(144, ge=32)
    keyframe_short_side: int = Field(384, ge=64)
    camera_frame_step: int = Field(2, ge=1, le=4)
    cut_files: bool = False

    @model_validator(mode="after")
    def _ranges(self) -> ClipsPolicy:
        if self.min_clip_s > self.max_clip_s:
            raise ValueError(f"min_clip_s ({self.min_clip_s}) is above max_clip_s "
                             f"({self.max_clip_s})")
        return self

    def analysis_params(self) -> AnalysisParams:
        return AnalysisParams(
            detector=self.detector,
            detector_params=dict(self.detector_params),
            analysis_short_side=self.analysis_short_side,
            keyframe_short_side=self.keyframe_short_side,
            camera_frame_step=self.camera_frame_step,
            cut_files=self.cut_files,
            spans=SpanParams(min_clip_s=self.min_clip_s, max_clip_s=self.max_clip_s,
                             trim_frames=self.trim_frames, spike_motion=self.spike_motion,
                             spike_delta=self.spike_delta,
                             stitch_below_motion=self.stitch_below_motion),
        )


class Policy(_Strict):
    version: int = 1
    licenses: LicensePolicy = Field(default_factory=LicensePolicy)
    raw_pool: RawPoolPolicy = Field(default_factory=RawPoolPolicy)
    clips: ClipsPolicy = Field(default_factory=ClipsPolicy)
    scored: ScoredPolicy = Field(default_factory=ScoredPolicy)
    captioned: CaptionedPolicy = Field(default_factory=CaptionedPolicy)
    stages: StagesPolicy = Field(default_factory=StagesPolicy)

    @property
    def hash(self) -> str:
        return content_hash(self)


def load_policy(path: Path | None = None) -> Policy:
    """Load and validate a policy file; errors name the field (`policy.yaml: raw_pool.min_fps`)."""
    return load_model(path or DEFAULT_POLICY_PATH, Policy)
