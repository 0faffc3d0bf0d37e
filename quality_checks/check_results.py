"""What every tier's audits share: a check result, and the table-contract comparison."""

from __future__ import annotations

import pyarrow as pa
from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MarkdownMetadataValue, MetadataValue

from resources.optout import redact_ids


def check_spec(asset: str, name: str, description: str, blocking: bool = True) -> AssetCheckSpec:
    """A check an asset declares; a blocking one that fails keeps its branch off main."""
    return AssetCheckSpec(name, asset=asset, blocking=blocking, description=description)


def check_result(name: str, passed: bool, severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
                 **metadata: object) -> AssetCheckResult:
    """A check outcome; ERROR severity blocks the merge, WARN only reports. Ids in text values
    (examples of failing rows) are stored as digests: the event log outlives a takedown."""
    for key, value in metadata.items():
        if isinstance(value, str):
            metadata[key] = redact_ids(value)
        elif isinstance(value, MarkdownMetadataValue):
            metadata[key] = MetadataValue.md(redact_ids(value.md_str))
    return AssetCheckResult(check_name=name, passed=passed, severity=severity, metadata=metadata)


def schema_matches(table: pa.Table, schema: pa.Schema) -> bool:
    """Same column names and types as the contract (order and nullability aside)."""
    return {f.name: f.type for f in table.schema} == {f.name: f.type for f in schema}
