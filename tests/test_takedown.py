"""A takedown removes every trace of a video: tried as a hostile user would, on a real lakeFS
with real Dagster runs and real videos. After opt-out + purge + a new release, every object on
`main`, in the new release tag and in the local cache is scanned for the video's content.

No object, cache entry or Dagster event names the video afterwards (video_id, sha256, uri,
clip ids): the refusal on record (raw_pool's `opted_out` row) and the audit's findings keep
digests of the identifiers, which whoever holds the opt-out entry can check and nobody else
can read back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from assets.common.layout import classify, route_sheet_path, tier_path
from assets.scored.rows import route_contact_sheets
from assets.upkeep.optout import audit_optout, purge_optout
from resources.config_files import ConfigError
from resources.lakefs import LakeFSResource
from resources.optout import OptOutRegistry, add_optout, load_optouts, redacted
from tests.conftest import Pipeline, write_registry
from tests.test_optout import _job, _release, films_source, ingest
from tests.video_factory import write_video


def _objects(lakefs: LakeFSResource, ref: str) -> dict[str, bytes]:
    return {p: lakefs.read_bytes(p, ref=ref) for p in lakefs.list_paths("", ref=ref)}


def _text_of(path: str, blob: bytes) -> str:
    """What a scan compares identifiers against: a table's decoded values (Parquet compresses
    strings, so its bytes would hide them), any other object's bytes as text."""
    if path.endswith(".parquet"):
        return str(pq.read_table(pa.BufferReader(blob)).to_pylist())
    return blob.decode("latin-1")


def _event_log(pipeline: Pipeline) -> str:
    """Every event of every run the instance holds, as text."""
    instance = pipeline.instance
    return "\n".join(str(record.event_log_entry) for run in instance.get_runs()
                     for record in instance.get_records_for_run(run.run_id, limit=100_000).records)


def _metadata_values(pipeline: Pipeline, key: str) -> list[str]:
    instance = pipeline.instance
    values = []
    for run in instance.get_runs():
        for record in instance.get_records_for_run(run.run_id, limit=100_000).records:
            event = record.event_log_entry.dagster_event
            if event is not None and event.is_step_materialization:
                entry = event.step_materialization_data.materialization.metadata.get(key)
                if entry is not None:
                    values.append(str(entry.value))
    return values


def test_a_takedown_leaves_nothing_of_the_video(
        pipeline: Pipeline, workdir: Path, blockstore: str):
    assert pipeline.lakefs.storage_namespace.startswith(f"{'s3' if blockstore == 's3' else 'local'}://")
    registry = films_source(pipeline, workdir, anim=True)
    ingest(pipeline, registry, ("films", "anim"))
    r1 = _release(pipeline, registry)
    lakefs = pipeline.lakefs
    raw = {r["uri"]: r for r in lakefs.read_table(tier_path("films", "raw_pool")).to_pylist()}
    bikes = raw["videos/bikes.mp4"]
    clips = [c for c in lakefs.read_table(tier_path("films", "clips")).to_pylist()
             if c["video_id"] == bikes["video_id"]]
    keyframes = {lakefs.read_bytes(k["path"]) for c in clips for k in c["keyframes"]}
    assert clips and keyframes
    scored_before = lakefs.read_table(tier_path("films", "scored"))
    sheet_routes = set(scored_before.column("route").to_pylist())
    captions = [c["caption_dense"] for c in lakefs.read_table(tier_path("films", "captioned")).to_pylist()
                if c["video_id"] == bikes["video_id"] and c["caption_dense"]]
    manifest_r1 = lakefs.read_table(f"releases/{r1}/manifest.parquet").to_pylist()
    assert any(r["video_id"] == bikes["video_id"] for r in manifest_r1)  # on main, not only the tag

    # The requester knows the file as `./videos/bikes.mp4`: normalised, it matches.
    add_optout(pipeline.optout_path, {"uri": "./videos/bikes.mp4", "source": "films",
                                      "reason": "creator request", "requested_at": "2026-12-03",
                                      "requested_by": "trust@lab"}, whole_source=False)
    resources = pipeline.resources(registry)
    delete_tags = {"ops": {"purge_optouts_op": {"config": {"delete_tags": True}}}}
    assert purge_optout.execute_in_process(
        instance=pipeline.instance, run_config=delete_tags,
        resources={k: resources[k] for k in ("lakefs", "optouts", "sources")}).success
    r2 = _release(pipeline, registry)

    identifiers = {bikes["video_id"], bikes["sha256"], bikes["uri"], *(c["clip_id"] for c in clips)}
    for ref in ("main", r2):
        objects = _objects(lakefs, ref)
        unknown = [p for p in objects if classify(p) is None]
        assert not unknown, f"objects lineage does not know on {ref}: {unknown}"
        for path, blob in objects.items():
            assert not any(k in blob for k in keyframes), f"{ref}:{path} holds a keyframe of the video"
            text = _text_of(path, blob)
            held = [i for i in identifiers if i in text]
            assert not held, f"{ref}:{path} still names {held}"
    # raw_pool keeps only the refusal: the row is opted_out, its identifiers digests that the
    # entry still matches (so the audit knows it honoured, not "matches nothing").
    refusal = {r["uri"]: r for r in lakefs.read_table(tier_path("films", "raw_pool")).to_pylist()}
    row = refusal[redacted("videos/bikes.mp4")]
    assert row["status"] == "opted_out" and row["sha256"] == redacted(bikes["sha256"])
    assert row["duration_s"] is None and row["bytes"] == 0
    assert load_optouts(pipeline.optout_path).unmatched(refusal.values()) == []
    findings = [p for p in lakefs.list_paths("audits/") if p.endswith("findings.parquet")]
    redacted_ids = {r["video_id"] for p in findings for r in lakefs.read_table(p).to_pylist()}
    assert redacted_ids == {redacted(bikes["video_id"])}

    # Aggregates that mixed the video with others were rebuilt without it.
    scored_after = lakefs.read_table(tier_path("films", "scored"))
    read = lakefs.read_bytes
    expected = route_contact_sheets(scored_after, read)
    for route in sheet_routes | set(expected):
        assert read(route_sheet_path("films", route)) == expected.get(route), route
    manifest_r1_main = lakefs.read_table(f"releases/{r1}/manifest.parquet").to_pylist()
    assert manifest_r1_main == [r for r in manifest_r1 if r["video_id"] != bikes["video_id"]]
    buckets = lakefs.read_table(f"releases/{r1}/buckets.parquet").to_pylist()
    assert sum(b["samples"] for b in buckets) == len(manifest_r1_main)
    # The old tag held the video: deleted (so lakeFS GC on S3 can collect it), and recorded.
    assert lakefs.resolve(r1) is None and r1 not in {t.id for t in lakefs.repo().tags()}
    deletions = [p for p in lakefs.list_paths("audits/") if p.endswith("deleted_tags.json")]
    assert len(deletions) == 1 and r1 in json.loads(lakefs.read_bytes(deletions[0]))["tags"]

    # The local cache: no entry of the video, no file holding its keyframes.
    cache = workdir / "cache"
    for entry in cache.rglob("*"):
        assert bikes["sha256"] not in str(entry) and bikes["video_id"] not in str(entry), entry
        if entry.is_file() and entry.stat().st_size < 50_000_000:
            blob = entry.read_bytes()
            assert not any(k in blob for k in keyframes), f"cache entry {entry} holds a keyframe"

    # The Dagster instance: its event log cannot be purged, so it never held source content.
    events = _event_log(pipeline)
    assert events and "bikes.mp4" not in events
    held = {i: events[max(0, events.find(i) - 200):events.find(i) + 80] for i in identifiers if i in events}
    assert not held, f"the Dagster event log names the video: {held}"
    assert not any(c[:60] in events for c in captions)
    for key in ("contact_sheets", "contact_sheet"):
        for value in _metadata_values(pipeline, key):
            assert "data:image" not in value, f"{key} inlines a picture"

    # Everyone else's data is intact and still released.
    others = lakefs.read_table(f"releases/{r2}/manifest.parquet", ref=r2).to_pylist()
    assert others and all(r["video_id"] != bikes["video_id"] for r in others)
    assert any(c["video_id"] != bikes["video_id"] for c in lakefs.read_table(tier_path("films", "clips"))
               .to_pylist())


