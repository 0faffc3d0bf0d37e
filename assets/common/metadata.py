"""Dagster metadata every tier reports the same way."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
from dagster import TableColumn, TableSchema


def table_metadata(table: pa.Table, schema: pa.Schema) -> dict[str, object]:
    """The standard row count and column schema (the table's contract) of a published table."""
    return {
        "dagster/row_count": table.num_rows,
        "dagster/column_schema": TableSchema(columns=[TableColumn(f.name, str(f.type)) for f in schema]),
    }


# Dagster's event log keeps every run's metadata and no purge can rewrite it, so metadata holds
# counts, charts of numbers and links to lakeFS objects: never pixels, caption text, a uri or an
# id of a video (a takedown removes those from lakeFS; see docs/operations.md).
FAILURES_SCHEMA = pa.schema([
    pa.field("source", pa.string(), nullable=False),
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("tier", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
])


def _named_by_id(failed: dict[str, str], video_ids: dict[str, str]) -> list[tuple[str, str]]:
    """(video_id, reason) per failed video (`failed`: uri -> reason; `video_ids`: uri -> id); a
    reason that quotes the uri (an error naming the file) quotes the id instead."""
    out = []
    for uri, reason in sorted(failed.items()):
        vid = video_ids.get(uri, "unknown video")
        out.append((vid, reason.replace(uri, vid)))
    return out


def failures_table(source: str, tier: str, failed: dict[str, str], video_ids: dict[str, str]) -> pa.Table:
    """The tier's failures table (layout.failures_path): one row per video it could not process."""
    return pa.Table.from_pylist([{"source": source, "video_id": vid, "tier": tier, "reason": reason}
                                 for vid, reason in _named_by_id(failed, video_ids)], schema=FAILURES_SCHEMA)


def failures_md(failed: dict[str, str], video_ids: dict[str, str], table_path: str) -> str:
    """Failed videos counted by reason, ids left out (they are in `table_path` in lakeFS)."""
    reasons: Counter = Counter()
    for vid, reason in _named_by_id(failed, video_ids):
        reasons[reason.replace(vid, "<video>")] += 1
    if not reasons:
        return "none"
    return "".join(f"- {n} video(s): {reason}\n" for reason, n in reasons.most_common()) + \
        f"\nWhich videos: `{table_path}` in lakeFS.\n"


def links_md(links: list[tuple[str, str]]) -> str:
    """A Markdown list of (label, url) links, or "none"."""
    return "".join(f"- [{label}]({url})\n" for label, url in links) or "none"
