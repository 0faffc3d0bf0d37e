"""Layered governance labels: four decisions with their reasons, never one aggregate score.

1. safety      safe | borderline | unsafe           (unsafe: blocked, borderline: review)
2. provenance  allowed | review | quarantined        (licence allowlist; unknown: quarantine)
3. watermark   clean | small_text | subtitles | heavy_text | watermark   (heavy/watermark: drop)
4. quality     high | medium | low                   (routes and weights only, never drops)

Beside them, `motion_label` (frozen | static | moving) describes the picture; it routes nothing
here, the stages take the labels their policy lists (frozen is left out by default).

`route` is what later tiers obey: train (eligible for stages, at `weight`), review (held
until a person approves), dropped (duplicate, text/watermark interference, or rejected in
review), blocked (safety) or quarantined (provenance). Every reason names the policy field it
applied.
"""

from __future__ import annotations

import math
from typing import Any

from quality_checks.policy import Policy
from quality_checks.routing.reviews import decided

APPROVED = "approved in review"
ROUTES = ("train", "review", "dropped", "blocked", "quarantined")
REVIEW_STATUSES = ("not_required", "needs_review", "approved", "rejected")


def govern(row: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """Labels, reasons, review status, route and weight for one scored clip row. A review
    decision the row carries (quality_checks/routing/reviews.py) is honoured: an approval
    resolves the doubts that sent the clip to review, a rejection drops it."""
    decision = decided(row)
    labels = _layers(row, policy, approved=False)
    review = _review_reasons(labels)
    approved = decision == "approved" and bool(review)
    if approved:  # the person resolved every doubt: each layer takes its next rule
        labels = _layers(row, policy, approved=True)
    if approved or decision == "rejected":
        labels["review_status"], labels["review_reason"] = decision, row["review_reason"]
        review = []
    else:
        labels["review_status"] = "needs_review" if review else "not_required"
        labels["review_reason"] = "; ".join(review) or None

    reasons: list[str] = []
    if labels["safety_label"] == "unsafe":
        route = "blocked"
        reasons.append(labels["safety_reason"])
    elif labels["provenance_label"] == "quarantined":
        route = "quarantined"
        reasons.append(labels["provenance_reason"])
    elif row.get("duplicate_of"):
        route = "dropped"
        reasons.append(f"duplicate of {row['duplicate_of']} ({row['duplicate_match']}, "
                       f"similarity {row['duplicate_similarity']:.3f}; policy.scored.dedup)")
    elif labels["watermark_label"] in ("heavy_text", "watermark") or (
            labels["watermark_label"] == "subtitles" and policy.scored.text.drop_subtitles):
        route = "dropped"
        reasons.append(labels["watermark_reason"])
    elif decision == "rejected":
        route = "dropped"
        reasons.append(f"rejected in review: {row['review_reason']}")
    elif review:
        route = "review"
        reasons.extend(review)
    else:
        route = "train"
    weight = policy.scored.quality.weights[labels["quality_label"]]
    if labels["watermark_label"] in ("small_text", "subtitles"):
        weight *= policy.scored.text.small_text_weight
    labels.update(route=route, route_reasons=reasons, weight=round(weight, 4) if route == "train" else 0.0)
    return labels


def _layers(row: dict[str, Any], policy: Policy, approved: bool) -> dict[str, Any]:
    return {**_safety(row, policy, approved), **_provenance(row, policy, approved),
            **_watermark(row, policy, approved), **_quality(row, policy), **_motion(row, policy)}


def _review_reasons(labels: dict[str, Any]) -> list[str]:
    return [r for flag, r in ((labels["safety_label"] == "borderline", labels["safety_reason"]),
                              (labels["provenance_label"] == "review", labels["provenance_reason"]),
                              (labels["watermark_label"] == "watermark_review", labels["watermark_reason"]))
            if flag]


def _safety(row: dict[str, Any], policy: Policy, approved: bool = False) -> dict[str, Any]:
    rules, score = policy.scored.safety, row["nsfw_max"]
    if score >= rules.block_at:
        blocking = photographic_nsfw_max(row, rules.drawn_at) if rules.drawn_guard else score
        if blocking >= rules.block_at:
            return {"safety_label": "unsafe",
                    "safety_reason": f"nsfw {blocking:.3f} >= policy.scored.safety.block_at {rules.block_at}"}
        # Only drawn keyframes score that high: OpenNSFW misreads flat-coloured drawings, so a
        # person decides (never train unreviewed, never blocked on the model's word alone).
        reason = (f"nsfw {score:.3f} >= policy.scored.safety.block_at {rules.block_at} on drawn "
                  f"keyframes only (drawn_score >= policy.scored.safety.drawn_at {rules.drawn_at}): "
                  "review, not blocked")
        if approved:
            return {"safety_label": "safe", "safety_reason": f"{reason}; {APPROVED}"}
        return {"safety_label": "borderline", "safety_reason": reason}
    if score >= rules.review_at:
        reason = f"nsfw {score:.3f} >= policy.scored.safety.review_at {rules.review_at}"
        if approved:
            return {"safety_label": "safe", "safety_reason": f"{reason}; {APPROVED}"}
        return {"safety_label": "borderline", "safety_reason": reason}
    return {"safety_label": "safe", "safety_reason": None}


def photographic_nsfw_max(row: dict[str, Any], drawn_at: float) -> float:
    """The highest OpenNSFW score among a clip's keyframes that are not drawings (drawn_score
    below `drawn_at`, or not measured); `nsfw_max` when the row has no per-keyframe scores."""
    scores, drawn = row.get("keyframe_nsfw"), row.get("keyframe_drawn")
    if not scores or drawn is None or len(drawn) != len(scores):
        return float(row["nsfw_max"])
    return max((float(s) for s, d in zip(scores, drawn, strict=True) if d is None or d < drawn_at),
               default=0.0)


def _provenance(row: dict[str, Any], policy: Policy, approved: bool = False) -> dict[str, Any]:
    license_id = row["license"]
    if license_id in policy.licenses.review:
        reason = f"license {license_id} is in policy.licenses.review"
        if approved:
            return {"provenance_label": "allowed", "provenance_reason": f"{reason}; {APPROVED}"}
        return {"provenance_label": "review", "provenance_reason": reason}
    if license_id in policy.licenses.allowed:
        return {"provenance_label": "allowed", "provenance_reason": None}
    return {"provenance_label": "quarantined",
            "provenance_reason": f"license {license_id} is not in policy.licenses.allowed"}


def _watermark(row: dict[str, Any], policy: Policy, approved: bool = False) -> dict[str, Any]:
    text, mark = policy.scored.text, policy.scored.watermark
    ratio, box = row["text_ratio_max"], row["text_box_max_fraction"]
    where = "text"
    if row["subtitle_band"] and not text.drop_subtitles:  # kept at small_text_weight: only text
        ratio = row.get("text_ratio_outside_subtitles_max", ratio)  # off the band is heavy
        box = row.get("text_box_outside_subtitles_max_fraction", box)
        where = "text outside the subtitles"
    if row["watermark_score"] >= mark.drop_at:
        return {"watermark_label": "watermark",
                "watermark_reason": f"watermark {row['watermark_score']:.2f} "
                                    f">= policy.scored.watermark.drop_at {mark.drop_at}"}
    if ratio > text.drop_ratio:
        return {"watermark_label": "heavy_text",
                "watermark_reason": f"{where} covers {ratio:.3f} of the frame "
                                    f"> policy.scored.text.drop_ratio {text.drop_ratio}"}
    if box > text.drop_box_fraction:
        return {"watermark_label": "heavy_text",
                "watermark_reason": f"a box of {where} covers {box:.3f} of the frame "
                                    f"> policy.scored.text.drop_box_fraction {text.drop_box_fraction}"}
    if row["watermark_score"] >= mark.review_at and not approved:  # approved: no watermark seen
        return {"watermark_label": "watermark_review",
                "watermark_reason": f"watermark {row['watermark_score']:.2f} "
                                    f">= policy.scored.watermark.review_at {mark.review_at}"}
    if row["subtitle_band"]:
        return {"watermark_label": "subtitles",
                "watermark_reason": "text persists in the bottom third (subtitles)"
                                    + ("; policy.scored.text.drop_subtitles" if text.drop_subtitles else "")}
    if ratio > text.small_ratio:
        return {"watermark_label": "small_text",
                "watermark_reason": f"text covers {ratio:.3f} of the frame "
                                    f"> policy.scored.text.small_ratio {text.small_ratio}"}
    return {"watermark_label": "clean", "watermark_reason": None}


MOTION_LABELS = ("frozen", "static", "moving")


def _motion(row: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """frozen | static | moving from stored motion and camera signals (routes nothing here:
    the stages take the labels their policy lists)."""
    rules = policy.scored.motion
    camera, most = row.get("camera_motion", "static"), row.get("motion_max")
    if camera != "static":
        return {"motion_label": "moving", "motion_reason": f"camera {camera}"}
    speed = max(math.hypot(row.get("camera_pan_speed", 0.0), row.get("camera_tilt_speed", 0.0)),
                abs(row.get("camera_zoom_speed", 0.0)))
    if most is not None and most < rules.frozen_below and speed < rules.frozen_camera_speed:
        return {"motion_label": "frozen",
                "motion_reason": f"camera static, motion_max {most:.4f} < policy.scored.motion.frozen_below "
                                 f"{rules.frozen_below}, camera speed {speed:.4f} < frozen_camera_speed "
                                 f"{rules.frozen_camera_speed}"}
    return {"motion_label": "static", "motion_reason": "camera static"}


def _quality(row: dict[str, Any], policy: Policy) -> dict[str, Any]:
    rules = policy.scored.quality
    technical, aesthetic = row["technical_quality"], row.get("aesthetic")
    if technical < rules.low_below or (aesthetic is not None and aesthetic < rules.aesthetic_low_below):
        label = "low"
    elif technical >= rules.high_at and (aesthetic is None or aesthetic >= rules.aesthetic_high_at):
        label = "high"
    else:
        label = "medium"
    reason = (f"technical_quality {technical:.2f} (policy.scored.quality.low_below {rules.low_below}, "
              f"high_at {rules.high_at})")
    if aesthetic is not None:
        reason += (f", aesthetic {aesthetic:.2f} (aesthetic_low_below {rules.aesthetic_low_below}, "
                   f"aesthetic_high_at {rules.aesthetic_high_at})")
    return {"quality_label": label, "quality_reason": reason}
