"""Opt-out lineage audit and purge across every tier on main and every release tag.

The audit finds every raw video, clip, scored row, caption, stage sample, exported file and
release row derived from an opted-out source or video, on `main` and in each release tag, and
stores the report in lakeFS under `audits/`. The purge removes those rows and files from every
tier on `main` in one write-audit-publish commit; release tags are history and keep their
bytes until lakeFS garbage collection (see README, "Opt-out and physical deletion").
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from assets.common.layout import (
    AUDITS,
    EXPORTS,
    RELEASES,
    SOURCES,
    audit_findings_path,
    audit_report_path,
    audit_tags_path,
    classify,
    embeddings_path,
    release_buckets_path,
    release_manifest_path,
    route_sheet_path,
    source_prefix,
    tier_path,
    tier_tables_listed,
    video_cache_entries,
    video_object_prefixes,
)
from assets.raw_pool.rows import refusal_row
from assets.release.rows import bucket_counts, bucket_table
from assets.scored.rows import route_contact_sheets
from assets.upkeep.export import exports_holding
from quality_checks.lineage import (
    FINDINGS_SCHEMA,
    TIER_KINDS,
    OptedOut,
    find_derived,
    findings_rows,
    opted_out_ids,
)
from resources.lakefs import CommitMetadata, LakeFSResource, WapBranch
from resources.optout import OptOutRegistry, redacted
from resources.sources import s3_cache_folder

# Per-source tables the audit and the purge filter by video_id: the tiers', the review decisions'
# and the tiers' failure lists (layout.failures_path), which name their videos too.
TIERS = ([t for t in TIER_KINDS if t != "release"] + ["reviews"]
         + [f"{t}_failures" for t in TIER_KINDS if t not in ("raw_pool", "captioned", "release", "export")])


@dataclass
class AuditReport:
    audit_id: str
    findings: pa.Table
    markdown: str
    releases: list[str]
    opted: OptedOut
    unmatched: list[str] = field(default_factory=list)  # registry entries that match no data
    raw_rows: list[dict] = field(default_factory=list)  # (source, video_id, sha256, uri) seen anywhere
    commit: str = ""  # the main commit holding the report
    by_ref: dict[str, Counter] = field(default_factory=dict)
    exports: list[dict] = field(default_factory=list)  # ledger copies outside lakeFS holding opted-out data


def _tier_tables(lakefs: LakeFSResource, ref: str) -> dict[tuple[str, str], pa.Table]:
    tables = {}
    for key, path in tier_tables_listed(lakefs.list_paths(SOURCES, ref=ref), TIERS).items():
        table = lakefs.read_table(path, ref=ref)
        if table is not None:
            tables[key] = table
    return tables


def audit_optouts(lakefs: LakeFSResource, registry: OptOutRegistry, run_id: str) -> AuditReport:
    """Audit main and every release tag; commit the report to main under audits/<id>/."""
    head = lakefs.head()
    releases = sorted((t.id, t.get_commit().id) for t in lakefs.repo().tags() if t.id.startswith("release-"))
    refs = [("main", "branch", head)] + [(tag, "release", commit) for tag, commit in releases]
    tables = {ref: _tier_tables(lakefs, commit) for ref, _, commit in refs}
    raw_pools = [t for by_ref in tables.values() for (_, tier), t in by_ref.items() if tier == "raw_pool"]
    opted = opted_out_ids(registry, raw_pools)
    rows: list[dict] = []
    for ref, kind, commit in refs:
        for (_, tier), table in sorted(tables[ref].items()):
            if tier == "raw_pool":  # the refusal itself is not derived data
                table = table.filter(pc.not_equal(table.column("status"), "opted_out"))
            rows += findings_rows(ref, kind, commit, tier, find_derived(tier, table, opted))
        if kind == "release":
            manifest = lakefs.read_table(release_manifest_path(ref), ref=commit)
            if manifest is not None:
                rows += findings_rows(ref, kind, commit, "release", find_derived("release", manifest, opted))
    rows += _export_findings(lakefs, head, opted)
    findings = pa.Table.from_pylist(rows, schema=FINDINGS_SCHEMA)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    digest = hashlib.sha256(json.dumps(registry.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    raw = [row for t in raw_pools for row in t.select(["source", "video_id", "sha256", "uri"]).to_pylist()]
    known = {source for by_ref in tables.values() for source, _ in by_ref}
    report = AuditReport(f"audit-{stamp}-{digest[:8]}", findings, "", [t for t, _ in releases], opted,
                         _unmatched(registry, raw, known), raw)
    report.by_ref = {ref: Counter(r["kind"] for r in rows if r["ref"] == ref) for ref, _, _ in refs}
    report.markdown = _markdown(report, head) + _exports_section(report, lakefs.repository)
    wap = lakefs.start_wap("audit", report.audit_id[-8:], CommitMetadata(
        run_id=run_id, asset="optout_audit", partition="", code_version="audit-1",
        config_hash=digest[:16], upstream_commits={"main": head}))
    wap.write_table(audit_findings_path(report.audit_id), findings)
    wap.write_bytes(audit_report_path(report.audit_id), report.markdown.encode(), "text/markdown")
    wap.commit(f"opt-out audit {report.audit_id}: {findings.num_rows} derived rows")
    report.commit = wap.publish(f"publish opt-out audit {report.audit_id}")
    return report


def _export_findings(lakefs: LakeFSResource, head: str, opted: OptedOut) -> list[dict]:
    """Samples of the exports kept in lakeFS (`exports/<tag>/<format>/`) derived from opted-out
    lineage; each finding cites every file of its export, which the purge deletes whole."""
    rows = []
    for path in lakefs.list_paths(EXPORTS, ref=head):
        stored = classify(path)
        if stored is None or stored.kind != "export_samples":
            continue
        found = find_derived("export", lakefs.read_table(path, ref=head), opted)
        if found.num_rows:
            prefix = path.rsplit("/", 1)[0] + "/"
            files = lakefs.list_paths(prefix, ref=head)
            found = found.set_column(found.schema.get_field_index("paths"), "paths",
                                     pa.array([files] * found.num_rows, pa.list_(pa.string())))
            rows += findings_rows("main", "branch", head, f"export:{prefix}", found)
    return rows


def _unmatched(registry: OptOutRegistry, raw: list[dict], known: set[str]) -> list[str]:
    """Entries that match nothing on main or in any release: a mistyped id or uri, or a source
    that never held data. They are reported, since they protect nothing today."""
    return ([f"source {s}: no data of this source in lakeFS" for s in registry.unknown_sources(known)]
            + [f"{entry}: matches no video" for entry in registry.unmatched(raw)])


def _markdown(report: AuditReport, head: str) -> str:
    lines = [f"# Opt-out audit {report.audit_id}", "",
             f"Sources opted out: {', '.join(sorted(report.opted.sources)) or 'none'}; "
             f"videos opted out: {len(report.opted.videos)}. Audited main at `{head[:12]}` and "
             f"{len(report.releases)} release tag(s).", "",
             "| ref | raw videos | clips | scored | captions | stage samples | release samples | files |",
             "|---|---|---|---|---|---|---|---|"]
    for ref, counts in report.by_ref.items():
        files = sum(len(r["paths"] or []) for r in report.findings.to_pylist() if r["ref"] == ref)
        lines.append(f"| {ref} | {counts['raw_video']} | {counts['clip']} | {counts['scored_clip']} | "
                     f"{counts['caption']} | {counts['stage_sample']} | {counts['release_sample']} "
                     f"| {files} |")
    if report.unmatched:
        lines += ["", f"**{len(report.unmatched)} registry entries match nothing** (check the id, sha256 "
                  "or uri: a uri is relative to the folder of sources.yaml, as raw_pool records it):", ""]
        lines += [f"- {entry}" for entry in report.unmatched]
    held = held_tags(report)
    lines += ["", "Release tags are history: a purge never rewrites them. "
              + (f"These releases contained opted-out data: {', '.join(held)}. Their bytes stay in lakeFS "
                 "until the tags are deleted (`vcurate purge --delete-tags`) and lakeFS garbage collection "
                 "runs on S3 storage." if held else
                 "No release contained opted-out data.")]
    return "\n".join(lines)


def _exports_section(report: AuditReport, repository: str) -> str:
    """Exports outside lakeFS (the export ledger) holding opted-out samples: no purge reaches them,
    so the report names each copy for its owner to delete."""
    report.exports = exports_holding(report.opted, repository)
    lines = ["", f"Exports outside lakeFS holding opted-out samples: {len(report.exports)}."]
    lines += [f"- `{e['destination']}` ({e['format']} of {e['tag']}, {e['exported_at']}): "
              f"{len(e['opted_out_samples'])} opted-out sample(s)" for e in report.exports]
    return "\n" + "\n".join(lines)


def _release_tables(paths: list[str], kind: str) -> list[str]:
    return [p for p in paths if (o := classify(p)) is not None and o.kind == kind]


def _rebuild_aggregates(lakefs: LakeFSResource, wap: WapBranch, sources: set[str], opted: OptedOut) -> None:
    """Objects that mix a purged video with others are rewritten without it on the branch:
    the per-route contact sheets of each affected source (from its filtered scored table) and
    every release manifest kept on main, with its bucket statistics."""
    for source in sorted(sources):
        scored = lakefs.read_table(tier_path(source, "scored"), ref=wap.name)
        old = [p for p in wap.list_paths(source_prefix(source))
               if (o := classify(p)) is not None and o.kind == "route_sheet"]
        wap.delete_paths(old)
        if scored is not None:
            sheets = route_contact_sheets(scored, lambda p: lakefs.read_bytes(p, ref=wap.name))
            for route, png in sheets.items():
                wap.write_bytes(route_sheet_path(source, route), png, "image/png")
    for path in _release_tables(wap.list_paths(RELEASES), "release_manifest"):
        manifest = lakefs.read_table(path, ref=wap.name)
        derived = find_derived("release", manifest, opted)
        if derived.num_rows == 0:
            continue
        doomed = pa.array(sorted({r["sample_id"] for r in derived.to_pylist()}), pa.string())
        kept = manifest.filter(pc.invert(pc.is_in(manifest.column("sample_id"), doomed)))
        wap.write_table(path, kept)
        tag = classify(path).tag
        wap.write_table(release_buckets_path(tag), bucket_table(bucket_counts(kept.to_pylist())))


def _redact_findings(lakefs: LakeFSResource, wap: WapBranch) -> None:
    """Every audit's findings on the branch, identifiers replaced by their digests: once the
    purge is published the record says what was removed (kinds, tiers, refs, counts) and can be
    checked against an opt-out entry, but names nothing of the video."""
    for path in wap.list_paths(AUDITS):
        stored = classify(path)
        if stored is None or stored.kind != "audit" or not path.endswith("findings.parquet"):
            continue
        rows = lakefs.read_table(path, ref=wap.name).to_pylist()
        for row in rows:
            for key in ("video_id", "clip_id", "sample_id"):
                row[key] = redacted(row[key]) if row[key] else row[key]
            row["paths"] = [redacted(p) for p in row["paths"] or []]
        wap.write_table(path, pa.Table.from_pylist(rows, schema=FINDINGS_SCHEMA))


def purge_cache(cache_dir: Path, report: AuditReport) -> list[Path]:
    """Delete every local cache entry of the opted-out videos (analyses with their keyframes and
    cut files, signals, captions, S3 downloads); returns what was removed."""
    if not report.raw_rows:
        return []
    # the same lineage query as every tier decides which videos are opted out
    found = find_derived("raw_pool", pa.Table.from_pylist(report.raw_rows), report.opted)
    opted = set(zip(found.column("source").to_pylist(), found.column("video_id").to_pylist(), strict=True))
    removed = []
    for row in report.raw_rows:
        if (row["source"], row["video_id"]) in opted:
            entries = video_cache_entries(cache_dir, row["sha256"], row["video_id"])
            if row["uri"].startswith("s3://"):
                try:
                    folder = s3_cache_folder(cache_dir / "objects", row["uri"])
                except ValueError:  # a key refused at ingest was never downloaded
                    folder = None
                entries += [folder] if folder is not None and folder.exists() else []
            for entry in entries:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            removed += entries
    return removed


def held_tags(report: AuditReport) -> list[str]:
    """The release tags the audit found opted-out data in."""
    return sorted(ref for ref, counts in report.by_ref.items() if ref != "main" and sum(counts.values()))


def deleted_tags(lakefs: LakeFSResource, ref: str) -> list[str]:
    """Every release tag a takedown deleted, from the records under audits/ on `ref`."""
    names: list[str] = []
    for path in lakefs.list_paths(AUDITS, ref=ref):
        if path == audit_tags_path(path.split("/")[1]):
            names += json.loads(lakefs.read_bytes(path, ref=ref) or b"{}").get("tags", {})
    return names


def delete_release_tags(lakefs: LakeFSResource, report: AuditReport, run_id: str) -> list[str]:
    """Delete the release tags that held opted-out data (after the purge, never before: main
    must be clean first) and record which, with the commit each pointed at, under the audit.
    Their bytes become collectable by lakeFS GC; a new release is the citable replacement."""
    tags = held_tags(report)
    if not tags:
        return []
    pointed = {tag: lakefs.resolve(tag) for tag in tags}
    record = {"audit_id": report.audit_id, "run_id": run_id, "deleted_at": datetime.now(UTC).isoformat(),
              "tags": pointed}
    wap = lakefs.start_wap("audit", report.audit_id[-8:] + "-tags", CommitMetadata(
        run_id=run_id, asset="optout_audit", partition="", code_version="audit-1",
        config_hash=report.audit_id, upstream_commits={"main": lakefs.head()}))
    wap.write_bytes(audit_tags_path(report.audit_id), json.dumps(record, indent=1).encode(),
                    "application/json")
    wap.commit(f"opt-out audit {report.audit_id}: delete release tags {', '.join(tags)}")
    wap.publish(f"publish tag deletions of {report.audit_id}")
    for tag in tags:
        lakefs.repo().tag(tag).delete()
    return tags


@dataclass
class PurgeResult:
    commit: str | None
    removed_rows: dict[str, int]
    deleted_objects: int
    whole_sources: list[str]


def purge_optouts(lakefs: LakeFSResource, report: AuditReport, run_id: str) -> PurgeResult:
    """Remove every finding on main, in one write-audit-publish commit. raw_pool keeps its row
    of an opted-out video, marked `opted_out`, as the record of the refusal."""
    main_rows = [r for r in report.findings.to_pylist() if r["ref"] == "main"]
    if not main_rows:
        return PurgeResult(None, {}, 0, [])
    wap = lakefs.start_wap("purge", report.audit_id[-8:], CommitMetadata(
        run_id=run_id, asset="optout_purge", partition="", code_version="purge-1",
        config_hash=report.audit_id, upstream_commits={"main": lakefs.head(), "audit": report.commit}))
    removed: Counter = Counter()
    deleted = 0
    whole = sorted({r["source"] for r in main_rows} & report.opted.sources)
    for source in whole:  # the whole partition goes: every table and file under it
        paths = wap.list_paths(source_prefix(source))
        wap.delete_paths(paths)
        deleted += len(paths)
        removed[f"{source}:*"] = len([r for r in main_rows if r["source"] == source])
    for (source, tier), table in _tier_tables(lakefs, wap.name).items():
        videos = {r["video_id"] for r in main_rows if r["source"] == source}
        if not videos:
            continue
        hit = pc.is_in(table.column("video_id"), pa.array(sorted(videos)))
        if tier == "raw_pool":  # the row stays as the refusal on record, naming nothing
            table = pa.Table.from_pylist(
                [refusal_row({**r, "status": "opted_out", "reason": "opted_out_purged"}) if h else r
                 for r, h in zip(table.to_pylist(), hit.to_pylist(), strict=True)], schema=table.schema)
        else:
            removed[f"{source}:{tier}"] = pc.sum(hit).as_py() or 0
            table = table.filter(pc.invert(hit))
        wap.write_table(tier_path(source, tier), table)
        if tier == "scored":
            embeddings = lakefs.read_table(embeddings_path(source), ref=wap.name)
            if embeddings is not None:
                kept = pc.is_in(embeddings.column("clip_id"), table.column("clip_id"))
                wap.write_table(embeddings_path(source), embeddings.filter(kept))
    _rebuild_aggregates(lakefs, wap, {r["source"] for r in main_rows} - set(whole), report.opted)
    exported = sorted({p for r in main_rows if r["table"].startswith("export:") for p in r["paths"] or []})
    wap.delete_paths(exported)  # an export holding a purged sample goes whole: re-export the new release
    deleted += len(exported)
    cited = sorted({p for r in main_rows if r["source"] not in whole for p in r["paths"] or []})
    per_video = tuple(prefix for r in main_rows if r["source"] not in whole
                      for prefix in video_object_prefixes(r["source"], r["video_id"]))
    stored = {p for source in {r["source"] for r in main_rows} - set(whole)
              for p in wap.list_paths(source_prefix(source))}
    doomed = sorted((set(cited) | {p for p in stored if p.startswith(per_video)}) & stored)
    wap.delete_paths(doomed)
    deleted += len(doomed)
    _redact_findings(lakefs, wap)
    wap.commit(f"purge opted-out lineage ({report.audit_id}): {sum(removed.values())} rows, {deleted} files")
    # Audit the branch: nothing derived from opted-out lineage may remain in any tier.
    left = [r for (source, tier), table in _tier_tables(lakefs, wap.name).items()
            for r in find_derived(tier, table.filter(pc.not_equal(table.column("status"), "opted_out"))
                                  if tier == "raw_pool" else table, report.opted).to_pylist()]
    for path in _release_tables(wap.list_paths(RELEASES), "release_manifest"):
        left += find_derived("release", lakefs.read_table(path, ref=wap.name), report.opted).to_pylist()
    if left:
        raise RuntimeError(f"purge left {len(left)} opted-out rows on branch {wap.name}; main untouched")
    commit = wap.publish(f"publish purge {report.audit_id}")
    return PurgeResult(commit, dict(removed), deleted, whole)
