"""policy.clips: shot detection and clip shaping.

Defaults are the analysis code's own (media/shots/analysis.py AnalysisParams, media/shots/spans.py
SpanParams), so each is written once in code; tests/test_policy.py pins default_policy.yaml to them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from media.shots.analysis import AnalysisParams
from media.shots.spans import SpanParams
from quality_checks.policy.base import Strict

_ANALYSIS = AnalysisParams()
_SPANS = SpanParams()


class ClipsPolicy(Strict):
    """Shot detection and clip shaping; spans outside these bounds never become clips."""

    detector: Literal["adaptive", "content", "hash", "histogram", "transnetv2"] = _ANALYSIS.detector
    detector_params: dict[str, Any] = Field(default_factory=dict)
    repeat_below: float | None = Field(_ANALYSIS.repeat_below, ge=0)
    flash_frames: int = Field(_ANALYSIS.flash_frames, ge=0, le=12)
    dissolve_params: dict[str, Any] = Field(default_factory=dict)
    relit_across_short: float | None = Field(_ANALYSIS.relit_across_short, ge=0)
    min_clip_s: float = Field(_SPANS.min_clip_s, gt=0)
    max_clip_s: float = Field(_SPANS.max_clip_s, gt=0)
    trim_frames: int = Field(_SPANS.trim_frames, ge=0)
    trim_after_transition: int = Field(_SPANS.trim_after_transition, ge=0)
    spike_motion: float = Field(_SPANS.spike_motion, ge=0, le=1)
    spike_delta: float = Field(_SPANS.spike_delta, ge=0, le=1)
    stitch_below_motion: float | None = Field(_SPANS.stitch_below_motion, ge=0, le=1)
    max_clips_per_video: int = Field(500, ge=1)
    analysis_short_side: int = Field(_ANALYSIS.analysis_short_side, ge=32)
    keyframe_short_side: int = Field(_ANALYSIS.keyframe_short_side, ge=64)
    camera_frame_step: int = Field(_ANALYSIS.camera_frame_step, ge=1, le=4)
    cut_files: bool = _ANALYSIS.cut_files
    # Accepted videos whose analysis failed (bad media, changed since raw_pool) may be at most
    # this share (blocking). A fault of the machine never counts: it fails the step instead.
    max_failed_rate: float = Field(0.0, ge=0, le=1)

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
            repeat_below=self.repeat_below,
            flash_frames=self.flash_frames,
            dissolve_params=dict(self.dissolve_params),
            relit_across_short=self.relit_across_short,
            analysis_short_side=self.analysis_short_side,
            keyframe_short_side=self.keyframe_short_side,
            camera_frame_step=self.camera_frame_step,
            cut_files=self.cut_files,
            spans=SpanParams(min_clip_s=self.min_clip_s, max_clip_s=self.max_clip_s,
                             trim_frames=self.trim_frames,
                             trim_after_transition=self.trim_after_transition,
                             spike_motion=self.spike_motion,
                             spike_delta=self.spike_delta,
                             stitch_below_motion=self.stitch_below_motion),
        )
