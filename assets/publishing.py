"""Helpers every tier shares for reporting what it published."""

from dagster import AssetExecutionContext, AssetKey, AssetRecordsFilter


def last_published_commit(context: AssetExecutionContext, asset: str, partition: str) -> str | None:
    """The lakeFS commit an earlier run published for this partition (when nothing changed)."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    entry = records[0].asset_materialization.metadata.get("lakefs_commit")
    return str(entry.value) if entry is not None else None
