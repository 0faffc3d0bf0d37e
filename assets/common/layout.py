"""Every path the product writes: the lakeFS repository's layout, and the local work cache's.

Writers, the lineage audit and the purge all name objects through these functions, so an
object one of them writes cannot escape the others. Layout of the repository:

    sources/<source>/<tier>.parquet                        one table per (tier, source)
    sources/<source>/<tier>_failures.parquet               videos that tier could not process
    sources/<source>/clips/<kind>/<video_id>[/...]         per-video objects (VIDEO_OBJECT_KINDS)
    sources/<source>/scored/embeddings.parquet             clip embeddings (dedup across sources)
    sources/<source>/scored/sheets/<route>.png             contact sheet per route
    sources/<source>/stages/<stage>/<sample_id>.mp4        transcoded stage media
    concepts/<embedder>-k<k>-seed<seed>.parquet            concept centroids shared by all sources
    releases/<tag>/{manifest,buckets}.parquet              a tagged release
    audits/<audit_id>/{findings.parquet,report.md}         an opt-out audit
    previews/<policy hash>/{changes.parquet,report.md,policy.yaml}   a policy preview (branch only)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SOURCES = "sources/"
RELEASES = "releases/"
AUDITS = "audits/"
# Folders of per-video objects under a source's clips prefix: a video's are all of
# `<clips prefix>/<kind>/<video_id>` for these kinds.
VIDEO_OBJECT_KINDS = ("keyframes", "frame_stats", "contact_sheets", "files")
# Local work cache: entries are checksummed data (media/cache_entries.py), never pickles. Each
# format lives in its own folder, so entries of an older one (the pickles of "layout-2") are
# never read; the purge still finds them (LEGACY_CACHE_FORMATS).
CACHE_FORMAT = "entries-1"
LEGACY_CACHE_FORMATS = ("layout-2",)
CACHE_ENTRY_SUFFIX = ".entry"


# Local work cache (`VCURATE_CACHE_DIR/<kind>`): every entry is filed under the video it came
# from, so the purge can remove a taken-down video's entries without knowing their keys.
def analysis_cache_dir(root: Path, sha256: str, layout: str = CACHE_FORMAT) -> Path:
    """clips: analyses (keyframes, statistics, cut files) of the bytes with this sha256."""
    return root / layout / sha256[:2] / sha256


def analysis_cache_path(root: Path, sha256: str, fingerprint: str) -> Path:
    """clips: the analysis of these bytes with these parameters; its cut files sit in the folder
    of the same name without the suffix."""
    return analysis_cache_dir(root, sha256) / f"{fingerprint}{CACHE_ENTRY_SUFFIX}"


def signals_cache_path(root: Path, video_id: str, key: str, layout: str = CACHE_FORMAT) -> Path:
    """scored: one video's clip signals for one parameter set and keyframe content (`key`)."""
    return root / layout / video_id / f"{key}{CACHE_ENTRY_SUFFIX}"


def caption_cache_path(root: Path, video_id: str, key: str) -> Path:
    """captioned: one clip's caption for one backend, model and prompt (`key`); checksummed JSON
    (entries from before the checksum are refused and recomputed)."""
    return root / video_id / f"{key}.json"


def preview_cache_dir(cache: Path, video_id: str) -> Path:
    """The review page: small MP4 previews of one video's clips, encoded on demand."""
    return cache / "previews" / video_id


def video_cache_entries(cache: Path, sha256: str, video_id: str) -> list[Path]:
    """Every local cache entry derived from one video, under `cache` (VCURATE_CACHE_DIR), in
    the current format and the legacy ones."""
    found = [caption_cache_path(cache / "captions", video_id, "x").parent]
    found.append(preview_cache_dir(cache, video_id))  # the review page's previews show its pixels
    for layout in (CACHE_FORMAT, *LEGACY_CACHE_FORMATS):
        found += [analysis_cache_dir(cache / "analysis", sha256, layout),
                  signals_cache_path(cache / "signals", video_id, "x", layout).parent]
    return [p for p in found if p.exists()]


def source_prefix(source: str) -> str:
    """Everything of one source (the whole partition, every tier)."""
    return f"{SOURCES}{source}/"


