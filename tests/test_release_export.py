"""Release exports: WebDataset shards per bucket, CSV / JSONL, the export ledger and the audit of it,
and the bucketed loader (weights, ranks, resume), first on generated samples, then end to end on a
release built by real Dagster runs on a real lakeFS."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from itertools import zip_longest
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
import yaml
from dagster import materialize

from assets.common.layout import export_prefix, export_samples_path, release_manifest_path, tier_path
from assets.release.asset import release
from assets.upkeep.export import LEDGER_ENV, export_release_job, export_tag, read_ledger
from assets.upkeep.optout import audit_optout, purge_optout
from media.decode.probe import probe_video_file
from media.export.loader import BucketedVideoDataset, Member, decode_mp4, plan_epoch, scan_export
from media.export.release_export import bucket_name, export_release
from orchestration import cli
from resources.lakefs import LakeFSResource
from tests.conftest import ACCESS_KEY, SECRET_KEY, Pipeline
from tests.test_optout import EVERYTHING, films_source, ingest
from tests.video_factory import write_video


def _samples(root: Path) -> tuple[list[dict], dict, dict[str, bytes]]:
    """Seven generated samples in two buckets (64x48 x 9 frames, 48x64 x 17 frames)."""
    rows, captions, media = [], {}, {}
    for i in range(7):
        wide = i < 4
        width, height, frames = (64, 48, 9) if wide else (48, 64, 17)
        sid = f"s{i:024x}"
        path = write_video(root / f"{sid}.mp4", seconds=frames / 8, fps=8, width=width, height=height, seed=i)
        media[sid] = path.read_bytes()
        rows.append({"sample_id": sid, "stage": "stage_256p", "source": "films", "video_id": f"v{i % 3}",
                     "clip_id": f"c{i}", "caption": f"clip {i} — ünïcode", "caption_variant": "short",
                     "bucket_aspect": "4:3" if wide else "3:4", "width": width, "height": height,
                     "frames": frames, "out_fps": 8.0, "weight": 0.5 + i, "media_path": sid})
        captions[("films", f"c{i}")] = {"caption_short": f"clip {i} — ünïcode", "caption_medium": f"m{i}",
                                        "caption_dense": f"d{i}", "caption_assembled": f"a{i}",
                                        "original_text": None}
    return rows, captions, media


def _export(rows, captions, media, out: Path, fmt: str, per_shard: int = 3):
    return export_release(rows, captions, lambda ordered: (media[r["media_path"]] for r in ordered), out,
                          fmt, "release-20261121-1", "ab" * 32, per_shard)


def test_webdataset_export_reads_back_with_webdataset_and_the_loader(tmp_path: Path):
    rows, captions, media = _samples(tmp_path / "src")
    summary = _export(rows, captions, media, tmp_path / "wds", "webdataset")
    index = json.loads((tmp_path / "wds" / "index.json").read_text())
    assert index["release_tag"] == "release-20261121-1" and index["manifest_sha256"] == "ab" * 32
    assert {b: e["samples"] for b, e in index["buckets"].items()} == {
        "stage_256p-4x3-64x48-9f": 4, "stage_256p-3x4-48x64-17f": 3}
    assert [s["samples"] for s in index["buckets"]["stage_256p-4x3-64x48-9f"]["shards"]] == [3, 1]
    shards = [str(tmp_path / "wds" / s["path"]) for e in index["buckets"].values() for s in e["shards"]]
    read = {s["__key__"]: s for s in wds.WebDataset(shards, shardshuffle=False, empty_check=False)}
    assert set(read) == {r["sample_id"] for r in rows} and summary.samples == 7
    for row in rows:
        sample = read[row["sample_id"]]
        meta = json.loads(sample["json"])
        assert sample["mp4"] == media[row["sample_id"]]
        assert meta["caption"] == row["caption"]
        assert meta["captions"]["caption_dense"] == f"d{row['clip_id'][1:]}"
        assert meta["weight"] == row["weight"] and meta["bucket"]["name"] == bucket_name(row)
        assert decode_mp4(sample["mp4"]).shape == (row["frames"], row["height"], row["width"], 3)
    with pytest.raises(FileExistsError):  # an export never mixes with another
        _export(rows, captions, media, tmp_path / "wds", "webdataset")
    _export(rows, captions, media, tmp_path / "again", "webdataset")
    assert all((tmp_path / "again" / p).read_bytes() == (tmp_path / "wds" / p).read_bytes()
               for p in (Path(s).relative_to(tmp_path / "wds") for s in shards))  # deterministic shards

    loader = BucketedVideoDataset(tmp_path / "wds", batch_size=2, seed=3)
    batches = list(loader)
    assert sorted(k for b in batches for k in b["key"]) == sorted(r["sample_id"] for r in rows)
    by_id = {r["sample_id"]: r for r in rows}
    for batch in batches:  # homogeneous: one bucket, one shape, so the batch stacks
        assert {bucket_name(by_id[k]) for k in batch["key"]} == {batch["bucket"]}
        first = by_id[batch["key"][0]]
        shape = (len(batch["key"]), first["frames"], first["height"], first["width"], 3)
        assert batch["video"].shape == shape
        assert batch["video"].dtype == np.uint8
        assert batch["caption"] == [by_id[k]["caption"] for k in batch["key"]]
    assert [b["key"] for b in BucketedVideoDataset(tmp_path / "wds", batch_size=2, seed=3)] == \
        [b["key"] for b in batches]  # the seed fixes the plan

    ranks = [[k for b in BucketedVideoDataset(tmp_path / "wds", 2, seed=3, rank=r, world_size=2)
              for k in b["key"]] for r in (0, 1)]
    assert not set(ranks[0]) & set(ranks[1]) and sorted(ranks[0] + ranks[1]) == sorted(by_id)

    first = BucketedVideoDataset(tmp_path / "wds", batch_size=2, seed=3)
    seen = [next(iter(first))["key"]]
    state = first.state_dict()
    resumed = BucketedVideoDataset(tmp_path / "wds", batch_size=2, seed=3)
    resumed.load_state_dict(state)
    assert seen + [b["key"] for b in resumed] == [b["key"] for b in batches]
    assert [b["key"] for b in BucketedVideoDataset(tmp_path / "wds", 2, seed=3, start=2)] == \
        [b["key"] for b in batches[2:]]


def test_weighted_plan_follows_the_weights():
    members = [Member(f"k{i}", "b", Path("x"), (0, 0), {"weight": w}) for i, w in enumerate((1.0, 9.0))]
    drawn = [i for batch in plan_epoch(members, 1, seed=0, epoch=0, replacement=True, num_samples=2000)
             for i in batch]
    assert 0.85 < drawn.count(1) / len(drawn) < 0.95  # in proportion to weight
    firsts = [plan_epoch(members, 1, seed=s, epoch=0)[0][0] for s in range(400)]
    assert firsts.count(1) / 400 > 0.8  # without replacement: heavier first, each once
    even = plan_epoch(members * 3, 2, 0, 0, drop_last=True)
    assert all(len(b) == 2 for b in even)


def test_a_clip_off_its_bucket_is_an_error_not_a_ragged_batch(tmp_path: Path):
    rows, captions, media = _samples(tmp_path / "src")
    media[rows[0]["sample_id"]] = write_video(tmp_path / "short.mp4", seconds=1.0, fps=8, width=64,
                                              height=48).read_bytes()  # 8 frames, the bucket says 9
    _export(rows, captions, media, tmp_path / "wds", "webdataset")
    with pytest.raises(ValueError, match=f"sample {rows[0]['sample_id']}.*expected 9"):
        list(BucketedVideoDataset(tmp_path / "wds", batch_size=4, seed=0))


def test_csv_and_jsonl_exports_use_trainer_columns(tmp_path: Path):
    rows, captions, media = _samples(tmp_path / "src")
    for fmt in ("csv", "jsonl"):
        _export(rows, captions, media, tmp_path / fmt, fmt)
        table = tmp_path / fmt / f"samples.{fmt}"
        lines = (list(csv.DictReader(table.open(encoding="utf-8"))) if fmt == "csv"
                 else [json.loads(line) for line in table.read_text(encoding="utf-8").splitlines()])
        assert len(lines) == 7
        for line in lines:
            row = next(r for r in rows if r["sample_id"] == line["sample_id"])
            assert Path(line["path"]).read_bytes() == media[row["sample_id"]]
            assert line["caption"] == line["text"] == row["caption"]
            assert int(line["frames"]) == int(line["num_frames"]) == row["frames"]
            assert (int(line["height"]), int(line["width"])) == (row["height"], row["width"])
            assert float(line["aspect_ratio"]) == pytest.approx(row["height"] / row["width"], abs=1e-5)
            assert float(line["fps"]) == 8.0
        index = json.loads((tmp_path / fmt / "index.json").read_text())
        assert index["table"] == f"samples.{fmt}" and index["samples"] == 7
        if fmt == "jsonl":
            assert lines[0]["captions"]["caption_medium"].startswith("m") and lines[0]["video_id"]
    with pytest.raises(ValueError, match="loader reads webdataset"):
        scan_export(tmp_path / "csv")


def _release(pipeline: Pipeline, registry: Path) -> str:
    result = materialize(EVERYTHING, selection=[release], resources=pipeline.resources(registry),
                         instance=pipeline.instance)
    return result.get_asset_materialization_events()[0].materialization.metadata["release_tag"].value


def _export_job(pipeline: Pipeline, registry: Path, tag: str, fmt: str, to: Path,
                raise_on_error: bool = True):
    resources = pipeline.resources(registry)
    return export_release_job.execute_in_process(
        run_config={"ops": {"export_release_op": {"config": {"tag": tag, "format": fmt, "to": str(to),
                                                             "max_samples_per_shard": 2}}}},
        resources={"lakefs": resources["lakefs"], "sources": resources["sources"]},
        instance=pipeline.instance, raise_on_error=raise_on_error)


def _cli_env(pipeline: Pipeline, registry: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lakefs = pipeline.lakefs
    for key, value in {
        "LAKECTL_SERVER_ENDPOINT_URL": lakefs.endpoint, "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": ACCESS_KEY,
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": SECRET_KEY, "VCURATE_LAKEFS_REPOSITORY": lakefs.repository,
        "VCURATE_LAKEFS_STORAGE_NAMESPACE": lakefs.storage_namespace, "VCURATE_SOURCES": str(registry),
        "VCURATE_POLICY": pipeline.policy_path, "VCURATE_OPTOUT": str(pipeline.optout_path),
        "VCURATE_CACHE_DIR": str(workdir / "cache"), "VCURATE_S3_ENDPOINT_URL": lakefs.endpoint,
        "VCURATE_S3_ACCESS_KEY_ID": ACCESS_KEY, "VCURATE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "VCURATE_S3_REGION": "us-east-1", "DAGSTER_HOME": str(workdir / "dagster")}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(workdir)


def test_export_release_end_to_end_ledger_and_audit(pipeline: Pipeline, workdir: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]):
    ledger = workdir / "ledger" / "exports.jsonl"
    monkeypatch.setenv(LEDGER_ENV, str(ledger))
    registry = films_source(pipeline, workdir)
    ingest(pipeline, registry)
    tag = _release(pipeline, registry)
    lakefs = pipeline.lakefs
    manifest = lakefs.read_table(release_manifest_path(tag), ref=tag).to_pylist()
    assert manifest

    out = workdir / "export"
    result = _export_job(pipeline, registry, tag, "webdataset", out)
    event = result.get_asset_materialization_events()[0]
    meta = {k: v.value for k, v in event.materialization.metadata.items()}
    assert meta["samples"] == len(manifest) and meta["release_tag"] == tag
    index = json.loads((out / "index.json").read_text())
    assert index["manifest_sha256"] == hashlib.sha256(
        lakefs.read_bytes(release_manifest_path(tag), ref=tag)).hexdigest()
    shards = [str(out / s["path"]) for e in index["buckets"].values() for s in e["shards"]]
    read = {s["__key__"]: s for s in wds.WebDataset(shards, shardshuffle=False, empty_check=False)}
    assert set(read) == {r["sample_id"] for r in manifest}  # every sample of the release
    captioned_rows = {r["clip_id"]: r for r in lakefs.read_table(tier_path("films", "captioned"), ref=tag)
                      .to_pylist()}
    for row in manifest:
        sample = read[row["sample_id"]]
        record = json.loads(sample["json"])
        assert sample["mp4"] == lakefs.read_bytes(row["media_path"], ref=tag)
        (workdir / "probe.mp4").write_bytes(sample["mp4"])
        probed = probe_video_file(workdir / "probe.mp4")
        assert (probed.width, probed.height, probed.frame_count) == \
            (row["width"], row["height"], row["frames"])
        assert record["caption"] == row["caption"] and record["weight"] == row["weight"]
        clip = captioned_rows[row["clip_id"]]
        assert record["captions"] == {k: clip[k] for k in ("caption_short", "caption_medium", "caption_dense",
                                                           "caption_assembled", "original_text")}
        assert {k: record[k] for k in ("source", "video_id", "clip_id", "sample_id")} == \
            {k: row[k] for k in ("source", "video_id", "clip_id", "sample_id")}
    loaded = {k: b for b in BucketedVideoDataset(out, batch_size=2, seed=1) for k in b["key"]}
    assert set(loaded) == set(read)
    for row in manifest:
        batch = loaded[row["sample_id"]]
        assert batch["video"].shape[1:] == (row["frames"], row["height"], row["width"], 3)

    ranks = [{k for b in BucketedVideoDataset(out, 1, seed=1, rank=r, world_size=2) for k in b["key"]}
             for r in (0, 1)]
    assert not ranks[0] & ranks[1] and ranks[0] | ranks[1] == set(read)
    whole = [b["key"] for b in BucketedVideoDataset(out, 1, seed=1)]
    assert [b["key"] for b in BucketedVideoDataset(out, 1, seed=1, start=1)] == whole[1:]

    result = _export_job(pipeline, registry, tag, "csv", workdir / "export-csv")
    assert result.success
    _cli_env(pipeline, registry, workdir, monkeypatch)
    assert cli.main(["export", tag, "--format", "jsonl", "--to", "export-jsonl"]) == 0  # relative to cwd
    assert f"export {tag} (jsonl): {len(manifest)} samples" in capsys.readouterr().out
    entries = read_ledger(ledger)
    assert [(e["tag"], e["format"], e["destination"]) for e in entries] == [
        (tag, "webdataset", str(out.resolve())), (tag, "csv", str((workdir / "export-csv").resolve())),
        (tag, "jsonl", str((workdir / "export-jsonl").resolve()))]
    assert sorted(entries[0]["sample_ids"]) == sorted(r["sample_id"] for r in manifest)
    assert entries[0]["manifest_sha256"] == index["manifest_sha256"]
    assert not _export_job(pipeline, registry, "release-19990101-1", "csv", workdir / "nope",
                           raise_on_error=False).success

    # Into lakeFS (write-audit-publish; the purge reaches it) and to an S3 bucket (the ledger names it).
    in_lakefs = _export_job(pipeline, registry, tag, "webdataset", "lakefs")
    kept = lakefs.list_paths(export_prefix(tag, "webdataset"))
    assert export_samples_path(tag, "webdataset") in kept and any(p.endswith(".tar") for p in kept)
    assert lakefs.read_table(export_samples_path(tag, "webdataset")).num_rows == len(manifest)
    assert in_lakefs.output_for_node("export_release_op").startswith(f"lakefs://{lakefs.repository}/")
    bucket = f"{lakefs.repository}-exp"
    LakeFSResource(**{**lakefs.model_dump(), "repository": bucket,
                      "storage_namespace": f"local://{bucket}"}).create_repository()
    assert _export_job(pipeline, registry, tag, "jsonl", f"s3://{bucket}/main/train/").success
    listed = pipeline.s3.get_client().list_objects_v2(Bucket=bucket, Prefix="main/train/")["Contents"]
    assert any(o["Key"] == "main/train/index.json" for o in listed)
    assert read_ledger(ledger)[-1]["destination"] == f"s3://{bucket}/main/train/"

    bikes = next(r["video_id"] for r in manifest if r["uri"].endswith("bikes.mp4"))
    (workdir / "optout.yaml").write_text(yaml.safe_dump({"videos": [{
        "uri": "videos/bikes.mp4", "source": "films", "reason": "creator request",
        "requested_at": "2026-11-21", "requested_by": "trust@lab"}]}))
    resources = pipeline.resources(registry)
    audit = audit_optout.execute_in_process(instance=pipeline.instance, resources={
        "lakefs": resources["lakefs"], "optouts": resources["optouts"]})
    report = audit.get_asset_materialization_events()[0].materialization.metadata["report"].value
    opted = sum(r["video_id"] == bikes for r in manifest)
    assert opted and str(out.resolve()) in report and str((workdir / "export-csv").resolve()) in report
    assert f"{opted} opted-out sample" in report and f"s3://{bucket}/main/train/" in report

    purged = purge_optout.execute_in_process(instance=pipeline.instance, resources={
        k: resources[k] for k in ("lakefs", "optouts", "sources")})
    assert purged.success
    assert lakefs.list_paths(export_prefix(tag, "webdataset")) == []  # the export held it: gone whole


def test_workers_split_a_rank_round_robin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """DataLoader serves workers in turn, so worker w taking batches w, w+W, ... keeps the plan's
    order; resuming from a position keeps that too."""
    import media.export.loader as loader

    rows, captions, media = _samples(tmp_path / "src")
    _export(rows, captions, media, tmp_path / "wds", "webdataset")
    whole = [b["key"] for b in BucketedVideoDataset(tmp_path / "wds", batch_size=1, seed=5)]
    for start in (0, 3):
        per_worker = []
        for worker in (0, 1):
            monkeypatch.setattr(loader, "_worker_info", lambda w=worker: SimpleNamespace(id=w, num_workers=2))
            dataset = BucketedVideoDataset(tmp_path / "wds", 1, seed=5, start=start)
            per_worker.append([b["key"] for b in dataset])
        interleaved = [k for pair in zip_longest(*per_worker) for k in pair if k is not None]
        assert interleaved == whole[start:]


def test_torch_dataloader_with_workers(tmp_path: Path):
    """Where torch is installed (`./dev test` installs it with the model extras) the dataset is a
    torch IterableDataset: DataLoader workers serve the same batches in the same order."""
    torch = pytest.importorskip("torch")
    rows, captions, media = _samples(tmp_path / "src")
    _export(rows, captions, media, tmp_path / "wds", "webdataset")
    dataset = BucketedVideoDataset(tmp_path / "wds", batch_size=2, seed=5)
    assert isinstance(dataset, torch.utils.data.IterableDataset)
    expected = [b["key"] for b in dataset]
    batches = list(torch.utils.data.DataLoader(BucketedVideoDataset(tmp_path / "wds", 2, seed=5),
                                               batch_size=None, num_workers=2))
    assert [b["key"] for b in batches] == expected
    assert all(b["video"].dtype == torch.uint8 and b["video"].ndim == 5 for b in batches)


class _Release:
    """What export_tag reads from lakeFS, in memory: one tag, its manifest and media, one missing."""
    repository = "stub"

    def __init__(self, rows: list[dict], media: dict[str, bytes]):
        self.objects = {release_manifest_path("r1"): _parquet(rows), **media}

    def resolve(self, ref: str) -> str | None:
        return "c0ffee" if ref == "r1" else None

    def read_bytes(self, path: str, ref: str | None = None) -> bytes | None:
        return self.objects.get(path)

    def read_table(self, path: str, ref: str | None = None):
        return None


def _parquet(rows: list[dict]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


def test_a_failed_export_that_left_files_is_recorded_as_incomplete(tmp_path: Path):
    rows, _, media = _samples(tmp_path / "src")
    lakefs = _Release(rows, {k: v for k, v in media.items() if k != rows[-1]["sample_id"]})
    ledger = tmp_path / "exports.jsonl"
    with pytest.raises(FileNotFoundError, match="not stored"):
        export_tag(lakefs, "r1", "webdataset", tmp_path / "out", ledger)
    [entry] = read_ledger(ledger)
    assert entry["complete"] is False and sorted(entry["sample_ids"]) == sorted(r["sample_id"] for r in rows)
    with pytest.raises(FileExistsError):  # refused before writing: nothing new to record
        export_tag(lakefs, "r1", "webdataset", tmp_path / "out", ledger)
    with pytest.raises(ValueError, match="not a release tag"):
        export_tag(lakefs, "r2", "csv", tmp_path / "other", ledger)
    assert len(read_ledger(ledger)) == 1
    summary = export_tag(_Release(rows, media), "r1", "csv", tmp_path / "good", ledger)
    assert summary.samples == 7 and read_ledger(ledger)[-1]["complete"] is True
