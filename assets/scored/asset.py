"""scored: every signal per clip, global dedup, concept clusters and layered governance labels."""

from collections import Counter
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
)

from assets.common.charts import bar_png, histograms_png, markdown_image
from assets.common.layout import (
    SOURCES,
    centroids_path,
    embeddings_path,
    failures_path,
    reviews_path,
    route_sheet_path,
    tier_path,
    tier_tables_listed,
)
from assets.common.metadata import failures_md, failures_table, links_md, table_metadata
from assets.common.progress import Progress
from assets.common.publishing import commit_for_audit, publish_if_audited
from assets.common.tier import read_upstream, start_tier_wap, tier_asset
from assets.scored.rows import (
    Published,
    ScoredStats,
    assemble,
    compute_signals,
    reusable_rows,
    route_contact_sheets,
    stored_centroids,
    stored_vectors,
)
from quality_checks.lineage import no_opted_out_lineage, no_opted_out_spec
from quality_checks.policy.resource import PolicyResource
from quality_checks.routing.reviews import latest_decisions, queue_reason, waiting
from quality_checks.routing.scored import ROUTES
from quality_checks.schemas import SCORED_SCHEMA
from quality_checks.scored import evaluate_scored_checks, scored_check_specs
from resources.compute import ComputeResource
from resources.lakefs import LakeFSResource
from resources.optout import OptOutResource
from resources.sources import SourceRegistryResource

TIER = "scored"
CODE_VERSION = "scored-1"
DEDUP_LOCK = "scored-dedup"  # repository-wide: every source's scored publish
FUNNEL = (  # (layer, routes that leave the funnel at it), in the order governance applies them
    ("safety", ("blocked",)), ("provenance", ("quarantined",)), ("dedup + text/watermark", ("dropped",)),
    ("review", ("review",)),
)


