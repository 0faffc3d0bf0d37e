"""Audit of a release on its branch: the manifest is every stage sample, each media file present."""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSpec

from quality_checks.check_results import check_result, check_spec

RELEASE_COMPLETE = "release_manifest_complete"


def release_check_specs(asset: str = "release") -> list[AssetCheckSpec]:
    return [check_spec(asset, RELEASE_COMPLETE, "The release manifest holds exactly the samples of every "
                       "stage manifest on the tagged commit, each media file present.")]


def evaluate_release_checks(rows: list[dict], stored: set[str]) -> list[AssetCheckResult]:
    """`rows`: the manifest's samples; `stored`: every object under sources/ on the branch."""
    missing = [r["media_path"] for r in rows if r["media_path"] not in stored]
    return [check_result(RELEASE_COMPLETE, not missing, samples=len(rows), missing_media=len(missing),
                         examples=str(missing[:5]))]
