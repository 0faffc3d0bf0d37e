"""Route clips into a stage from their stored scores and captions: which clips, which bucket,
which caption variant, what weight, and, for every clip left out, the first rule it failed.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from media.export.buckets import aspect_bucket, frame_bucket, stage_size
from quality_checks.policy.stages import QUALITY_RANK, StagePolicy


def sample_id_for(stage: str, clip_id: str, width: int, height: int, fps: float, frames: int) -> str:
    key = f"{stage}:{clip_id}:{width}x{height}:{fps:g}:{frames}"
    return "s" + hashlib.sha256(key.encode()).hexdigest()[:24]


def route_stage(stage: str, clips: list[dict[str, Any]], policy: StagePolicy
                ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """(samples, {clip_id: reason}) for one stage. `clips` are scored rows joined with their
    captioned row (caption fields None when the clip has no caption)."""
    rejected: dict[str, str] = {}
    eligible: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for clip in clips:
        reason = _first_failure(stage, clip, policy)
        if reason:
            rejected[clip["clip_id"]] = reason
            continue
        bucket = aspect_bucket(clip["width"], clip["height"])
        size = stage_size(clip["width"], clip["height"], policy.short_side, bucket)
        frames = frame_bucket(clip["duration_s"], policy.fps, policy.frame_rule,
                              min_frames=policy.min_frames, max_frames=policy.max_frames)
        if size is None:
            rejected[clip["clip_id"]] = f"short side below {stage}.short_side {policy.short_side}"
            continue
        if not frames:
            rejected[clip["clip_id"]] = (f"too short for {stage}.min_frames {policy.min_frames} "
                                         f"at {policy.fps:g} fps")
            continue
        eligible.append((clip, {"bucket_aspect": bucket, "width": size[0], "height": size[1],
                                "frames": frames}))

    if policy.top_quantile is not None and eligible:
        eligible.sort(key=lambda e: (-e[0]["technical_quality"], e[0]["clip_id"]))
        keep = max(1, int(round(len(eligible) * policy.top_quantile)))
        for clip, _ in eligible[keep:]:
            rejected[clip["clip_id"]] = f"below the top {policy.top_quantile:g} by technical_quality " \
                                        f"({stage}.top_quantile)"
        eligible = eligible[:keep]
    if policy.max_per_concept is not None:
        by_cluster: dict[int, list] = defaultdict(list)
        for entry in sorted(eligible, key=lambda e: (-e[0]["technical_quality"], e[0]["clip_id"])):
            by_cluster[entry[0]["concept_cluster"]].append(entry)
        eligible = []
        for cluster, entries in by_cluster.items():
            eligible.extend(entries[: policy.max_per_concept])
            for clip, _ in entries[policy.max_per_concept :]:
                rejected[clip["clip_id"]] = (f"concept cluster {cluster} is full "
                                             f"({stage}.max_per_concept {policy.max_per_concept})")

    samples = []
    for clip, shape in sorted(eligible, key=lambda e: (e[0]["video_id"], e[0]["start_frame"])):
        variant, caption = choose_caption(stage, clip, policy)
        weight = clip["weight"] * policy.concept_weights.get(clip["concept_cluster"], 1.0)
        samples.append({
            "sample_id": sample_id_for(stage, clip["clip_id"], shape["width"], shape["height"],
                                       policy.fps, shape["frames"]),
            "stage": stage, **{k: clip[k] for k in (
                "source", "video_id", "clip_id", "uri", "start_frame", "end_frame", "start_s",
                "duration_s", "fps", "concept_cluster", "technical_quality")},
            "source_width": clip["width"], "source_height": clip["height"],
            "caption": caption, "caption_variant": variant, **shape, "out_fps": policy.fps,
            "weight": round(weight, 4),
        })
    return samples, rejected


def _first_failure(stage: str, clip: dict[str, Any], p: StagePolicy) -> str | None:
    short = min(clip["width"], clip["height"])
    checks = (
        (clip["route"] != "train", f"scored route is {clip['route']}"),
        (short < p.short_side, f"short side {short} < {stage}.short_side {p.short_side}"),
        (not p.min_duration_s <= clip["duration_s"] <= p.max_duration_s,
         f"duration {clip['duration_s']:.2f} s outside {stage}.min_duration_s..max_duration_s"),
        (clip.get("motion_label", "moving") not in p.motion_labels,
         f"motion label {clip.get('motion_label')} not in {stage}.motion_labels"),
        (not p.min_motion <= clip["motion_mean"] <= p.max_motion,
         f"motion {clip['motion_mean']:.4f} outside {stage}.min_motion..max_motion"),
        (clip["text_ratio_max"] > p.max_text_ratio,
         f"text ratio {clip['text_ratio_max']:.3f} > {stage}.max_text_ratio {p.max_text_ratio}"),
        (QUALITY_RANK[clip["quality_label"]] < QUALITY_RANK[p.min_quality],
         f"quality {clip['quality_label']} below {stage}.min_quality {p.min_quality}"),
        (clip["technical_quality"] < p.min_technical_quality,
         f"technical_quality {clip['technical_quality']:.2f} < {stage}.min_technical_quality"),
        (clip["watermark_label"] not in p.watermark_labels,
         f"watermark label {clip['watermark_label']} not in {stage}.watermark_labels"),
        (p.require_caption and clip.get("qc_status") != "ok",
         f"no caption that passed QC ({clip.get('qc_status') or 'not captioned'}; {stage}.require_caption)"),
        (p.require_review and clip["review_status"] != "approved",
         f"review_status {clip['review_status']} ({stage}.require_review)"),
    )
    return next((reason for failed, reason in checks if failed), None)


def choose_caption(stage: str, clip: dict[str, Any], policy: StagePolicy) -> tuple[str, str]:
    """A caption variant drawn by the stage's mix (SD3-style), deterministic per (stage, clip);
    variants the clip lacks (no original text) are left out of the draw."""
    texts = {name: clip.get(f"caption_{name}") if name != "original" else clip.get("original_text")
             for name in policy.caption_mix}
    weights = {name: w for name, w in policy.caption_mix.items() if w > 0 and texts.get(name)}
    if not weights:
        return "none", ""
    draw = int(hashlib.sha256(f"{stage}:{clip['clip_id']}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    total, running = sum(weights.values()), 0.0
    for name, weight in sorted(weights.items()):
        running += weight / total
        if draw <= running:
            return name, str(texts[name])
    name = sorted(weights)[-1]
    return name, str(texts[name])
