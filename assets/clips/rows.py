"""Build the clips table for one source: analyse new videos on the compute executor, reuse the rest.

Analyses are content-addressed: a local cache keyed by (video sha256, analysis parameters)
means a retried or re-run materialization redoes only the videos that failed or changed. The
sha256 is that of the bytes decoded (re-hashed here); entries are checksummed data
(media/cache_entries.py), and a corrupt one is deleted and recomputed, never published.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import pyarrow as pa

from assets.common.cache import MachineFault, MachineFaultReport, machine_fault, machine_faults_fail
from assets.common.layout import (
    analysis_cache_path,
    clip_file_path,
    frame_stats_path,
    keyframe_path,
    video_object_prefixes,
    video_sheet_path,
)
from media.cache_entries import CorruptEntry, discard, read_entry, write_entry
from media.decode.hashing import sha256_file
from media.export.transcode import cut_clips_decoding
from media.shots.analysis import (
    ENTRY_KIND,
    AnalysisParams,
    VideoAnalysis,
    analysis_from_entry,
    analysis_to_entry,
    analyze_video_decoding_once,
)
from media.shots.spans import clip_shots, shot_boundaries
from quality_checks.schemas import CLIPS_SCHEMA
from resources.compute import LocalExecutor, TaskExecutor
from resources.lakefs import table_to_parquet_bytes

COMPUTE_STAGE = "clips"  # the compute stage whose resources (compute.stages) analyses ask for


@dataclass
class ClipsStats:
    videos: int = 0
    analyzed: int = 0
    from_cache: int = 0
    reused: int = 0
    removed_videos: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # uri -> reason
    frames_decoded: int = 0
    seconds_analyzing: float = 0.0
    in_segments: int = 0  # videos analysed as time segments on several workers


# The frame statistics' `boundary` column: why a clip starts where it does (media/shots/spans.py).
BOUNDARY_NONE, BOUNDARY_CUT, BOUNDARY_TRANSITION = 0, 1, 2


def boundary_codes(analysis: VideoAnalysis) -> list[int]:
    """Per frame: BOUNDARY_CUT on the first frame of a shot after a hard cut, BOUNDARY_TRANSITION
    on each frame of a gradual transition (dissolve, fade), else BOUNDARY_NONE."""
    codes = [BOUNDARY_NONE] * analysis.frame_count
    for start, end in analysis.transitions:
        codes[start:end] = [BOUNDARY_TRANSITION] * (min(end, analysis.frame_count) - start)
    for cut in analysis.cuts:
        if 0 <= cut < analysis.frame_count:
            codes[cut] = BOUNDARY_CUT
    return codes


def _shot_columns(start: int, shots: list[tuple[int, int]], analysis: VideoAnalysis) -> dict:
    """The shot a clip starting at `start` was cut from, and what bounds it (CLIPS_SCHEMA)."""
    shot = next(((a, b) for a, b in shots if a <= start < b), None)
    if shot is None:  # not reachable from clip_spans; a row says so rather than guess
        return {"shot_start_frame": None, "shot_start_boundary": None,
                "shot_end_frame": None, "shot_end_boundary": None}
    first, last = shot_boundaries(shot, analysis.frame_count, analysis.transitions)
    return {"shot_start_frame": shot[0], "shot_start_boundary": first,
            "shot_end_frame": shot[1], "shot_end_boundary": last}


def clip_id_for(video_id: str, start: int, end: int) -> str:
    return "c" + hashlib.sha256(f"{video_id}:{start}:{end}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class AnalysisJob:
    """One video to analyse: a local path a worker can read, and its content hash."""

    video_id: str
    path: str
    sha256: str


@dataclass(frozen=True)
class Analysed:
    """A worker's answer: the cache entry that holds the analysis, and whether it was there."""

    path: str
    cached: bool


class SourceChanged(ValueError):
    """The file no longer holds the bytes raw_pool hashed: its id and cache key would be wrong."""


def analyze_with_cache(job: AnalysisJob, params: AnalysisParams,
                       cache_root: str) -> Analysed | MachineFaultReport:
    """Worker: the cache entry of the analysis for (sha256, params), computed if missing or
    corrupt. A fault of the machine is returned, not raised: the executor would turn it into
    text, and it must fail the step, not the video (assets/common/cache.py)."""
    target = analysis_cache_path(Path(cache_root), job.sha256, params.fingerprint())
    try:
        return _analyze_with_cache(job, params, target)
    except OSError as exc:
        fault = machine_fault(exc, job.path)
        if fault is None:
            raise
        return fault


