"""policy.scored: the governance thresholds the scored tier routes by.

Signals are computed once and stored raw; every label below is derived from stored signals
and these thresholds, so changing a threshold re-labels clips without recomputing a signal.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from media.shots.camera_motion import CameraParams
from media.signals.borders import BorderParams
from media.signals.clip_signals import AestheticConfig, SignalParams
from media.signals.quality import QualityParams
from media.signals.text import TextParams
from media.signals.watermark import WatermarkParams
from quality_checks.policy.base import Strict

# Measurement parameters: each section overrides fields of the media/ dataclass named here
# (their defaults are the calibrated values the benchmarks report).
_MEASUREMENTS = {"text": TextParams, "borders": BorderParams, "watermark": WatermarkParams,
                 "quality": QualityParams, "camera": CameraParams}


class SafetyPolicy(Strict):
    """Layer 1. OpenNSFW probability, max over a clip's keyframes (Yahoo's own guidance:
    below 0.2 safe, above 0.8 unsafe, the band between needs a person).

    OpenNSFW scores flat-coloured drawings high. With `drawn_guard` on, a clip whose every
    keyframe at or above `block_at` is a drawing (media.signals.nsfw.drawn_score >= `drawn_at`)
    goes to review instead of being blocked; a photographic keyframe at or above `block_at`
    still blocks, and nothing the model scores at or above `review_at` ever goes to train
    unreviewed. The drawn score is measured only on keyframes OpenNSFW scores >= 0.5
    (SignalParams.drawn_min_nsfw): with `block_at` below that, keyframes under 0.5 block."""

    block_at: float = Field(0.8, ge=0, le=1)
    review_at: float = Field(0.2, ge=0, le=1)
    drawn_guard: bool = True
    drawn_at: float = Field(0.5, ge=0, le=1)  # calibrated: photographs <= 0.30, flat cartoons >= 0.66

    @model_validator(mode="after")
    def _order(self) -> SafetyPolicy:
        if self.review_at > self.block_at:
            raise ValueError(f"review_at ({self.review_at}) is above block_at ({self.block_at})")
        return self


class TextPolicy(Strict):
    """Layer 3. Share of the frame covered by detected text (max over keyframes)."""

    drop_ratio: float = Field(0.08, ge=0, le=1)  # more text than this: dropped
    small_ratio: float = Field(0.002, ge=0, le=1)  # more than this: small text, lower weight
    drop_box_fraction: float = Field(0.05, ge=0, le=1)  # one box this large: dropped (xGen)
    small_text_weight: float = Field(0.5, ge=0, le=1)
    drop_subtitles: bool = False  # burned-in subtitles: drop, or keep as small text


class WatermarkPolicy(Strict):
    """Layer 3. Logo / watermark evidence (persistent corner text, static corner edges)."""

    drop_at: float = Field(0.7, ge=0, le=1)
    review_at: float = Field(1.0, ge=0, le=1)  # 1.0: never send watermarks to review


class QualityPolicy(Strict):
    """Layer 4. Quality only routes: it sets a label and a weight, it never deletes a clip."""

    high_at: float = Field(0.6, ge=0, le=1)  # technical_quality at or above: high
    low_below: float = Field(0.35, ge=0, le=1)  # below: low
    aesthetic_high_at: float = Field(5.0)  # with an aesthetic backend (LAION scale 1..10)
    aesthetic_low_below: float = Field(4.5)  # xGen keeps >= 4.5
    weights: dict[Literal["high", "medium", "low"], float] = Field(
        default_factory=lambda: {"high": 1.0, "medium": 0.7, "low": 0.3})

    @model_validator(mode="after")
    def _order(self) -> QualityPolicy:
        if self.low_below > self.high_at:
            raise ValueError(f"low_below ({self.low_below}) is above high_at ({self.high_at})")
        missing = {"high", "medium", "low"} - set(self.weights)
        if missing:
            raise ValueError(f"weights: missing {sorted(missing)}")
        return self


class MotionPolicy(Strict):
    """The clip's motion label: frozen (nothing in the picture changes: frame differences below
    `frozen_below` in every frame and camera speeds below `frozen_camera_speed`), static (the
    camera stays put; the scene may move) or moving (the camera moves). Stages take the labels they list
    (policy.stages.<stage>.motion_labels: frozen is left out by default)."""

    frozen_below: float = Field(0.001, ge=0, le=1)  # scored motion_max: share of pixels that change
    # and the measured camera motion (frames/s; log-scale/s for zoom) under which it is frozen: a
    # slow pan of a smooth picture changes few pixels by much, yet moves (0.017 frames/s and up
    # in bench/camera.py's "slow" clips; a locked-off still reads 0.0001 at most)
    frozen_camera_speed: float = Field(0.005, ge=0)


class DedupPolicy(Strict):
    """Near-duplicates: exact keyframe bytes, then pHash distance, then embedding cosine vetoed
    by the clips' temporal signatures (media.signals.dedup.DedupParams documents each field)."""

    embedder: Literal["dinov2", "opennsfw"] = "opennsfw"
    phash_max_distance: int = Field(4, ge=-1, le=32)  # -1: pHash off
    phash_min_matches: int = Field(2, ge=1)  # keyframes of each clip that must match
    cosine_threshold: float = Field(0.935, gt=0, le=1)  # OpenNSFW; DINOv2 needs about 0.96
    signature_min_correlation: float = Field(0.0, ge=-1, le=1)  # -1: signature veto off
    signature_min_spread: float = Field(0.25, ge=0)  # luma levels; flatter curves say nothing
    signature_max_shift: float = Field(0.1, ge=0, le=0.5)  # share of the clip curves may slide to align
    confirmed_cosine_threshold: float = Field(0.9, gt=0, le=1)  # lower bar where the signatures confirm
    signature_confirm_correlation: float = Field(0.85, ge=-1, le=1)  # ... every moving curve at least this
    centre_cosine_threshold: float = Field(0.875, gt=0, le=1)  # centre region vs whole: crops; 1: off
    crop_cosine_threshold: float = Field(0.94, gt=0, le=1)  # embedded centre crop vs middle keyframe; 1: off


