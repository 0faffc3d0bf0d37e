"""Exact re-encodes of frame spans: a clip file holds exactly the frames of its span."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def cut_clips_decoding(source: Path, spans: Sequence[tuple[int, int]], outputs: Sequence[Path],
                       crf: int = 18) -> list[int]:
    """Re-encode each half-open frame span of `source` to H.264 MP4, in one decode.

    Spans must be sorted and must not overlap. Timestamps stay relative to each clip's
    first frame in the source's time base, so variable frame rate survives; the display
    rotation is carried over. Returns the frames written per output.
    """
    written = [0] * len(spans)
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or 25
        current = -1
        out: av.container.OutputContainer | None = None
        encoder = None
        first_pts = 0
        for index, frame in enumerate(container.decode(stream)):
            while current + 1 < len(spans) and index >= spans[current + 1][0]:
                _close(out, encoder)
                out, encoder = None, None
                current += 1
            if current < 0 or index >= spans[current][1]:
                if current == len(spans) - 1 and index >= spans[current][1]:
                    break
                continue
            if out is None:
                out = av.open(str(outputs[current]), "w")
                encoder = out.add_stream("libx264", rate=rate, options={"crf": str(crf)})
                encoder.width, encoder.height = frame.width // 2 * 2, frame.height // 2 * 2
                encoder.pix_fmt = "yuv420p"
                encoder.time_base = stream.time_base
                encoder.codec_context.time_base = stream.time_base
                if frame.rotation:
                    encoder.set_display_rotation(int(round(frame.rotation)))
                first_pts = frame.pts or 0
            picture = frame.reformat(width=encoder.width, height=encoder.height, format="yuv420p")
            picture.pts = (frame.pts - first_pts) if frame.pts is not None else written[current]
            picture.time_base = stream.time_base
            out.mux(encoder.encode(picture))
            written[current] += 1
        _close(out, encoder)
    return written


def _close(out: av.container.OutputContainer | None, encoder: object) -> None:
    if out is not None:
        out.mux(encoder.encode())  # flush delayed frames
        out.close()


@dataclass(frozen=True)
class ExportJob:
    """One training sample to cut from a source: a frame span at a stage's size and fps.

    `start_frame`/`end_frame` are a half-open span over the decoded frames. `crop` is a box
    (x, y, w, h) in display pixels (after rotation); None keeps the whole picture. `width` and
    `height` must be even (4:2:0). Output frame k shows the span frame nearest in time to
    start + k / fps_out, for exactly `frames` frames.
    """

    start_frame: int
    end_frame: int
    output: Path
    width: int
    height: int
    fps_out: float
    frames: int
    crop: tuple[int, int, int, int] | None = None
    crf: int = 18
    preset: str = "medium"
    threads: int = 0  # x264 threads; 0 lets x264 choose (set 1 in a one-process-per-core pool)


@dataclass(frozen=True)
class ExportResult:
    """What one job wrote. With `error` set the output file was not kept."""

    path: Path
    frames: int
    width: int
    height: int
    fps: float
    bytes: int
    error: str | None = None


def export_spans_decoding(source: Path, jobs: Sequence[ExportJob]) -> list[ExportResult]:
    """Export every job's span of `source` in ONE decode; results come in job order.

    Jobs may overlap (one clip exported to several stages at once). Each output is H.264
    yuv420p MP4 with `+faststart`, at constant `fps_out` with exactly `frames` frames,
    rotated upright in its pixels (no rotation metadata), centre-cropped by `crop` and
    resized (area filter on downscale). Decoding stops once every job is written, so a clip
    longer than its frame count costs no decode past its last output frame. Output time k
    counts from the span's first frame, so a variable-rate source gives a constant-rate
    sample. Never raises for bad media: a source that cannot be read, or a span that ends
    before its last output timestamp, gives a result with `error`.
    """
    for job in jobs:
        if job.width % 2 or job.height % 2 or job.width <= 0 or job.height <= 0:
            raise ValueError(f"{job.output}: width and height must be positive and even, "
                             f"got {job.width}x{job.height}")
        if job.frames < 1 or job.fps_out <= 0 or not 0 <= job.start_frame < job.end_frame:
            raise ValueError(f"{job.output}: need frames >= 1, fps_out > 0 and a non-empty span")
    exports = [_Export(job) for job in jobs]
    if not exports:
        return []
    try:
        container = av.open(str(source))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        return [e.fail(f"unreadable: {_message(exc)}") for e in exports]
    with container:
        try:
            _export_all(container, exports)
        except (av.error.FFmpegError, ValueError) as exc:
            for export in exports:
                if export.result is None:
                    export.fail(f"export_failed: {_message(exc)}")
    for export in exports:
        if export.result is None:  # the stream ended before the span began
            export.fail(f"span_not_found: the source ends before frame {export.job.start_frame}")
    return [e.result for e in exports]  # type: ignore[misc]


def _export_all(container: av.container.InputContainer, exports: list[_Export]) -> None:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    last_end = max(e.job.end_frame for e in exports)
    previous: _Decoded | None = None
    for index, frame in enumerate(container.decode(stream)):
        seconds = float(frame.time) if frame.time is not None else index / rate
        current = _Decoded(frame, seconds)
        for export in exports:
            if export.result is not None:
                continue
            if export.job.start_frame <= index < export.job.end_frame:
                export.feed(current)
            elif index == export.job.end_frame:
                export.finish(span_end_s=seconds)
        if previous is not None:
            previous.frame = None  # let the decoder reuse its buffers
        previous = current
        if index + 1 >= last_end or all(e.result is not None for e in exports):
            break
    if previous is not None:  # spans that run to the end of the stream
        interval = 1 / rate
        for export in exports:
            if export.result is None and export.opened:
                export.finish(span_end_s=previous.seconds + interval)


class _Decoded:
    """A decoded frame and its display-orientation 4:2:0 planes, converted at most once."""

    def __init__(self, frame: av.VideoFrame, seconds: float) -> None:
        self.frame: av.VideoFrame | None = frame
        self.seconds = seconds
        self._planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def planes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._planes is None:
            frame = self.frame
            if frame.format.name != "yuv420p" or frame.width % 2 or frame.height % 2:
                # Full-range, 10-bit, 4:2:2, RGB, odd sizes: one swscale pass to plain 4:2:0.
                frame = frame.reformat(width=frame.width // 2 * 2, height=frame.height // 2 * 2,
                                       format="yuv420p")
            planes = [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width]
                      for p in frame.planes]
            turns = round((self.frame.rotation or 0) / 90) % 4  # counter-clockwise quarter turns
            y, u, v = (np.rot90(p, turns) for p in planes)
            self._planes = (y, u, v)
            self.frame = None
        return self._planes


class _Export:
    """One job's open output: picks the nearest span frame for each output timestamp."""

    def __init__(self, job: ExportJob) -> None:
        self.job = job
        self.result: ExportResult | None = None
        self.opened = False
        self.written = 0
        self.start_s = 0.0
        self.last: _Decoded | None = None
        self.out: av.container.OutputContainer | None = None
        self.encoder = None

    def feed(self, decoded: _Decoded) -> None:
        if not self.opened:
            self._open()
            self.start_s = decoded.seconds
        if self.last is not None:
            # The previous frame is nearest to every output time before the midpoint.
            self._emit_until((self.last.seconds + decoded.seconds) / 2)
        self.last = decoded
        if self.written == self.job.frames:  # a clip longer than its frame bucket: done early
            self.finish(span_end_s=decoded.seconds)

    def finish(self, span_end_s: float) -> None:
        # An output time at or past the span's end has no source frame (frames_available agrees).
        self._emit_until(span_end_s - 1e-7)
        if self.written < self.job.frames:
            have = self.written
            self._close(keep=False)
            self.fail(f"span_too_short: {have} of {self.job.frames} frames at "
                      f"{self.job.fps_out:g} fps fit in frames {self.job.start_frame}-{self.job.end_frame}")
            return
        self._close(keep=True)
        job = self.job
        self.result = ExportResult(job.output, self.written, job.width, job.height, job.fps_out,
                                   job.output.stat().st_size)

    def fail(self, error: str) -> ExportResult:
        self._close(keep=False)
        self.result = ExportResult(self.job.output, 0, self.job.width, self.job.height,
                                   self.job.fps_out, 0, error)
        return self.result

    def _emit_until(self, until_s: float) -> None:
        while (self.written < self.job.frames and self.last is not None
               and self.start_s + self.written / self.job.fps_out < until_s):
            self._encode(self.last)

    def _open(self) -> None:
        job = self.job
        job.output.parent.mkdir(parents=True, exist_ok=True)
        rate = Fraction(job.fps_out).limit_denominator(1001)
        self.out = av.open(str(job.output), "w", options={"movflags": "+faststart"})
        self.encoder = self.out.add_stream("libx264", rate=rate,
                                           options={"crf": str(job.crf), "preset": job.preset})
        self.encoder.width, self.encoder.height = job.width, job.height
        self.encoder.pix_fmt = "yuv420p"
        if job.threads:
            self.encoder.codec_context.thread_count = job.threads
        self.encoder.time_base = 1 / rate
        self.encoder.codec_context.time_base = 1 / rate
        self.opened = True

    def _encode(self, decoded: _Decoded) -> None:
        job = self.job
        y, u, v = decoded.planes()
        if job.crop is not None:
            x0, y0, w, h = job.crop
            x0, y0 = x0 // 2 * 2, y0 // 2 * 2  # chroma-aligned
            y = y[y0 : y0 + h, x0 : x0 + w]
            cx, cy, cw, ch = x0 // 2, y0 // 2, (w + 1) // 2, (h + 1) // 2
            u, v = u[cy : cy + ch, cx : cx + cw], v[cy : cy + ch, cx : cx + cw]
        flat = [_resize(y, job.width, job.height), _resize(u, job.width // 2, job.height // 2),
                _resize(v, job.width // 2, job.height // 2)]
        picture = av.VideoFrame.from_ndarray(
            np.concatenate([p.ravel() for p in flat]).reshape(job.height * 3 // 2, job.width),
            format="yuv420p")
        picture.pts = self.written
        self.out.mux(self.encoder.encode(picture))
        self.written += 1

    def _close(self, keep: bool) -> None:
        if self.out is not None:
            try:
                if keep:
                    self.out.mux(self.encoder.encode())  # flush delayed frames
            finally:
                self.out.close()
                self.out = None
        if not keep:
            self.job.output.unlink(missing_ok=True)
        self.last = None


def _resize(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    if plane.shape[1] == width and plane.shape[0] == height:
        return np.ascontiguousarray(plane)
    shrinking = width <= plane.shape[1] and height <= plane.shape[0]
    return cv2.resize(np.ascontiguousarray(plane), (width, height),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _message(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc).strip()