@tier_asset(
    TIER,
    deps=["clips", "raw_pool"],
    group_name="curate",
    code_version=CODE_VERSION,
    check_specs=[*scored_check_specs(TIER), no_opted_out_spec(TIER)],
    kinds={"lakefs", "parquet", "onnx", "opencv"},
    description=(
        "Every signal per clip, from the keyframes and frame statistics clips stored (no second "
        "decode): PP-OCR text area and subtitles, watermark/logo and borders, OpenNSFW safety, "
        "technical quality (and LAION aesthetics when configured), xGen motion and camera motion, "
        "perceptual hashes and an image embedding. Duplicates are found across all sources "
        "(exact → pHash → cosine, policy.scored.dedup) and k-means concept clusters assigned. "
        "Four governance layers label each clip with reasons (policy.scored): safety, "
        "provenance, text/watermark, quality; `route` says where it may go."
    ),
)
def scored(
    context: AssetExecutionContext,
    lakefs: LakeFSResource,
    sources: SourceRegistryResource,
    policy: PolicyResource,
    optouts: OptOutResource,
    compute: ComputeResource,
) -> Iterator[MaterializeResult | object]:
    source_id = context.partition_key
    rules = policy.load()
    params = rules.scored.signal_params(models_dir=str(sources.cache("models")))
    clips_commit = lakefs.head()
    clips_table = read_upstream(lakefs, TIER, source_id, "clips", clips_commit)
    raw = read_upstream(lakefs, TIER, source_id, "raw_pool", clips_commit)
    clips = clips_table.to_pylist()
    licenses = dict(zip(raw.column("video_id").to_pylist(), raw.column("license").to_pylist(), strict=True))
    path = tier_path(source_id, TIER)
    previous = reusable_rows(lakefs.read_table(path), lakefs.read_table(embeddings_path(source_id)),
                             params.fingerprint())

    report = Progress(context.log, TIER, source_id, "videos")

    signals, stats = compute_signals(
        clips, previous, params, lambda p: lakefs.read_bytes(p, ref=clips_commit),
        sources.cache("signals"), executor=compute.task_executor(), progress=report)
    # Cross-source dedup (and the concept centroids every source shares) is decided against what
    # main holds when this merges: one source at a time reads the others' kept clips, writes,
    # audits and merges, under a lock all processes and machines share (resources/locks.py), so two
    # sources holding the same bytes cannot both keep them. The signals above need no lock.
    with lakefs.lock(DEDUP_LOCK, what=f"scored {source_id} (run {context.run.run_id[:8]})"):
        head = lakefs.head()
        published = _published_elsewhere(lakefs, source_id, head)
        dedup = rules.scored.dedup
        concepts = rules.scored.concepts
        centroid_file = centroids_path(dedup.embedder, concepts.k, concepts.seed)
        centroids = stored_centroids(lakefs.read_table(centroid_file, ref=head))
        reviews = lakefs.read_table(reviews_path(source_id), ref=head)  # honoured, nothing recomputed
        decisions = latest_decisions(reviews.to_pylist() if reviews is not None else [])
        table, embeddings, fitted = assemble(source_id, clips, licenses, signals, published, centroids,
                                             rules, params.fingerprint(), clips_commit, decisions)

        wap = start_tier_wap(context, lakefs, TIER, CODE_VERSION, rules.hash,
                             {"clips": clips_commit})
        wap.write_table(path, table)
        wap.write_table(embeddings_path(source_id), embeddings)
        video_ids = {c["uri"]: c["video_id"] for c in clips}
        wap.write_table(failures_path(source_id, TIER),
                        failures_table(source_id, TIER, stats.failed, video_ids))
        # the centroids are shared by every source: an empty file would break all later ones
        if fitted is not None and len(fitted) and fitted is not centroids:
            wap.write_table(centroid_file, pa.table({
                "centroid": pa.array(fitted.tolist(), pa.list_(pa.float32()))}))
        sheets = route_contact_sheets(table, lambda p: lakefs.read_bytes(p, ref=clips_commit))
        for route, png in sheets.items():
            wap.write_bytes(route_sheet_path(source_id, route), png, "image/png")
        committed, audited = commit_for_audit(
            wap, f"scored {source_id}: {table.num_rows} clips, "
                 f"{sum(1 for r in table.column('route').to_pylist() if r == 'train')} routed to train",
            path, table)
        published_kept = {r["clip_id"] for r in published.rows}
        results = evaluate_scored_checks(audited, rules, [c["clip_id"] for c in clips], published_kept)
        results.append(no_opted_out_lineage(TIER, audited, optouts.load()))
        yield from publish_if_audited(context, lakefs, wap, TIER, committed, results, path, lambda commit: {
            **_metadata(table, stats, video_ids, failures_path(source_id, TIER)), **report.metadata(),
            "contact_sheets": MetadataValue.md(links_md([
                (route, lakefs.object_url(route_sheet_path(source_id, route), commit))
                for route in sorted(sheets)])),
            "upstream_clips_commit": clips_commit,
            "compute_executor": compute.executor,
            "signals_fingerprint": params.fingerprint(),
            "policy_hash": rules.hash,
            "clips_checked_against_other_sources": len(published.rows),
            **_review_metadata(table, len(decisions)),
        })


def _published_elsewhere(lakefs: LakeFSResource, source: str, ref: str) -> Published:
    """Kept clips (and their embeddings) that other sources published on main."""
    rows: list[dict] = []
    vectors: dict[str, np.ndarray] = {}
    centres: dict[str, np.ndarray] = {}
    crops: dict[str, np.ndarray] = {}
    middles: dict[str, np.ndarray] = {}
    for (other, _), p in tier_tables_listed(lakefs.list_paths(SOURCES, ref=ref), [TIER]).items():
        if other == source:
            continue
        table = lakefs.read_table(p, ref=ref)
        emb = lakefs.read_table(embeddings_path(other), ref=ref)
        if table is None or emb is None:
            continue
        columns = ["clip_id", "content_key", "phashes", "duration_s", "width", "height", "duplicate_of",
                   "temporal_signature"]  # tables scored before signatures lack the last one
        kept = [{**r, "clip_id": published_id(other, r["clip_id"])}
                for r in table.select([c for c in columns if c in table.column_names]).to_pylist()
                if r["duplicate_of"] is None]
        rows.extend(kept)
        # an older table without centre, crop or middle vectors: none of them
        for found, stored in zip((vectors, centres, crops, middles), stored_vectors(emb), strict=True):
            found.update({published_id(other, cid): vec for cid, vec in stored.items()})
    return Published(rows, vectors, centres, crops, middles)


