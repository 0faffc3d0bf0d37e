"""The one decode of a raw video: a stream of small analysis frames with exact timestamps.

Pixels are reduced where it is cheap: the Y, U and V planes are resized separately with
OpenCV and only the small result is converted to BGR. Asking FFmpeg for a resized BGR frame
costs more than the decode itself (measured in the design notes).
"""

from __future__ import annotations

import bisect
import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import simplejpeg
from av.video.reformatter import VideoReformatter

_PLANAR_YUV = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"}
# Frame threading pays only when one frame takes longer to decode than the analysis takes to
# use it. Below this many pixels a frame decodes in well under a millisecond on one thread,
# and FFmpeg's frame threads add about half again as much CPU for no gain in wall time
# (measured on the throughput footage: 480x352 H.264 takes 0.29 ms a frame on one thread
# and 0.44 ms of CPU on three); that CPU is taken from the analysis running beside it.
_ONE_DECODE_THREAD_MAX_PIXELS = 640 * 360
# The colour frame (shot detector, dissolves) is the analysis frame shrunk by this factor.
# Sharpness, motion and camera flow need the luma's detail; the colour consumers compare
# whole pictures, and at half the size their conversions (YUV to BGR, BGR to HSV) cost a
# quarter. Shot-detection accuracy is unchanged on bench/shots.py.
COLOUR_FACTOR = 2


@dataclass(frozen=True)
class AnalysisFrame:
    """One decoded frame: its index in presentation order, its time, and small pixels."""

    index: int
    seconds: float
    duration_s: float
    bgr: np.ndarray  # colour: half the analysis size (see COLOUR_FACTOR), uint8 HxWx3
    luma: np.ndarray  # analysis size, uint8 HxW
    source: av.VideoFrame  # the full frame, for the few that become keyframes


def analysis_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(w, h) with the short side scaled to `short_side` (never upscaled), both even."""
    scale = min(1.0, short_side / max(1, min(width, height)))
    return max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2)


def analysis_factor(width: int, height: int, short_side: int) -> int:
    """An even integer shrink factor bringing the short side near `short_side`.

    OpenCV's area resize has a fast path for integer factors; arbitrary scales cost more
    than the decode. Even factors keep the half-size chroma planes on an integer factor too.
    """
    factor = max(1, round(min(width, height) / short_side))
    return factor if factor == 1 else max(2, factor // 2 * 2)


def nominal_fps(path: Path) -> float:
    """The container's frame rate claim (no decoding); 25 when it makes none."""
    with av.open(str(path)) as container:
        return _claimed_rate(container.streams.video[0])


def _claimed_rate(stream: av.VideoStream) -> float:
    return float(stream.average_rate or stream.guessed_rate or Fraction(25))


# A video whose packets fit in this many bytes is decoded from the packets its scan kept.
_KEEP_PACKETS_MAX_BYTES = 32 << 20


class OpenedVideo:
    """One open of a video serving its nominal rate, its packet scan and its decode.

    An open costs about 2 ms (stream probing), as much as decoding a dozen small frames: a
    short video opened once instead of three times (rate, scan, decode) saves a few percent of
    its analysis. The scan keeps the packets it demuxes (the end-of-stream one included) while
    they fit `_KEEP_PACKETS_MAX_BYTES`; decoding them in order is what `container.decode` does.
    A longer video, or a scan that stopped early, is decoded from a fresh open as before.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.container = av.open(str(path))
        try:
            self.stream = self.container.streams.video[0]
            self.rate = _claimed_rate(self.stream)
        except BaseException:
            self.container.close()
            raise
        self.packets: list[av.Packet] | None = None

    def __enter__(self) -> OpenedVideo:
        return self

    def __exit__(self, *_: object) -> None:
        self.packets = None
        self.container.close()

    def scan(self, keep_packets: bool = True) -> tuple[list[int], list[int]] | None:
        """(pts, keyframe pts) of every packet, in file order (`segments.frame_index` orders
        them); None on a packet without a timestamp or a demux error."""
        _configure_decoder(self.stream)  # before any decoding, as a fresh open would
        pts: list[int] = []
        keys: list[int] = []
        kept: list[av.Packet] | None = [] if keep_packets else None
        size = 0
        try:
            for packet in self.container.demux(self.stream):
                if kept is not None:
                    size += packet.size
                    if size > _KEEP_PACKETS_MAX_BYTES:
                        kept = None
                    else:
                        kept.append(packet)
                if packet.size == 0:  # the demuxer's end-of-stream marker
                    continue
                if packet.pts is None:
                    return None
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        except (av.FFmpegError, IndexError):
            return None
        self.packets = kept
        return pts, keys

    def take_packets(self) -> list[av.Packet] | None:
        """The kept packets, once (a second decode opens the file again)."""
        packets, self.packets = self.packets, None
        return packets


class NotSegmentable(ValueError):
    """A segment's frames do not line up with the scanned frame list (see media/shots/segments.py)."""