def _analyze_with_cache(job: AnalysisJob, params: AnalysisParams, target: Path) -> Analysed:
    # The key is the hash of the bytes decoded, so hash them (one read) before and after.
    _require_unchanged(job)
    if load_analysis(target, job.sha256, params) is not None:
        return Analysed(str(target), True)
    folder = target.with_suffix("")  # cut files
    try:
        analysis = analyze_video_decoding_once(Path(job.path), params)
        if params.cut_files and analysis.clips:
            folder.mkdir(parents=True, exist_ok=True)
            spans = [(c.start, c.end) for c in analysis.clips]
            outputs = [folder / f"{a:07d}_{b:07d}.mp4" for a, b in spans]
            cut_clips_decoding(Path(job.path), spans, outputs)
            analysis.clip_files = {a: str(out) for (a, _), out in zip(spans, outputs, strict=True)}
        _require_unchanged(job)
        write_entry(target, analysis_to_entry(analysis, _entry_key(job.sha256, params), folder))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing stays under this sha without its entry
        raise
    return Analysed(str(target), False)


def _require_unchanged(job: AnalysisJob) -> None:
    actual = sha256_file(Path(job.path))
    if actual != job.sha256:
        raise SourceChanged(f"changed since raw_pool: re-run raw_pool (the file's sha256 is now "
                            f"{actual[:12]}, raw_pool recorded {job.sha256[:12]})")


def _entry_key(sha256: str, params: AnalysisParams) -> str:
    return f"{sha256}:{params.fingerprint()}"


def load_analysis(path: Path, sha256: str, params: AnalysisParams) -> VideoAnalysis | None:
    """The cached analysis at `path`; None when absent, or corrupt (then it is deleted)."""
    entry = read_entry(path, ENTRY_KIND, _entry_key(sha256, params))
    if entry is None:
        return None
    try:
        return analysis_from_entry(entry, path.with_suffix(""))
    except CorruptEntry:
        discard(path)
        return None


def iter_analyses(
    jobs: Iterable[AnalysisJob], params: AnalysisParams, cache_root: Path, executor: TaskExecutor,
) -> Iterator[tuple[str, VideoAnalysis | None, str, bool]]:
    """Analyse videos on `executor`; yield (video_id, analysis, error, cached) as each video
    finishes, so a caller holds a bounded number of videos' results at a time. A video whose
    analysis fails (or whose worker dies) yields its error; the others go on. A fault of the
    machine raises MachineFault: the step stops, nothing is recorded against the video."""
    jobs = list(jobs)
    # Fewer videos than workers: the idle workers' share goes to time segments of each video
    # (media/shots/segments.py; results are the same). Ray spreads videos over its cluster instead.
    busy = max(1, min(executor.parallelism(), len(jobs)))
    share = executor.parallelism() // busy if isinstance(executor, LocalExecutor) else 1
    params = replace(params, segment_workers=max(1, share))
    analyze = partial(analyze_with_cache, params=params, cache_root=str(cache_root))
    for job, found, error in executor.map_unordered(COMPUTE_STAGE, analyze, jobs):
        if isinstance(found, MachineFaultReport):
            raise MachineFault(f"clips: analysing {job.path}", found)
        if found is None:
            yield job.video_id, None, error, False
            continue
        with machine_faults_fail(f"clips: reading the analysis of {job.path}", found.path):
            analysis = load_analysis(Path(found.path), job.sha256, params)
        if analysis is None:  # it changed after the worker wrote it: this run fails the video
            yield job.video_id, None, "the cache entry was corrupt when read back (deleted)", False
        else:
            yield job.video_id, analysis, "", found.cached


