"""Pure release logic: the bucket statistics of a manifest (also rebuilt by the purge)."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from quality_checks.policy.stages import STAGES


def bucket_counts(rows: list[dict]) -> dict[str, Counter]:
    """{stage: Counter of "<aspect> <w>x<h> <frames>f" buckets} of manifest rows."""
    stats: dict[str, Counter] = {stage: Counter() for stage in STAGES}
    for row in rows:
        stats[row["stage"]][f"{row['bucket_aspect']} {row['width']}x{row['height']} {row['frames']}f"] += 1
    return stats


def bucket_table(stats: dict[str, Counter]) -> pa.Table:
    """`releases/<tag>/buckets.parquet`: samples per (stage, bucket)."""
    return pa.table({
        "stage": [s for s in STAGES for _ in stats[s]],
        "bucket": [b for s in STAGES for b in stats[s]],
        "samples": [n for s in STAGES for n in stats[s].values()],
    })
