"""The physical takedown: after the purge, make lakeFS garbage collection delete the bytes.

A purge is a commit: every older commit of `main`, and every release tag that held the video,
still reference its objects. lakeFS deletes an object only when no branch head, tag or
unexpired commit references it, and only with its Spark collector on S3 storage. So the
takedown (1) lists every stored object that ever held the video on `main`'s history and in its
release tags, with its physical address and content hash, (2) purges and deletes those tags
(the caller re-cuts a release), (3) expires history for one GC run (retention 0 days on every
branch, then the rules are put back), runs the collector, and (4) proves the result: each
address is gone from the object store and reading it through lakeFS fails.

Step (3) is the price: after it, no commit older than the GC run can be read back, for every
video (rollback then reaches only commits made after it, and tags). The report says so.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import lakefs_sdk
import pyarrow as pa
import pyarrow.parquet as pq
from dagster import AssetMaterialization, MetadataValue
from lakefs.exceptions import ServerException

from assets.common.layout import EXPORTS, GC_REPORTS, RELEASES, SOURCES, audit_takedown_path, classify
from assets.upkeep.purge import audit_optouts, delete_release_tags, held_tags, purge_cache, purge_optouts
from quality_checks.lineage import OptedOut
from resources.lakefs import CommitMetadata, LakeFSResource
from resources.object_store import ObjectStore
from resources.spark_gc import run_gc


@dataclass(frozen=True)
class HeldObject:
    path: str
    commit: str
    physical_address: str
    sha256: str
    kind: str


@dataclass
class TakedownReport:
    audit_id: str
    held: list[HeldObject]
    deleted_tags: list[str] = field(default_factory=list)
    release_tag: str | None = None
    gc_run_id: str = ""
    gc_deleted_objects: int = 0
    gc_seconds: float = 0.0
    still_stored: list[str] = field(default_factory=list)  # addresses the store still holds
    still_readable: list[str] = field(default_factory=list)  # "<commit>:<path>" lakeFS still serves
    seconds: float = 0.0
    finished_at: str = ""

    def as_json(self) -> dict:
        """The stored report: addresses and hashes of what was deleted, no path (paths name videos)."""
        out = asdict(self)
        out["held"] = [{"physical_address": h.physical_address, "sha256": h.sha256, "kind": h.kind}
                       for h in self.held]
        out["still_readable"] = len(self.still_readable)
        return out


def _listing(lakefs: LakeFSResource, commit: str, prefix: str) -> list[lakefs_sdk.ObjectStats]:
    api, out, after = lakefs.client().sdk_client.objects_api, [], ""
    while True:
        page = api.list_objects(lakefs.repository, commit, prefix=prefix, after=after, amount=1000)
        out += page.results
        if not page.pagination.has_more:
            return out
        after = page.pagination.next_offset


def _video_rows(blob: bytes, opted: OptedOut) -> list[dict]:
    """The rows of a stored table that derive from an opted-out source or video."""
    table = pq.read_table(pa.BufferReader(blob))
    if "video_id" not in table.column_names:
        return []
    ids = {v for _, v in opted.videos}
    columns = [c for c in ("source", "video_id", "route") if c in table.column_names]
    return [r for r in table.select(columns).to_pylist()
            if r["video_id"] in ids or r.get("source") in opted.sources]


def held_objects(lakefs: LakeFSResource, opted: OptedOut, sources: set[str], tags: list[str],
                 read: Callable[[str, str], bytes]) -> list[HeldObject]:
    """Every stored object that held an opted-out video, at every commit of main's first-parent
    history and every tag in `tags`: its per-video files and stage media, each table version with
    one of its rows, and each route sheet of its source while scored held it."""
    commits = [c.id for c in lakefs.first_parent_log()] + [lakefs.resolve(t) for t in tags]
    ids = {v for _, v in opted.videos}
    seen: dict[str, HeldObject] = {}
    rows_of: dict[str, list[dict]] = {}  # physical address of a table -> its rows of the video
    for commit in dict.fromkeys(c for c in commits if c):
        objects = [o for prefix in [f"{SOURCES}{s}/" for s in sorted(sources)] + [RELEASES, EXPORTS]
                   for o in _listing(lakefs, commit, prefix)]
        routes: set[tuple[str, str]] = set()  # (source, route) whose contact sheet shows the video
        for obj in objects:
            stored = classify(obj.path)
            if stored is None:
                continue
            held = False
            if stored.kind == "video_object":
                held = stored.video_id in ids or stored.source in opted.sources
            elif obj.path.endswith(".parquet"):
                if obj.physical_address not in rows_of:
                    rows_of[obj.physical_address] = _video_rows(read(commit, obj.path), opted)
                held = bool(rows_of[obj.physical_address])
                if held and stored.kind == "tier_table" and obj.path.endswith("/scored.parquet"):
                    routes |= {(stored.source, r["route"]) for r in rows_of[obj.physical_address]}
            elif stored.kind in ("stage_media", "export_file"):
                held = stored.source in opted.sources or any(i in obj.path for i in ids)
            if held:
                seen.setdefault(obj.physical_address, HeldObject(obj.path, commit, obj.physical_address,
                                                                 "", stored.kind))
        for obj in objects:  # a route's contact sheet mixes its clips' keyframes into one picture
            stored = classify(obj.path)
            route = obj.path.rsplit("/", 1)[-1].removesuffix(".png")
            if stored and stored.kind == "route_sheet" and (stored.source, route) in routes:
                seen.setdefault(obj.physical_address, HeldObject(obj.path, commit, obj.physical_address,
                                                                 "", stored.kind))
    return [HeldObject(h.path, h.commit, h.physical_address,
                       hashlib.sha256(read(h.commit, h.path)).hexdigest(), h.kind) for h in seen.values()]


def expire_history_rules() -> lakefs_sdk.GarbageCollectionRules:
    """Retention 0 days on every branch: every commit but the heads expires at the next GC.
    `main` is named although the default says the same: lakeFS stores the rules as protobuf, in
    which rules that are all zero encode to nothing, and an empty rules file reads as "no rules"
    (GC then expires nothing)."""
    return lakefs_sdk.GarbageCollectionRules(default_retention_days=0, branches=[
        lakefs_sdk.GarbageCollectionRule(branch_id="main", retention_days=0)])


def verify(lakefs: LakeFSResource, report: TakedownReport, stored: Callable[[str], bool]) -> None:
    """Fill `still_stored` (the object store still has the address) and `still_readable` (lakeFS
    still serves the path at the commit that held it)."""
    for held in report.held:
        if stored(held.physical_address):
            report.still_stored.append(held.physical_address)
        if _readable(lakefs, held.path, held.commit):
            report.still_readable.append(f"{held.commit}:{held.path}")


def _readable(lakefs: LakeFSResource, path: str, commit: str) -> bool:
    """Whether lakeFS still serves `path` at `commit`: a collected object answers 410 Gone (or
    404 once its commit is gone too)."""
    try:
        return lakefs.read_bytes(path, ref=commit) is not None
    except ServerException as exc:
        if exc.status_code in (404, 410):
            return False
        raise


def report_markdown(report: TakedownReport) -> str:
    kinds: dict[str, int] = {}
    for held in report.held:
        kinds[held.kind] = kinds.get(held.kind, 0) + 1
    verdict = ("every object that held the video is gone from the object store"
               if not report.still_stored and not report.still_readable else
               f"**{len(report.still_stored)} objects are still stored, {len(report.still_readable)} still "
               "readable** (a branch other than main, or a tag, still references them; or they are younger "
               "than the GC minimum age)")
    return "\n".join([
        f"# Physical takedown ({report.audit_id})", "",
        f"{len(report.held)} stored objects held it: "
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
        f"Release tags deleted: {', '.join(report.deleted_tags) or 'none'}; "
        f"new release: {report.release_tag}.",
        f"lakeFS GC run `{report.gc_run_id}` deleted {report.gc_deleted_objects} objects in "
        f"{report.gc_seconds:.0f} s; the takedown took {report.seconds:.0f} s.", "",
        f"Result: {verdict}.", "",
        "History before the GC run is expired for every video: older commits can no longer be read.",
    ])


def physical_takedown(lakefs: LakeFSResource, store: ObjectStore, registry, cache_dir, run_id: str,
                      publish_release: Callable[[], str | None], log_dir, min_age_s: int | None = None
                      ) -> TakedownReport:
    """Audit, record what held the video, purge, delete the tags that held it, re-cut a release,
    expire history for one lakeFS GC run, then check every address. The report is committed under
    audits/<id>/takedown.json; the caller shows it in Dagster."""
    started = time.monotonic()
    audit = audit_optouts(lakefs, registry, run_id)
    tags = held_tags(audit)
    sources = {r["source"] for r in audit.findings.to_pylist()}
    held = held_objects(lakefs, audit.opted, sources, tags,
                        lambda ref, path: lakefs.read_bytes(path, ref=ref))
    report = TakedownReport(audit.audit_id, held)
    purge_optouts(lakefs, audit, run_id)
    report.deleted_tags = delete_release_tags(lakefs, audit, run_id)
    purge_cache(Path(cache_dir), audit)
    report.release_tag = publish_release()
    api = lakefs.client().sdk_client.repositories_api
    rules = api.get_gc_rules(lakefs.repository) if _has_rules(api, lakefs.repository) else None
    api.set_gc_rules(lakefs.repository, expire_history_rules())
    namespace = lakefs.repo().properties.storage_namespace
    try:
        gc = run_gc(lakefs_endpoint=lakefs.endpoint, access_key_id=lakefs.access_key_id,
                    secret_access_key=lakefs.secret_access_key, repository=lakefs.repository,
                    s3_endpoint=store.endpoint, s3_access_key_id=store.access_key_id,
                    s3_secret_access_key=store.secret_access_key, region=store.region,
                    min_age_s=min_age_s, log_path=Path(log_dir) / f"gc-{audit.audit_id}.log",
                    read_report=lambda _: store.gc_summaries(namespace, GC_REPORTS),
                    clear_probe=lambda: store.delete(f"{namespace.rstrip('/')}/_lakefs/dummy"))
    finally:  # the user's retention comes back whatever GC did
        if rules is not None:
            api.set_gc_rules(lakefs.repository, rules)
        else:
            api.delete_gc_rules(lakefs.repository)
    report.gc_run_id, report.gc_deleted_objects, report.gc_seconds = gc.run_id, gc.deleted_objects, gc.seconds
    verify(lakefs, report, store.exists)
    report.seconds = time.monotonic() - started
    report.finished_at = datetime.now(UTC).isoformat()
    wap = lakefs.start_wap("audit", audit.audit_id[-8:] + "-takedown", CommitMetadata(
        run_id=run_id, asset="optout_takedown", partition="", code_version="takedown-1",
        config_hash=audit.audit_id, upstream_commits={"main": lakefs.head()}))
    wap.write_bytes(audit_takedown_path(audit.audit_id), json.dumps(report.as_json(), indent=1).encode(),
                    "application/json")
    wap.write_bytes(audit_takedown_path(audit.audit_id).replace(".json", ".md"),
                    report_markdown(report).encode(), "text/markdown")
    wap.commit(f"physical takedown {audit.audit_id}: GC {gc.run_id}, {len(held)} objects checked")
    wap.publish(f"publish physical takedown {audit.audit_id}")
    return report


def _has_rules(api, repository: str) -> bool:
    try:
        api.get_gc_rules(repository)
        return True
    except lakefs_sdk.exceptions.NotFoundException:
        return False


def takedown_materialization(report: TakedownReport, lakefs: LakeFSResource):
    """What Dagster shows of a takedown (asset `optout_takedown`): counts, the GC run and the
    verdict; like every metadata here, nothing that names the video."""
    return AssetMaterialization("optout_takedown", metadata={
        "audit_id": report.audit_id,
        "report": MetadataValue.md(report_markdown(report)),
        "objects_that_held_it": len(report.held),
        "deleted_tags": ", ".join(report.deleted_tags) or "none",
        "release_tag": report.release_tag or "none",
        "gc_run_id": report.gc_run_id,
        "gc_deleted_objects": report.gc_deleted_objects,
        "gc_seconds": round(report.gc_seconds, 1),
        "still_stored": len(report.still_stored),
        "still_readable": len(report.still_readable),
        "takedown_seconds": round(report.seconds, 1),
        "stored_report": f"lakefs://{lakefs.repository}/main/{audit_takedown_path(report.audit_id)}",
    })
