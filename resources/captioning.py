"""The captioner interface every backend implements (transformers, OpenAI-compatible, signals).

A backend receives a batch of requests (a clip's keyframes in time order and the prompt) and
returns one result per request, in order. It never raises for one bad clip: a failed clip
comes back with `error` set, so the captioned tier records a reason instead of failing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from dagster import ConfigurableResource


@dataclass(frozen=True)
class CaptionRequest:
    clip_id: str
    images: list[np.ndarray]  # RGB uint8 keyframes, in time order
    prompt: str  # the user message; the backend adds the images to it
    system: str = ""
    max_new_tokens: int = 256
    # The clip's measured signals (scored row). Model backends ignore them; the `signals`
    # backend captions from them alone.
    signals: dict[str, object] = field(default_factory=dict)


@dataclass
class CaptionResult:
    clip_id: str
    text: str = ""  # the model's raw reply (parsed and checked by media/captions.py)
    error: str | None = None  # why no reply came back (timeout, HTTP 500 after retries, ...)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0  # wall time spent on this request (its share of a batch)
    attempts: int = 1
    extra: dict[str, object] = field(default_factory=dict)


class Captioner(Protocol):
    """`name` and `model` go into the caption cache key with the prompt version."""

    name: str
    model: str

    def caption(self, requests: list[CaptionRequest]) -> list[CaptionResult]: ...

    def close(self) -> None: ...


class CaptionersResource(ConfigurableResource):
    """Builds the captioner a policy backend names. Keys come from the environment variable
    the policy names (`api_key_env`), never from the policy file itself."""

    def build(self, backend: dict[str, Any], max_new_tokens: int = 256) -> Captioner:
        kind = backend["kind"]
        if kind == "signals":
            from resources.captioner_signals import SignalsCaptioner

            return SignalsCaptioner()
        if kind == "transformers":
            from resources.captioner_transformers import TransformersCaptioner

            return TransformersCaptioner(backend["model"], device=backend.get("device", "auto"),
                                         batch_size=backend.get("batch_size", 4),
                                         max_new_tokens=max_new_tokens)
        if kind == "openai":
            from resources.captioner_openai import OpenAICaptioner

            key_env = backend.get("api_key_env") or ""
            return OpenAICaptioner(backend["base_url"], backend["model"],
                                   api_key=os.environ.get(key_env, "") if key_env else "",
                                   concurrency=backend.get("concurrency", 8),
                                   timeout_s=backend.get("timeout_s", 60.0),
                                   max_retries=backend.get("max_retries", 3))
        raise ValueError(f"unknown captioner kind {kind!r} (signals | transformers | openai)")
