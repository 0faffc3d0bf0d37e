"""Export a release tag out of lakeFS to what trainers load, and keep the ledger of every copy.

A copy outside lakeFS is beyond the purge's reach, so each export appends one line to a JSONL
ledger (VCURATE_EXPORT_LEDGER, else `<cache dir>/exports.jsonl`) with the tag, the manifest's
sha256, the destination and the lineage ids of every sample; the opt-out audit reads it to name
the copies that hold opted-out samples.
"""
# No `from __future__ import annotations`: Dagster reads the op's Config annotation at import.

import fcntl
import hashlib
import io
import json
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetKey, AssetMaterialization, Config, Failure, OpExecutionContext, Output, job, op

from assets.common.layout import export_prefix, export_samples_path, release_manifest_path, tier_path
from media.export.release_export import ExportSummary, export_release
from quality_checks.lineage import OptedOut, find_derived
from resources.lakefs import CommitMetadata, LakeFSResource
from resources.sources import SourceRegistryResource

LEDGER_ENV = "VCURATE_EXPORT_LEDGER"
FETCH_WINDOW = 16  # MP4s read from lakeFS ahead of the writer: overlaps requests, bounds memory


def ledger_path(cache_dir: str | None = None) -> Path:
    if os.environ.get(LEDGER_ENV):
        return Path(os.environ[LEDGER_ENV])
    return Path(cache_dir or os.environ.get("VCURATE_CACHE_DIR") or ".vcurate/cache") / "exports.jsonl"


