"""Locks for writers of the lakeFS repository, held across processes and machines.

Writers of one tier partition (its materializations and its rollbacks) must not interleave
their read-decide-merge steps, and scored decides cross-source duplicates against what `main`
holds when it merges. The lock lives where every writer already meets: the lakeFS server.

A lock is a branch, `lock-<name>`: lakeFS creates a branch with one conditional write to its KV
store, so of two writers creating the same name exactly one succeeds and the other gets 409, on
every lakeFS version. (An upload with If-None-Match is not as strict on the pinned lakeFS 0.113:
it looks the path up, then stages the object, and a writer that loses the staging race is told
it succeeded.) The holder writes `lock.json` on the branch (who, host, pid, since) so a waiter
can say who it waits for, and deletes the branch when done. A lock whose process has ended on
the waiter's host is taken over; any other waiter fails after its wait, naming the holder.

Not Dagster concurrency pools or run tag limits: those are enforced by Dagster's run queue on
one persistent instance and keyed by pool or tag, not partition, while `vcurate materialize`,
`release` and `rollback` execute in process on whatever instance DAGSTER_HOME names, next to
the UI's runs; all of them write the same lakeFS repository.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime

import lakefs
from lakefs.exceptions import ConflictException, NotFoundException

LOCK_WAIT_S = 900.0  # how long a writer waits for another one before it fails, by default
_HOLDER_PATH = "lock.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_HELD = threading.local()  # per thread: the lakeFS locks it holds, so it may take one again
_LOCAL: dict[tuple[str, str], threading.Lock] = {}  # per lock: the queue of this process's threads
_LOCAL_GUARD = threading.Lock()
log = logging.getLogger(__name__)


class LockTimeout(RuntimeError):
    """Another writer held the lock for longer than this one could wait."""


def lock_branch(name: str) -> str:
    return "lock-" + _UNSAFE.sub("_", name)


def partition_lock_name(asset: str, partition: str) -> str:
    """The lock every writer of one tier partition takes: its publishes and its rollbacks."""
    return f"{asset}-{partition}"


@contextmanager
def repository_lock(repo: lakefs.Repository, source_branch: str, name: str, *, wait_s: float = LOCK_WAIT_S,
                    what: str = "") -> Iterator[None]:
    """Hold lock `name` in `repo`, waiting up to `wait_s` seconds for another holder to let go.

    Re-entrant in a thread (a rollback holds its partition's lock while it publishes). Threads
    of one process queue on a local lock first: a lakeFS lock that names this process while
    that local lock is ours was left behind. Raises LockTimeout, naming the holder, when the
    wait runs out."""
    key = (repo.id, name)
    if not hasattr(_HELD, "keys"):
        _HELD.keys = set()
    held: set[tuple[str, str]] = _HELD.keys
    if key in held:
        yield
        return
    with _LOCAL_GUARD:
        local = _LOCAL.setdefault(key, threading.Lock())
    deadline = time.monotonic() + wait_s
    if not local.acquire(timeout=wait_s):
        raise LockTimeout(f"lakeFS lock '{name}' is held by another thread of this process; "
                          f"waited {wait_s:.0f} s for it")
    try:
        branch = repo.branch(lock_branch(name))
        _acquire(repo, branch, source_branch, name, max(0.0, deadline - time.monotonic()), what)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
            _release(branch)
    finally:
        local.release()


def _acquire(repo: lakefs.Repository, branch: lakefs.Branch, source: str, name: str, wait_s: float,
             what: str) -> None:
    deadline, pause = time.monotonic() + wait_s, 0.1
    while True:
        try:
            branch.create(source_reference=source)
            created = True
        except ConflictException:
            created = False
        if created:
            _describe(branch, what)
            return
        holder = _holder(branch)
        if holder is not None and _abandoned(holder):
            # Its process ended without letting go (killed), or is this one and let go of it in
            # vain (lakeFS was away). Two waiters may both see that and the later delete could
            # remove the earlier one's new lock: that takes two waiters breaking the same
            # abandoned lock within milliseconds, and only ever on one host.
            log.warning(f"lakeFS lock {name}: taking over from {_who(holder)}, which no longer holds it")
            with suppress(NotFoundException):
                branch.delete()
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(pause, left))
        pause = min(pause * 1.5, 2.0)
    # raised outside the except block: a 409 in its context would read as lakeFS refusing a request
    raise LockTimeout(
        f"lakeFS lock '{name}' is held by {_who(holder)}; waited {wait_s:.0f} s for it. It is let go "
        f"when that writer ends; if that writer is gone, delete branch {branch.id} "
        f"(`lakectl branch delete lakefs://{repo.id}/{branch.id}`)")


def _describe(branch: lakefs.Branch, what: str) -> None:
    """Say who holds the new lock; a holder that cannot say so lets go at once."""
    me = {"what": what or "a writer", "host": socket.gethostname(), "pid": os.getpid(),
          "since": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        branch.object(_HOLDER_PATH).upload(json.dumps(me).encode(), mode="wb", pre_sign=False)
    except BaseException:
        _release(branch)
        raise


def _holder(branch: lakefs.Branch) -> dict | None:
    try:
        with branch.object(_HOLDER_PATH).reader(mode="rb", pre_sign=False) as reader:
            return json.loads(reader.read())
    except (NotFoundException, ValueError):  # let go meanwhile, or not described yet
        return None


def _who(holder: dict | None) -> str:
    if holder is None:
        return "a writer that has not said who it is"
    return f"{holder.get('what')} ({holder.get('host')} pid {holder.get('pid')}, since {holder.get('since')})"


def _abandoned(holder: dict) -> bool:
    """The holder ran on this host (only there can it be known) and its process is gone, or it
    is this process, whose threads queue for the lock locally (the caller is first in line)."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _release(branch: lakefs.Branch) -> None:
    """Delete the lock branch. Never raises: it runs after merges, and nothing may raise after a
    merge; a lock left behind is taken over once its process has ended, or deleted by hand."""
    for attempt in range(3):
        try:
            branch.delete()
            return
        except NotFoundException:
            return
        except Exception as error:  # noqa: BLE001 - an outage: try again, then leave it
            failure = error
            time.sleep(0.5 * (attempt + 1))
    log.warning(f"could not let go of lakeFS lock branch {branch.id} ({failure}); the next writer on "
                "this host takes it over, one elsewhere waits for it (or delete the branch)")