def rows_for_video(
    source: str, video: dict, analysis: VideoAnalysis, params: AnalysisParams,
    upstream_commit: str,
) -> tuple[list[dict], dict[str, bytes]]:
    """Clip rows of one video and the objects (keyframes, stats, contact sheet) they cite."""
    vid = video["video_id"]
    stats_path = frame_stats_path(source, vid)
    sheet_path = video_sheet_path(source, vid)
    objects: dict[str, bytes] = {}
    for frame, jpeg in analysis.keyframe_jpegs.items():
        objects[keyframe_path(source, vid, frame)] = jpeg
    stats_table = pa.table({"frame": pa.array(range(analysis.frame_count), pa.int64()),
                            **{k: pa.array(v) for k, v in analysis.stats.items()},
                            "boundary": pa.array(boundary_codes(analysis), pa.int8())})
    objects[stats_path] = table_to_parquet_bytes(stats_table)
    rows, labels = [], []
    fingerprint = params.fingerprint()
    detector_params = json.dumps({"detector": params.detector, **params.detector_params,
                                  "spans": asdict(params.spans)}, sort_keys=True)
    shots = clip_shots(analysis.cuts, analysis.frame_count, analysis.stats["motion"], params.spans,
                       analysis.transitions)
    for clip in analysis.clips:
        clip_id = clip_id_for(vid, clip.start, clip.end)
        labels.append(f"{clip_id[:9]}\n{clip.start_s:.2f}-{clip.end_s:.2f} s\n"
                      f"frames {clip.start}-{clip.end - 1}")
        rows.append({
            "source": source, "video_id": vid, "clip_id": clip_id, "sha256": video["sha256"],
            "uri": video["uri"], "start_frame": clip.start, "end_frame": clip.end,
            "start_s": clip.start_s, "end_s": clip.end_s,
            "duration_s": clip.end_s - clip.start_s, "video_frame_count": analysis.frame_count,
            "fps": analysis.fps, "width": analysis.width, "height": analysis.height,
            "detector": params.detector, "detector_params": detector_params,
            "analysis_fingerprint": fingerprint,
            **analysis.clip_stats(clip),
            "keyframes": [{"role": role, "frame": frame,
                           "path": keyframe_path(source, vid, frame)}
                          for role, frame in clip.keyframes.items()],
            **_shot_columns(clip.start, shots, analysis),
            "frame_stats_path": stats_path, "contact_sheet_path": sheet_path,
            "clip_file_path": None,
            "upstream_commit": upstream_commit,
        })
        if clip.start in analysis.clip_files:
            rows[-1]["clip_file_path"] = clip_file_path(source, vid, clip_id)
            objects[rows[-1]["clip_file_path"]] = Path(analysis.clip_files[clip.start]).read_bytes()
    objects[sheet_path] = analysis.contact_sheet_png(labels)
    return rows, objects


def build_clips(
    source: str, accepted: list[dict], previous: pa.Table | None, params: AnalysisParams,
    local_path: Callable[[dict], Path], cache_root: Path, upstream_commit: str, executor: TaskExecutor,
    stored: list[str], write: Callable[[str, bytes], None],
    delete: Callable[[list[str]], None], progress: Callable[[int, int], None] | None = None,
) -> tuple[pa.Table, ClipsStats]:
    """The clips table of one source; keyframes, statistics and sheets go to `write`.

    Videos whose bytes and parameters are unchanged keep their stored rows and objects;
    objects of videos that left or are analysed again (found among the `stored` paths)
    are deleted first. Each analysed
    video is written as soon as it finishes, so memory holds one video's results at a time.
    """
    stats = ClipsStats(videos=len(accepted))
    fingerprint = params.fingerprint()
    kept: dict[str, list[dict]] = {}
    if previous is not None:
        for row in previous.to_pylist():
            kept.setdefault(row["video_id"], []).append(row)
    current = {v["video_id"]: v for v in accepted}
    stats.removed_videos = sorted(set(kept) - set(current))

    rows: list[dict] = []
    jobs: dict[str, AnalysisJob] = {}
    for vid, video in current.items():
        old = kept.get(vid)
        if old and old[0]["sha256"] == video["sha256"] and old[0]["analysis_fingerprint"] == fingerprint:
            rows.extend(old)  # same bytes, same parameters: the stored clips still hold
            stats.reused += 1
            continue
        try:
            with machine_faults_fail(f"clips {source}: fetching {video['uri']}"):
                jobs[vid] = AnalysisJob(vid, str(local_path(video)), video["sha256"])
        except MachineFault:
            raise
        except Exception as exc:
            stats.failed[video["uri"]] = f"fetch failed: {exc}"

    stale = tuple(prefix for vid in [*stats.removed_videos, *jobs]
                  for prefix in video_object_prefixes(source, vid))
    if stale:
        delete([path for path in stored if path.startswith(stale)])

    started = time.monotonic()
    for done, (vid, analysis, error, cached) in enumerate(
            iter_analyses(jobs.values(), params, cache_root, executor), start=1):
        if analysis is None:
            stats.failed[current[vid]["uri"]] = error
        else:
            with machine_faults_fail(f"clips {source}: reading {current[vid]['uri']}'s cut files"):
                video_rows, objects = rows_for_video(source, current[vid], analysis, params,
                                                     upstream_commit)
            for path, data in objects.items():
                write(path, data)
            rows.extend(video_rows)
            stats.analyzed += 1
            stats.from_cache += int(cached)
            stats.frames_decoded += analysis.frame_count
            stats.in_segments += int(not cached and analysis.segments > 1)
        if progress:
            progress(done, len(jobs))
    stats.seconds_analyzing = time.monotonic() - started
    rows.sort(key=lambda r: (r["video_id"], r["start_frame"]))
    return pa.Table.from_pylist(rows, schema=CLIPS_SCHEMA), stats
