"""The routing policy: every threshold as data, loaded from one YAML file.

Code holds defaults only where the policy names none; the field path in this file is what
check descriptions and reject reasons cite (e.g. `policy.raw_pool.min_fps`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from quality_checks.policy.base import Strict
from quality_checks.policy.captioned import CaptionedPolicy
from quality_checks.policy.clips import ClipsPolicy
from quality_checks.policy.licenses import LicensePolicy
from quality_checks.policy.raw_pool import RawPoolPolicy
from quality_checks.policy.scored import ScoredPolicy
from quality_checks.policy.stages import StagesPolicy
from resources.config_files import content_hash, load_model

DEFAULT_POLICY_PATH = Path(__file__).with_name("default_policy.yaml")


class Policy(Strict):
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


__all__ = ["ClipsPolicy", "LicensePolicy", "Policy", "RawPoolPolicy", "load_policy"]
