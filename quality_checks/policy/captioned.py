"""policy.captioned: which clips get captioned, by which backend, and the caption QC rules."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from media.captions import QcParams
from quality_checks.policy.base import Strict


class CaptionBackend(Strict):
    """One captioner. A clip goes to the strongest backend whose min_short_side it meets
    (Open-Sora: a cheaper captioner for low resolutions, a stronger one for 720p and SFT)."""

    name: str
    kind: Literal["signals", "transformers", "openai"]
    min_short_side: int = Field(0, ge=0)
    model: str = ""  # transformers: a local model directory; openai: the served model name
    base_url: str = ""  # openai: e.g. http://vllm-host:8000/v1
    api_key_env: str = ""  # openai: the environment variable holding the key (never the key)
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _needs(self) -> CaptionBackend:
        if self.kind == "openai" and not (self.base_url and self.model):
            raise ValueError(f"backend {self.name!r}: kind openai needs base_url and model")
        if self.kind == "transformers" and not self.model:
            raise ValueError(f"backend {self.name!r}: kind transformers needs model (a local directory)")
        return self


class CaptionedPolicy(Strict):
    routes: list[Literal["train", "review"]] = Field(default_factory=lambda: ["train"])
    backends: list[CaptionBackend] = Field(
        default_factory=lambda: [CaptionBackend(name="signals", kind="signals")])
    max_new_tokens: int = Field(256, ge=16)
    qc: dict[str, Any] = Field(default_factory=dict)  # media/captions.py QcParams fields

    @field_validator("qc")
    @classmethod
    def _qc_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        known = {f.name for f in dataclasses.fields(QcParams)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown key(s) {unknown}; known: {sorted(known)}")
        return value

    @field_validator("backends")
    @classmethod
    def _unique(cls, value: list[CaptionBackend]) -> list[CaptionBackend]:
        names = [b.name for b in value]
        if not value:
            raise ValueError("at least one backend is needed (kind: signals needs no model)")
        if len(set(names)) != len(names):
            raise ValueError(f"backend names repeat: {names}")
        return value

    def qc_params(self) -> QcParams:
        return QcParams(**self.qc)

    def backend_for(self, short_side: int) -> CaptionBackend:
        """The strongest backend (highest min_short_side) this clip's resolution reaches."""
        eligible = [b for b in self.backends if short_side >= b.min_short_side]
        if not eligible:
            return min(self.backends, key=lambda b: b.min_short_side)
        return max(eligible, key=lambda b: b.min_short_side)
