"""policy_preview: route a proposed policy file on a lakeFS branch and report what would move."""

from pathlib import Path

import pyarrow as pa
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset

from assets.common.layout import SOURCES, preview_path, tier_path, tier_tables_listed
from assets.common.tier import OWNERS
from assets.stages.rows import join_captions
from quality_checks.policy import load_policy
from quality_checks.policy.resource import PolicyResource
from quality_checks.routing.preview import preview_changes, preview_markdown
from resources.lakefs import CommitMetadata, LakeFSResource


class PreviewConfig(Config):
    policy_path: str  # the proposed policy file (YAML), e.g. policies/stricter-720p.yaml


def run_preview(lakefs: LakeFSResource, current_path: str, proposed_path: str, run_id: str
                ) -> tuple[list[dict], str, str]:
    """(changes, markdown, branch): the proposed policy routed against what main holds. The
    report and the proposed file are committed on a branch that is never merged here."""
    current = load_policy(Path(current_path) if current_path else None)
    proposed = load_policy(Path(proposed_path))
    head = lakefs.head()
    candidates = {}
    for (source, _), path in tier_tables_listed(lakefs.list_paths(SOURCES, ref=head), ["scored"]).items():
        scored = lakefs.read_table(path, ref=head).to_pylist()
        captioned = lakefs.read_table(tier_path(source, "captioned"), ref=head)
        candidates[source] = join_captions(scored, captioned.to_pylist() if captioned else None)
    changes = preview_changes(candidates, current, proposed)
    report = preview_markdown(changes, current.hash, proposed.hash)
    wap = lakefs.start_wap("preview", proposed.hash, CommitMetadata(
        run_id=run_id, asset="policy_preview", partition="", code_version="preview-1",
        config_hash=proposed.hash, upstream_commits={"main": head}))
    schema = pa.schema([("stage", pa.string()), ("source", pa.string()), ("clip_id", pa.string()),
                        ("change", pa.string()), ("reason", pa.string()), ("bucket", pa.string())])
    wap.write_table(preview_path(proposed.hash, "changes.parquet"),
                    pa.Table.from_pylist(changes, schema=schema))
    wap.write_bytes(preview_path(proposed.hash, "report.md"), report.encode(), "text/markdown")
    wap.write_bytes(preview_path(proposed.hash, "policy.yaml"), Path(proposed_path).read_bytes(),
                    "application/yaml")
    wap.commit(f"policy preview {proposed.hash} against main {head[:12]}: {len(changes)} changes")
    return changes, report, wap.name


@asset(
    name="policy_preview",
    group_name="governance",
    code_version="preview-1",
    kinds={"lakefs"},
    owners=OWNERS,
    description=(
        "Route a proposed policy file (run config: policy_path) over the scored and captioned tables "
        "on main, without publishing, and report per stage which clips would come in (by bucket) and "
        "go out (by reason). The report and the file are committed on a lakeFS branch; publishing "
        "is pointing VCURATE_POLICY at the file and re-materializing the stages."
    ),
)
def policy_preview(context: AssetExecutionContext, config: PreviewConfig, lakefs: LakeFSResource,
                   policy: PolicyResource) -> MaterializeResult:
    changes, report, branch = run_preview(lakefs, policy.path, config.policy_path, context.run.run_id)
    return MaterializeResult(metadata={
        "report": MetadataValue.md(report),
        "changes": len(changes),
        "clips_in": sum(c["change"] == "in" for c in changes),
        "clips_out": sum(c["change"] == "out" for c in changes),
        "lakefs_branch": branch,
        "lakefs_branch_url": MetadataValue.url(lakefs.commit_url(lakefs.head(branch))),
    })
