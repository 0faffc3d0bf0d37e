"""policy.licenses: the provenance allowlist (governance layer 2)."""

from __future__ import annotations

from pydantic import Field

from quality_checks.policy.base import Strict


class LicensePolicy(Strict):
    allowed: list[str] = Field(default_factory=lambda: [
        "CC0-1.0", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "MIT", "BSD-2-Clause",
        "BSD-3-Clause", "Apache-2.0", "public-domain"])
    # Allowed, but a person confirms the terms fit before the clip trains anything
    # (share-alike, copyleft): review_status needs_review.
    review: list[str] = Field(default_factory=lambda: ["GPL-2.0", "GPL-3.0"])
