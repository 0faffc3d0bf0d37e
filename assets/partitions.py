"""The partitioning every per-source tier shares: one dynamic partition per registered source."""

from collections.abc import Iterable

from dagster import DynamicPartitionsDefinition

SOURCE_PARTITIONS = DynamicPartitionsDefinition(name="source")


def tier_path(source: str, tier: str) -> str:
    """Where a tier's table for one source lives in the lakeFS repository."""
    return f"sources/{source}/{tier}.parquet"


def tier_tables_listed(paths: Iterable[str], tiers: Iterable[str]) -> dict[tuple[str, str], str]:
    """{(source, tier): path} for the tier tables among listed lakeFS paths (the inverse of
    `tier_path`); other objects under `sources/` (keyframes, media, ...) are left out."""
    wanted = set(tiers)
    found = {}
    for path in paths:
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == "sources" and parts[2].endswith(".parquet"):
            tier = parts[2].removesuffix(".parquet")
            if tier in wanted:
                found[(parts[1], tier)] = path
    return found
