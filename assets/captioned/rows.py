"""Build the captioned table of one source: caption routed clips, parse, QC, assemble variants.

Captions are content-addressed by (clip, backend, model, prompt version, keyframe bytes): a
clip keeps its stored caption while those hold, and a local cache means a retried run only
asks the backend for what it did not answer yet.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pyarrow as pa

from assets.common.cache import machine_faults_fail
from assets.common.layout import caption_cache_path
from media.cache_entries import checksummed_json, discard, read_checksummed_json
from media.captions import (
    PROMPT_VERSION,
    SYSTEM,
    caption_prompt,
    check_caption,
    fill_labels_from_signals,
    parse_caption,
    variants,
)
from media.files import write_bytes_atomically
from media.shots.keyframes import decode_keyframe
from quality_checks.policy.captioned import CaptionBackend, CaptionedPolicy
from quality_checks.schemas import CAPTIONED_SCHEMA
from resources.captioners.base import Captioner, CaptionRequest, CaptionResult
from resources.captioners.signals import SignalsCaptioner

# What the captioners and QC may read of a scored row (the measured signals).
MEASURED = ("duration_s", "width", "height", "camera_motion", "camera_confidence", "motion_mean",
            "exposure_label", "brightness", "subtitle_band", "text_ratio_max", "technical_quality")
BATCH = 16
CAPTION_ENTRY = "caption"  # the kind of a caption cache entry (media/cache_entries.py)
_CAPTION_FIELDS = {f.name for f in fields(CaptionResult)}


@dataclass
class CaptionStats:
    routed: int = 0
    captioned: int = 0
    from_cache: int = 0
    reused: int = 0
    by_backend: Counter = field(default_factory=Counter)
    tokens: int = 0
    seconds: float = 0.0


def model_name(backend: CaptionBackend) -> str:
    """The model a backend runs, known without loading it (it is part of the cache key)."""
    return backend.model or SignalsCaptioner.model


def cache_key(row: dict, backend: CaptionBackend, model: str) -> str:
    frames = "|".join(k["path"] for k in row["keyframes"] or [])
    payload = json.dumps([row["clip_id"], backend.name, backend.kind, model, PROMPT_VERSION, frames,
                          {k: row[k] for k in MEASURED}], default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def build_captions(
    scored: list[dict], previous: pa.Table | None, policy: CaptionedPolicy,
    build: Callable[[CaptionBackend], Captioner], read_bytes: Callable[[str], bytes | None],
    cache_root: Path, upstream_commit: str, progress: Callable[[int, int], None] | None = None,
    original_text: Callable[[str], str | None] = lambda uri: None,
) -> tuple[pa.Table, CaptionStats]:
    """Captions of the routed clips; `original_text(uri)` gives a video's sidecar text."""
    routed = [r for r in scored if r["route"] in policy.routes]
    stats = CaptionStats(routed=len(routed))
    stored = {r["cache_key"]: r for r in previous.to_pylist()} if previous is not None else {}
    plan: dict[str, list[tuple[dict, str]]] = defaultdict(list)  # backend -> (row, key)
    backends = {b.name: b for b in policy.backends}
    rows: list[dict] = []
    captioners: dict[str, Captioner] = {}
    try:
        for row in routed:
            backend = policy.backend_for(min(row["width"], row["height"]))
            key = cache_key(row, backend, model_name(backend))
            if key in stored:
                rows.append({**stored[key], "route": row["route"]})  # keeps the commit it came from
                stats.reused += 1
            else:
                plan[backend.name].append((row, key))
        todo = sum(len(v) for v in plan.values())
        done = 0
        started = time.monotonic()
        for name, items in plan.items():
            captioner = captioners[name] = build(backends[name])  # loaded only when needed
            for batch in _batches(items, BATCH):
                results = _caption_cached(captioner, batch, read_bytes, policy, cache_root, stats)
                for (row, key), result in zip(batch, results, strict=True):
                    rows.append(_row(row, key, backends[name], captioner, result, policy, upstream_commit,
                                     original_text(row["uri"])))
                    stats.by_backend[name] += 1
                    stats.tokens += result.prompt_tokens + result.completion_tokens
                done += len(batch)
                if progress:
                    progress(done, todo)
        stats.seconds = time.monotonic() - started
        stats.captioned = done
    finally:
        for captioner in captioners.values():
            captioner.close()
    rows.sort(key=lambda r: (r["video_id"], r["start_s"]))
    return pa.Table.from_pylist(rows, schema=CAPTIONED_SCHEMA), stats


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _caption_cached(captioner: Captioner, batch: list[tuple[dict, str]],
                    read_bytes: Callable[[str], bytes | None], policy: CaptionedPolicy,
                    cache_root: Path, stats: CaptionStats) -> list[CaptionResult]:
    results: dict[str, CaptionResult] = {}
    missing = []
    for row, key in batch:
        cached = _read_cached_caption(caption_cache_path(cache_root, row["video_id"], key), key)
        if cached is not None:
            results[key] = cached
            stats.from_cache += 1
        else:
            missing.append((row, key))
    requests, failed = [], {}
    video_of = {key: row["video_id"] for row, key in batch}
    for row, key in missing:
        # Roles may share a frame: the model sees each distinct frame once, in time order.
        frames = sorted({k["frame"]: k["path"] for k in row["keyframes"] or []}.items())
        try:
            images = [_rgb(read_bytes(path)) for _, path in frames]
        except ValueError as exc:
            failed[key] = CaptionResult(row["clip_id"], error=str(exc))
            continue
        times = [row["start_s"] + (frame - row["start_frame"]) / row["fps"] for frame, _ in frames]
        requests.append((key, CaptionRequest(
            clip_id=row["clip_id"], images=images, prompt=caption_prompt(row["duration_s"], times),
            system=SYSTEM, max_new_tokens=policy.max_new_tokens,
            signals={k: row[k] for k in MEASURED})))
    answers = captioner.caption([r for _, r in requests]) if requests else []
    for (key, _), answer in zip(requests, answers, strict=True):
        results[key] = answer
        if answer.error is None:  # failures are retried next run, not cached
            path = caption_cache_path(cache_root, video_of[key], key)
            with machine_faults_fail(f"captioned: caching the caption of {answer.clip_id}", path):
                payload = json.loads(json.dumps(vars(answer), default=str))  # what a reader gets back
                write_bytes_atomically(path, checksummed_json(payload, CAPTION_ENTRY, key).encode())
    results.update(failed)
    return [results[key] for _, key in batch]


