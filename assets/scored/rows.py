"""Build the scored table of one source: signals per clip, global dedup, concepts, governance.

Signals are computed per video on the compute executor (each worker loads its models once) from
the keyframes and frame statistics the clips tier stored; nothing decodes the raw video.
A clip keeps its stored signals when its keyframes and the signal parameters are unchanged,
and per-video results are cached by (keyframe bytes, parameters), so a threshold change or a
retry re-labels from stored scores without recomputing them.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from assets.common.cache import MachineFault, MachineFaultReport, machine_fault
from assets.common.layout import signals_cache_path
from media.cache_entries import CorruptEntry, discard, read_entry, write_entry
from media.shots.keyframes import contact_sheet
from media.signals.clip_signals import (
    ENTRY_KIND,
    VECTOR_PARTS,
    ClipInput,
    ClipSignals,
    SignalParams,
    score_video_clips,
    signals_from_entry,
    signals_to_entry,
)
from media.signals.concepts import assign_concepts, fit_concepts
from media.signals.dedup import DedupItem, DedupParams, find_duplicates
from quality_checks.policy import Policy
from quality_checks.routing.reviews import review_inputs, signals_fingerprint
from quality_checks.routing.scored import govern
from quality_checks.schemas import EMBEDDINGS_SCHEMA, SCORED_SCHEMA
from resources.compute import TaskExecutor


class ClipVectors(NamedTuple):
    """What scoring gives per clip_id: its signal columns, its clip embedding, and its centre,
    crop and middle-keyframe embeddings (each None where the embedder has none, or the stored
    row predates them; see media.signals.clip_signals.ClipSignals)."""

    row: dict
    embedding: np.ndarray
    centre: np.ndarray | None = None
    crop: np.ndarray | None = None
    middle: np.ndarray | None = None


# The optional vector columns of an embeddings table, in ClipVectors order after `embedding`.
VECTOR_COLUMNS = tuple(name for _, name in VECTOR_PARTS)

COMPUTE_STAGE = "scored"  # the compute stage whose resources (compute.stages) scoring tasks ask for

# Columns copied from clips; everything else in SCORED_SCHEMA is a signal or a label.
LINEAGE = ("source", "video_id", "clip_id", "sha256", "uri", "start_frame", "end_frame",
           "start_s", "end_s", "duration_s", "fps", "width", "height", "keyframes")
_LABELS = ("safety_label", "safety_reason", "provenance_label", "provenance_reason",
           "watermark_label", "watermark_reason", "quality_label", "quality_reason",
           "motion_label", "motion_reason",
           "review_status", "review_reason", "route", "route_reasons", "weight")
_DEDUP = ("duplicate_group", "duplicate_of", "duplicate_match", "duplicate_similarity",
          "concept_cluster", "concept_similarity")
SIGNAL_COLUMNS = tuple(f.name for f in SCORED_SCHEMA
                       if f.name not in {*LINEAGE, "license", *_LABELS, *_DEDUP,
                                         "policy_hash", "upstream_commit"})
# What a reviewer decides on: a decision made on other values of these no longer holds.
REVIEWED_COLUMNS = (*SIGNAL_COLUMNS, "license", "start_frame", "end_frame", "keyframes")


def reviewed_fingerprint(row: dict) -> str:
    return signals_fingerprint(row, REVIEWED_COLUMNS)


@dataclass
class ScoredStats:
    videos: int = 0
    clips: int = 0
    scored: int = 0
    clips_timed: int = 0  # clips whose signal timings are in signal_seconds
    from_cache: int = 0
    reused: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # video uri -> reason
    signal_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    seconds: float = 0.0


@dataclass
class VideoJob:
    """What one worker needs for one video: its clips' keyframes and the per-frame stats."""

    video_id: str
    uri: str
    clips: list[ClipInput]
    stats_parquet: bytes

    def cache_key(self, params: SignalParams) -> str:
        digest = hashlib.sha256(params.fingerprint().encode())
        digest.update(self.stats_parquet)
        for clip in self.clips:
            digest.update(f"{clip.clip_id}:{clip.start_frame}:{clip.end_frame}".encode())
            for role, frame, jpeg in clip.keyframes:
                digest.update(f"{role}:{frame}".encode())
                digest.update(jpeg)
        return digest.hexdigest()


