"""Blocking audits of a raw_pool table, run on the write-audit-publish branch before merge."""

from __future__ import annotations

from collections import Counter
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetCheckResult, AssetCheckSpec, MetadataValue

from quality_checks.check_results import check_result as _result
from quality_checks.check_results import check_spec
from quality_checks.expectations import run_suite
from quality_checks.policy import Policy
from quality_checks.schemas import RAW_POOL_SCHEMA, RAW_POOL_STATUSES
from resources.optout import OptOutRegistry

SCHEMA = "raw_pool_schema"
UNIQUE_VIDEO_ID = "raw_pool_unique_video_id"
NO_OPTED_OUT_ACCEPTED = "raw_pool_no_opted_out_accepted"
REJECT_RATE = "raw_pool_reject_rate"
EXPECTATIONS = "raw_pool_expectations"


def raw_pool_check_specs(asset: str = "raw_pool") -> list[AssetCheckSpec]:
    spec = partial(check_spec, asset)

    return [
        spec(SCHEMA, "Columns and types match the raw_pool contract (quality_checks/schemas.py)."),
        spec(UNIQUE_VIDEO_ID, "Each uri appears once; each accepted video_id (content hash) "
                              "appears once."),
        spec(NO_OPTED_OUT_ACCEPTED, "No accepted row matches the opt-out registry "
                                    "(optout.yaml, by source, video_id, sha256 or uri)."),
        spec(REJECT_RATE, "Share of rejected rows is at most policy.raw_pool.max_reject_rate "
                          "(routing policy file)."),
        spec(EXPECTATIONS, "Great Expectations suite: ids and hashes well-formed, statuses "
                           "known, accepted rows have positive duration, fps and size."),
    ]


def evaluate_raw_pool_checks(
    table: pa.Table, source: str, policy: Policy, optouts: OptOutRegistry
) -> list[AssetCheckResult]:
    """Run every raw_pool check on `table`; results carry what failed and why."""
    return [
        _schema(table),
        _unique_ids(table),
        _no_opted_out(table, source, optouts),
        _reject_rate(table, policy),
        _expectations(table),
    ]


def _schema(table: pa.Table) -> AssetCheckResult:
    expected = {f.name: f.type for f in RAW_POOL_SCHEMA}
    actual = {f.name: f.type for f in table.schema}
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    wrong = sorted(n for n in set(expected) & set(actual) if expected[n] != actual[n])
    return _result(SCHEMA, not (missing or extra or wrong), missing=str(missing),
                   unexpected=str(extra), wrong_type=str(wrong))


def _unique_ids(table: pa.Table) -> AssetCheckResult:
    uris = Counter(table.column("uri").to_pylist())
    accepted = table.filter(pc.equal(table.column("status"), "accepted"))
    ids = Counter(accepted.column("video_id").to_pylist())
    dup_uris = sorted(u for u, n in uris.items() if n > 1)
    dup_ids = sorted(i for i, n in ids.items() if n > 1)
    return _result(UNIQUE_VIDEO_ID, not (dup_uris or dup_ids), duplicate_uris=len(dup_uris),
                   duplicate_accepted_video_ids=str(dup_ids[:20]))


def _no_opted_out(table: pa.Table, source: str, optouts: OptOutRegistry) -> AssetCheckResult:
    accepted = table.filter(pc.equal(table.column("status"), "accepted")).to_pylist()
    source_out = optouts.for_source(source) is not None
    leaked = [r for r in accepted
              if source_out or optouts.for_video(source, r["video_id"], r["sha256"], r["uri"])]
    # A count, no examples: the event log outlives a purge (the rows are on the audit branch).
    return _result(NO_OPTED_OUT_ACCEPTED, not leaked, opted_out_accepted=len(leaked))


def _reject_rate(table: pa.Table, policy: Policy) -> AssetCheckResult:
    statuses = Counter(table.column("status").to_pylist())
    considered = statuses["accepted"] + statuses["rejected"]  # opt-outs are not quality rejects
    rate = statuses["rejected"] / considered if considered else 0.0
    ceiling = policy.raw_pool.max_reject_rate
    return _result(REJECT_RATE, rate <= ceiling, reject_rate=round(rate, 4), ceiling=ceiling,
                   configured_at="policy.raw_pool.max_reject_rate",
                   rejected=statuses["rejected"], considered=considered)


def _expectations(table: pa.Table) -> AssetCheckResult:
    accepted = ("status", "==", "accepted")
    outcome = run_suite(
        "raw_pool",
        table.to_pandas(),
        [
            ("expect_column_values_to_not_be_null", {"column": "video_id"}),
            ("expect_column_values_to_match_regex",
             {"column": "video_id", "regex": r"^(?:v|redacted:)[0-9a-f]{32}$"}),
            ("expect_column_values_to_match_regex",
             {"column": "sha256", "regex": r"^(?:[0-9a-f]{64}|redacted:[0-9a-f]{32})?$"}),
            ("expect_column_values_to_be_in_set",
             {"column": "status", "value_set": list(RAW_POOL_STATUSES)}),
            ("expect_column_values_to_be_between",
             {"column": "duration_s", "min_value": 0, "strict_min": True,
              "where": accepted}),
            ("expect_column_values_to_be_between",
             {"column": "fps", "min_value": 0, "strict_min": True, "where": accepted}),
            ("expect_column_values_to_be_between",
             {"column": "width", "min_value": 1, "where": accepted}),
            ("expect_column_values_to_not_be_null",
             {"column": "reason", "where": ("status", "!=", "accepted")}),
        ],
    )
    return _result(EXPECTATIONS, outcome.success, evaluated=outcome.evaluated,
                   failed=MetadataValue.md(outcome.failures_markdown()))
