"""release: every stage manifest of every source at one `main` commit, tagged for citation."""

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime

import pyarrow as pa
from dagster import (
    AssetDep,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)
from lakefs.exceptions import ConflictException

from assets.common.charts import bar_png, markdown_image
from assets.common.layout import (
    SOURCES,
    release_buckets_path,
    release_manifest_path,
    tier_path,
    tier_tables_listed,
)
from assets.common.publishing import commit_for_audit, publish_if_audited
from assets.common.tier import OWNERS, start_tier_wap
from assets.release.rows import bucket_counts, bucket_table
from assets.upkeep.purge import deleted_tags
from quality_checks.policy.resource import PolicyResource
from quality_checks.policy.stages import STAGES
from quality_checks.release import evaluate_release_checks, release_check_specs
from quality_checks.schemas import STAGE_SCHEMA
from resources.lakefs import LakeFSResource
from resources.optout import OptOutResource

CODE_VERSION = "release-1"


def _by_clip(lakefs: LakeFSResource, sources: list[str], tier: str, ref: str) -> dict[tuple[str, str], dict]:
    """Rows of one tier's tables on `ref`, by (source, clip_id): what the samples are checked on."""
    rows: dict[tuple[str, str], dict] = {}
    for source in sources:
        table = lakefs.read_table(tier_path(source, tier), ref=ref)
        for row in table.to_pylist() if table is not None else []:
            rows[(source, row["clip_id"])] = row
    return rows


def release_tag(day: str, existing: Iterable[str]) -> str:
    """`release-<date>-<n>`: one more than the highest n tagged that day. `existing` includes
    tags deleted by a takedown: a name a model may cite never comes back with other content."""
    prefix = f"release-{day}-"
    taken = [int(t.removeprefix(prefix)) for t in existing
             if t.startswith(prefix) and t.removeprefix(prefix).isdigit()]
    return f"{prefix}{max(taken, default=0) + 1}"


@contextmanager
def _tag_taken(lakefs: LakeFSResource, tag: str, commit: str) -> Iterator[None]:
    """Take the release tag on the audited commit before the release merges. lakeFS creates a tag
    name once: of two releases that picked the same name, one takes it and merges, the other
    stops here with main untouched, so no release merge on main is ever untagged. The tag names
    the commit the checks ran on (main holds it as the release merge's second parent); a merge
    that fails gives the tag back."""
    try:
        lakefs.tag(tag, commit)
        lost = False
    except ConflictException:
        lost = True
    if lost:  # raised outside the except block: the 409 is not the story
        raise Failure(f"release {tag}: another release is running (it took tag {tag} first); main is "
                      "untouched; release again once it has finished")
    try:
        yield
    except BaseException:
        with suppress(Exception):  # the merge's error is the one to report
            lakefs.repo().tag(tag).delete()
        raise


@asset(
    name="release",
    deps=[AssetDep(stage) for stage in STAGES],
    group_name="stages",
    code_version=CODE_VERSION,
    check_specs=release_check_specs(),
    kinds={"lakefs", "parquet"},
    owners=OWNERS,
    tags={"tier": "release"},
    description=(
        "The union of every stage manifest across sources at one `main` commit: "
        "`releases/<tag>/manifest.parquet` and its statistics, committed through write-audit-publish "
        "and tagged `release-<date>-<n>`. A trained model cites the tag."
    ),
)
def release(context: AssetExecutionContext, lakefs: LakeFSResource, policy: PolicyResource,
            optouts: OptOutResource) -> Iterator[MaterializeResult | object]:
    head = lakefs.head()
    listed = tier_tables_listed(lakefs.list_paths(SOURCES, ref=head), STAGES)
    tables = [lakefs.read_table(path, ref=head) for _, path in sorted(listed.items())]
    manifest = (pa.concat_tables([t.cast(STAGE_SCHEMA) for t in tables]) if tables
                else STAGE_SCHEMA.empty_table())
    if not tables:
        raise Failure("release: no stage manifest on main; materialize the stage tiers first")
    if manifest.num_rows == 0:  # e.g. after a purge removed everything: still a citable state
        context.log.warning("release: the stage manifests on main hold no sample")
    day = datetime.now(UTC).strftime("%Y%m%d")
    tag = release_tag(day, [t.id for t in lakefs.repo().tags()] + deleted_tags(lakefs, head))
    rows = manifest.to_pylist()
    stats = bucket_counts(rows)
    summary = bucket_table(stats)
    rules = policy.load()
    wap = start_tier_wap(context, lakefs, "release", CODE_VERSION, rules.hash, {"stages": head},
                         name=tag)
    path = release_manifest_path(tag)
    wap.write_table(path, manifest)
    wap.write_table(release_buckets_path(tag), summary)
    committed, audited = commit_for_audit(
        wap, f"release {tag}: {manifest.num_rows} samples from commit {head[:12]}", path, manifest)
    sources = sorted({r["source"] for r in rows})
    results = evaluate_release_checks(audited.to_pylist(), set(wap.list_paths(SOURCES)),
                                      _by_clip(lakefs, sources, "scored", head),
                                      _by_clip(lakefs, sources, "captioned", head),
                                      rules.stages, optouts.load())
    per_stage = Counter(r["stage"] for r in rows)
    context.log.info(f"release {tag}: " + ", ".join(f"{s} {per_stage[s]}" for s in STAGES))
    yield from publish_if_audited(
        context, lakefs, wap, "release", committed, results, path, lambda commit: {
            "release_tag": tag,
            "manifest": f"lakefs://{lakefs.repository}/{tag}/{path}",
            **{f"samples_{s}": per_stage[s] for s in STAGES},
            "dagster/row_count": manifest.num_rows,
            "sources": len({r["source"] for r in rows}),
            "buckets": MetadataValue.md("| stage | bucket | samples |\n|---|---|---|\n" + "".join(
                f"| {s} | {b} | {n} |\n" for s in STAGES for b, n in sorted(stats[s].items())) + "\n" + (
                markdown_image(bar_png({f"{s} {b}": n for s in STAGES for b, n in sorted(stats[s].items())},
                                       f"release {tag}"), "release buckets") if rows else "")),
        }, subject=tag, claim=lambda audited: _tag_taken(lakefs, tag, audited))
