"""The captioner interface every backend implements (transformers, OpenAI-compatible, signals).

A backend receives a batch of requests (a clip's keyframes in time order and the prompt) and
returns one result per request, in order. It never raises for one bad clip: a failed clip
comes back with `error` set, so the captioned tier records a reason instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


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
