"""rollback: put one tier partition on main back to an earlier commit, and tell Dagster.

A rollback reverts, newest first, every publish of (tier, source) merged into main after the
chosen commit, and nothing else: other tiers and other sources keep what they published in
between. The reverts happen on a branch; the tier's table there must equal the target's byte
for byte before the branch merges. Dagster then records a materialization of the partition
whose data version is the new main commit, so the UI shows the rolled-back table as current.
"""

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import lakefs as lakefs_sdk
import pyarrow.parquet as pq
from dagster import (
    AssetKey,
    AssetMaterialization,
    Config,
    Failure,
    MetadataValue,
    OpExecutionContext,
    job,
    op,
)
from lakefs.exceptions import ServerException
from pydantic import Field

from assets.common.layout import tier_path
from resources.lakefs import CommitMetadata, LakeFSResource
from resources.locks import partition_lock_name

CODE_VERSION = "rollback-1"
# Dagster's documented tags for an event's versions (dagster.DataVersion reads the first one).
DATA_VERSION_TAG = "dagster/data_version"
CODE_VERSION_TAG = "dagster/code_version"
# Paths named in an audit failure message, at most.
_SHOWN_PATHS = 5


class RollbackError(RuntimeError):
    """A rollback that cannot or must not happen; the message says why and what main holds."""


class TierVersion(NamedTuple):
    """One publish of a tier partition on main (a merge commit)."""

    commit_id: str
    created: datetime
    message: str
    run_id: str


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback merged: `commit` is the new main commit holding the target's table."""

    tier: str
    source: str
    commit: str
    rolled_back_to: str
    reverted_commits: tuple[str, ...]  # newest first, as reverted
    table_path: str
    row_count: int
    code_version: str  # of the run that built the restored table ("" when unrecorded)
    config_hash: str


def tier_history(lakefs: LakeFSResource, tier: str, source: str) -> list[TierVersion]:
    """Every publish of (tier, source) on main's own line, newest first: the rollback targets."""
    return [_version(commit) for commit in lakefs.first_parent_log() if _publishes(commit, tier, source)]


def rollback_partition(
    lakefs: LakeFSResource, tier: str, source: str, to_commit: str, requested_by: str, reason: str,
    run_id: str,
) -> RollbackResult:
    """Revert on main every (tier, source) publish after `to_commit`, through write-audit-publish.

    Raises RollbackError, with main untouched, when `to_commit` names no commit of main's own
    line, when nothing was published after it, when it holds no table for the partition, or
    when the reverted branch's table differs from the target's (that branch is kept).

    It runs under the partition's lock (every publish of the partition takes it too) and reverts
    only what main held when it started: a publish of the partition merged while it waited was
    reported as a success and is not what was asked to go, so it refuses then (RollbackError).
    """
    seen = lakefs.head()
    if not requested_by.strip() or not reason.strip():
        raise RollbackError(f"rollback {tier} {source}: requested_by and reason are required "
                            "(they are recorded on the commit and in Dagster)")
    target = lakefs.resolve(to_commit)
    if target is None:
        raise RollbackError(f"rollback {tier} {source}: '{to_commit}' names no commit, branch or "
                            f"tag in lakeFS repository {lakefs.repository}; main is untouched")
    with lakefs.lock(partition_lock_name(tier, source), what=f"rollback {tier} {source} (run {run_id[:8]})"):
        for commit in lakefs.first_parent_log():  # main now, back to where this rollback found it
            if commit.id == seen:
                break
            if _publishes(commit, tier, source):
                raise RollbackError(
                    f"rollback {tier} {source}: {commit.id[:12]} (run "
                    f"{(commit.metadata or {}).get('dagster_run_id', '')[:8]}) published {tier} {source} "
                    f"after this rollback started, and a rollback reverts only what main held when it "
                    f"started; main is untouched; `vcurate history {tier} {source}` lists the publishes, "
                    "run the rollback again to revert that one too")
        return _rollback_locked(lakefs, tier, source, target, requested_by, reason, run_id)


def _rollback_locked(lakefs: LakeFSResource, tier: str, source: str, target: str, requested_by: str,
                     reason: str, run_id: str) -> RollbackResult:
    after, restored = _publishes_since(lakefs.first_parent_log(), target, tier, source)
    if after is None:
        raise RollbackError(
            f"rollback {tier} {source}: commit {target} is not an ancestor of "
            f"{lakefs.default_branch} (not on its own line of merges); main is untouched")
    if not after:
        raise RollbackError(
            f"rollback {tier} {source}: nothing to revert, no {tier} publish for source "
            f"'{source}' on {lakefs.default_branch} after {target[:12]}; `vcurate history {tier} "
            f"{source}` lists them; main is untouched")
    path = tier_path(source, tier)
    expected = lakefs.read_bytes(path, ref=target)
    if expected is None:
        raise RollbackError(f"rollback {tier} {source}: commit {target[:12]} holds no {path}; "
                            "pick a commit from `vcurate history`; main is untouched")

    meta = (restored.metadata or {}) if restored is not None else {}
    wap = lakefs.start_wap(tier, source, CommitMetadata(
        run_id=run_id, asset=tier, partition=source,
        code_version=meta.get("code_version", ""), config_hash=meta.get("config_hash", ""),
        upstream_commits=json.loads(meta.get("upstream_commits") or "{}"),
    ), prefix="rollback")
    for commit in after:
        try:
            wap.revert(commit.id)
        except ServerException as error:
            raise RollbackError(f"rollback {tier} {source}: reverting {commit.id[:12]} failed on "
                                f"branch {wap.name} ({error}); main is untouched, the branch is "
                                "left for inspection") from error
    _audit(lakefs, wap.name, target, path, expected, after)
    reverted = tuple(commit.id for commit in after)
    merge = wap.publish(
        f"rollback {tier} {source} to {target[:12]} (run {run_id[:8]}, by {requested_by}): {reason}",
        extra_metadata={"rolled_back_to": target, "reverted_commits": ",".join(reverted),
                        "requested_by": requested_by, "reason": reason},
    )
    return RollbackResult(
        tier=tier, source=source, commit=merge, rolled_back_to=target, reverted_commits=reverted,
        table_path=path, row_count=pq.ParquetFile(io.BytesIO(expected)).metadata.num_rows,
        code_version=meta.get("code_version", ""), config_hash=meta.get("config_hash", ""),
    )


