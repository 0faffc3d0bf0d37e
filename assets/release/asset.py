"""release: every stage manifest of every source at one `main` commit, tagged for citation."""

from collections import Counter
from datetime import UTC, datetime

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.common.charts import bar_png, markdown_image
from assets.common.layout import SOURCES, release_buckets_path, release_manifest_path, tier_tables_listed
from quality_checks.policy.resource import PolicyResource
from quality_checks.policy.stages import STAGES
from quality_checks.schemas import STAGE_SCHEMA
from resources.lakefs import CommitMetadata, LakeFSResource

RELEASE_COMPLETE = "release_manifest_complete"


def release_tag(day: str, existing: list[str]) -> str:
    """`release-<date>-<n>`: n counts the releases already tagged that day."""
    taken = [t for t in existing if t.startswith(f"release-{day}-")]
    return f"release-{day}-{len(taken) + 1}"


@asset(
    name="release",
    deps=[AssetDep(stage) for stage in STAGES],
    group_name="stages",
    code_version="release-1",
    check_specs=[AssetCheckSpec(RELEASE_COMPLETE, asset="release", blocking=True,
                                description="The release manifest holds exactly the samples of every "
                                            "stage manifest on the tagged commit, each media file present.")],
    kinds={"lakefs", "parquet"},
    owners=["team:data-platform"],
    tags={"tier": "release"},
    description=(
        "The union of every stage manifest across sources at one `main` commit: "
        "`releases/<tag>/manifest.parquet` and its statistics, committed through write-audit-publish "
        "and tagged `release-<date>-<n>`. A trained model cites the tag."
    ),
)
def release(context: AssetExecutionContext, lakefs: LakeFSResource,
            policy: PolicyResource) -> MaterializeResult:
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
    wap = lakefs.start_wap("release", tag, CommitMetadata(
        run_id=context.run.run_id, asset="release", partition="", code_version="release-1",
        config_hash=policy.load().hash, upstream_commits={"stages": head},
    ))
    wap.write_table(release_manifest_path(tag), manifest)
    wap.write_table(release_buckets_path(tag), summary)
    wap.commit(f"release {tag}: {manifest.num_rows} samples from commit {head[:12]}")
    stored = set(wap.list_paths(SOURCES))
    missing = [r["media_path"] for r in rows if r["media_path"] not in stored]
    check = AssetCheckResult(check_name=RELEASE_COMPLETE, passed=not missing,
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"samples": len(rows), "missing_media": len(missing),
                                       "examples": str(missing[:5])})
    if missing:
        raise Failure(f"release {tag}: {len(missing)} media files missing; branch {wap.name} kept",
                      metadata={"missing_media": len(missing)})
    commit = wap.publish(f"publish release {tag}")
    lakefs.tag(tag, commit)
    per_stage = Counter(r["stage"] for r in rows)
    context.log.info(f"release {tag}: " + ", ".join(f"{s} {per_stage[s]}" for s in STAGES))
    return MaterializeResult(
        check_results=[check],
        metadata={
            "release_tag": tag,
            "lakefs_commit": commit,
            "lakefs_commit_url": MetadataValue.url(lakefs.commit_url(commit)),
            "manifest": f"lakefs://{lakefs.repository}/{tag}/{release_manifest_path(tag)}",
            **{f"samples_{s}": per_stage[s] for s in STAGES},
            "dagster/row_count": manifest.num_rows,
            "sources": len({r["source"] for r in rows}),
            "buckets": MetadataValue.md("| stage | bucket | samples |\n|---|---|---|\n" + "".join(
                f"| {s} | {b} | {n} |\n" for s in STAGES for b, n in sorted(stats[s].items())) + "\n" + (
                markdown_image(bar_png({f"{s} {b}": n for s in STAGES for b, n in sorted(stats[s].items())},
                                       f"release {tag}"), "release buckets") if rows else "")),
        },
    )
