"""The routing policy as a Dagster resource: which policy file this deployment applies."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from quality_checks.policy import Policy, load_policy


class PolicyResource(ConfigurableResource):
    """Path to the policy YAML; empty means the packaged default policy."""

    path: str = ""

    def load(self) -> Policy:
        return load_policy(Path(self.path) if self.path else None)
