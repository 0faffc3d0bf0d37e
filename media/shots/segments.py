"""Long videos analysed in time segments on several processes, with the result of one pass.

A demux-only scan (no decoding) lists every frame's timestamp. Each segment owns a run of
frames. It decodes from the keyframe before them, feeds the consumers from `Seams.warmup`
frames earlier (motion, camera flow and the longest dissolve window see the history they see
in one pass), and goes on `Seams.margin` frames past its end, so that cuts confirmed late are
seen. Only what a segment owns is kept, and the pieces join into exactly what one pass gives
(tests/test_segments.py). Where two segments both fed a frame they are checked against each
other (media/shots/analysis.py): the same pixels, and the same cuts once the later one's detector
has settled. Anything unusual (frames without timestamps, a decoder that drops or adds
frames, a seek that lands late or decodes differently, a detector whose state has not
converged) makes the caller fall back to one pass.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.util
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av

from media.decode.frames import FrameRange, OpenedVideo


@dataclass(frozen=True)
class Seams:
    """Frames fed before a segment's own (`warmup`) and after them (`margin`). Cuts in the
    last `tail` frames of a feed are not final (the detector confirms a cut late and flushes
    at its end); the rest of the margin is where neighbours' cuts are compared."""

    warmup: int
    margin: int
    tail: int


@dataclass(frozen=True)
class FrameIndex:
    """Every frame's presentation timestamp (sorted) and the keyframes', from the packets."""

    pts: tuple[int, ...]
    keyframes: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.pts)


@dataclass(frozen=True)
class Segment:
    own_start: int
    own_end: int  # exclusive
    frames: FrameRange  # what it decodes and feeds


def scan_frames(path: Path) -> FrameIndex | None:
    """The frame list from demuxing alone (about 10 us a frame); None when a packet has no
    timestamp or two share one, where frames cannot be placed without decoding."""
    try:
        with OpenedVideo(path) as opened:
            return frame_index(opened.scan(keep_packets=False))
    except (av.FFmpegError, IndexError):
        return None


def frame_index(scanned: tuple[list[int], list[int]] | None) -> FrameIndex | None:
    """The frame list from a packet scan (`OpenedVideo.scan`): None when the scan gave none,
    or two packets share a timestamp (frames cannot be placed without decoding)."""
    if scanned is None:
        return None
    pts, keys = scanned
    ordered = sorted(pts)
    if not ordered or len(set(ordered)) != len(ordered):
        return None
    return FrameIndex(tuple(ordered), tuple(sorted(keys)))


def plan_segments(index: FrameIndex, parts: int, seams: Seams) -> list[Segment]:
    """`parts` segments of about equal length over `index`'s frames."""
    count = index.count
    bounds = [round(i * count / parts) for i in range(parts + 1)]
    segments = []
    for own_start, own_end in zip(bounds, bounds[1:], strict=False):
        # Even: camera flow runs over frame pairs (0-2, 2-4, ...) and must pair as one pass does.
        first = max(0, own_start - seams.warmup) // 2 * 2
        seek = None
        if first > 0:
            earlier = [k for k in index.keyframes if k <= index.pts[first]]
            seek = earlier[-1] if earlier else None
        stop = own_end if own_end == count else min(count, own_end + seams.margin)
        segments.append(Segment(own_start, own_end, FrameRange(index.pts, seek, first, stop)))
    return segments


def segment_count(index: FrameIndex | None, workers: int, min_frames: int) -> int:
    """How many segments a video gets: one per worker, none shorter than `min_frames`."""
    if index is None or workers <= 1:
        return 1
    return max(1, min(workers, index.count // max(1, min_frames)))


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_pool: ProcessPoolExecutor | None = None
_pool_size = 0


def segment_pool(workers: int) -> ProcessPoolExecutor:
    """The process pool segments run on: started once, kept for the next video (its start-up,
    about a second of imports per worker, is paid once per pipeline process)."""
    global _pool, _pool_size
    if _pool is None or _pool_size != workers:
        if _pool is not None:
            _pool.shutdown(cancel_futures=True)
        # forkserver: never a fork of a threaded process (Dagster, the decode threads).
        _pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))
        _pool_size = workers
        _register_shutdown()
    return _pool


def reset_segment_pool() -> None:
    """Drop the pool (after a worker died, its executor is broken); the next video starts one."""
    _shut_down()


def _shut_down() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(cancel_futures=True)
        _pool = None


_registered_in: int | None = None  # the process whose exit shuts the pool down


def _register_shutdown() -> None:
    """Registered in the process that starts the pool, not at import: a module imported in a
    forkserver (resources/compute.py preloads the workers' modules there) is inherited by forked
    workers whose multiprocessing finalizers were cleared at their start."""
    global _registered_in
    if _registered_in == os.getpid():
        return
    _registered_in = os.getpid()
    atexit.register(_shut_down)
    # Inside a worker process (the clips tier's own pool), multiprocessing ends by joining every
    # child, which would wait for ever on idle segment workers: shut them down first.
    multiprocessing.util.Finalize(None, _shut_down, exitpriority=20)
