"""A rollback ships nothing stale: after `rollback scored` to a stricter commit, release refuses
the stage samples built on the newer table, until the stages are materialized again. The same
for a video opted out but not yet purged. Real lakeFS, real Dagster runs, real videos."""

from __future__ import annotations

from pathlib import Path

from dagster import materialize

from assets.common.layout import tier_path
from assets.release.asset import release
from assets.upkeep.rollback import rollback_tier
from tests.conftest import Pipeline
from tests.test_optout import EVERYTHING, POLICY, films_source, ingest

# Every clip of a CC0 source waits for review: a stricter policy than POLICY.
STRICT = POLICY.replace("licenses:\n  allowed: [CC0-1.0]\n",
                        "licenses:\n  allowed: [CC0-1.0]\n  review: [CC0-1.0]\n")


def _materialize(pipeline: Pipeline, registry: Path, selection: list) -> None:
    assert materialize(EVERYTHING, partition_key="films", selection=selection,
                       resources=pipeline.resources(registry), instance=pipeline.instance).success


def _try_release(pipeline: Pipeline, registry: Path):
    return materialize(EVERYTHING, selection=[release], resources=pipeline.resources(registry),
                       instance=pipeline.instance, raise_on_error=False)


def _release_check(result) -> dict:
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "release_samples_current"]
    return {"passed": check.passed, **{k: v.value for k, v in check.metadata.items()}}


def test_release_refuses_samples_a_rollback_made_stale(pipeline: Pipeline, workdir: Path):
    registry = films_source(pipeline, workdir, STRICT)
    policy = Path(pipeline.policy_path)
    lakefs = pipeline.lakefs

    pipeline.run(registry, "films")
    _materialize(pipeline, registry, EVERYTHING[1:3])  # clips, scored
    strict_commit = lakefs.head()
    assert set(lakefs.read_table(tier_path("films", "scored")).column("route").to_pylist()) <= {
        "review", "dropped", "blocked", "quarantined"}

    policy.write_text(POLICY)
    _materialize(pipeline, registry, EVERYTHING[2:-1])  # scored, captioned, stages
    samples = lakefs.read_table(tier_path("films", "stage_256p")).num_rows
    assert samples > 0

    rolled = rollback_tier.execute_in_process(
        run_config={"ops": {"rollback_partition": {"config": {
            "tier": "scored", "source": "films", "to_commit": strict_commit, "requested_by": "ana",
            "reason": "the loose licence review let unreviewed clips through"}}}},
        resources={"lakefs": lakefs}, instance=pipeline.instance)
    assert rolled.success
    head = lakefs.head()
    tags = {t.id for t in lakefs.repo().tags()}

    refused = _try_release(pipeline, registry)
    assert not refused.success
    check = _release_check(refused)
    assert not check["passed"] and check["stale_samples"] >= samples and check["stale_sources"] == "films"
    assert "scored route is review" in check["examples"]
    assert lakefs.head() == head and {t.id for t in lakefs.repo().tags()} == tags  # nothing released

    # The stages re-derived from the rolled-back scored table: the release goes through.
    _materialize(pipeline, registry, EVERYTHING[3:-1])  # captioned, stages
    assert lakefs.read_table(tier_path("films", "stage_256p")).num_rows == 0
    assert _try_release(pipeline, registry).success


def test_release_refuses_a_video_opted_out_but_not_purged(pipeline: Pipeline, workdir: Path):
    registry = films_source(pipeline, workdir)
    ingest(pipeline, registry)
    assert pipeline.lakefs.read_table(tier_path("films", "stage_256p")).num_rows > 0
    pipeline.optout_path.write_text(
        "videos:\n  - {uri: videos/bikes.mp4, reason: r, requested_at: 2026-12-03, requested_by: a@b}\n")
    refused = _try_release(pipeline, registry)
    assert not refused.success
    assert "opted out" in _release_check(refused)["examples"]
