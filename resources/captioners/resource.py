"""The captioners resource: builds the backend a policy names (imports it only then)."""

from __future__ import annotations

import os
from typing import Any

from dagster import ConfigurableResource

from resources.captioners.base import Captioner


class CaptionersResource(ConfigurableResource):
    """Builds the captioner a policy backend names. Keys come from the environment variable
    the policy names (`api_key_env`), never from the policy file itself."""

    def build(self, backend: dict[str, Any], max_new_tokens: int = 256) -> Captioner:
        kind = backend["kind"]
        if kind == "signals":
            from resources.captioners.signals import SignalsCaptioner

            return SignalsCaptioner()
        if kind == "transformers":
            from resources.captioners.transformers import TransformersCaptioner

            return TransformersCaptioner(backend["model"], device=backend.get("device", "auto"),
                                         batch_size=backend.get("batch_size", 4),
                                         max_new_tokens=max_new_tokens)
        if kind == "openai":
            from resources.captioners.openai import OpenAICaptioner

            key_env = backend.get("api_key_env") or ""
            return OpenAICaptioner(backend["base_url"], backend["model"],
                                   api_key=os.environ.get(key_env, "") if key_env else "",
                                   concurrency=backend.get("concurrency", 8),
                                   timeout_s=backend.get("timeout_s", 60.0),
                                   max_retries=backend.get("max_retries", 3))
        raise ValueError(f"unknown captioner kind {kind!r} (signals | transformers | openai)")
