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


# Dagster's event log keeps every run's metadata and no purge can rewrite it, so metadata holds
# counts, charts of numbers and links to lakeFS objects: never pixels, caption text or a uri
# of source content (a takedown removes those from lakeFS; see docs/operations.md).
def failures_md(failed: dict[str, str], video_ids: dict[str, str]) -> str:
    """Failed videos named by video_id (`video_ids`: uri -> video_id), not by uri; a reason that
    quotes the uri (an error naming the file) quotes the id instead."""
    lines = []
    for uri, reason in sorted(failed.items()):
        vid = video_ids.get(uri, "unknown video")
        lines.append(f"- `{vid}`: {reason.replace(uri, vid)}\n")
    return "".join(lines) or "none"


def links_md(links: list[tuple[str, str]]) -> str:
    """A Markdown list of (label, url) links, or "none"."""
    return "".join(f"- [{label}]({url})\n" for label, url in links) or "none"
