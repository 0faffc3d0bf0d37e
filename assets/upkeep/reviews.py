"""Review decisions: the queue on main, and decisions written through write-audit-publish.

A decision is a row of `sources/<source>/reviews.parquet` (REVIEWS_SCHEMA), appended on a
branch, audited there (schema, known clips, the fingerprint of the signals on main) and merged
into main: every decision, or batch, is one commit, so a rollback or revert undoes it. scored
honours the decisions on its next materialization (quality_checks/routing/reviews.py).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from lakefs.exceptions import ConflictException

import resources.lakefs as lakefs_module
from assets.common.layout import SOURCES, reviews_path, tier_path, tier_tables_listed
from assets.scored.rows import reviewed_fingerprint
from quality_checks.check_results import schema_matches
from quality_checks.routing.reviews import DECISIONS, latest_decisions, queue_reason, waiting
from quality_checks.schemas import REVIEWS_SCHEMA
from resources.lakefs import CommitMetadata, LakeFSResource

CODE_VERSION = "reviews-1"
_ATTEMPTS = 3  # two reviewers merging at once: the later one re-reads main and tries again
# what a lost race raises: a merge conflict, or (where publish guards the partition) a rival publish
_RACES = (ConflictException, getattr(lakefs_module, "ConcurrentPublishError", ConflictException))


class ReviewError(ValueError):
    """A decision that cannot be recorded; main is untouched."""


@dataclass(frozen=True)
class Decision:
    clip_id: str
    decision: str  # approved | rejected
    reason: str


def review_queue(lakefs: LakeFSResource, ref: str | None = None) -> list[dict]:
    """Every clip waiting for review on `ref` (default main), each scored row with its
    `queue_reason`, ordered by source, reason, video and start. A clip decided on its current
    signals is left out: the decision is recorded, scored applies it on its next run."""
    ref = ref or lakefs.head()
    queue = []
    scored = tier_tables_listed(lakefs.list_paths(SOURCES, ref=ref), ["scored"])
    for (source, _), path in sorted(scored.items()):
        table = lakefs.read_table(path, ref=ref)
        reviews = lakefs.read_table(reviews_path(source), ref=ref)
        decided = latest_decisions(reviews.to_pylist() if reviews is not None else [])
        for row in table.to_pylist() if table is not None else []:
            done = decided.get(row["clip_id"], {}).get("signals_fingerprint") == reviewed_fingerprint(row)
            if waiting(row) and not done:
                queue.append({**row, "queue_reason": queue_reason(row)})
    return sorted(queue, key=lambda r: (r["source"], r["queue_reason"], r["video_id"], r["start_frame"]))


def record_decisions(lakefs: LakeFSResource, source: str, decisions: list[Decision], reviewer: str) -> str:
    """Append `decisions` (one source) to its reviews table in one write-audit-publish commit;
    returns the merge commit on main. Each row records the fingerprint of the signals on main."""
    if not decisions:
        raise ReviewError("no decisions to record")
    if not reviewer:
        raise ReviewError("a decision needs a reviewer")
    for d in decisions:
        if d.decision not in DECISIONS:
            raise ReviewError(f"{d.clip_id}: decision {d.decision!r} is not one of {', '.join(DECISIONS)}")
        if d.decision == "rejected" and not d.reason.strip():
            raise ReviewError(f"{d.clip_id}: a rejection needs a reason")
    for attempt in range(_ATTEMPTS):
        try:
            return _publish(lakefs, source, decisions, reviewer)
        except _RACES:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _publish(lakefs: LakeFSResource, source: str, decisions: list[Decision], reviewer: str) -> str:
    head = lakefs.head()
    scored = lakefs.read_table(tier_path(source, "scored"), ref=head)
    if scored is None:
        raise ReviewError(f"source {source}: no scored table on main")
    rows = {r["clip_id"]: r for r in scored.to_pylist()}
    unknown = [d.clip_id for d in decisions if d.clip_id not in rows]
    if unknown:
        raise ReviewError(f"source {source}: clips not in scored on main: {', '.join(unknown[:5])}")
    now = datetime.now(UTC)
    new = pa.Table.from_pylist([{
        "clip_id": d.clip_id, "video_id": rows[d.clip_id]["video_id"], "source": source,
        "decision": d.decision, "reason": d.reason.strip() or d.decision, "reviewer": reviewer,
        "decided_at": now, "signals_fingerprint": reviewed_fingerprint(rows[d.clip_id]),
    } for d in decisions], schema=REVIEWS_SCHEMA)
    old = lakefs.read_table(reviews_path(source), ref=head)
    table = pa.concat_tables([old.cast(REVIEWS_SCHEMA), new]) if old is not None else new
    batch = hashlib.sha256("".join(f"{d.clip_id}:{d.decision}" for d in decisions).encode()).hexdigest()
    wap = lakefs.start_wap("reviews", source, CommitMetadata(
        run_id=f"review-{uuid.uuid4().hex}", asset="reviews", partition=source, code_version=CODE_VERSION,
        config_hash=batch[:16], upstream_commits={"scored": head}))
    try:
        wap.write_table(reviews_path(source), table)
        counts = {k: sum(1 for d in decisions if d.decision == k) for k in DECISIONS}
        wap.commit(f"review {source}: {counts['approved']} approved, {counts['rejected']} rejected "
                   f"by {reviewer}")
        stored = wap.read_table(reviews_path(source))  # audit what the branch holds
        if not schema_matches(stored, REVIEWS_SCHEMA) or stored.num_rows != table.num_rows:
            raise ReviewError(f"reviews table on branch {wap.name} does not match the contract")
        return wap.publish(f"publish review decisions {source} ({len(decisions)} by {reviewer})",
                           {"reviewer": reviewer})
    except _RACES:
        wap.discard()
        raise


def review_tables(lakefs: LakeFSResource) -> dict[str, str]:
    """{source: checksum of its reviews table on main}: what the review sensor watches."""
    found = {}
    for obj in lakefs.repo().ref(lakefs.default_branch).objects(prefix=SOURCES):
        parts = getattr(obj, "path", "").split("/")
        if len(parts) == 3 and obj.path == reviews_path(parts[1]):
            found[parts[1]] = obj.checksum
    return found
