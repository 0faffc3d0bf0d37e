"""Empty partitions publish cleanly in every tier (issue 16): a source whose videos yield no clip,
and one whose clips are all routed away from captioning, each run through the real lakeFS and
Dagster; an empty source never writes (nor trips on) the shared concept centroids."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import asset, materialize

from assets.captioned.asset import captioned
from assets.clips.asset import clips
from assets.common.charts import bar_png, histograms_png
from assets.common.layout import centroids_path, tier_path
from assets.common.publishing import commit_for_audit, publish_if_audited
from assets.common.tier import start_tier_wap
from assets.raw_pool.asset import raw_pool
from assets.release.asset import release
from assets.scored.asset import scored
from assets.stages.asset import stage_assets
from quality_checks.policy import Policy
from quality_checks.policy.stages import STAGES
from quality_checks.schemas import CAPTIONED_SCHEMA, CLIPS_SCHEMA, SCORED_SCHEMA, STAGE_SCHEMA
from resources.lakefs import LakeFSResource
from tests.conftest import Pipeline, write_registry
from tests.video_factory import write_cut_video, write_video

EVERYTHING = [raw_pool, clips, scored, captioned, *stage_assets, release]
PER_SOURCE = EVERYTHING[1:-1]  # clips .. the stages (raw_pool runs through pipeline.run)
SCHEMAS = {"clips": CLIPS_SCHEMA, "scored": SCORED_SCHEMA, "captioned": CAPTIONED_SCHEMA,
           **dict.fromkeys(STAGES, STAGE_SCHEMA)}
# what each tier's materialization must show even with no row (the charts included)
TIER_METADATA = {"clips": ("duration_histogram", "contact_sheets", "videos_analysed"),
                 "scored": ("score_histograms", "labels", "funnel", "contact_sheets", "route_train"),
                 "captioned": ("caption_length_histogram", "clips_routed", "qc_ok", "examples"),
                 **dict.fromkeys(STAGES, ("rejections", "buckets", "candidates", "total_weight"))}


def _centroids_file() -> str:
    concepts = Policy().scored.concepts
    return centroids_path(Policy().scored.dedup.embedder, concepts.k, concepts.seed)


def _failures(result) -> list[str]:
    """Why steps failed, so an assertion on `success` says it."""
    found = []
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error
        found.append(f"{event.step_key}: {(error.cause or error).message.strip()}")
    return found


def _metadata_by_asset(result) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for event in result.get_asset_materialization_events():
        name = event.materialization.asset_key.path[-1]
        assert name not in found, f"{name} materialized twice"
        found[name] = {k: v.value for k, v in event.materialization.metadata.items()}
    return found


def _assert_empty_tiers(pipeline: Pipeline, result, source: str, tiers: list[str]) -> None:
    """Every tier in `tiers` is on main with 0 rows and its schema, and reported its metadata."""
    assert result.success, _failures(result)
    for check in result.get_asset_check_evaluations():
        assert check.passed or not check.blocking, (check.asset_key, check.check_name, check.metadata)
    metadata = _metadata_by_asset(result)
    for tier in tiers:
        table = pipeline.lakefs.read_table(tier_path(source, tier))
        assert table is not None, f"{tier} {source}: no table on main"
        assert table.num_rows == 0, tier
        assert table.schema.equals(SCHEMAS[tier], check_metadata=False), tier
        meta = metadata[tier]
        assert meta["dagster/row_count"] == 0 and meta["published"] is True, tier
        assert meta["lakefs_commit"] and meta["lakefs_path"].endswith(tier_path(source, tier)), tier
        missing = [key for key in TIER_METADATA[tier] if key not in meta]
        assert not missing, (tier, missing)


def test_charts_of_nothing_are_placeholders():
    png = b"\x89PNG"
    assert histograms_png({"quality": [], "nsfw": [None, float("nan")], "motion": [0.5]}).startswith(png)
    assert histograms_png({}).startswith(png) and bar_png({}, "labels").startswith(png)


def test_source_without_clips_publishes_every_tier_and_keeps_centroids_sound(
        pipeline: Pipeline, workdir: Path):
    # 1.5 s passes raw_pool (min_duration_s 1.0) but is shorter than clips.min_clip_s (2.0)
    write_video(workdir / "tiny" / "short.mp4", seconds=1.5)
    write_cut_video(workdir / "videos" / "long.mp4", segment_seconds=(4.0,))
    registry = write_registry(workdir, [
        {"id": "tiny", "kind": "local", "uri": "tiny", "license": "CC0-1.0"},
        {"id": "normal", "kind": "local", "uri": "videos", "license": "CC0-1.0"},
    ])
    lakefs = pipeline.lakefs
    centroids = _centroids_file()

    pipeline.run(registry, "tiny")
    assert [r["status"] for r in lakefs.read_table(tier_path("tiny", "raw_pool")).to_pylist()] == ["accepted"]
    result = materialize(EVERYTHING, partition_key="tiny", selection=PER_SOURCE,
                         resources=pipeline.resources(registry), instance=pipeline.instance,
                         raise_on_error=False)
    _assert_empty_tiers(pipeline, result, "tiny", ["clips", "scored", "captioned", *STAGES])
    assert lakefs.read_table(centroids) is None, "an empty source must not write the shared centroids"

    # a release over nothing but empty stages is still a citable, tagged state
    released = materialize(EVERYTHING, selection=[release], resources=pipeline.resources(registry),
                           instance=pipeline.instance, raise_on_error=False)
    assert released.success, _failures(released)
    assert _metadata_by_asset(released)["release"]["dagster/row_count"] == 0

    # An empty centroids file left on main by the old code reads as absent, not as 0 clusters.
    branch = lakefs.repo().branch("main")
    empty = pa.table({"centroid": pa.array([], pa.list_(pa.float32()))})
    sink = pa.BufferOutputStream()
    pq.write_table(empty, sink)
    branch.object(centroids).upload(sink.getvalue().to_pybytes(), mode="wb", pre_sign=False)
    branch.commit("an empty centroids file, as the old code wrote it")

    pipeline.run(registry, "normal")
    result = materialize(EVERYTHING, partition_key="normal", selection=[clips, scored],
                         resources=pipeline.resources(registry), instance=pipeline.instance,
                         raise_on_error=False)
    assert result.success, _failures(result)
    rows = lakefs.read_table(tier_path("normal", "scored")).to_pylist()
    assert rows and all(r["concept_cluster"] is not None for r in rows)
    fitted = lakefs.read_table(centroids)
    assert fitted is not None and fitted.num_rows >= 1

    # The empty source scored again once centroids exist: nothing to fit, nothing overwritten.
    again = materialize(EVERYTHING, partition_key="tiny", selection=[scored],
                        resources=pipeline.resources(registry), instance=pipeline.instance,
                        raise_on_error=False)
    assert again.success, _failures(again)
    assert _metadata_by_asset(again)["scored"]["dagster/row_count"] == 0
    assert lakefs.read_table(centroids).equals(fitted)


def test_clips_none_routed_to_captioning_publish_empty_captioned_and_stages(
        pipeline: Pipeline, workdir: Path):
    write_cut_video(workdir / "videos" / "long.mp4", segment_seconds=(4.0,), first_scene=2)
    # a licence off the allowlist: every clip is quarantined, so none goes to captioning
    registry = write_registry(workdir, [{"id": "unlicensed", "kind": "local", "uri": "videos",
                                         "license": "unknown"}])
    pipeline.run(registry, "unlicensed")
    result = materialize(EVERYTHING, partition_key="unlicensed", selection=PER_SOURCE,
                         resources=pipeline.resources(registry), instance=pipeline.instance,
                         raise_on_error=False)
    scored_rows = pipeline.lakefs.read_table(tier_path("unlicensed", "scored")).to_pylist()
    assert scored_rows and {r["route"] for r in scored_rows} == {"quarantined"}
    _assert_empty_tiers(pipeline, result, "unlicensed", ["captioned", *STAGES])
    meta = _metadata_by_asset(result)
    assert meta["captioned"]["clips_routed"] == 0
    assert all(meta[stage]["candidates"] == len(scored_rows) for stage in STAGES)


def test_metadata_is_built_before_the_merge(lakefs_resource: LakeFSResource):
    """The shared tail builds a tier's metadata before it merges, reading the audited commit:
    metadata that fails leaves main untouched (and the branch for inspection)."""
    path = "probe/table.parquet"
    seen: list[int] = []

    def run(fail: bool):
        # `context` unannotated: Dagster cannot resolve a postponed annotation in a local function
        @asset(name="probe")
        def probe(context, lakefs: LakeFSResource):
            wap = start_tier_wap(context, lakefs, "probe", "probe-1", "hash", name="probe")
            table = pa.table({"x": [1, 2]})
            wap.write_table(path, table)
            committed, _ = commit_for_audit(wap, "probe: 2 rows", path, table)

            def metadata(ref: str) -> dict[str, object]:
                seen.append(lakefs.read_table(path, ref=ref).num_rows)  # what the merge publishes
                if fail:
                    raise RuntimeError("a chart failed")
                return {"rows_at_ref": seen[-1]}
            yield from publish_if_audited(context, lakefs, wap, "probe", committed, [], path, metadata,
                                          subject="probe")
        return materialize([probe], resources={"lakefs": lakefs_resource}, raise_on_error=False)

    head = lakefs_resource.head()
    failed = run(fail=True)
    assert not failed.success and "a chart failed" in " ".join(_failures(failed))
    assert lakefs_resource.head() == head and lakefs_resource.read_table(path) is None  # nothing merged
    assert lakefs_resource.branch_exists(f"wap-probe-probe-{failed.run_id[:8]}")
    assert seen == [2]
    published = run(fail=False)
    assert published.success, _failures(published)
    assert _metadata_by_asset(published)["probe"]["rows_at_ref"] == 2
    assert lakefs_resource.read_table(path).num_rows == 2