def tier_path(source: str, tier: str) -> str:
    """Where a tier's table for one source lives in the lakeFS repository."""
    return f"{SOURCES}{source}/{tier}.parquet"


def tier_tables_listed(paths: Iterable[str], tiers: Iterable[str]) -> dict[tuple[str, str], str]:
    """{(source, tier): path} for the tier tables among listed lakeFS paths (the inverse of
    `tier_path`); other objects under `sources/` (keyframes, media, ...) are left out."""
    wanted = set(tiers)
    found = {}
    for path in paths:
        parts = path.split("/")
        if len(parts) == 3 and f"{parts[0]}/" == SOURCES and parts[2].endswith(".parquet"):
            tier = parts[2].removesuffix(".parquet")
            if tier in wanted:
                found[(parts[1], tier)] = path
    return found


def failures_path(source: str, tier: str) -> str:
    """The videos one tier's last run of a source could not process, and why: a per-source table
    like a tier's (the purge filters it by video_id with the tiers), since Dagster metadata, which
    no purge can rewrite, only counts them."""
    return f"{SOURCES}{source}/{tier}_failures.parquet"


def reviews_path(source: str) -> str:
    """The review decisions of one source (a per-source table, like a tier's; the purge filters
    it by video_id with the tiers)."""
    return f"{SOURCES}{source}/reviews.parquet"


# clips
def clips_prefix(source: str) -> str:
    return f"{SOURCES}{source}/clips"


def video_object_prefixes(source: str, video_id: str) -> tuple[str, ...]:
    """Prefixes of every per-video object clips stores for one video."""
    return tuple(f"{clips_prefix(source)}/{kind}/{video_id}" for kind in VIDEO_OBJECT_KINDS)


def keyframe_path(source: str, video_id: str, frame: int) -> str:
    return f"{clips_prefix(source)}/keyframes/{video_id}/{frame:07d}.jpg"


def frame_stats_path(source: str, video_id: str) -> str:
    return f"{clips_prefix(source)}/frame_stats/{video_id}.parquet"


def video_sheet_path(source: str, video_id: str) -> str:
    return f"{clips_prefix(source)}/contact_sheets/{video_id}.png"


def clip_file_path(source: str, video_id: str, clip_id: str) -> str:
    return f"{clips_prefix(source)}/files/{video_id}/{clip_id}.mp4"


# scored
def embeddings_path(source: str) -> str:
    return f"{SOURCES}{source}/scored/embeddings.parquet"


def route_sheet_path(source: str, route: str) -> str:
    return f"{SOURCES}{source}/scored/sheets/{route}.png"


def centroids_path(embedder: str, k: int, seed: int) -> str:
    """Concept centroids are shared by every source, so clusters mean the same everywhere."""
    return f"concepts/{embedder}-k{k}-seed{seed}.parquet"


# stages
def stage_media_prefix(source: str, stage: str) -> str:
    return f"{SOURCES}{source}/stages/{stage}"


def stage_media_path(source: str, stage: str, sample_id: str) -> str:
    return f"{stage_media_prefix(source, stage)}/{sample_id}.mp4"


# releases, audits, previews
def release_manifest_path(tag: str) -> str:
    return f"releases/{tag}/manifest.parquet"


def release_buckets_path(tag: str) -> str:
    return f"releases/{tag}/buckets.parquet"


EXPORTS = "exports/"


def export_prefix(tag: str, fmt: str) -> str:
    """An export of a release kept in lakeFS (`vcurate export <tag> --to lakefs`)."""
    return f"{EXPORTS}{tag}/{fmt}/"


def export_samples_path(tag: str, fmt: str) -> str:
    """The lineage of an export in lakeFS (sample, source, video): what the audit queries."""
    return f"{export_prefix(tag, fmt)}samples.parquet"


def audit_findings_path(audit_id: str) -> str:
    return f"audits/{audit_id}/findings.parquet"


def audit_tags_path(audit_id: str) -> str:
    """Which release tags a purge deleted (`vcurate purge --delete-tags`), and their commits."""
    return f"audits/{audit_id}/deleted_tags.json"