def score_with_cache(job: VideoJob, params: SignalParams,
                     cache_root: str) -> tuple[list[ClipSignals], bool] | MachineFaultReport:
    """Worker: the signals of one video's clips, from the cache when a sound entry is there (a
    corrupt one is deleted and recomputed). A fault of the machine is returned, not raised, so
    it fails the step instead of the video (assets/common/cache.py)."""
    key = job.cache_key(params)
    target = signals_cache_path(Path(cache_root), job.video_id, key)
    try:
        entry = read_entry(target, ENTRY_KIND, key)
        if entry is not None:
            try:
                cached = signals_from_entry(entry)
                if [c.clip_id for c in cached] == [c.clip_id for c in job.clips]:
                    return cached, True
            except CorruptEntry:
                pass
            discard(target)
        stats = pq.read_table(pa.BufferReader(job.stats_parquet))
        columns = {name: stats.column(name).to_numpy(zero_copy_only=False) for name in stats.column_names}
        result = score_video_clips(job.clips, columns, params)
        write_entry(target, signals_to_entry(result, key))
        return result, False
    except OSError as exc:
        fault = machine_fault(exc, target)
        if fault is None:
            raise
        return fault


def iter_scored(jobs: Iterable[VideoJob], params: SignalParams, cache_root: Path, executor: TaskExecutor,
                ) -> Iterator[tuple[VideoJob, list[ClipSignals] | None, str, bool]]:
    """Score videos on `executor` as `jobs` yields them; yield (job, signals, error, cached).
    The executor reads `jobs` lazily with bounded tasks in flight, so reading keyframes from
    lakeFS overlaps scoring without holding every video in memory. A video that fails
    yields its error; the others go on. A fault of the machine raises MachineFault."""
    score = partial(score_with_cache, params=params, cache_root=str(cache_root))
    for job, found, error in executor.map_unordered(COMPUTE_STAGE, score, jobs):
        if isinstance(found, MachineFaultReport):
            raise MachineFault(f"scored: scoring {job.uri}", found)
        if found is None:
            yield job, None, error, False
        else:
            yield job, found[0], "", found[1]


def stored_vectors(embeddings: pa.Table) -> tuple[dict[str, np.ndarray], ...]:
    """(whole, centre, crop, middle) vectors per clip_id of an embeddings table. A null in one of
    VECTOR_COLUMNS, or a table written before that column existed, gives no such vector."""
    ids = embeddings.column("clip_id").to_pylist()

    def column(name: str) -> dict[str, np.ndarray]:
        if name not in embeddings.column_names:
            return {}
        return {cid: np.asarray(vec, np.float32)
                for cid, vec in zip(ids, embeddings.column(name).to_pylist(), strict=True) if vec is not None}

    return column("embedding"), *(column(name) for name in VECTOR_COLUMNS)


def reusable_rows(previous: pa.Table | None, embeddings: pa.Table | None,
                  fingerprint: str) -> dict[str, ClipVectors]:
    """Stored signals (and embeddings) per clip_id, where they were computed with `fingerprint`."""
    if previous is None or embeddings is None:
        return {}
    vectors, *optional = stored_vectors(embeddings)
    return {(cid := row["clip_id"]): ClipVectors(row, vectors[cid], *(part.get(cid) for part in optional))
            for row in previous.to_pylist()
            if row["signals_fingerprint"] == fingerprint and row["clip_id"] in vectors}


def compute_signals(
    clips: list[dict], previous: dict[str, ClipVectors], params: SignalParams,
    read_bytes: Callable[[str], bytes | None], cache_root: Path, executor: TaskExecutor,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, ClipVectors], ScoredStats]:
    """Signal columns and embeddings per clip_id; reused where keyframes are unchanged."""
    stats = ScoredStats(clips=len(clips))
    by_video: dict[str, list[dict]] = defaultdict(list)
    for clip in clips:
        by_video[clip["video_id"]].append(clip)
    stats.videos = len(by_video)
    signals: dict[str, ClipVectors] = {}
    todo: list[str] = []
    for vid, rows in by_video.items():
        if all(r["clip_id"] in previous and previous[r["clip_id"]].row["keyframes"] == r["keyframes"]
               for r in rows):
            for r in rows:
                old = previous[r["clip_id"]]
                # the clips row it was scored from is unchanged: keep citing that commit
                signals[r["clip_id"]] = old._replace(row={**{k: old.row[k] for k in SIGNAL_COLUMNS},
                                                         "upstream_commit": old.row["upstream_commit"]})
            stats.reused += 1
        else:
            todo.append(vid)

    def jobs() -> Iterator[VideoJob]:
        for vid in todo:
            rows = by_video[vid]
            try:
                yield _job_for_video(vid, rows, read_bytes)
            except LookupError as exc:
                stats.failed[rows[0]["uri"]] = str(exc)

    started = time.monotonic()
    for done, (job, result, error, cached) in enumerate(
            iter_scored(jobs(), params, cache_root, executor), start=1):
        if result is None:
            stats.failed[job.uri] = error
        else:
            for clip in result:
                signals[clip.clip_id] = ClipVectors(clip.columns, clip.embedding, clip.centre_embedding,
                                                    clip.crop_embedding, clip.middle_embedding)
                for name, seconds in clip.seconds.items():
                    stats.signal_seconds[name] += seconds
            stats.scored += 1
            stats.clips_timed += len(result)
            stats.from_cache += int(cached)
        if progress:
            progress(done, len(todo))
    stats.seconds = time.monotonic() - started
    return signals, stats


