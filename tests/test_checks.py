"""raw_pool checks fail on the tables they exist to stop."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from quality_checks import raw_pool as checks
from quality_checks.policy import load_policy
from quality_checks.schemas import RAW_POOL_SCHEMA
from resources.optout import OptOutRegistry


def _row(uri: str, status: str = "accepted", **overrides: object) -> dict:
    row = {name: None for name in RAW_POOL_SCHEMA.names}
    row.update(source="cams", uri=uri, video_id="v" + "1" * 32, sha256="a" * 64, bytes=10,
               fingerprint="10:1", license="MIT", fetched_at=datetime(2026, 11, 1, tzinfo=UTC),
               status=status, duration_s=2.0, fps=24.0, width=320, height=240)
    if status != "accepted":
        row["reason"] = "too_short"
    row.update(overrides)
    return row


def _verdicts(rows: list[dict], optouts: OptOutRegistry | None = None) -> dict[str, bool]:
    table = pa.Table.from_pylist(rows, schema=RAW_POOL_SCHEMA)
    results = checks.evaluate_raw_pool_checks(table, "cams", load_policy(),
                                              optouts or OptOutRegistry())
    return {r.check_name: r.passed for r in results}


def test_clean_table_passes_every_check():
    rows = [_row("a.mp4"), _row("b.mp4", video_id="v" + "2" * 32, sha256="b" * 64)]
    assert all(_verdicts(rows).values())


def test_duplicate_accepted_video_ids_fail():
    assert not _verdicts([_row("a.mp4"), _row("b.mp4")])[checks.UNIQUE_VIDEO_ID]


def test_opted_out_video_accepted_fails():
    optouts = OptOutRegistry.model_validate({"videos": [{
        "sha256": "a" * 64, "reason": "r", "requested_at": "2026-11-01", "requested_by": "x"}]})
    assert not _verdicts([_row("a.mp4")], optouts)[checks.NO_OPTED_OUT_ACCEPTED]


def test_reject_rate_above_policy_ceiling_fails():
    rows = [_row("a.mp4"), *(_row(f"r{i}.mp4", "rejected") for i in range(3))]
    assert not _verdicts(rows)[checks.REJECT_RATE]  # 0.75 > 0.5


def test_expectations_suite_catches_malformed_rows():
    rows = [_row("a.mp4", fps=0.0), _row("b.mp4", "rejected", reason=None,
                                         video_id="v" + "2" * 32)]
    assert not _verdicts(rows)[checks.EXPECTATIONS]


def test_schema_drift_fails():
    table = pa.Table.from_pylist([_row("a.mp4")], schema=RAW_POOL_SCHEMA).drop_columns(["fps"])
    results = checks.evaluate_raw_pool_checks(table, "cams", load_policy(), OptOutRegistry())
    assert not next(r for r in results if r.check_name == checks.SCHEMA).passed
