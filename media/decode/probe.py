"""Probe a video file with PyAV: what the container claims, checked against what it holds.

Container headers lie (broken durations, missing frame rates, variable frame rate), so the
probe demuxes every video packet (cheap: no decoding) to count frames and measure the real
duration, and decodes only the first frame to prove the stream is decodable and to read
its rotation. A file that cannot be probed yields a `VideoProbe` with `error` set, never an
exception: one bad file must not fail a partition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

# Codecs FFmpeg uses to "open" text and stills: they demux, but they are not video.
_TEXT_CODECS = {"ansi", "bintext", "xbin", "idf", "tty"}
_STILL_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "gif_pipe", "bmp_pipe"}
# Frame-to-frame timestamp spread above which a stream counts as variable frame rate.
_VFR_TOLERANCE = 0.02


@dataclass(frozen=True)
class VideoProbe:
    """What one probe found. `error` is a reason code when the file is unusable."""

    error: str | None = None
    error_detail: str = ""
    container_format: str = ""
    codec: str = ""
    pix_fmt: str = ""
    width: int = 0
    height: int = 0
    rotation: int = 0
    fps: float = 0.0
    frame_count: int = 0
    duration_s: float = 0.0
    container_duration_s: float | None = None
    bitrate: int = 0
    has_audio: bool = False
    audio_codec: str = ""
    vfr: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def display_width(self) -> int:
        return self.height if self.rotation % 180 == 90 else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation % 180 == 90 else self.height

    @property
    def bits_per_pixel(self) -> float:
        pixels_per_s = self.width * self.height * self.fps
        return self.bitrate / pixels_per_s if pixels_per_s > 0 else 0.0


def _failed(code: str, detail: str, **known: object) -> VideoProbe:
    return VideoProbe(error=code, error_detail=detail, **known)  # type: ignore[arg-type]


def probe_video_file(path: Path) -> VideoProbe:
    """Probe `path` (demux all packets, decode one frame). Never raises for bad media."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return _failed("unreadable", f"cannot stat file: {exc.strerror or exc}")
    if size == 0:
        return _failed("empty_file", "file has zero bytes")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        return _failed("unreadable", f"not a readable media container: {_ffmpeg_message(exc)}")
    except (OSError, ValueError) as exc:
        return _failed("unreadable", str(exc))
    with container:
        return _probe_open_container(container, size)


def _probe_open_container(container: av.container.InputContainer, size: int) -> VideoProbe:
    fmt = container.format.name
    audio_codec = _audio_codec(container)
    rejected = _reject_non_video(container, fmt, audio_codec)
    if rejected is not None:
        return rejected
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    header = _Header.read(container, stream)  # before demuxing, which may update the stream
    known: dict[str, Any] = dict(container_format=fmt, codec=stream.codec_context.name,
                                 has_audio=bool(container.streams.audio), audio_codec=audio_codec)
    scan = _scan_video_packets(container, stream)
    failure = _scan_failure(scan, known)
    if failure is not None:
        return failure
    return _measure(scan, header, stream, known)


def _audio_codec(container: av.container.InputContainer) -> str:
    audio = container.streams.audio
    return audio[0].codec_context.name if audio else ""


def _reject_non_video(container: av.container.InputContainer, fmt: str,
                      audio_codec: str) -> VideoProbe | None:
    """The failure for a file with no video stream, or one FFmpeg opens as text or a still."""
    if not container.streams.video:
        audio = bool(container.streams.audio)
        what = f"audio only ({audio_codec})" if audio else "no streams FFmpeg can read as video"
        return _failed("no_video_stream", what, container_format=fmt, has_audio=audio,
                       audio_codec=audio_codec)
    codec = container.streams.video[0].codec_context.name
    if codec in _TEXT_CODECS:
        return _failed("not_a_video", f"FFmpeg reads it as text ({codec})", container_format=fmt)
    if fmt in _STILL_FORMATS or fmt.endswith("_pipe"):
        return _failed("not_a_video", f"a still image ({codec})", container_format=fmt)
    return None