def _job_for_video(vid: str, rows: list[dict], read_bytes: Callable[[str], bytes | None]) -> VideoJob:
    stats_path = rows[0]["frame_stats_path"]
    stats_parquet = read_bytes(stats_path)
    if stats_parquet is None:
        raise LookupError(f"frame statistics missing: {stats_path}")
    frames: dict[str, bytes] = {}
    clip_inputs = []
    for row in rows:
        keyframes = []
        for key in row["keyframes"] or []:
            if key["path"] not in frames:
                data = read_bytes(key["path"])
                if data is None:
                    raise LookupError(f"keyframe missing: {key['path']}")
                frames[key["path"]] = data
            keyframes.append((key["role"], key["frame"], frames[key["path"]]))
        if not keyframes:
            raise LookupError(f"clip {row['clip_id']} has no keyframes")
        clip_inputs.append(ClipInput(clip_id=row["clip_id"], start_frame=row["start_frame"],
                                     end_frame=row["end_frame"], fps=row["fps"],
                                     keyframes=keyframes))
    return VideoJob(vid, rows[0]["uri"], clip_inputs, stats_parquet)


def stored_centroids(table: pa.Table | None) -> np.ndarray | None:
    """The shared concept centroids stored on main; None when absent or empty (older code wrote
    an empty file for a source without clips, which broke every later source): fit afresh."""
    if table is None or table.num_rows == 0:
        return None
    return np.asarray(table.column("centroid").to_pylist(), np.float32)


@dataclass
class Published:
    """Kept clips other sources already published on main: global dedup checks against them."""

    rows: list[dict]
    vectors: dict[str, np.ndarray]
    # centre-region, crop and middle-keyframe vectors, where the other source's embeddings table
    # holds them
    centres: dict[str, np.ndarray] = field(default_factory=dict)
    crops: dict[str, np.ndarray] = field(default_factory=dict)
    middles: dict[str, np.ndarray] = field(default_factory=dict)


