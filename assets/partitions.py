"""The partitioning every per-source tier shares: one dynamic partition per registered source."""

from dagster import DynamicPartitionsDefinition

SOURCE_PARTITIONS = DynamicPartitionsDefinition(name="source")


def tier_path(source: str, tier: str) -> str:
    """Where a tier's table for one source lives in the lakeFS repository."""
    return f"sources/{source}/{tier}.parquet"
