"""Audits of a scored table, run on the write-audit-publish branch before merge.

Blocking: the contract, every signal present and in range, one kept clip per duplicate
group, labels and routes that follow from the stored signals under the policy (so nothing
blocked or quarantined is ever routed), and every clip scored or its failure counted.
The Great Expectations suite on the distributions only warns.
"""

from __future__ import annotations

import math
from collections import defaultdict
from functools import partial

import pyarrow as pa
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from quality_checks.check_results import check_result as _result
from quality_checks.check_results import check_spec, schema_matches
from quality_checks.expectations import run_suite
from quality_checks.policy import Policy
from quality_checks.routing.scored import REVIEW_STATUSES, ROUTES, govern
from quality_checks.schemas import SCORED_SCHEMA

SCHEMA = "scored_schema"
SIGNALS_IN_RANGE = "scored_signals_present_and_in_range"
ONE_KEPT_PER_GROUP = "scored_one_kept_clip_per_duplicate_group"
ROUTES_FOLLOW_POLICY = "scored_routes_follow_policy"
ALL_CLIPS_SCORED = "scored_every_clip_scored"
DISTRIBUTIONS = "scored_distributions"

CAMERA_LABELS = ("static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out",
                 "handheld", "complex")
# Signals that are shares or probabilities: [0, 1].
_UNIT = ("text_ratio_max", "text_ratio_mean", "text_box_max_fraction", "watermark_score",
         "border_top", "border_bottom", "border_left", "border_right", "nsfw_max", "nsfw_mean",
         "exposure_under", "exposure_over", "technical_quality", "motion_mean", "motion_max",
         "camera_confidence")
_NON_NEGATIVE = ("text_box_max_px", "text_keyframes", "sharpness", "brightness", "contrast",
                 "colourfulness", "noise", "blockiness", "camera_jitter")


def scored_check_specs(asset: str = "scored") -> list[AssetCheckSpec]:
    spec = partial(check_spec, asset)

    return [
        spec(SCHEMA, "Columns and types match the scored contract (quality_checks/schemas.py)."),
        spec(SIGNALS_IN_RANGE, "Every signal is present and finite; shares and probabilities lie "
                               "in [0, 1]; camera and exposure labels are known."),
        spec(ONE_KEPT_PER_GROUP, "Each duplicate group has exactly one kept clip (here, or "
                                 "already published by another source); duplicates point at it."),
        spec(ROUTES_FOLLOW_POLICY, "Labels, review status, route and weight are what policy.scored "
                                   "and policy.licenses give for the stored signals: nothing "
                                   "unsafe, quarantined or duplicated is routed to train."),
        spec(ALL_CLIPS_SCORED, "Every clip of the clips table has a scored row, except clips of "
                               "failed videos, at most policy.scored.max_failed_rate of them."),
        spec(DISTRIBUTIONS, "Great Expectations suite on the score distributions (warns only).",
             blocking=False),
    ]


def evaluate_scored_checks(table: pa.Table, policy: Policy, clip_ids: list[str],
                           published_kept: set[str]) -> list[AssetCheckResult]:
    """Run every scored check; `clip_ids` are the clips table's ids, `published_kept` the
    kept clips other sources published (valid targets of a duplicate_of)."""
    schema_ok = schema_matches(table, SCORED_SCHEMA)
    rows = table.to_pylist() if schema_ok else []
    return [
        _result(SCHEMA, schema_ok),
        _signals_in_range(rows),
        _one_kept_per_group(rows, published_kept),
        _routes_follow_policy(rows, policy),
        _all_scored(rows, clip_ids, policy),
        _distributions(table) if rows else _result(DISTRIBUTIONS, True, severity=AssetCheckSeverity.WARN,
                                                   evaluated=0),
    ]


