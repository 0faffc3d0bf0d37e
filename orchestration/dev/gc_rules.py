"""lakeFS garbage-collection rules: when bytes that no branch or tag still needs go away.

A purge removes opted-out rows and files from `main` with a new commit; the old bytes stay
reachable from older commits, and from release tags, until lakeFS garbage collection deletes
objects reachable only from commits older than the retention of every branch holding them.
Tags are never collected: to delete a release's bytes, delete its tag first.
"""

from __future__ import annotations

import json


def gc_rules(main_days: int = 7, other_days: int = 1) -> dict:
    """The rules document lakeFS takes (`lakectl gc set-config --filename FILE`, or its
    setGCRules API): `main_days` for main, `other_days` for every other branch (write-audit-
    publish, preview and rollback branches are scratch space)."""
    if main_days < 1 or other_days < 1:
        raise ValueError(f"retention days must be >= 1 (main {main_days}, other {other_days})")
    return {"default_retention_days": other_days,
            "branches": [{"branch_id": "main", "retention_days": main_days}]}


def gc_rules_json(main_days: int = 7, other_days: int = 1) -> str:
    return json.dumps(gc_rules(main_days, other_days), indent=2)