def _publishes(commit: lakefs_sdk.Commit, tier: str, source: str) -> bool:
    # A tier's WAP branch commit carries the same metadata; only the merge changed main.
    meta = commit.metadata or {}
    return (len(commit.parents) > 1 and meta.get("dagster_asset") == tier
            and meta.get("dagster_partition") == source)


def _publishes_since(
    log: Iterator[lakefs_sdk.Commit], target: str, tier: str, source: str,
) -> tuple[list[lakefs_sdk.Commit] | None, lakefs_sdk.Commit | None]:
    """(publishes after target, newest first; the publish in force at target): (None, None) when
    target is not on the log."""
    after: list[lakefs_sdk.Commit] = []
    for commit in log:
        if commit.id == target:
            # the publish whose table the target holds: the target itself or the last before it
            restored = next((c for c in _chain(commit, log) if _publishes(c, tier, source)), None)
            return after, restored
        if _publishes(commit, tier, source):
            after.append(commit)
    return None, None


def _chain(first: lakefs_sdk.Commit, rest: Iterator[lakefs_sdk.Commit]) -> Iterator[lakefs_sdk.Commit]:
    yield first
    yield from rest


def _audit(lakefs: LakeFSResource, branch: str, target: str, path: str, expected: bytes,
           reverted: list[lakefs_sdk.Commit]) -> None:
    """The branch must hold the target's table byte for byte, and every object the reverted
    publishes touched (keyframes, statistics, media) as it was at the target."""
    where = f"main is untouched, branch {branch} is left for inspection"
    if lakefs.read_bytes(path, ref=branch) != expected:
        raise RollbackError(f"rollback audit: {path} on {branch} differs from {target[:12]} "
                            f"(another writer changed it after the target?); {where}")
    touched = {p for commit in reverted for p in lakefs.changed_paths(commit.parents[0], commit.id)}
    differing = sorted(touched.intersection(lakefs.changed_paths(target, branch)))
    if differing:
        shown = ", ".join(differing[:_SHOWN_PATHS]) + (" ..." if len(differing) > _SHOWN_PATHS else "")
        raise RollbackError(f"rollback audit: {len(differing)} objects differ from {target[:12]} "
                            f"({shown}); {where}")


def _version(commit: lakefs_sdk.Commit) -> TierVersion:
    return TierVersion(commit.id, datetime.fromtimestamp(commit.creation_date, tz=UTC), commit.message,
                       (commit.metadata or {}).get("dagster_run_id", ""))


class RollbackConfig(Config):
    tier: str = Field(description="the tier asset to roll back, e.g. scored")
    source: str = Field(description="the source partition, e.g. films")
    to_commit: str = Field(description="a lakeFS commit on main (or a tag) whose table to restore; "
                                       "`vcurate history TIER SOURCE` lists the candidates")
    requested_by: str = Field(description="who asked for the rollback (recorded)")
    reason: str = Field(description="why (recorded on the commit and the materialization)")


@op(name="rollback_partition", out={}, tags={"kind": "lakefs"})
def rollback_partition_op(
    context: OpExecutionContext, config: RollbackConfig, lakefs: LakeFSResource,
) -> Iterator[AssetMaterialization]:
    """Roll the partition back on lakeFS, then report it as the asset partition's current data."""
    try:
        result = rollback_partition(lakefs, config.tier, config.source, config.to_commit,
                                    config.requested_by, config.reason, context.run_id)
    except RollbackError as error:
        raise Failure(description=str(error)) from error
    context.log.info(f"rollback {result.tier} {result.source}: reverted "
                     f"{len(result.reverted_commits)} publishes, main is at {result.commit}")
    tags = {DATA_VERSION_TAG: result.commit}
    if result.code_version:  # the code that built the restored table, so staleness is judged right
        tags[CODE_VERSION_TAG] = result.code_version
    yield AssetMaterialization(
        asset_key=AssetKey(result.tier),
        partition=result.source,
        description=f"rolled back to {result.rolled_back_to[:12]}: {config.reason}",
        tags=tags,
        metadata={
            "dagster/row_count": result.row_count,
            "lakefs_commit": result.commit,
            "lakefs_commit_url": MetadataValue.url(lakefs.commit_url(result.commit)),
            "lakefs_path": f"lakefs://{lakefs.repository}/{result.commit[:12]}/{result.table_path}",
            "rolled_back_to": result.rolled_back_to,
            "rolled_back_to_url": MetadataValue.url(lakefs.commit_url(result.rolled_back_to)),
            "reverted_commits": ", ".join(result.reverted_commits),
            "requested_by": config.requested_by,
            "reason": config.reason,
            "config_hash": result.config_hash,
            "published": True,
        },
    )


@job(
    name="rollback_tier",
    tags={"kind": "rollback"},
    description="Roll one tier partition on lakeFS main back to an earlier commit (run config: tier, "
                "source, to_commit, requested_by, reason): revert that partition's later publishes "
                "only, audit the table byte for byte on a branch, merge, and record the result as "
                "the asset partition's current materialization.",
)
def rollback_tier() -> None:
    rollback_partition_op()
