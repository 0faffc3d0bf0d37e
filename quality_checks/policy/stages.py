"""policy.stages: progressively stricter training stages, routed from stored scores and captions.

Nothing here measures anything: a stage reads the scored and captioned tables, so a threshold
change re-routes clips without recomputing a signal (Movie Gen / HunyuanVideo: low resolution
needs volume, high resolution needs purity).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from quality_checks.policy.base import Strict

STAGES = ("stage_256p", "stage_480p", "stage_720p", "sft")
QUALITY_RANK = {"low": 0, "medium": 1, "high": 2}


class StagePolicy(Strict):
    short_side: int = Field(256, ge=64)  # output short side; sources below it are not eligible
    fps: float = Field(24.0, gt=0)
    min_duration_s: float = Field(2.0, ge=0)
    max_duration_s: float = Field(16.0, gt=0)
    min_motion: float = Field(0.0, ge=0, le=1)  # scored motion_mean
    # scored motion_label (policy.scored.motion): a frozen picture teaches no motion
    motion_labels: list[Literal["frozen", "static", "moving"]] = Field(
        default_factory=lambda: ["static", "moving"])
    max_motion: float = Field(1.0, ge=0, le=1)
    max_text_ratio: float = Field(0.08, ge=0, le=1)
    min_quality: Literal["low", "medium", "high"] = "low"  # scored quality_label
    min_technical_quality: float = Field(0.0, ge=0, le=1)
    watermark_labels: list[str] = Field(default_factory=lambda: ["clean", "small_text", "subtitles"])
    require_caption: bool = True  # a caption that passed QC (qc_status ok)
    require_review: bool = False  # review_status approved (SFT)
    top_quantile: float | None = Field(None, gt=0, le=1)  # else: best share by technical_quality
    frame_rule: Literal["4k+1", "8k+1", "any"] = "4k+1"
    min_frames: int = Field(17, ge=1)
    max_frames: int = Field(129, ge=1)
    max_per_concept: int | None = Field(None, ge=1)  # cap per concept cluster (best quality kept)
    concept_weights: dict[int, float] = Field(default_factory=dict)  # weight multiplier per cluster
    caption_mix: dict[Literal["assembled", "dense", "medium", "short", "original"], float] = Field(
        default_factory=lambda: {"assembled": 0.6, "dense": 0.2, "short": 0.2})

    @model_validator(mode="after")
    def _ranges(self) -> StagePolicy:
        if self.min_duration_s > self.max_duration_s:
            raise ValueError(f"min_duration_s ({self.min_duration_s}) is above max_duration_s")
        if self.min_motion > self.max_motion:
            raise ValueError(f"min_motion ({self.min_motion}) is above max_motion ({self.max_motion})")
        if not self.motion_labels:
            raise ValueError("motion_labels needs at least one of frozen, static, moving")
        if self.min_frames > self.max_frames:
            raise ValueError(f"min_frames ({self.min_frames}) is above max_frames ({self.max_frames})")
        if not self.caption_mix or min(self.caption_mix.values()) < 0 or sum(self.caption_mix.values()) <= 0:
            raise ValueError("caption_mix needs at least one positive weight")
        return self


def _default_stages() -> dict[str, StagePolicy]:
    return {
        "stage_256p": StagePolicy(short_side=256, min_quality="low"),
        "stage_480p": StagePolicy(short_side=480, min_quality="medium", max_text_ratio=0.02,
                                  min_motion=0.001),
        "stage_720p": StagePolicy(short_side=720, min_quality="high", max_text_ratio=0.005,
                                  min_motion=0.002, watermark_labels=["clean"]),
        "sft": StagePolicy(short_side=720, min_quality="high", max_text_ratio=0.0,
                           min_motion=0.002, watermark_labels=["clean"], top_quantile=0.2,
                           caption_mix={"dense": 1.0}),
    }


class StagesPolicy(Strict):
    stage_256p: StagePolicy = Field(default_factory=lambda: _default_stages()["stage_256p"])
    stage_480p: StagePolicy = Field(default_factory=lambda: _default_stages()["stage_480p"])
    stage_720p: StagePolicy = Field(default_factory=lambda: _default_stages()["stage_720p"])
    sft: StagePolicy = Field(default_factory=lambda: _default_stages()["sft"])

    def stage(self, name: str) -> StagePolicy:
        return getattr(self, name)
