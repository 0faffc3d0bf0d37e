"""Build the raw_pool table for one source: measure new files, decide every row.

Measurements (sha256, probe) are stored once per file fingerprint and reused on later runs;
decisions (prefilters, opt-outs, duplicates) are re-derived every run from the stored
measurements, so a policy or opt-out change applies without probing anything again.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from media.decode.hashing import sha256_file, video_id_for
from media.decode.probe import VideoProbe, probe_video_file
from quality_checks.policy import RawPoolPolicy
from quality_checks.schemas import RAW_POOL_SCHEMA
from resources.optout import REDACTED, OptOutRegistry, redacted
from resources.redact import redact
from resources.sources import SourceFile

_MEASURED = ("sha256", "bytes", "fingerprint", "container_format", "codec", "pix_fmt",
             "duration_s", "container_duration_s", "fps", "frame_count", "width", "height",
             "rotation", "display_width", "display_height", "bitrate", "bits_per_pixel",
             "has_audio", "audio_codec", "vfr", "probe_error", "probe_detail", "notes",
             "fetched_at")


@dataclass
class RawPoolStats:
    listed: int = 0
    probed: int = 0
    reused: int = 0
    removed: int = 0
    seconds_probing: float = 0.0
    by_status: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)


def _unread_id(file: SourceFile) -> str:
    """A stand-in content hash for a file that was never read (missing, refused, failed fetch):
    a well-formed id, distinct per uri, that no real content has."""
    return hashlib.sha256(f"unread:{file.uri}:{file.fingerprint}".encode()).hexdigest()


def measure_file(file: SourceFile, local_path: Path | None, fetched_at: datetime) -> dict[str, Any]:
    """Hash and probe one file (demuxes it; decodes one frame). Never raises for bad media."""
    row: dict[str, Any] = {"bytes": file.size, "fingerprint": file.fingerprint,
                           "fetched_at": fetched_at, "sha256": ""}
    if file.error or local_path is None:
        kind = file.error_kind if file.error else "missing_file"
        return {**row, "probe_error": kind, "probe_detail": redact(file.error or "not fetched")}
    try:
        row["sha256"] = sha256_file(local_path)
    except OSError as exc:
        return {**row, "probe_error": "unreadable", "probe_detail": redact(str(exc))}
    probe = probe_video_file(local_path)
    return {**row, **_probe_columns(probe)}


def _probe_columns(probe: VideoProbe) -> dict[str, Any]:
    return {
        "container_format": probe.container_format or None,
        "codec": probe.codec or None,
        "pix_fmt": probe.pix_fmt or None,
        "duration_s": probe.duration_s,
        "container_duration_s": probe.container_duration_s,
        "fps": probe.fps,
        "frame_count": probe.frame_count,
        "width": probe.width,
        "height": probe.height,
        "rotation": probe.rotation,
        "display_width": probe.display_width,
        "display_height": probe.display_height,
        "bitrate": probe.bitrate,
        "bits_per_pixel": probe.bits_per_pixel,
        "has_audio": probe.has_audio,
        "audio_codec": probe.audio_codec or None,
        "vfr": probe.vfr,
        "probe_error": probe.error,
        "probe_detail": probe.error_detail or None,
        "notes": "; ".join(probe.notes) or None,
    }


def _stored_probe(row: dict[str, Any]) -> VideoProbe:
    """Rebuild the probe from stored columns, so prefilters re-run without decoding."""
    return VideoProbe(
        width=row["width"] or 0, height=row["height"] or 0, rotation=row["rotation"] or 0,
        fps=row["fps"] or 0.0, frame_count=row["frame_count"] or 0,
        duration_s=row["duration_s"] or 0.0, bitrate=row["bitrate"] or 0,
    )


def build_raw_pool(
    source: str,
    license: str,
    files: Iterable[SourceFile],
    previous: pa.Table | None,
    policy: RawPoolPolicy,
    optouts: OptOutRegistry,
    fetch: Callable[[SourceFile], Path | None],
    now: datetime,
    workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[pa.Table, RawPoolStats]:
    """The source's raw_pool table (one row per listed file, sorted by uri) and run stats."""
    files = list(files)
    stats = RawPoolStats(listed=len(files))
    known = {row["uri"]: row for row in previous.to_pylist()} if previous is not None else {}
    stats.removed = len({u for u in known if not u.startswith(REDACTED)} - {f.uri for f in files})

    measured: dict[str, dict[str, Any]] = {}
    refused: dict[str, dict[str, Any]] = {}  # unchanged files whose refusal still holds
    fresh = []
    for file in files:
        old = known.get(file.uri)
        refusal = known.get(redacted(file.uri))
        if old is not None and old["fingerprint"] == file.fingerprint:
            measured[file.uri] = {key: old[key] for key in _MEASURED}
        elif (refusal is not None and refusal["fingerprint"] == redacted(file.fingerprint)
              and (optouts.for_source(source) is not None
                   or any(e.matches_refusal(refusal) for e in optouts.videos))):
            refused[file.uri] = refusal
        else:
            fresh.append(file)
    stats.reused = len(measured) + len(refused)
    stats.probed = len(fresh)

    started = time.monotonic()

    def measure(file: SourceFile) -> dict[str, Any]:
        try:
            local = fetch(file) if not file.error else None
        except Exception as exc:  # a failed download is one rejected row, not a failed run
            # the detail is committed to lakeFS: no endpoint credentials from the error text
            return {"bytes": file.size, "fingerprint": file.fingerprint, "fetched_at": now,
                    "sha256": "", "probe_error": "fetch_failed", "probe_detail": redact(str(exc))}
        return measure_file(file, local, now)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, (file, row) in enumerate(zip(fresh, pool.map(measure, fresh), strict=True), start=1):
            measured[file.uri] = row
            if progress:
                progress(done, len(fresh))
    stats.seconds_probing = time.monotonic() - started

    rows = []
    first_uri_by_sha: dict[str, str] = {}
    source_optout = optouts.for_source(source)
    for file in files:
        if file.uri in refused:  # decided again on its digests, with the registry of today
            row = dict(refused[file.uri])
            video_optout = next((e for e in optouts.videos if e.matches_refusal(row)), None)
        else:
            row = {**{key: None for key in RAW_POOL_SCHEMA.names}, **measured[file.uri]}
            row.update(source=source, uri=file.uri, license=license,
                       video_id=video_id_for(row["sha256"] or _unread_id(file)))
            video_optout = optouts.for_video(source, row["video_id"], row["sha256"], file.uri)
        sha = row["sha256"]
        if source_optout is not None:
            decision = ("opted_out", "opted_out_source",
                        f"source opted out on {source_optout.requested_at} by "
                        f"{source_optout.requested_by}: {source_optout.reason}")
        elif video_optout is not None:
            decision = ("opted_out", "opted_out_video",
                        f"video opted out on {video_optout.requested_at} by "
                        f"{video_optout.requested_by}: {video_optout.reason}")
        elif row["probe_error"]:
            decision = ("rejected", row["probe_error"], row["probe_detail"])
        elif sha in first_uri_by_sha:
            decision = ("rejected", "duplicate_content", f"same bytes as {first_uri_by_sha[sha]}")
        else:
            prefilter = policy.reject_reason(_stored_probe(row))
            decision = ("rejected", *prefilter) if prefilter else ("accepted", None, None)
        row["status"], row["reason"], row["reason_detail"] = decision
        if decision[0] == "accepted":
            first_uri_by_sha[sha] = file.uri
        stats.by_status[decision[0]] += 1
        if decision[1]:
            stats.by_reason[decision[1]] += 1
        rows.append(refusal_row(row) if decision[0] == "opted_out" else row)
    return pa.Table.from_pylist(rows, schema=RAW_POOL_SCHEMA), stats


def refusal_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row an opted-out video leaves in raw_pool: that a file of the source was refused, when
    and why, with its identifiers as digests (resources/optout.py `redacted`) and nothing of its
    content, so that neither the table nor a takedown's record names the video."""
    kept = {"source", "license", "fetched_at", "status", "reason", "reason_detail"}
    out = {key: (row[key] if key in kept else None) for key in RAW_POOL_SCHEMA.names}
    out.update(video_id=redacted(row["video_id"]), uri=redacted(row["uri"]),
               sha256=redacted(row["sha256"]), bytes=0, fingerprint=redacted(row["fingerprint"]))
    return out