class ConceptPolicy(Strict):
    """k-means concept clusters over clip embeddings, for rebalancing in the stage tiers."""

    k: int = Field(16, ge=1)
    seed: int = 0


class AestheticPolicy(Strict):
    """LAION aesthetic MLP over CLIP features. Off by default: no weights ship offline."""

    backend: Literal["none", "laion"] = "none"
    clip_path: str = ""  # a local transformers CLIP directory (or a hub id with network)
    mlp_path: str = ""  # the LAION MLP state dict (.pth / .safetensors)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="after")
    def _paths(self) -> AestheticPolicy:
        if self.backend == "laion" and not (self.clip_path and self.mlp_path):
            raise ValueError("backend 'laion' needs clip_path and mlp_path")
        return self


class SignalsPolicy(Strict):
    """How signals are measured (a change here recomputes them; routing thresholds do not)."""

    text: dict[str, Any] = Field(default_factory=dict)
    borders: dict[str, Any] = Field(default_factory=dict)
    watermark: dict[str, Any] = Field(default_factory=dict)
    quality: dict[str, Any] = Field(default_factory=dict)
    camera: dict[str, Any] = Field(default_factory=dict)
    threads: int = Field(1, ge=1)  # model threads per worker process

    @field_validator("text", "borders", "watermark", "quality", "camera")
    @classmethod
    def _known_fields(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        known = {f.name for f in dataclasses.fields(_MEASUREMENTS[info.field_name])} - {"params"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown key(s) {unknown}; known: {sorted(known)}")
        return value

    def build(self, section: str) -> Any:
        values = {k: _frozen(v) for k, v in getattr(self, section).items()}
        return _MEASUREMENTS[section](**values)


def _frozen(value: Any) -> Any:
    """YAML lists become tuples: the parameter dataclasses are frozen and hashed."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _frozen(v)) for k, v in value.items())
    return value


class ScoredPolicy(Strict):
    signals: SignalsPolicy = Field(default_factory=SignalsPolicy)
    safety: SafetyPolicy = Field(default_factory=SafetyPolicy)
    text: TextPolicy = Field(default_factory=TextPolicy)
    watermark: WatermarkPolicy = Field(default_factory=WatermarkPolicy)
    quality: QualityPolicy = Field(default_factory=QualityPolicy)
    motion: MotionPolicy = Field(default_factory=MotionPolicy)
    dedup: DedupPolicy = Field(default_factory=DedupPolicy)
    concepts: ConceptPolicy = Field(default_factory=ConceptPolicy)
    aesthetic: AestheticPolicy = Field(default_factory=AestheticPolicy)
    max_failed_rate: float = Field(0.0, ge=0, le=1)  # clips whose signals failed (blocking)

    def signal_params(self, models_dir: str = "") -> SignalParams:
        return SignalParams(
            **{section: self.signals.build(section) for section in _MEASUREMENTS},
            embedder=self.dedup.embedder, crop_embedding=self.dedup.crop_cosine_threshold < 1.0,
            aesthetic=AestheticConfig(backend=self.aesthetic.backend, clip_path=self.aesthetic.clip_path,
                                      mlp_path=self.aesthetic.mlp_path, device=self.aesthetic.device),
            models_dir=models_dir, threads=self.signals.threads,
        )
