"""What a proposed routing policy would change per stage, against the policy in force."""

from __future__ import annotations

from collections import Counter
from typing import Any

from quality_checks.policy import Policy
from quality_checks.policy.stages import STAGES
from quality_checks.routing.stages import route_stage


def preview_changes(candidates: dict[str, list[dict[str, Any]]], current: Policy,
                    proposed: Policy) -> list[dict[str, Any]]:
    """One row per clip whose membership of a stage would change: stage, source, clip_id,
    change ('in' | 'out'), the reason it leaves (the first rule it fails under the proposed
    policy) and the bucket it would join. `candidates`: per source, scored rows joined with
    their captions (as the stage tiers read them)."""
    changes = []
    for source, clips in sorted(candidates.items()):
        for stage in STAGES:
            before, _ = route_stage(stage, clips, current.stages.stage(stage))
            after, reasons = route_stage(stage, clips, proposed.stages.stage(stage))
            was = {s["clip_id"]: s for s in before}
            will = {s["clip_id"]: s for s in after}
            for clip_id in sorted(set(will) - set(was)):
                s = will[clip_id]
                changes.append({"stage": stage, "source": source, "clip_id": clip_id, "change": "in",
                                "reason": None,
                                "bucket": f"{s['bucket_aspect']} {s['width']}x{s['height']} {s['frames']}f"})
            for clip_id in sorted(set(was) - set(will)):
                changes.append({"stage": stage, "source": source, "clip_id": clip_id, "change": "out",
                                "reason": reasons.get(clip_id, "changed bucket or caption"), "bucket": None})
    return changes


def preview_markdown(changes: list[dict[str, Any]], current_hash: str, proposed_hash: str) -> str:
    lines = [f"# Policy preview: {current_hash} → {proposed_hash}", ""]
    if not changes:
        return "\n".join([*lines, "No stage would change."])
    lines += ["| stage | clips in | clips out |", "|---|---|---|"]
    for stage in STAGES:
        mine = [c for c in changes if c["stage"] == stage]
        lines.append(f"| {stage} | {sum(c['change'] == 'in' for c in mine)} | "
                     f"{sum(c['change'] == 'out' for c in mine)} |")
    out = Counter((c["stage"], c["reason"].split(" (")[0]) for c in changes if c["change"] == "out")
    joined = Counter((c["stage"], c["bucket"]) for c in changes if c["change"] == "in")
    if out:
        lines += ["", "**Out, by reason**", ""] + [f"- {s}: {r}: {n}" for (s, r), n in out.most_common()]
    if joined:
        lines += ["", "**In, by bucket**", ""] + [f"- {s}: {b}: {n}" for (s, b), n in sorted(joined.items())]
    return "\n".join(lines)