def _ordered_fetch(read: Callable[[str], bytes], rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        ahead: deque[Future[bytes]] = deque()
        for row in rows:
            ahead.append(pool.submit(read, row["media_path"]))
            if len(ahead) >= FETCH_WINDOW:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def _manifest_rows(lakefs: LakeFSResource, tag: str) -> list[dict[str, Any]]:
    table = lakefs.read_table(release_manifest_path(tag), ref=tag)
    return table.to_pylist() if table is not None else []


def export_tag(lakefs: LakeFSResource, tag: str, fmt: str, destination: Path, ledger: Path | None,
               max_samples_per_shard: int = 1000, recorded_as: str | None = None) -> ExportSummary:
    """Export release `tag` (its manifest, media and caption variants, all read at the tag) into
    a local folder; the copy is recorded in `ledger` as `recorded_as` (default: the folder).
    `ledger` None: the caller keeps the copy where the purge reaches it (lakeFS)."""
    commit = lakefs.resolve(tag)
    manifest_bytes = lakefs.read_bytes(release_manifest_path(tag), ref=tag) if commit else None
    if manifest_bytes is None:
        raise ValueError(f"export: {tag!r} is not a release tag of repository {lakefs.repository}")
    rows = pq.read_table(io.BytesIO(manifest_bytes)).to_pylist()
    captions: dict[tuple[str, str], dict[str, Any]] = {}
    for source in sorted({r["source"] for r in rows}):
        table = lakefs.read_table(tier_path(source, "captioned"), ref=tag)
        for row in table.to_pylist() if table is not None else []:
            captions[(source, row["clip_id"])] = row

    def read(path: str) -> bytes:
        data = lakefs.read_bytes(path, ref=tag)
        if data is None:
            raise FileNotFoundError(f"export: {path} is in the manifest of {tag} but not stored there")
        return data

    digest = hashlib.sha256(manifest_bytes).hexdigest()
    by_id = {r["sample_id"]: r for r in rows}

    def entry(ids: list[str], complete: bool) -> dict[str, Any]:
        return {"repository": lakefs.repository, "tag": tag, "commit": commit, "manifest_sha256": digest,
                "destination": recorded_as or str(destination.resolve()), "format": fmt, "complete": complete,
                "exported_at": datetime.now(UTC).isoformat(timespec="seconds"), "samples": len(ids),
                "sample_ids": ids, "sources": [by_id[s]["source"] for s in ids],
                "video_ids": [by_id[s]["video_id"] for s in ids]}

    had_files = destination.exists() and any(destination.iterdir())
    try:
        summary = export_release(rows, captions, lambda ordered: _ordered_fetch(read, ordered), destination,
                                 fmt, tag, digest, max_samples_per_shard)
    except BaseException:
        if ledger and not had_files and destination.exists() and any(destination.iterdir()):
            record_export(ledger, entry(sorted(by_id), complete=False))  # a partial copy is still a copy
        raise
    if ledger:
        record_export(ledger, entry(summary.sample_ids, complete=True))
    return summary


def record_export(ledger: Path, entry: dict[str, Any]) -> None:
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with ledger.open("a", encoding="utf-8") as out:
        fcntl.flock(out, fcntl.LOCK_EX)  # two exports at once never interleave their lines
        out.write(json.dumps(entry, sort_keys=True) + "\n")


def read_ledger(ledger: Path) -> list[dict[str, Any]]:
    if not ledger.is_file():
        return []
    return [json.loads(line) for line in ledger.read_text(encoding="utf-8").splitlines() if line.strip()]


def exports_holding(opted: OptedOut, repository: str, ledger: Path | None = None) -> list[dict[str, Any]]:
    """Exports of this repository's releases in the ledger that hold opted-out samples, each with
    the ids of those samples (matched by the same lineage query as every tier)."""
    held = []
    for entry in read_ledger(ledger or ledger_path()):
        if entry.get("repository") != repository:
            continue
        table = pa.table({"source": entry["sources"], "video_id": entry["video_ids"],
                          "sample_id": entry["sample_ids"]}, schema=pa.schema(
            [("source", pa.string()), ("video_id", pa.string()), ("sample_id", pa.string())]))
        found = find_derived("export", table, opted).column("sample_id").to_pylist()
        if found:
            held.append({k: entry[k] for k in ("tag", "destination", "format", "exported_at")}
                        | {"opted_out_samples": found})
    return held


LAKEFS_DESTINATION = "lakefs"


def publish_export(lakefs: LakeFSResource, tag: str, fmt: str, local: Path, summary: ExportSummary,
                   rows: dict[str, dict[str, Any]], run_id: str) -> str:
    """Copy a finished local export into lakeFS under `exports/<tag>/<format>/` through
    write-audit-publish, with its lineage table (the audit and the purge query it like a tier's).
    The audit: every file arrived, and the lineage lists exactly the exported samples."""
    prefix = export_prefix(tag, fmt)
    wap = lakefs.start_wap("export", tag, CommitMetadata(
        run_id=run_id, asset="release_export", partition="", code_version="export-1",
        config_hash=summary.index["manifest_sha256"][:16], upstream_commits={"release": lakefs.resolve(tag)}))
    files = sorted(p for p in local.rglob("*") if p.is_file())
    for path in files:
        wap.write_bytes(prefix + path.relative_to(local).as_posix(), path.read_bytes())
    lineage = pa.table({k: [rows[s][k] for s in summary.sample_ids]
                        for k in ("sample_id", "source", "video_id")})
    wap.write_table(export_samples_path(tag, fmt), lineage)
    wap.commit(f"export {tag} ({fmt}): {summary.samples} samples, {len(files)} files")
    stored = set(wap.list_paths(prefix))
    missing = [p for p in files if prefix + p.relative_to(local).as_posix() not in stored]
    if missing or lineage.num_rows != summary.samples:
        wap.discard()
        raise ValueError(f"export: {len(missing)} files did not arrive in lakeFS; main is untouched")
    return wap.publish(f"publish export {tag} ({fmt})")


def upload_export(s3: Any, local: Path, uri: str) -> None:
    """Copy a finished local export to `s3://bucket/prefix/` (any S3-compatible endpoint)."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        key = f"{prefix.rstrip('/')}/{path.relative_to(local).as_posix()}".lstrip("/")
        s3.upload_file(str(path), bucket, key)


class ExportConfig(Config):
    tag: str
    format: Literal["webdataset", "csv", "jsonl"] = "webdataset"
    to: str  # a new or empty folder, `s3://bucket/prefix/`, or `lakefs` (exports/<tag>/<format>/)
    max_samples_per_shard: int = 1000


@op(description="Export a release tag to WebDataset shards per bucket, or CSV / JSONL with MP4 files, "
                "and record the copy in the export ledger.")
def export_release_op(context: OpExecutionContext, config: ExportConfig, lakefs: LakeFSResource,
                      sources: SourceRegistryResource):
    ledger = ledger_path(sources.cache_dir)
    remote = config.to == LAKEFS_DESTINATION or config.to.startswith("s3://")
    try:
        with tempfile.TemporaryDirectory(prefix="vcurate-export-") as tmp:
            local = Path(tmp) / "export" if remote else Path(config.to)
            if config.to == LAKEFS_DESTINATION:  # inside lakeFS: the purge reaches it, no ledger needed
                summary = export_tag(lakefs, config.tag, config.format, local, None,
                                     config.max_samples_per_shard)
                rows = {r["sample_id"]: r for r in _manifest_rows(lakefs, config.tag)}
                commit = publish_export(lakefs, config.tag, config.format, local, summary, rows,
                                        context.run.run_id)
                where = export_prefix(config.tag, config.format)
                destination = f"lakefs://{lakefs.repository}/{commit[:12]}/{where}"
            else:
                summary = export_tag(lakefs, config.tag, config.format, local, ledger,
                                     config.max_samples_per_shard, recorded_as=config.to if remote else None)
                if remote:
                    upload_export(sources.s3_client(), local, config.to)
                destination = config.to if remote else str(local.resolve())
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        raise Failure(str(exc)) from exc
    seconds = max(summary.seconds, 1e-9)
    yield AssetMaterialization(asset_key=AssetKey("release_export"), metadata={
        "release_tag": config.tag, "format": config.format, "destination": destination,
        "manifest_sha256": summary.index["manifest_sha256"], "samples": summary.samples,
        "buckets": len(summary.index["buckets"]), "media_mb": round(summary.media_bytes / 1e6, 3),
        "samples_per_s": round(summary.samples / seconds, 2),
        "mb_per_s": round(summary.media_bytes / 1e6 / seconds, 2), "ledger": str(ledger)})
    yield Output(destination)


@job(name="export_release", tags={"vcurate/governance": "export"},
     description="Export a release tag out of lakeFS for training (run config: tag, format, to); the "
                 "copy is recorded in the export ledger, which the opt-out audit reads.")
def export_release_job():
    export_release_op()