def _signals_in_range(rows: list[dict]) -> AssetCheckResult:
    bad: list[str] = []
    for r in rows:
        for name in _UNIT:
            value = r[name]
            if value is None or not math.isfinite(value) or not 0.0 <= value <= 1.0:
                bad.append(f"{r['clip_id']}.{name}={value}")
        for name in _NON_NEGATIVE:
            value = r[name]
            if value is None or not math.isfinite(value) or value < 0:
                bad.append(f"{r['clip_id']}.{name}={value}")
        if r["camera_motion"] not in CAMERA_LABELS:
            bad.append(f"{r['clip_id']}.camera_motion={r['camera_motion']}")
        if r["exposure_label"] not in ("under", "normal", "over"):
            bad.append(f"{r['clip_id']}.exposure_label={r['exposure_label']}")
        if not r["phashes"]:
            bad.append(f"{r['clip_id']}.phashes empty")
    return _result(SIGNALS_IN_RANGE, not bad, out_of_range=len(bad), examples=str(bad[:10]))


def _one_kept_per_group(rows: list[dict], published_kept: set[str]) -> AssetCheckResult:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r["duplicate_group"]].append(r)
    bad = []
    for group, members in groups.items():
        kept = [m["clip_id"] for m in members if m["duplicate_of"] is None]
        # a group led by another source's published clip keeps nothing here
        ok = not kept if group in published_kept else kept == [group]
        ok = ok and all(m["duplicate_of"] in (None, group) for m in members)
        if not ok:
            bad.append(group)
    duplicates = sum(1 for r in rows if r["duplicate_of"] is not None)
    return _result(ONE_KEPT_PER_GROUP, not bad, groups=len(groups), duplicates=duplicates,
                   bad_groups=len(bad), examples=str(bad[:10]))


def _routes_follow_policy(rows: list[dict], policy: Policy) -> AssetCheckResult:
    bad = []
    for r in rows:
        expected = govern(r, policy)
        wrong = [k for k, v in expected.items() if r[k] != v]
        unsafe_routed = r["route"] == "train" and (
            r["safety_label"] != "safe" or r["provenance_label"] != "allowed"
            or r["duplicate_of"] is not None)
        if wrong or unsafe_routed or r["route"] not in ROUTES or r["review_status"] not in REVIEW_STATUSES:
            bad.append(f"{r['clip_id']}: {', '.join(wrong) or r['route']}")
    routes = {route: sum(1 for r in rows if r["route"] == route) for route in ROUTES}
    return _result(ROUTES_FOLLOW_POLICY, not bad, mismatches=len(bad), examples=str(bad[:10]),
                   configured_at="policy.scored, policy.licenses", **routes)


def _all_scored(rows: list[dict], clip_ids: list[str], policy: Policy) -> AssetCheckResult:
    missing = sorted(set(clip_ids) - {r["clip_id"] for r in rows})
    extra = sorted({r["clip_id"] for r in rows} - set(clip_ids))
    rate = len(missing) / len(clip_ids) if clip_ids else 0.0
    limit = policy.scored.max_failed_rate
    return _result(ALL_CLIPS_SCORED, rate <= limit and not extra, unscored=len(missing),
                   unscored_rate=round(rate, 4), limit=limit, not_in_clips=len(extra),
                   configured_at="policy.scored.max_failed_rate", examples=str(missing[:10]))


def _distributions(table: pa.Table) -> AssetCheckResult:
    outcome = run_suite("scored", table.drop_columns(["keyframes", "phashes", "route_reasons"]).to_pandas(), [
        ("expect_column_values_to_match_regex", {"column": "clip_id", "regex": r"^c[0-9a-f]{24}$"}),
        ("expect_column_mean_to_be_between", {"column": "nsfw_max", "max_value": 0.2}),
        ("expect_column_mean_to_be_between", {"column": "text_ratio_max", "max_value": 0.1}),
        ("expect_column_mean_to_be_between", {"column": "technical_quality", "min_value": 0.3}),
        ("expect_column_proportion_of_unique_values_to_be_between",
         {"column": "duplicate_group", "min_value": 0.5}),
        ("expect_column_values_to_be_in_set", {"column": "route", "value_set": list(ROUTES)}),
    ])
    return _result(DISTRIBUTIONS, outcome.success, severity=AssetCheckSeverity.WARN,
                   evaluated=outcome.evaluated, failed=MetadataValue.md(outcome.failures_markdown()))