def audit_takedown_path(audit_id: str) -> str:
    """The physical takedown's report (GC run, addresses checked); `.md` beside it for people."""
    return f"audits/{audit_id}/takedown.json"


# Where lakeFS's garbage collector writes its run reports, under a storage namespace.
GC_REPORTS = "_lakefs/retention/gc/unified/"


def audit_report_path(audit_id: str) -> str:
    return f"audits/{audit_id}/report.md"


def preview_path(policy_hash: str, name: str) -> str:
    """`name`: changes.parquet, report.md or policy.yaml."""
    return f"previews/{policy_hash}/{name}"


# What every stored object is, for the lineage audit and the purge: an object belongs to one
# video (removed with it), is a per-source aggregate or a release table that mixes several
# videos (rebuilt without it), or holds no source content (kept).
@dataclass(frozen=True)
class StoredObject:
    kind: str  # one of OBJECT_KINDS
    source: str | None = None
    video_id: str | None = None  # per-video objects only
    tag: str | None = None  # release tables only


# kind -> what the purge does with it
OBJECT_KINDS = {
    "tier_table": "rows filtered",
    "review_table": "rows filtered",  # review decisions name their clip and video
    "video_object": "deleted with its video",  # keyframes, frame statistics, sheets, clip files
    "embeddings": "rows filtered",
    "route_sheet": "rebuilt without the video",
    "stage_media": "deleted with its sample",
    "centroids": "kept: means over every source's clips, no pixels, ids or text of one video",
    "release_manifest": "rows filtered (the copy on main; the tag is history)",
    "release_buckets": "rebuilt from the filtered manifest",
    "export_samples": "the export it describes is deleted when it holds a purged sample",
    "export_file": "deleted with its export when the export holds a purged sample",
    "audit": "kept: the record of the takedown (after the purge, digests of its ids; no content)",
    "preview": "kept: branch-only policy previews (ids and routes, no content)",
}

_VIDEO_KINDS = "|".join(VIDEO_OBJECT_KINDS)
_PATTERNS = [
    (re.compile(r"sources/(?P<source>[^/]+)/reviews\.parquet"), "review_table"),  # before tier_table
    (re.compile(r"sources/(?P<source>[^/]+)/(?P<tier>[^/]+)\.parquet"), "tier_table"),
    (re.compile(rf"sources/(?P<source>[^/]+)/clips/(?:{_VIDEO_KINDS})/(?P<video>v[0-9a-f]+)(?:[/.].*)?"),
     "video_object"),
    (re.compile(r"sources/(?P<source>[^/]+)/scored/embeddings\.parquet"), "embeddings"),
    (re.compile(r"sources/(?P<source>[^/]+)/scored/sheets/[^/]+\.png"), "route_sheet"),
    (re.compile(r"sources/(?P<source>[^/]+)/stages/[^/]+/[^/]+\.mp4"), "stage_media"),
    (re.compile(r"concepts/[^/]+\.parquet"), "centroids"),
    (re.compile(r"releases/(?P<tag>[^/]+)/manifest\.parquet"), "release_manifest"),
    (re.compile(r"releases/(?P<tag>[^/]+)/buckets\.parquet"), "release_buckets"),
    (re.compile(r"exports/(?P<tag>[^/]+)/[^/]+/samples\.parquet"), "export_samples"),
    (re.compile(r"exports/(?P<tag>[^/]+)/[^/]+/.+"), "export_file"),
    (re.compile(r"audits/[^/]+/(?:findings\.parquet|report\.md|deleted_tags\.json|takedown\.(?:json|md))"),
     "audit"),
    (re.compile(r"previews/[^/]+/(?:changes\.parquet|report\.md|policy\.yaml)"), "preview"),
]


def classify(path: str) -> StoredObject | None:
    """What the object at `path` is; None for a path no writer spells (lineage would not know it)."""
    for pattern, kind in _PATTERNS:
        match = pattern.fullmatch(path)
        if match:
            groups = match.groupdict()
            return StoredObject(kind, groups.get("source"), groups.get("video"), groups.get("tag"))
    return None
