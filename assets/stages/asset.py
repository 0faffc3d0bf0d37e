"""stage_256p, stage_480p, stage_720p, sft: training samples routed by policy, media exported."""

import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
)

from assets.common.charts import bar_png, markdown_image
from assets.common.layout import failures_path, stage_media_prefix, tier_path
from assets.common.metadata import failures_md, failures_table, table_metadata
from assets.common.progress import Progress
from assets.common.publishing import commit_for_audit, publish_if_audited
from assets.common.tier import read_upstream, start_tier_wap, tier_asset
from assets.stages.rows import StageStats, build_stage, join_captions
from media.decode.probe import probe_video_file
from quality_checks.policy.resource import PolicyResource
from quality_checks.policy.stages import STAGES
from quality_checks.schemas import STAGE_SCHEMA
from quality_checks.stages import evaluate_stage_checks, stage_check_specs
from resources.lakefs import LakeFSResource
from resources.optout import OptOutResource
from resources.sources import SourceRegistryResource

CODE_VERSION = "stages-1"


def build_stage_asset(stage: str) -> AssetsDefinition:
    @tier_asset(
        stage,
        tier_tag="stage",
        deps=["scored", "captioned"],
        group_name="stages",
        code_version=CODE_VERSION,
        check_specs=stage_check_specs(stage),
        kinds={"lakefs", "parquet", "h264"},
        description=(
            f"Training samples of {stage}: clips chosen by policy.stages.{stage} from the stored "
            "scores and captions (resolution, duration, motion, text, quality, watermark, caption, "
            "review), each with its aspect and frame-count bucket, a caption variant drawn by the "
            "stage's mix, a weight, and its span exported to H.264 at the stage size and fps. A "
            "threshold change re-routes without recomputing any signal."
        ),
    )
    def _stage(context: AssetExecutionContext, lakefs: LakeFSResource, sources: SourceRegistryResource,
               policy: PolicyResource, optouts: OptOutResource) -> Iterator[MaterializeResult | object]:
        source_id = context.partition_key
        rules = policy.load()
        rule = rules.stages.stage(stage)
        head = lakefs.head()
        scored = read_upstream(lakefs, stage, source_id, "scored", head)
        captioned = lakefs.read_table(tier_path(source_id, "captioned"), ref=head)
        scored_rows = scored.to_pylist()
        captioned_rows = captioned.to_pylist() if captioned is not None else None
        registry = sources.load()
        raw = lakefs.read_table(tier_path(source_id, "raw_pool"), ref=head)
        fingerprints = dict(zip(raw.column("uri").to_pylist(), raw.column("fingerprint").to_pylist(),
                                strict=True)) if raw is not None else {}
        path = tier_path(source_id, stage)
        report = Progress(context.log, stage, source_id, "videos")
        wap = start_tier_wap(context, lakefs, stage, CODE_VERSION, rules.hash, {"scored": head})
        table, stats, stale = build_stage(
            stage, source_id, scored_rows, captioned_rows, rule, lakefs.read_table(path),
            lambda s: sources.local_path(registry, s["uri"], fingerprints.get(s["uri"], "")),
            wap.write_bytes, set(wap.list_paths(stage_media_prefix(source_id, stage))), head, rules.hash,
            progress=report)
        if stale:
            wap.delete_paths(stale)
        wap.write_table(path, table)
        video_ids = {r["uri"]: r["video_id"] for r in scored_rows}
        wap.write_table(failures_path(source_id, stage),
                        failures_table(source_id, stage, stats.failed, video_ids))
        committed, audited = commit_for_audit(
            wap, f"{stage} {source_id}: {table.num_rows} samples", path, table)
        ref = wap.name if committed else None
        opted = optouts.load()
        videos = {r["video_id"]: r for r in scored_rows}
        results = evaluate_stage_checks(
            stage, audited, rule, join_captions(scored_rows, captioned_rows),
            lambda media: _probe(lakefs, media, ref),
            lambda source, vid: opted.for_source(source) is not None or opted.for_video(
                source, vid, videos.get(vid, {}).get("sha256", ""), videos.get(vid, {}).get("uri", ""))
            is not None)
        yield from publish_if_audited(context, lakefs, wap, stage, committed, results, path,
                                      lambda commit: {**_metadata(
                                          stage, table, stats, video_ids, failures_path(source_id, stage)),
                                          **report.metadata()})

    return _stage


def _probe(lakefs: LakeFSResource, path: str, ref: str | None) -> dict | None:
    data = lakefs.read_bytes(path, ref=ref)
    if data is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".mp4") as handle:
        handle.write(data)
        handle.flush()
        probe = probe_video_file(Path(handle.name))
    if probe.error:
        return None
    return {"frames": probe.frame_count, "width": probe.display_width, "height": probe.display_height,
            "fps": probe.fps}


def _metadata(stage: str, table: pa.Table, stats: StageStats,
              video_ids: dict[str, str], failures_at: str) -> dict[str, object]:
    rows = table.to_pylist()
    buckets = Counter(f"{r['bucket_aspect']} {r['width']}x{r['height']} {r['frames']}f" for r in rows)
    # group reasons by their rule, not their measured values
    reasons = Counter(re.split(r" \(| <| >| [0-9]", reason)[0] for reason in stats.rejected.values())
    return {
        **table_metadata(table, STAGE_SCHEMA),
        "candidates": stats.candidates,
        "samples": stats.samples,
        "exported": stats.exported,
        "reused": stats.reused,
        "export_failures": MetadataValue.md(failures_md(stats.failed, video_ids, failures_at)),
        # the funnel as a picture, so a stage that kept nothing still shows why
        "rejections": MetadataValue.md("".join(f"- {k}: {n}\n" for k, n in reasons.most_common(15)) + (
            "\n" + markdown_image(bar_png({"kept": stats.samples, **dict(reasons.most_common(11))},
                                          f"{stage}: kept and rejected clips"), "funnel")
            if stats.candidates else "none")),
        "buckets": MetadataValue.md("| bucket | samples |\n|---|---|\n" + "".join(
            f"| {k} | {n} |\n" for k, n in sorted(buckets.items())) + (
            "\n" + markdown_image(bar_png(dict(sorted(buckets.items())), f"{stage} buckets"), "buckets")
            if buckets else "")),
        "total_weight": round(sum(r["weight"] for r in rows), 3),
    }


stage_assets = [build_stage_asset(stage) for stage in STAGES]
