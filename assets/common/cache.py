"""Faults of the machine (disk full, I/O error, a read-only or forbidden cache) versus a bad video.

A bad video is one failed row. A machine fault fails the whole step before anything merges
(docs/design.md, "Failure, bad input and trust"): recorded as a bad video it would publish the
partition without that video, after its stored objects were deleted. Workers return a
`MachineFaultReport` (the executor turns exceptions into text, which would lose the errno) and
the caller raises `MachineFault`.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
from dagster import Failure

MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS,
                            errno.EACCES, errno.EPERM})
# FFmpeg also says EIO or EACCES for a broken or odd input; from PyAV only storage running out
# (it writes cut files) is the machine's. The source was read in full just before (its sha256).
_PYAV_MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


@dataclass(frozen=True)
class MachineFaultReport:
    errno: int
    path: str
    message: str

    def describe(self) -> str:
        return f"{errno.errorcode.get(self.errno, self.errno)} ({self.message}) at {self.path}"


def machine_fault(exc: BaseException, path: str | Path = "") -> MachineFaultReport | None:
    """The machine fault `exc` is, or None when it is not one (then it is the video's).
    `path`: where the work was, when the error does not name a file."""
    if not isinstance(exc, OSError) or exc.errno is None:
        return None
    allowed = _PYAV_MACHINE_ERRNOS if isinstance(exc, av.error.FFmpegError) else MACHINE_ERRNOS
    if exc.errno not in allowed:
        return None
    return MachineFaultReport(exc.errno, str(exc.filename or path or "?"), exc.strerror or str(exc))


class MachineFault(Failure):
    """The step fails with nothing merged; the errno and path say what to fix."""

    def __init__(self, what: str, report: MachineFaultReport):
        super().__init__(
            description=(f"{what}: the machine failed: {report.describe()}. Nothing was merged "
                         f"into main and no video was marked failed; free space or fix the "
                         f"storage, then run the partition again."),
            metadata={"errno": errno.errorcode.get(report.errno, str(report.errno)), "path": report.path},
            allow_retries=False,
        )
        self.report = report


@contextmanager
def machine_faults_fail(what: str, path: str | Path = "") -> Iterator[None]:
    """Inside the block, an OSError of the machine becomes a MachineFault; others pass."""
    try:
        yield
    except OSError as exc:
        report = machine_fault(exc, path)
        if report is None:
            raise
        raise MachineFault(what, report) from exc
