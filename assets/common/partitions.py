"""The partitioning every per-source tier shares: one dynamic partition per registered source."""

from dagster import DynamicPartitionsDefinition

SOURCE_PARTITIONS = DynamicPartitionsDefinition(name="source")
