"""Audits of a captioned table, run on the write-audit-publish branch before merge."""

from __future__ import annotations

from functools import partial

import pyarrow as pa
from dagster import AssetCheckResult, AssetCheckSpec

from media.captions import CAMERA_LABELS, MOTION_LEVELS
from quality_checks.check_results import check_result as _result
from quality_checks.check_results import check_spec, schema_matches
from quality_checks.policy import Policy
from quality_checks.schemas import CAPTIONED_SCHEMA

SCHEMA = "captioned_schema"
EVERY_ROUTED_CLIP = "captioned_every_routed_clip_has_caption_or_reason"
FIELDS_VALID = "captioned_fields_valid"
QC_STATUSES = ("ok", "needs_review", "rejected")


def captioned_check_specs(asset: str = "captioned") -> list[AssetCheckSpec]:
    spec = partial(check_spec, asset)

    return [
        spec(SCHEMA, "Columns and types match the captioned contract (quality_checks/schemas.py)."),
        spec(EVERY_ROUTED_CLIP, "Every clip scored routes to policy.captioned.routes has a row: a "
                                "caption that passed QC, or the reasons it was rejected."),
        spec(FIELDS_VALID, "Accepted captions have a dense text and every variant; camera_motion and "
                           "motion_level use the known labels; QC statuses are known."),
    ]


def evaluate_captioned_checks(table: pa.Table, policy: Policy, scored: list[dict]) -> list[AssetCheckResult]:
    schema_ok = schema_matches(table, CAPTIONED_SCHEMA)
    rows = table.to_pylist() if schema_ok else []
    routed = {r["clip_id"] for r in scored if r["route"] in policy.captioned.routes}
    have = {r["clip_id"] for r in rows}
    unexplained = [r["clip_id"] for r in rows if r["qc_status"] == "rejected" and not r["qc_reasons"]]
    missing = sorted(routed - have)
    extra = sorted(have - routed)
    bad = []
    for r in rows:
        if r["qc_status"] not in QC_STATUSES:
            bad.append(f"{r['clip_id']}: qc_status {r['qc_status']}")
        elif r["qc_status"] != "rejected":
            if not (r["caption_dense"] and r["caption_short"] and r["caption_assembled"]):
                bad.append(f"{r['clip_id']}: empty variant")
            if r["camera_motion"] not in CAMERA_LABELS:
                bad.append(f"{r['clip_id']}: camera_motion {r['camera_motion']!r}")
            if r["motion_level"] not in MOTION_LEVELS:
                bad.append(f"{r['clip_id']}: motion_level {r['motion_level']!r}")
    return [
        _result(SCHEMA, schema_ok),
        _result(EVERY_ROUTED_CLIP, not (missing or extra or unexplained), routed=len(routed),
                missing=len(missing), not_routed=len(extra), rejected_without_reason=len(unexplained),
                configured_at="policy.captioned.routes", examples=str((missing + extra + unexplained)[:10])),
        _result(FIELDS_VALID, not bad, invalid=len(bad), examples=str(bad[:10])),
    ]