def _read_cached_caption(path: Path, key: str) -> CaptionResult | None:
    """A cached caption; None when absent, or corrupt, altered or of another shape (then it is
    deleted and the backend asked again)."""
    with machine_faults_fail("captioned: reading the caption cache", path):
        payload = read_checksummed_json(path, CAPTION_ENTRY, key)
    if payload is None:
        return None
    if isinstance(payload, dict) and set(payload) == _CAPTION_FIELDS:
        try:
            return CaptionResult(**payload)
        except TypeError:
            pass
    discard(path)
    return None


def _rgb(data: bytes | None) -> np.ndarray:
    if data is None:
        raise ValueError("a keyframe is missing from lakeFS")
    return decode_keyframe(data)


def _row(row: dict, key: str, backend: CaptionBackend, captioner: Captioner, result: CaptionResult,
         policy: CaptionedPolicy, upstream_commit: str, original: str | None) -> dict:
    measured = {k: row[k] for k in MEASURED}
    measured["has_text"] = bool(row["subtitle_band"]) or row["text_ratio_max"] > 0.002
    parsed = parse_caption(result.text if result.error is None else "")
    qc = check_caption(parsed, measured, policy.qc_params())
    notes = fill_labels_from_signals(parsed.fields, measured) if parsed.status != "failed" else []
    reasons = ([f"backend error: {result.error}"] if result.error else []) + qc.reasons + notes
    status = "rejected" if result.error else qc.status
    texts = variants(parsed.fields, measured, original)
    events = [{"start_s": _num(e.get("start_s")), "end_s": _num(e.get("end_s")), "text": str(e["text"])}
              for e in parsed.events]
    return {
        **{k: row[k] for k in ("source", "video_id", "clip_id", "uri", "start_s", "end_s", "duration_s",
                               "width", "height", "route")},
        "backend": backend.name, "backend_kind": backend.kind, "model": captioner.model,
        "prompt_version": PROMPT_VERSION, "raw_text": result.text or None, "error": result.error,
        "parse_status": parsed.status, **parsed.fields, "events": events,
        "caption_short": texts["short"], "caption_medium": texts["medium"],
        "caption_dense": texts["dense"], "caption_assembled": texts["assembled"],
        "original_text": original, "caption_words": len(texts["dense"].split()),
        "qc_status": status, "qc_reasons": reasons,
        "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
        "seconds": result.seconds, "cache_key": key, "upstream_commit": upstream_commit,
    }


def _num(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
