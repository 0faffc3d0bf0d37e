"""Audits of a stage manifest, run on the write-audit-publish branch before merge."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from quality_checks.check_results import check_result as _result
from quality_checks.check_results import check_spec, schema_matches
from quality_checks.expectations import run_suite
from quality_checks.policy.stages import StagePolicy
from quality_checks.routing.stages import route_stage
from quality_checks.schemas import STAGE_SCHEMA

SCHEMA = "schema"
FOLLOWS_POLICY = "samples_satisfy_stage_policy"
MEDIA_MATCHES = "exported_media_match_manifest"
CLEAN_LINEAGE = "no_blocked_quarantined_or_opted_out_lineage"
DISTRIBUTIONS = "distributions"


def stage_check_specs(stage: str) -> list[AssetCheckSpec]:
    def spec(name: str, description: str, blocking: bool = True) -> AssetCheckSpec:
        return check_spec(stage, f"{stage}_{name}", description, blocking)

    return [
        spec(SCHEMA, "Columns and types match the stage contract (quality_checks/schemas.py)."),
        spec(FOLLOWS_POLICY, f"Every sample is one policy.stages.{stage} selects from the stored scores "
                             "and captions, with its bucket, size, frame count and fps."),
        spec(MEDIA_MATCHES, "A probe of exported files (up to 8) finds the manifest's frame count, "
                            "width, height and fps."),
        spec(CLEAN_LINEAGE, "No sample comes from a clip scored did not route to train, or from an "
                            "opted-out source or video (optout.yaml)."),
        spec(DISTRIBUTIONS, "Great Expectations suite on weights, frame counts and buckets (warns only).",
             blocking=False),
    ]


def evaluate_stage_checks(
    stage: str, table: pa.Table, policy: StagePolicy, candidates: list[dict],
    probe: Callable[[str], dict | None], opted_out: Callable[[str, str], bool],
) -> list[AssetCheckResult]:
    """`candidates`: the joined scored+captioned rows routing read; `probe(path)`: frames, width,
    height and fps of a stored file; `opted_out(source, video_id)` from the registry."""
    name = lambda check: f"{stage}_{check}"  # noqa: E731
    schema_ok = schema_matches(table, STAGE_SCHEMA)
    rows = table.to_pylist() if schema_ok else []
    expected, _ = route_stage(stage, candidates, policy)
    want = {s["sample_id"]: s for s in expected}
    wrong = [r["sample_id"] for r in rows if r["sample_id"] not in want or any(
        r[k] != want[r["sample_id"]][k] for k in ("width", "height", "frames", "out_fps", "bucket_aspect"))]
    mismatched = []
    for row in rows[:: max(1, len(rows) // 8)][:8]:
        found = probe(row["media_path"])
        if found is None or (found["frames"], found["width"], found["height"]) != (
                row["frames"], row["width"], row["height"]) or abs(found["fps"] - row["out_fps"]) > 0.01:
            mismatched.append(f"{row['sample_id']}: {found}")
    routes = {c["clip_id"]: c["route"] for c in candidates}
    dirty = [r["sample_id"] for r in rows
             if routes.get(r["clip_id"]) != "train" or opted_out(r["source"], r["video_id"])]
    results = [
        _result(name(SCHEMA), schema_ok),
        _result(name(FOLLOWS_POLICY), not wrong, not_selected_by_policy=len(wrong),
                configured_at=f"policy.stages.{stage}", examples=str(wrong[:10])),
        _result(name(MEDIA_MATCHES), not mismatched, probed=min(8, len(rows)), mismatched=len(mismatched),
                examples=str(mismatched[:5])),
        _result(name(CLEAN_LINEAGE), not dirty, offending=len(dirty), examples=str(dirty[:10])),
    ]
    if rows:
        outcome = run_suite(stage, table.to_pandas(), [
            ("expect_column_values_to_be_between", {"column": "weight", "min_value": 0, "strict_min": True}),
            ("expect_column_values_to_be_between", {"column": "frames", "min_value": policy.min_frames,
                                                    "max_value": policy.max_frames}),
            ("expect_column_values_to_not_be_null", {"column": "caption"}),
        ])
        results.append(AssetCheckResult(check_name=name(DISTRIBUTIONS), passed=outcome.success,
                                        severity=AssetCheckSeverity.WARN,
                                        metadata={"failed": MetadataValue.md(outcome.failures_markdown())}))
    else:
        results.append(AssetCheckResult(check_name=name(DISTRIBUTIONS), passed=True,
                                        severity=AssetCheckSeverity.WARN, metadata={"evaluated": 0}))
    return results