@dataclass(frozen=True)
class _Header:
    """What the headers claim, read before any packet is demuxed."""

    time_base: Fraction
    declared_frames: int
    container_duration: float | None

    @staticmethod
    def read(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> _Header:
        return _Header(
            time_base=stream.time_base or Fraction(1, 90_000),
            declared_frames=int(stream.frames or 0),
            container_duration=container.duration / av.time_base if container.duration else None,
        )


@dataclass
class _Scan:
    """What demuxing every video packet (and decoding up to the first frame) found."""

    timestamps: list[int] = field(default_factory=list)
    last_packet_duration: int = 0
    packet_bytes: int = 0
    packets: int = 0
    first_frame: av.VideoFrame | None = None
    decode_error: str = ""
    demux_error: str = ""

    def decode_first(self, decode: Callable[[], list[av.VideoFrame]]) -> None:
        """Decode until the first frame, once; a decoder error stops further tries."""
        if self.first_frame is not None or self.decode_error:
            return
        try:
            frames = decode()
            self.first_frame = frames[0] if frames else None
        except av.error.FFmpegError as exc:
            self.decode_error = _ffmpeg_message(exc)


def _scan_video_packets(container: av.container.InputContainer,
                        stream: av.video.stream.VideoStream) -> _Scan:
    scan = _Scan()
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the flush packet at end of stream
                continue
            scan.packets += 1
            scan.packet_bytes += packet.size
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is not None:
                scan.timestamps.append(ts)
            scan.last_packet_duration = packet.duration or scan.last_packet_duration
            scan.decode_first(packet.decode)
    except av.error.FFmpegError as exc:
        scan.demux_error = _ffmpeg_message(exc)
    # Decoders with delay emit their first frame only when flushed.
    scan.decode_first(lambda: stream.codec_context.decode(None))
    return scan


def _scan_failure(scan: _Scan, known: dict[str, Any]) -> VideoProbe | None:
    if scan.packets == 0:
        return _failed("truncated", scan.demux_error or "container holds no video packets", **known)
    if scan.first_frame is None:
        detail = scan.decode_error or scan.demux_error or "no frame could be decoded"
        return _failed("undecodable", f"{known['codec']}: {detail}", **known)
    return None


def _measure(scan: _Scan, header: _Header, stream: av.video.stream.VideoStream,
             known: dict[str, Any]) -> VideoProbe:
    """The probe of a stream that demuxed and decoded: truncated, or its measured timing."""
    frame = scan.first_frame
    assert frame is not None  # _scan_failure turned the frameless scans away
    width, height, rotation = _geometry(frame)
    duration, fps, vfr = _timing(scan.timestamps, scan.last_packet_duration, header.time_base, stream,
                                 scan.packets)
    truncated = _truncation(scan, header, stream, duration)
    if truncated is not None:
        return _failed("truncated", truncated, width=width, height=height, frame_count=scan.packets,
                       **known)
    duration, fps, notes = _settle_timing(duration, fps, vfr, header.container_duration, scan.packets)
    return VideoProbe(
        **known,
        pix_fmt=frame.format.name,
        width=width,
        height=height,
        rotation=rotation,
        fps=fps,
        frame_count=scan.packets,
        duration_s=duration,
        container_duration_s=header.container_duration,
        bitrate=_bitrate(scan.packet_bytes, duration, stream),
        vfr=vfr,
        notes=tuple(notes),
    )


def _geometry(frame: av.VideoFrame) -> tuple[int, int, int]:
    """Coded width and height, and the display rotation in degrees (0, 90, 180 or 270)."""
    return frame.width, frame.height, int(round(frame.rotation or 0)) % 360


def _truncation(scan: _Scan, header: _Header, stream: av.video.stream.VideoStream,
                duration: float) -> str | None:
    """Why the stream counts as truncated, or None when it does not."""
    declared_frames, packets = header.declared_frames, scan.packets
    declared_span = float(stream.duration * header.time_base) if stream.duration else None
    # Truncated: fewer frames than declared AND the timestamps stop short of the declared end.
    # Both are needed: AVI counts variable-rate time slots as frames, Ogg misstates spans.
    short_of_frames = bool(declared_frames) and packets < declared_frames * 0.98
    short_of_span = declared_span is None or duration < declared_span * 0.9
    if not (scan.demux_error or (short_of_frames and short_of_span)):
        return None
    claim = f"container declares {declared_frames} frames, " if declared_frames else ""
    return f"{claim}only {packets} readable" + (f" ({scan.demux_error})" if scan.demux_error else "")


def _settle_timing(duration: float, fps: float, vfr: bool, container_duration: float | None,
                   packets: int) -> tuple[float, float, list[str]]:
    """Duration and frame rate after the fallbacks, and the notes on how they were found."""
    notes: list[str] = []
    if duration <= 0 and container_duration:
        duration = container_duration
        notes.append("no usable timestamps; duration taken from the container")
    if fps <= 0 and duration > 0:
        fps = packets / duration
    if vfr:
        notes.append(f"variable frame rate (average {fps:.3f} fps)")
    if (container_duration is not None and duration > 0
            and abs(container_duration - duration) > max(0.5, 0.1 * duration)):
        notes.append(
            f"container duration {container_duration:.2f} s disagrees with "
            f"{packets} frames spanning {duration:.2f} s; using the measured duration"
        )
    return duration, fps, notes


def _bitrate(packet_bytes: int, duration: float, stream: av.video.stream.VideoStream) -> int:
    # Measured from the packets: header bit rates inherit the header's broken durations.
    return int(packet_bytes * 8 / duration) if duration > 0 else int(stream.bit_rate or 0)


def _timing(
    timestamps: list[int],
    last_duration: int,
    time_base: Fraction,
    stream: av.video.stream.VideoStream,
    packets: int,
) -> tuple[float, float, bool]:
    """Measured duration (s), frame rate and whether the frame rate varies."""
    declared = stream.average_rate or stream.guessed_rate
    declared_fps = float(declared) if declared else 0.0
    if len(timestamps) < 2:
        duration = float(last_duration * time_base) if last_duration else 0.0
        if duration <= 0 and declared_fps > 0:
            duration = packets / declared_fps
        return duration, declared_fps, False
    ordered = sorted(timestamps)
    deltas = [b - a for a, b in zip(ordered, ordered[1:], strict=False) if b > a]
    typical = sorted(deltas)[len(deltas) // 2] if deltas else 0
    span = ordered[-1] - ordered[0] + (last_duration or typical)
    duration = float(span * time_base)
    fps = packets / duration if duration > 0 else declared_fps
    vfr = False
    # Only a stream with a timestamp on every packet can be judged (MPEG-PS stamps a few).
    if deltas and typical > 0 and len(timestamps) == packets:
        spread = (max(deltas) - min(deltas)) / typical
        vfr = spread > _VFR_TOLERANCE and len(set(deltas)) > 1
        # Streams with a nominal rate whose deltas only jitter by rounding are constant rate.
        if vfr and declared_fps > 0 and math.isclose(fps, declared_fps, rel_tol=0.01):
            vfr = max(deltas) > 1.5 * typical or min(deltas) < 0.5 * typical
    return duration, fps, vfr


def _ffmpeg_message(exc: Exception) -> str:
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc).strip()