def published_id(source: str, clip_id: str) -> str:
    """How a clip another source published is named in duplicate_of: the same bytes in two
    sources have the same clip_id, so the source tells them apart."""
    return f"{source}:{clip_id}"


def _review_metadata(table: pa.Table, decisions: int) -> dict[str, object]:
    """The review queue of this source by reason, and the decisions honoured (`vcurate review`)."""
    rows = table.select(["route", "review_status", "safety_label", "provenance_label",
                         "watermark_label"]).to_pylist()
    queue = Counter(queue_reason(r) for r in rows if waiting(r))
    status = Counter(r["review_status"] for r in rows)
    return {
        "review_queue": sum(queue.values()),
        "review_queue_by_reason": MetadataValue.md("| reason | clips waiting |\n|---|---|\n" + "".join(
            f"| {reason} | {n} |\n" for reason, n in sorted(queue.items())) if queue else "none waiting"),
        "review_approved": status["approved"],
        "review_rejected": status["rejected"],
        "review_decisions_on_main": decisions,
    }


def _metadata(table: pa.Table, stats: ScoredStats, video_ids: dict[str, str],
              failures_at: str) -> dict[str, object]:
    rows = table.to_pylist()
    routes = Counter(r["route"] for r in rows)
    remaining, funnel = len(rows), "| layer | in | removed | pass rate |\n|---|---|---|---|\n"
    for layer, leaving in FUNNEL:
        removed = sum(routes[r] for r in leaving)
        funnel += (f"| {layer} | {remaining} | {removed} | "
                   f"{(remaining - removed) / remaining if remaining else 1.0:.2f} |\n")
        remaining -= removed
    funnel += f"| **train** | {remaining} | | |\n"
    per_1000 = "| signal | CPU s per 1,000 clips |\n|---|---|\n" + "".join(
        f"| {name} | {seconds / max(1, stats.clips_timed) * 1000:.1f} |\n"
        for name, seconds in sorted(stats.signal_seconds.items()))
    reasons = Counter(" ".join(reason.split(" ")[:2]) for r in rows for reason in r["route_reasons"])
    histograms = histograms_png({name: [r[name] for r in rows] for name in (
        "technical_quality", "nsfw_max", "text_ratio_max", "watermark_score", "motion_mean",
        "camera_jitter", "sharpness", "colourfulness", "concept_similarity")})
    labels = {f"{layer}: {label}": n for layer in ("safety_label", "provenance_label", "watermark_label",
                                                   "quality_label", "camera_motion", "route")
              for label, n in sorted(Counter(r[layer] for r in rows).items())}
    failures = failures_md(stats.failed, video_ids, failures_at)
    return {
        **table_metadata(table, SCORED_SCHEMA),
        **{f"route_{route}": routes[route] for route in ROUTES},
        "funnel": MetadataValue.md(funnel),
        "time_per_signal": MetadataValue.md(per_1000),
        "route_reasons": MetadataValue.md("".join(f"- {k}: {n}\n" for k, n in reasons.most_common(20))
                                          or "none"),
        "score_histograms": MetadataValue.md(markdown_image(histograms, "score histograms")),
        "labels": MetadataValue.md(markdown_image(bar_png(labels, "labels"), "labels")),
        "videos": stats.videos,
        "videos_scored": stats.scored,
        "videos_from_cache": stats.from_cache,
        "videos_reused": stats.reused,
        "videos_failed": len(stats.failed),
        "failures": MetadataValue.md(failures or "none"),
        "seconds_scoring": round(stats.seconds, 2),
    }
