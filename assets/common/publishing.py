"""The write-audit-publish tail every tier shares: commit, audit on the branch, merge or stop."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
)

from resources.lakefs import ConcurrentPublishError, LakeFSResource, WapBranch


def last_published_commit(context: AssetExecutionContext, asset: str, partition: str) -> str | None:
    """The lakeFS commit an earlier run published for this partition (when nothing changed)."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    entry = records[0].asset_materialization.metadata.get("lakefs_commit")
    return str(entry.value) if entry is not None else None


def commit_for_audit(wap: WapBranch, message: str, path: str, written: pa.Table) -> tuple[bool, pa.Table]:
    """Commit the branch and return (committed, the table to audit).

    The audit reads the table back from the branch: it checks what was stored, not what
    the code meant to write. Identical bytes commit nothing; the branch goes, main holds them.
    """
    if wap.commit(message) is None:
        wap.discard()
        return False, written
    return True, wap.read_table(path)


def publish_if_audited(
    context: AssetExecutionContext, lakefs: LakeFSResource, wap: WapBranch, tier: str,
    committed: bool, results: list[AssetCheckResult], path: str,
    metadata: Callable[[str], dict[str, object]], subject: str | None = None,
    on_publish: Callable[[str], None] | None = None,
    claim: Callable[[str], AbstractContextManager[object]] | None = None,
) -> Iterator[AssetCheckResult | MaterializeResult]:
    """Merge into main when every blocking check passed; else report them and fail.

    `metadata(ref)` builds the tier's own metadata (charts included) BEFORE the merge, reading
    at `ref`: the audited branch commit, which holds exactly the data the merge publishes (and
    stays reachable from main as the merge's parent), or the commit already holding it when
    nothing was committed. A failure there leaves main untouched: nothing may raise after a merge.
    `subject` names what is published (default: the partition, i.e. the source);
    `on_publish(commit)` runs after the merge, before success is reported.
    `claim(audited_commit)` is entered just before the merge and exited after it: what must be
    taken before main changes, so that losing it stops the merge (release takes its tag there);
    a merge that fails exits it with the error, to give it back.
    """
    source = subject if subject is not None else context.partition_key
    # Non-blocking checks (severity WARN) are reported, never stop the merge.
    failed = [r.check_name for r in results if not r.passed and r.severity == AssetCheckSeverity.ERROR]
    if failed:
        yield from results
        where = (f"main is untouched, branch {wap.name} is left for inspection" if committed
                 else "nothing new was written: main already holds this table")
        raise Failure(
            description=f"{tier} {source}: blocking checks failed ({', '.join(failed)}); {where}",
            metadata={"wap_branch": wap.name if committed else "", "failed_checks": ", ".join(failed)},
        )
    if committed:
        built = metadata(wap.commit_id or wap.name)  # commit_for_audit set commit_id
        try:
            with claim(wap.commit_id or wap.name) if claim is not None else nullcontext():
                data_commit = wap.publish(f"publish {tier} {source} (run {context.run.run_id[:8]})")
        except ConcurrentPublishError as error:  # another writer's publish won: say so plainly
            raise Failure(description=str(error), allow_retries=False) from error
        if on_publish is not None:
            on_publish(data_commit)
    else:
        data_commit = last_published_commit(context, tier, source) or lakefs.head()
        built = metadata(data_commit)
    # after the merge: string formatting only
    yield MaterializeResult(
        data_version=DataVersion(data_commit),
        check_results=results,
        metadata={
            **built,
            "lakefs_commit": data_commit,
            "lakefs_commit_url": MetadataValue.url(lakefs.commit_url(data_commit)),
            "lakefs_path": f"lakefs://{lakefs.repository}/{data_commit[:12]}/{path}",
            "published": committed,
        },
    )
