"""Files that appear whole or not at all: a killed writer never leaves a result that looks complete.

A writer holds an exclusive `flock` on its `.part` file while it writes. A part nobody holds
was left by a writer that died (a lock dies with its process), so the next writer of the same
target removes it: a crashed run cannot keep a small disk full.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A fresh temporary path beside `target` to write to. It replaces `target` when the block
    ends without an error and is removed when the block raises, so no partial file stays.
    An OSError without a file name (a failed write: ENOSPC, EIO, ...) is raised again naming
    `target`, so the failure says where the machine failed."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned_parts(target)
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise _naming(exc, target) from exc
    partial = Path(name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until closed: this part is being written
        yield partial
        partial.replace(target)
    except OSError as exc:
        raise _naming(exc, target) from exc
    finally:
        with contextlib.suppress(OSError):  # never hide the error that got us here
            partial.unlink(missing_ok=True)
        os.close(fd)


def write_bytes_atomically(target: Path, data: bytes) -> None:
    with atomic_path(target) as partial:
        partial.write_bytes(data)


def remove_abandoned_parts(target: Path) -> list[Path]:
    """Delete `.part` files of `target` that no live writer holds; returns what was removed."""
    removed = []
    for part in target.parent.glob(f".{target.name}.*.part"):
        try:
            fd = os.open(part, os.O_RDONLY)
        except FileNotFoundError:
            continue  # its writer finished (renamed it) or cleaned up meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live writer holds it
        finally:
            os.close(fd)
        part.unlink(missing_ok=True)
        removed.append(part)
    return removed


def _naming(exc: OSError, target: Path) -> OSError:
    if exc.filename is not None or exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(target))
