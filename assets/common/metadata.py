"""Dagster metadata every tier reports the same way."""

from __future__ import annotations

import pyarrow as pa
from dagster import TableColumn, TableSchema


def table_metadata(table: pa.Table, schema: pa.Schema) -> dict[str, object]:
    """The standard row count and column schema (the table's contract) of a published table."""
    return {
        "dagster/row_count": table.num_rows,
        "dagster/column_schema": TableSchema(columns=[TableColumn(f.name, str(f.type)) for f in schema]),
    }
