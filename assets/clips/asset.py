"""clips: single-shot clips of every accepted raw video, from one decode per video."""

from collections import Counter
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
)

from assets.clips.rows import ClipsStats, build_clips
from assets.common.charts import histograms_png, markdown_image
from assets.common.layout import clips_prefix, failures_path, tier_path
from assets.common.metadata import failures_md, failures_table, links_md, table_metadata
from assets.common.progress import Progress
from assets.common.publishing import commit_for_audit, publish_if_audited
from assets.common.tier import read_upstream, start_tier_wap, tier_asset
from quality_checks.clips import clips_check_specs, evaluate_clips_checks
from quality_checks.lineage import no_opted_out_lineage, no_opted_out_spec
from quality_checks.policy.resource import PolicyResource
from quality_checks.schemas import CLIPS_SCHEMA
from resources.compute import ComputeResource
from resources.lakefs import LakeFSResource
from resources.optout import OptOutResource
from resources.sources import SourceRegistryResource

TIER = "clips"
CODE_VERSION = "clips-1"


@tier_asset(
    TIER,
    deps=["raw_pool"],
    group_name="curate",
    code_version=CODE_VERSION,
    check_specs=[*clips_check_specs(TIER), no_opted_out_spec(TIER)],
    kinds={"lakefs", "parquet", "pyav", "opencv"},
    description=(
        "Single-shot clips of every accepted raw video. Each video is decoded once: "
        "PySceneDetect's detector (policy.clips.detector), per-frame luma, sharpness and xGen "
        "motion, and keyframes (sharp start, middle, motion peak, end) all read the same "
        "frame stream. Shots are stitched, trimmed, re-clipped at motion spikes, split into "
        "windows and bounded by policy.clips. Clips are spans of the raw video; per-frame "
        "statistics, keyframes and a contact sheet per video are stored next to the table."
    ),
)
def clips(
    context: AssetExecutionContext,
    lakefs: LakeFSResource,
    sources: SourceRegistryResource,
    policy: PolicyResource,
    optouts: OptOutResource,
    compute: ComputeResource,
) -> Iterator[MaterializeResult | object]:
    source_id = context.partition_key
    rules = policy.load()
    params = rules.clips.analysis_params()
    raw_commit = lakefs.head()
    raw = read_upstream(lakefs, TIER, source_id, "raw_pool", raw_commit)
    accepted = raw.filter(pc.equal(raw.column("status"), "accepted")).to_pylist()
    registry = sources.load()
    path = tier_path(source_id, TIER)

    report = Progress(context.log, TIER, source_id, "videos")

    wap = start_tier_wap(context, lakefs, TIER, CODE_VERSION, params.fingerprint(),
                         {"raw_pool": raw_commit})
    table, stats = build_clips(
        source_id, accepted, lakefs.read_table(path), params,
        lambda video: sources.local_path(registry, video["uri"], video["fingerprint"]),
        sources.cache("analysis"), raw_commit, executor=compute.task_executor(),
        stored=wap.list_paths(clips_prefix(source_id)), write=wap.write_bytes,
        delete=wap.delete_paths, progress=report,
    )
    wap.write_table(path, table)
    video_ids = {v["uri"]: v["video_id"] for v in accepted}
    wap.write_table(failures_path(source_id, TIER), failures_table(source_id, TIER, stats.failed, video_ids))
    committed, audited = commit_for_audit(
        wap, f"clips {source_id}: {table.num_rows} clips from "
             f"{stats.videos - len(stats.failed)} videos", path, table,
    )
    stored = lakefs.list_paths(clips_prefix(source_id), ref=wap.name if committed else None)
    results = evaluate_clips_checks(audited, rules, stored, stats.videos, stats.failed)
    results.append(no_opted_out_lineage(TIER, audited, optouts.load()))
    # `ref`: the audited commit (read before the merge), which main's merge keeps as a parent
    yield from publish_if_audited(context, lakefs, wap, TIER, committed, results, path, lambda ref: {
        **_metadata(table, stats, video_ids, failures_path(source_id, TIER)), **report.metadata(),
        "contact_sheets": MetadataValue.md(_sheet_links(lakefs, source_id, table, ref)),
        "upstream_raw_pool_commit": raw_commit,
        "compute_executor": compute.executor,
        "analysis_fingerprint": params.fingerprint(),
    })


def _metadata(table: pa.Table, stats: ClipsStats, video_ids: dict[str, str],
              failures_at: str) -> dict[str, object]:
    durations = table.column("duration_s").to_pylist()
    buckets = Counter(min(int(d // 2) * 2, 16) for d in durations)
    histogram = "".join(f"| {b}-{b + 2} s | {buckets[b]} |\n" for b in sorted(buckets))
    fps = stats.frames_decoded / stats.seconds_analyzing if stats.seconds_analyzing else 0.0
    failures = failures_md(stats.failed, video_ids, failures_at)
    return {
        **table_metadata(table, CLIPS_SCHEMA),
        "videos": stats.videos,
        "videos_analysed": stats.analyzed,
        "videos_from_cache": stats.from_cache,
        "videos_in_segments": stats.in_segments,
        "videos_unchanged": stats.reused,
        "videos_failed": len(stats.failed),
        "failures": MetadataValue.md(failures or "none"),
        "frames_decoded": stats.frames_decoded,
        "analysis_frames_per_s": round(fps, 1),
        "duration_histogram": MetadataValue.md("| duration | clips |\n|---|---|\n" + histogram + "\n" + (
            markdown_image(histograms_png({"clip duration s": durations,
                                           "motion": table.column("motion_mean").to_pylist()},
                                          columns=2), "clip durations") if durations else "")),
    }


def _sheet_links(lakefs: LakeFSResource, source_id: str, table: pa.Table, ref: str) -> str:
    """A link to the folder of per-video contact sheets in lakeFS: a picture inlined here, or a
    link naming a video, could never be purged from the event log."""
    videos = len(set(table.column("video_id").to_pylist()))
    folder = f"{clips_prefix(source_id)}/contact_sheets/"
    return links_md([(f"{videos} per-video contact sheets", lakefs.folder_url(folder, ref))]
                    if videos else [])