def test_a_missing_optout_registry_fails_closed(pipeline: Pipeline, workdir: Path):
    write_video(workdir / "videos" / "a.mp4", seconds=2.0)
    registry = write_registry(workdir, [{"id": "films", "kind": "local", "uri": "videos",
                                         "license": "CC0-1.0"}])
    pipeline.optout_path = workdir / "no-such-optout.yaml"  # e.g. a mistyped VCURATE_OPTOUT
    result = pipeline.run(registry, "films", raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "opt-out registry not found" in failure.to_string()
    assert pipeline.lakefs.read_table(tier_path("films", "raw_pool")) is None  # nothing published


def test_registry_entries_are_normalised_or_refused(tmp_path: Path):
    path = tmp_path / "optout.yaml"
    stamp = {"reason": "r", "requested_at": "2026-12-03", "requested_by": "a@b"}
    add_optout(path, {"uri": "./videos//x.mp4", **stamp}, whole_source=False)
    add_optout(path, {"sha256": "AB" * 32, **stamp}, whole_source=False)
    stored = yaml.safe_load(path.read_text())["videos"]
    assert [v.get("uri") or v.get("sha256") for v in stored] == ["videos/x.mp4", "ab" * 32]
    for bad in ({"uri": "/abs/videos/x.mp4"}, {"uri": "../x.mp4"}, {"sha256": "1234"},
                {"video_id": "not-an-id"}):
        with pytest.raises(ConfigError):
            add_optout(path, {**bad, **stamp}, whole_source=False)
    registry = OptOutRegistry.model_validate({
        "sources": [{"source": "gone", **stamp}],
        "videos": [{"source": "films", "uri": "videos/x.mp4", **stamp}]})
    assert registry.unknown_sources(["films"]) == ["gone"]
    rows = [{"source": "films", "video_id": "v" + "0" * 32, "sha256": "0" * 64, "uri": "videos/y.mp4"}]
    assert registry.unmatched(rows) == ["uri videos/x.mp4 in films"]


def test_the_audit_reports_entries_that_match_nothing(pipeline: Pipeline, workdir: Path):
    write_video(workdir / "videos" / "a.mp4", seconds=2.0)
    registry = write_registry(workdir, [{"id": "films", "kind": "local", "uri": "videos",
                                         "license": "CC0-1.0"}])
    assert pipeline.run(registry, "films").success
    pipeline.optout_path.write_text(yaml.safe_dump({"videos": [
        {"uri": "videos/typo.mp4", "reason": "r", "requested_at": "2026-12-03", "requested_by": "a@b"}]}))
    audit = _job(audit_optout, pipeline, registry)
    event = audit.get_asset_materialization_events()[0]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    assert meta["unmatched_entries"] == 1
    assert "uri videos/typo.mp4 in any source: matches no video" in meta["report"]
    assert meta["derived_rows"] == 0
