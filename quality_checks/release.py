"""Audit of a release on its branch: the manifest is every stage sample, each media file present,
and every sample still stands on the tables of the same commit.

The second check is what makes a rollback safe: after `vcurate rollback scored <s>` the stage
tables of that partition were built on the newer scored table. A sample whose clip is no longer
routed to train, was opted out, or lost its QC-passed caption (or whose caption changed) on the
release commit is stale, and the release refuses to tag until the stages are materialized again.
"""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSpec

from quality_checks.check_results import check_result, check_spec
from quality_checks.policy.stages import StagesPolicy
from resources.optout import OptOutRegistry

RELEASE_COMPLETE = "release_manifest_complete"
RELEASE_CURRENT = "release_samples_current"


def release_check_specs(asset: str = "release") -> list[AssetCheckSpec]:
    return [
        check_spec(asset, RELEASE_COMPLETE, "The release manifest holds exactly the samples of every "
                   "stage manifest on the tagged commit, each media file present."),
        check_spec(asset, RELEASE_CURRENT, "Every sample's clip, on the same commit, is routed to train "
                   "by scored, is not opted out, and has the QC-passed caption the sample carries "
                   "(after a rollback: materialize the stages of the partition again)."),
    ]


def stale_reason(sample: dict, scored: dict | None, captioned: dict | None, require_caption: bool,
                 optouts: OptOutRegistry) -> str | None:
    """Why a sample no longer stands on its clip's scored and captioned rows; None when it does."""
    if scored is None:
        return "clip not in scored"
    if scored["route"] != "train":
        return f"scored route is {scored['route']}"
    if optouts.for_source(sample["source"]) or optouts.for_video(
            sample["source"], sample["video_id"], scored.get("sha256") or "", sample["uri"]):
        return "opted out"
    if require_caption and (captioned is None or captioned["qc_status"] != "ok"):
        return f"caption QC is {captioned['qc_status'] if captioned else 'missing'}"
    variant = sample["caption_variant"]
    if variant != "none" and captioned is not None:
        current = captioned["original_text"] if variant == "original" else captioned.get(f"caption_{variant}")
        if current != sample["caption"]:
            return f"caption_{variant} changed since the sample was exported"
    return None


def evaluate_release_checks(rows: list[dict], stored: set[str], scored: dict[tuple[str, str], dict],
                            captioned: dict[tuple[str, str], dict], stages: StagesPolicy,
                            optouts: OptOutRegistry) -> list[AssetCheckResult]:
    """`rows`: the manifest's samples; `stored`: every object under sources/ on the branch;
    `scored` / `captioned`: rows of those tables on the same commit by (source, clip_id)."""
    missing = [r["media_path"] for r in rows if r["media_path"] not in stored]
    stale = {}
    for r in rows:
        key = (r["source"], r["clip_id"])
        reason = stale_reason(r, scored.get(key), captioned.get(key),
                              stages.stage(r["stage"]).require_caption, optouts)
        if reason:
            stale[f"{r['stage']}/{r['source']}/{r['clip_id']}"] = reason
    examples = "; ".join(f"{k}: {v}" for k, v in list(stale.items())[:5])
    return [check_result(RELEASE_COMPLETE, not missing, samples=len(rows), missing_media=len(missing),
                         examples=str(missing[:5])),
            check_result(RELEASE_CURRENT, not stale, stale_samples=len(stale), examples=examples or "none",
                         stale_sources=", ".join(sorted({k.split("/")[1] for k in stale})) or "none")]
