"""release: every stage manifest of every source at one `main` commit, tagged for citation."""

from collections import Counter
from collections.abc import Iterator
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

from assets.common.charts import bar_png, markdown_image
from assets.common.layout import SOURCES, release_buckets_path, release_manifest_path, tier_tables_listed
from assets.common.publishing import commit_for_audit, publish_if_audited
from assets.common.tier import OWNERS, start_tier_wap
from quality_checks.policy.resource import PolicyResource
from quality_checks.policy.stages import STAGES
from quality_checks.release import evaluate_release_checks, release_check_specs
from quality_checks.schemas import STAGE_SCHEMA
from resources.lakefs import LakeFSResource

CODE_VERSION = "release-1"


def release_tag(day: str, existing: list[str]) -> str:
    """`release-<date>-<n>`: n counts the releases already tagged that day."""
    taken = [t for t in existing if t.startswith(f"release-{day}-")]
    return f"release-{day}-{len(taken) + 1}"


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
def release(context: AssetExecutionContext, lakefs: LakeFSResource,
            policy: PolicyResource) -> Iterator[MaterializeResult | object]:
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
    tag = release_tag(day, [t.id for t in lakefs.repo().tags()])
    rows = manifest.to_pylist()
    stats = {stage: Counter() for stage in STAGES}
    for row in rows:
        stats[row["stage"]][f"{row['bucket_aspect']} {row['width']}x{row['height']} {row['frames']}f"] += 1
    summary = pa.table({
        "stage": [s for s in STAGES for _ in stats[s]],
        "bucket": [b for s in STAGES for b in stats[s]],
        "samples": [n for s in STAGES for n in stats[s].values()],
    })
    wap = start_tier_wap(context, lakefs, "release", CODE_VERSION, policy.load().hash, {"stages": head},
                         name=tag)
    path = release_manifest_path(tag)
    wap.write_table(path, manifest)
    wap.write_table(release_buckets_path(tag), summary)
    committed, audited = commit_for_audit(
        wap, f"release {tag}: {manifest.num_rows} samples from commit {head[:12]}", path, manifest)
    results = evaluate_release_checks(audited.to_pylist(), set(wap.list_paths(SOURCES)))
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
        }, subject=tag, on_publish=lambda commit: lakefs.tag(tag, commit))
