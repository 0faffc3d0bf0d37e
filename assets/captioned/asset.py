"""captioned: structured multi-frame captions of routed clips, from pluggable backends, with QC."""

from collections import Counter
from collections.abc import Iterator

import pyarrow as pa
from dagster import (
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
)

from assets.captioned.rows import CaptionStats, build_captions
from assets.common.charts import histograms_png, markdown_image
from assets.common.layout import tier_path
from assets.common.metadata import table_metadata
from assets.common.progress import Progress
from assets.common.publishing import commit_for_audit, publish_if_audited
from assets.common.tier import read_upstream, start_tier_wap, tier_asset
from quality_checks.captioned import captioned_check_specs, evaluate_captioned_checks
from quality_checks.lineage import no_opted_out_lineage, no_opted_out_spec
from quality_checks.policy.resource import PolicyResource
from quality_checks.schemas import CAPTIONED_SCHEMA
from resources.captioners.resource import CaptionersResource
from resources.lakefs import LakeFSResource
from resources.optout import OptOutResource
from resources.sources import SourceRegistryResource

TIER = "captioned"
CODE_VERSION = "captioned-1"


@tier_asset(
    TIER,
    deps=["scored"],
    group_name="caption",
    code_version=CODE_VERSION,
    check_specs=[*captioned_check_specs(TIER), no_opted_out_spec(TIER)],
    kinds={"lakefs", "parquet"},
    description=(
        "Structured captions (short, dense, background, style, shot size, lighting, atmosphere, "
        "camera motion, motion level, optional events) of the clips scored routes to "
        "policy.captioned.routes. Each clip's keyframes go, in time order, to the strongest "
        "backend its resolution reaches (policy.captioned.backends: signals, transformers VLM, "
        "or an OpenAI-compatible server such as vLLM). Replies are parsed tolerantly and "
        "checked (empty, length, repetition, language, contradiction with measured signals); "
        "variants short / medium / dense / assembled are stored per clip."
    ),
)
def captioned(
    context: AssetExecutionContext,
    lakefs: LakeFSResource,
    sources: SourceRegistryResource,
    policy: PolicyResource,
    optouts: OptOutResource,
    captioners: CaptionersResource,
) -> Iterator[MaterializeResult | object]:
    source_id = context.partition_key
    rules = policy.load()
    scored_commit = lakefs.head()
    scored_table = read_upstream(lakefs, TIER, source_id, "scored", scored_commit)
    scored = scored_table.to_pylist()
    path = tier_path(source_id, TIER)
    registry = sources.load()

    report = Progress(context.log, TIER, source_id, "clips")

    table, stats = build_captions(
        scored, lakefs.read_table(path), rules.captioned,
        lambda backend: captioners.build(backend.model_dump(), rules.captioned.max_new_tokens),
        lambda p: lakefs.read_bytes(p, ref=scored_commit), sources.cache("captions"),
        scored_commit, progress=report,
        original_text=lambda uri: sources.original_text(registry, uri))
    wap = start_tier_wap(context, lakefs, TIER, CODE_VERSION, rules.hash,
                         {"scored": scored_commit})
    wap.write_table(path, table)
    committed, audited = commit_for_audit(
        wap, f"captioned {source_id}: {table.num_rows} clips, "
             f"{sum(1 for s in table.column('qc_status').to_pylist() if s == 'ok')} passed QC",
        path, table)
    results = evaluate_captioned_checks(audited, rules, scored)
    results.append(no_opted_out_lineage(TIER, audited, optouts.load()))
    yield from publish_if_audited(context, lakefs, wap, TIER, committed, results, path, lambda commit: {
        **_metadata(table, stats), **report.metadata(),
        "upstream_scored_commit": scored_commit,
        "policy_hash": rules.hash,
    })


def _metadata(table: pa.Table, stats: CaptionStats) -> dict[str, object]:
    rows = table.to_pylist()
    qc = Counter(r["qc_status"] for r in rows)
    reasons = Counter(reason.split(":")[0] for r in rows for reason in r["qc_reasons"])
    # Caption text describes source content: it stays in lakeFS (the purge reaches it), not here.
    examples = "\n".join(
        f"- **{r['clip_id'][:9]}** ({r['backend']}, {r['qc_status']}): {r['caption_words']} words"
        for r in rows[:3]) or "none"
    lengths = {"dense words": [r["caption_words"] for r in rows],
               "short words": [len(r["caption_short"].split()) for r in rows]}
    return {
        **table_metadata(table, CAPTIONED_SCHEMA),
        "clips_routed": stats.routed,
        "clips_captioned": stats.captioned,
        "clips_reused": stats.reused,
        "clips_from_cache": stats.from_cache,
        **{f"qc_{status}": qc[status] for status in ("ok", "needs_review", "rejected")},
        "qc_reasons": MetadataValue.md("".join(f"- {k}: {n}\n" for k, n in reasons.most_common(20))
                                       or "none"),
        "backends": MetadataValue.md("".join(f"- {k}: {n} clips\n" for k, n in stats.by_backend.items())
                                     or "none (all reused)"),
        "tokens": stats.tokens,
        "captions_per_s": round(stats.captioned / stats.seconds, 2) if stats.seconds else 0.0,
        "caption_length_histogram": MetadataValue.md(markdown_image(histograms_png(lengths, columns=2),
                                                                    "caption lengths")),
        "examples": MetadataValue.md(examples),
    }
