"""Review decisions applied to scored rows: pure functions, no I/O.

A decision holds only for the signals it was made on: its `signals_fingerprint` must equal the
clip's current one, else the clip goes back to `needs_review`. A matching decision reaches
`govern` as the row's `review_status` (approved | rejected) and `review_reason` (the reviewer's
reason); `govern` then honours it, so the scored audit, which re-runs `govern` on the stored
rows, reproduces the same labels from the table alone.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DECISIONS = ("approved", "rejected")


def _normal(value: Any) -> Any:
    """JSON-able and identical before and after a Parquet round trip: floats through float32
    (a float32 column stores no more), numpy scalars and arrays as Python values."""
    if hasattr(value, "tolist"):  # numpy scalar or array
        value = value.tolist()
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return struct.unpack("f", struct.pack("f", value))[0] if abs(value) < 3e38 else value
    if isinstance(value, Mapping):
        return {str(k): _normal(v) for k, v in sorted(value.items())}
    if isinstance(value, Iterable):
        return [_normal(v) for v in value]
    return str(value)


def signals_fingerprint(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    """Hash of what a reviewer decided on: the clip's signals (`columns` of its scored row)."""
    payload = json.dumps([[c, _normal(row.get(c))] for c in columns], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def latest_decisions(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The decision in force per clip_id: the reviews table is a log, the latest row wins."""
    latest: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r["decided_at"]):
        if row["decision"] in DECISIONS:
            latest[row["clip_id"]] = dict(row)
    return latest


def review_inputs(decision: Mapping[str, Any] | None, fingerprint: str) -> dict[str, Any]:
    """What a clip's row carries into `govern` from its decision: nothing when there is none or
    the signals changed since (the clip waits for review again)."""
    if decision is None or decision["signals_fingerprint"] != fingerprint:
        return {}
    return {"review_status": decision["decision"],
            "review_reason": decision["reason"] or decision["decision"]}


def decided(row: Mapping[str, Any]) -> str | None:
    """The decision a row carries (set by `review_inputs`, or stored by an earlier run)."""
    status = row.get("review_status")
    return status if status in DECISIONS else None


def queue_reason(row: Mapping[str, Any]) -> str:
    """Why a clip waits, by governance layer ("safety", "licence", "watermark", joined by +):
    the group a reviewer works through and a batch decision covers."""
    layers = [name for name, flag in (("safety", row["safety_label"] == "borderline"),
                                      ("licence", row["provenance_label"] == "review"),
                                      ("watermark", row["watermark_label"] == "watermark_review")) if flag]
    return "+".join(layers) or "other"


def waiting(row: Mapping[str, Any]) -> bool:
    """A clip in the review queue."""
    return row["route"] == "review" and row["review_status"] == "needs_review"