def assemble(
    source: str, clips: list[dict], licenses: dict[str, str],
    signals: dict[str, ClipVectors], published: Published,
    centroids: np.ndarray | None, policy: Policy, fingerprint: str, upstream_commit: str,
    decisions: dict[str, dict] | None = None,
) -> tuple[pa.Table, pa.Table, np.ndarray | None]:
    """Dedup (global), concept clusters and governance labels → (scored, embeddings, centroids).
    A source without clips fits nothing: the centroids come back as given (None when absent).
    `decisions` (review decisions in force, by clip_id) are honoured while their signals hold."""
    rules = policy.scored
    rows = [{**{k: c[k] for k in LINEAGE}, "license": licenses[c["video_id"]],
             **signals[c["clip_id"]].row} for c in clips if c["clip_id"] in signals]
    vectors = (np.stack([signals[r["clip_id"]].embedding for r in rows]) if rows
               else np.zeros((0, 1), np.float32))

    items = [DedupItem(clip_id=r["clip_id"], content_key=r["content_key"], phashes=list(r["phashes"]),
                       embedding=(own := signals[r["clip_id"]]).embedding, duration_s=r["duration_s"],
                       pixels=r["width"] * r["height"], published=False,
                       signature=r["temporal_signature"], centre_embedding=own.centre,
                       crop_embedding=own.crop, middle_embedding=own.middle)
             for r in rows]
    # A published row without a signature (its table predates them) vetoes nothing.
    items += [DedupItem(clip_id=p["clip_id"], content_key=p["content_key"], phashes=list(p["phashes"]),
                        embedding=published.vectors[p["clip_id"]], duration_s=p["duration_s"],
                        pixels=p["width"] * p["height"], published=True,
                        signature=p.get("temporal_signature"),
                        centre_embedding=published.centres.get(p["clip_id"]),
                        crop_embedding=published.crops.get(p["clip_id"]),
                        middle_embedding=published.middles.get(p["clip_id"]))
              for p in published.rows if p["clip_id"] in published.vectors]
    results = {d.clip_id: d for d in find_duplicates(items, DedupParams(
        phash_max_distance=rules.dedup.phash_max_distance, phash_min_matches=rules.dedup.phash_min_matches,
        cosine_threshold=rules.dedup.cosine_threshold,
        signature_min_correlation=rules.dedup.signature_min_correlation,
        signature_min_spread=rules.dedup.signature_min_spread,
        signature_max_shift=rules.dedup.signature_max_shift,
        confirmed_cosine_threshold=rules.dedup.confirmed_cosine_threshold,
        signature_confirm_correlation=rules.dedup.signature_confirm_correlation,
        centre_cosine_threshold=rules.dedup.centre_cosine_threshold,
        crop_cosine_threshold=rules.dedup.crop_cosine_threshold))}

    # no rows: nothing to fit on (and no embedding width to compare), the shared centroids stand
    if rows and (centroids is None or centroids.shape[1] != vectors.shape[1]):
        pool = [vectors, *([np.stack(list(published.vectors.values()))] if published.vectors else [])]
        centroids = fit_concepts(np.concatenate(pool), rules.concepts.k, rules.concepts.seed)
    clusters, closeness = (assign_concepts(vectors, centroids) if rows and centroids is not None
                           else ([], []))

    for i, row in enumerate(rows):
        dup = results[row["clip_id"]]
        row.update(duplicate_group=dup.group_id, duplicate_of=dup.duplicate_of,
                   duplicate_match=dup.match, duplicate_similarity=dup.similarity,
                   concept_cluster=int(clusters[i]), concept_similarity=float(closeness[i]))
        row.update(review_inputs((decisions or {}).get(row["clip_id"]), reviewed_fingerprint(row)))
        row.update(govern(row, policy))
        row.update(policy_hash=policy.hash, signals_fingerprint=fingerprint)
        row.setdefault("upstream_commit", upstream_commit)
    rows.sort(key=lambda r: (r["video_id"], r["start_frame"]))
    order = {r["clip_id"]: i for i, r in enumerate(rows)}
    table = pa.Table.from_pylist(rows, schema=SCORED_SCHEMA)
    ids = sorted(order, key=order.get)
    embeddings = pa.table({
        "clip_id": pa.array(ids, pa.string()),
        "embedder": pa.array([rules.dedup.embedder] * len(ids), pa.string()),
        "embedding": pa.array([signals[c].embedding.astype(np.float32).tolist() for c in ids],
                              pa.list_(pa.float32())),
        **{name: pa.array([None if (vec := signals[c][part]) is None else vec.astype(np.float32).tolist()
                           for c in ids], pa.list_(pa.float32()))
           for part, name in enumerate(VECTOR_COLUMNS, start=2)},
    }, schema=EMBEDDINGS_SCHEMA)
    return table, embeddings, centroids


def route_contact_sheets(table: pa.Table, read_bytes: Callable[[str], bytes | None],
                         per_group: int = 4) -> dict[str, bytes]:
    """One PNG per route (a few clips of each), from stored keyframes. The purge calls it too:
    a sheet mixes several videos' pixels, so it is rebuilt without a taken-down one."""
    picked: dict[str, list[dict]] = {}
    for row in table.select(["clip_id", "route", "route_reasons", "keyframes", "duration_s"]).to_pylist():
        group = picked.setdefault(row["route"], [])
        if len(group) < per_group:
            group.append(row)
    sheets = {}
    for route, rows in picked.items():
        entries = []
        for row in rows:
            frames = {k["role"]: read_bytes(k["path"]) for k in row["keyframes"] or []}
            reason = (row["route_reasons"] or [""])[0][:40]
            entries.append((f"{row['clip_id'][:9]}\n{row['duration_s']:.1f} s\n{reason}",
                            [frames.get(role) for role in ("start", "middle", "motion_peak", "end")]))
        sheets[route] = contact_sheet(entries, thumb_width=128)
    return sheets