@dataclass(frozen=True)
class FrameRange:
    """Part of a video to decode: seek to `seek_pts`, number frames by their place in `pts`
    (every frame's presentation timestamp, sorted), yield frames `first` to `stop`."""

    pts: tuple[int, ...]
    seek_pts: int | None
    first: int
    stop: int


def decode_analysis_frames(path: Path, short_side: int = 144, prefetch: int = 16,
                           part: FrameRange | None = None, thread: bool = True,
                           opened: OpenedVideo | None = None) -> Iterator[AnalysisFrame]:
    """Decode `path` once (threaded) and yield every frame at analysis size, in time order.

    Frame times come from the frames' own timestamps (variable frame rate stays exact);
    frames without a timestamp continue from the previous one at the nominal rate. Decoding
    and shrinking run in a background thread, about `prefetch` frames ahead: both release the
    GIL, so they overlap with the caller's per-frame Python work on another core.
    `opened`: the file already open, decoded from the packets its scan kept if it kept them.
    """
    if not thread:  # the caller's thread: where every CPU already has a process of its own
        yield from _decode_small_frames(path, short_side, part, opened)
        return
    # Frames cross between the threads in small batches: one hand-over per frame costs
    # about as much as shrinking a small frame.
    batch = max(1, min(_BATCH, prefetch))
    frames: queue.Queue = queue.Queue(maxsize=max(1, prefetch // batch))
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                frames.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            ready: list[AnalysisFrame] = []
            for item in _decode_small_frames(path, short_side, part, opened):
                ready.append(item)
                if len(ready) >= batch:
                    if not hand_over(ready):
                        return
                    ready = []
            if not ready or hand_over(ready):
                frames.put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            frames.put(exc)

    worker = threading.Thread(target=produce, name=f"decode:{path.name}", daemon=True)
    worker.start()
    try:
        while True:
            item = frames.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                frames.get(timeout=0.05)
        worker.join()


_BATCH = 8
_DONE = object()


def _configure_decoder(stream: av.VideoStream) -> None:
    pixels = (stream.codec_context.width or 0) * (stream.codec_context.height or 0)
    if 0 < pixels <= _ONE_DECODE_THREAD_MAX_PIXELS:
        stream.codec_context.thread_count = 1
    else:
        stream.thread_type = "AUTO"


def _decode_small_frames(path: Path, short_side: int, part: FrameRange | None = None,
                         opened: OpenedVideo | None = None) -> Iterator[AnalysisFrame]:
    packets = opened.take_packets() if opened is not None and part is None else None
    if packets is not None:  # the decoder was set up by the scan
        yield from _small_frames(opened.stream, (f for p in packets for f in p.decode()), short_side)
        return
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        _configure_decoder(stream)
        if part is not None and part.seek_pts is not None:
            container.seek(part.seek_pts, stream=stream, backward=True, any_frame=False)
        yield from _small_frames(stream, container.decode(stream), short_side, part)


def _small_frames(stream: av.VideoStream, decoded: Iterator[av.VideoFrame], short_side: int,
                  part: FrameRange | None = None) -> Iterator[AnalysisFrame]:
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    nominal = 1.0 / rate if rate > 0 else 0.04
    size: tuple[int, int] | None = None
    last_seconds: float | None = None
    # One converter for the whole stream: `frame.reformat` sets up a new one, with threads
    # of its own, on every frame.
    reformatter = VideoReformatter()
    numbered = enumerate(decoded) if part is None else _numbered(decoded, part)
    for index, frame in numbered:
        if part is not None and index < part.first:
            continue  # decoded only to reach the segment: its reference frames
        if size is None:
            factor = analysis_factor(frame.width, frame.height, short_side)
            size = (frame.width // factor, frame.height // factor)
        seconds = frame.time
        if seconds is None or (last_seconds is not None and seconds <= last_seconds):
            seconds = (last_seconds + nominal) if last_seconds is not None else 0.0
        duration = float(frame.duration * frame.time_base) if frame.duration else nominal
        bgr, luma = _small_bgr_and_luma(frame, size, reformatter)
        yield AnalysisFrame(index, seconds, duration or nominal, bgr, luma, frame)
        last_seconds = seconds


def _numbered(frames: Iterator[av.VideoFrame], part: FrameRange) -> Iterator[tuple[int, av.VideoFrame]]:
    """(index, frame) from the frames' timestamps; NotSegmentable when they leave the scanned list."""
    index: int | None = None
    for frame in frames:
        if index is None:  # the first frame after the seek: find its place
            at = bisect.bisect_left(part.pts, frame.pts) if frame.pts is not None else len(part.pts)
            if at == len(part.pts) or part.pts[at] != frame.pts:
                raise NotSegmentable(f"frame at pts {frame.pts} is not in the scanned frame list")
            index = at
            if index > part.first:
                raise NotSegmentable(f"the seek landed at frame {index}, after frame {part.first}")
        elif index >= len(part.pts) or frame.pts != part.pts[index]:
            raise NotSegmentable(f"frame {index} has pts {frame.pts}, the scan expected another")
        if index >= part.stop:
            return
        yield index, frame
        index += 1
    # The last segment ends where the decoder does, as one pass would (the scan may count a
    # packet that gives no frame at the very end); any other segment must reach its stop.
    if index is None or (index < part.stop and part.stop < len(part.pts)):
        raise NotSegmentable(f"the decoder stopped at frame {index}, before frame {part.stop}")


def _small_bgr_and_luma(frame: av.VideoFrame, size: tuple[int, int],
                        reformatter: VideoReformatter) -> tuple[np.ndarray, np.ndarray]:
    """(colour frame, luma): the luma at `size`, the colour frame `COLOUR_FACTOR` times smaller."""
    if frame.format.name not in _PLANAR_YUV:
        # Other layouts (10-bit, NV12, RGB, palette): FFmpeg converts to 8-bit YUV at full
        # size, then the same halvings as any source. The luma is a Y plane like theirs (not a
        # grey from RGB, whose range differs), and a scaler's own filter would change the
        # sharpness. One reused converter on one thread: 1.8 -> 0.3 ms a frame at 320x240 RGB.
        frame = reformatter.reformat(frame, format="yuv420p", threads=1)
    luma = _shrink_exact(_plane_array(frame, 0), size)
    colour = (max(1, size[0] // COLOUR_FACTOR), max(1, size[1] // COLOUR_FACTOR))
    # 4:2:0 chroma starts at half size: one halving fewer (none for a frame not shrunk).
    chroma = [_shrink_exact(_plane_array(frame, i), colour) for i in (1, 2)]
    planes = [_shrink_exact(luma, colour), *chroma]
    return cv2.cvtColor(cv2.merge(planes), cv2.COLOR_YUV2BGR), luma


def _shrink_exact(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-resize by whole factors: crop the few edge pixels that keep the factor whole.

    A plane smaller than `size` (the half-size chroma of a frame not shrunk at all) is enlarged.
    """
    if plane.shape[1] < size[0] or plane.shape[0] < size[1]:
        return cv2.resize(plane, size, interpolation=cv2.INTER_AREA)
    return shrink_by_whole_factors(plane, plane.shape[1] // size[0], plane.shape[0] // size[1])


def shrink_by_whole_factors(image: np.ndarray, fx: int, fy: int) -> np.ndarray:
    """`image` (HxW or HxWxC) area-averaged over fx-by-fy cells; edge pixels filling no cell dropped.

    OpenCV's area resize has a fast path for a factor of two only: a 720p plane shrunk by 4
    costs 0.8 ms at once and 0.06 ms as two halvings (the values differ by at most one level
    of rounding). Halvings come first; whatever factor is left takes one ordinary area resize.
    """
    height, width = image.shape[0] // fy, image.shape[1] // fx
    image = image[: height * fy, : width * fx]
    while fx % 2 == 0 and fy % 2 == 0:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
        fx, fy = fx // 2, fy // 2
    if fx == 1 and fy == 1:
        return image if image.flags.c_contiguous else np.ascontiguousarray(image)
    if fx % 2 and fy % 2:
        # An odd cell has a centre pixel: the box mean there is the cell's area mean, rounded
        # alike (k/fx*fy never ends in .5), at two-thirds of the area resize's generic path.
        box = cv2.blur(image, (fx, fy))
        return np.ascontiguousarray(box[fy // 2 :: fy, fx // 2 :: fx])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _plane_array(frame: av.VideoFrame, index: int) -> np.ndarray:
    plane = frame.planes[index]
    data = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    return data[:, : plane.width]


def frame_to_jpeg(frame: av.VideoFrame, short_side: int, rotation: int = 0, quality: int = 90) -> bytes:
    """A full frame at captioning size as an upright JPEG, encoded straight from its YUV planes.

    JPEG stores YCbCr 4:2:0 itself, so the planes go to libjpeg-turbo as they are: no RGB
    round trip, and the chroma planes are resized at half size. A third of the CPU of
    converting to RGB and encoding that (1.6 -> 0.4 ms at 480x352). The colours are those of
    `frame_to_rgb` (both read the planes as full-range BT.601) up to rounding.
    """
    width, height = analysis_size(frame.width, frame.height, short_side)
    if frame.format.name not in _PLANAR_YUV:  # NV12, 10-bit, RGB, palette: FFmpeg converts
        frame = frame.reformat(format="yuv420p", threads=1)  # as in decoding: no scaler threads
    planes = [_resize_plane(_plane_array(frame, 0), (width, height))]
    planes += [_resize_plane(_plane_array(frame, i), (width // 2, height // 2)) for i in (1, 2)]
    turns = (rotation // 90) % 4  # display matrices rotate counter-clockwise, like np.rot90
    planes = [np.ascontiguousarray(np.rot90(p, k=turns) if turns else p) for p in planes]
    return simplejpeg.encode_jpeg_yuv_planes(*planes, quality=quality)


def _resize_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`plane` at `size` (w, h): halvings (area, fast and alias-free) while it is at least twice
    the size, then one bilinear step (area at a fractional scale costs milliseconds)."""
    while plane.shape[1] >= 2 * size[0] and plane.shape[0] >= 2 * size[1]:
        even = plane[: plane.shape[0] // 2 * 2, : plane.shape[1] // 2 * 2]
        plane = cv2.resize(even, (even.shape[1] // 2, even.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if (plane.shape[1], plane.shape[0]) == size:
        return plane
    return cv2.resize(plane, size, interpolation=cv2.INTER_LINEAR)


def frame_to_rgb(frame: av.VideoFrame, short_side: int, rotation: int = 0) -> np.ndarray:
    """A full frame at captioning size as upright RGB (display rotation applied)."""
    width, height = analysis_size(frame.width, frame.height, short_side)
    if frame.format.name in _PLANAR_YUV:  # OpenCV on the planes: several times faster than swscale
        # Bilinear: area resizing at a fractional scale costs several milliseconds a plane.
        planes = [cv2.resize(_plane_array(frame, i), (width, height), interpolation=cv2.INTER_LINEAR)
                  for i in range(3)]
        rgb = cv2.cvtColor(cv2.merge(planes), cv2.COLOR_YUV2RGB)
    else:
        rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    # Display matrices rotate counter-clockwise; np.rot90 with k>0 does the same.
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=turns)) if turns else rgb
