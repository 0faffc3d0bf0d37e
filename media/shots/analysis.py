"""Single-pass analysis of one video: shots, per-frame statistics, clips and keyframes.

`analyze_video_decoding_once` decodes the file exactly once; every consumer (shot detector,
frame statistics, keyframe sampler) reads the same frame stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from scenedetect import FrameTimecode

from media.cache_entries import CorruptEntry, Entry
from media.decode.frames import FrameRange, NotSegmentable, OpenedVideo, decode_analysis_frames, frame_to_jpeg
from media.decode.hashing import sha256_file
from media.shots.camera_motion import FlowParams
from media.shots.detectors import ShotDetector
from media.shots.dissolves import DissolveDetector, choose_transitions, refine_transition, relit_across
from media.shots.frame_stats import FrameStats
from media.shots.keyframes import ROLES, KeyframeSampler, contact_sheet, keyframe_targets
from media.shots.segments import (
    FrameIndex,
    Seams,
    Segment,
    available_cpus,
    frame_index,
    plan_segments,
    reset_segment_pool,
    segment_count,
    segment_pool,
)
from media.shots.spans import SpanParams, clip_spans, lasts, shot_spans

# analysis-2: camera-motion columns. analysis-3: camera flow every `camera_frame_step` frames,
# shrinking by halvings (values within one grey level of before), dissolve bounds.
# analysis-4: keyframes encoded from the YUV planes; keyframe spacing set from the frame count.
# analysis-5: the shot detector and dissolves read a colour frame half the analysis size;
# 10-bit, RGB and other non-8-bit-YUV sources give a Y-plane luma like the rest.
# analysis-6: repeated frames skip the shot detector, flashes are no cuts (media/shots/guards.py),
# light changes are no dissolves, neighbouring gradual transitions are one; spans keep every
# shot of min_clip_s (media/shots/spans.py).
# analysis-7: each dissolve's ends placed again from thumbnails kept around it
# (media/shots/dissolves.py `refine_transition`): clips after a dissolve start nearer its end;
# the camera's background model starts from the median flow (stored cam_* columns change).
# analysis-8: a gradual change between two pieces that are each too short for a clip, but
# showing the same picture relit, is no transition (`relit_across_short`): the shot keeps its clip.
# analysis-9: a second cut trigger for fast footage (media/shots/detectors.py FastAdaptiveDetector).
ANALYSIS_VERSION = "analysis-9"
_KEYFRAME_CAP = 600  # candidates kept per video at most (JPEGs in memory, about 20 kB each)
# How a run is spread over processes; results do not depend on it, so not in the fingerprint.
_EXECUTION_ONLY = ("segment_workers", "segment_min_frames")
_NEAR = 2  # frames: a cut this close to a dissolve's ends is that dissolve


@dataclass(frozen=True)
class AnalysisParams:
    detector: str = "adaptive"
    detector_params: dict[str, Any] = field(default_factory=dict)
    dissolves: bool = True  # also find gradual transitions (see media/shots/dissolves.py)
    dissolve_params: dict[str, Any] = field(default_factory=dict)  # DissolveDetector's fields
    # Frames within this mean |difference| (0..255) of the last new one are repeats (frame-rate
    # conversion) and skip the shot detector; None feeds every frame (media/shots/guards.py).
    repeat_below: float | None = 0.75
    flash_frames: int = 4  # a cut the picture returns from within this many frames is a flash
    # Gradual transitions this few frames apart are one (a fade out, then in); None: never.
    join_transitions_within: int | None = _NEAR + 1
    # Place each dissolve's ends again from thumbnails (media/shots/dissolves.py `refine_transition`).
    refine_transitions: bool = True
    # A gradual transition whose pieces on either side are both shorter than `spans.min_clip_s`
    # (together long enough) is dropped when the frames after it are those before it relit
    # (relit misfit of thumbnails under this; media/shots/dissolves.py `relit_across`): a light
    # change read as a dissolve would otherwise lose the shot. None: never dropped.
    relit_across_short: float | None = 0.8
    cut_files: bool = False  # also re-encode every clip to its own file (a second decode)
    analysis_short_side: int = 144
    keyframe_short_side: int = 384
    keyframes_per_second: float = 4.0
    motion_threshold: int = 20
    # Camera flow runs between frames this far apart; the frames between share its motion.
    # 1 measures every frame (shake faster than two frames reads in full, at twice the cost).
    camera_frame_step: int = 2
    spans: SpanParams = field(default_factory=SpanParams)
    # A long video is cut into time segments analysed on this many processes (0: one per CPU;
    # 1: one pass here). The clips tier sets 1 when its own pool already fills the CPUs.
    segment_workers: int = 0
    segment_min_frames: int = 400  # shorter segments spend too much on warm-up and start-up

    def fingerprint(self) -> str:
        """Changes whenever any parameter (or this code's version) changes: the cache key."""
        fields = {k: v for k, v in asdict(self).items() if k not in _EXECUTION_ONLY}
        payload = json.dumps({"v": ANALYSIS_VERSION, **fields}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass
class Clip:
    start: int
    end: int  # exclusive
    start_s: float
    end_s: float
    keyframes: dict[str, int]  # role -> frame index (a sampled frame)


@dataclass
class VideoAnalysis:
    frame_count: int
    fps: float
    width: int  # display size (rotation applied)
    height: int
    rotation: int
    cuts: list[int]
    transitions: list[tuple[int, int]]  # gradual transitions, half-open frame spans
    stats: dict[str, np.ndarray]
    clips: list[Clip]
    keyframe_jpegs: dict[int, bytes]
    clip_files: dict[int, str] = field(default_factory=dict)  # clip start frame -> MP4 path
    segments: int = 1  # time segments analysed on separate processes (media/shots/segments.py)

    def clip_stats(self, clip: Clip) -> dict[str, float]:
        part = {k: v[clip.start : clip.end] for k, v in self.stats.items()}
        return {
            "motion_mean": float(part["motion"][1:].mean()) if clip.end - clip.start > 1 else 0.0,
            "motion_max": float(part["motion"][1:].max()) if clip.end - clip.start > 1 else 0.0,
            "sharpness_mean": float(part["sharpness"].mean()),
            "luma_mean": float(part["luma_mean"].mean()),
            "luma_std_mean": float(part["luma_std"].mean()),
        }

    def contact_sheet_png(self, clip_labels: list[str]) -> bytes:
        rows = [(label, [self.keyframe_jpegs.get(clip.keyframes.get(role, -1)) for role in ROLES])
                for label, clip in zip(clip_labels, self.clips, strict=True)]
        return contact_sheet(rows)


ENTRY_KIND = "video-analysis"


def analysis_to_entry(analysis: VideoAnalysis, key: str, folder: Path) -> Entry:
    """A cache entry of `analysis` (media/cache_entries.py). Cut files stay beside it in `folder`,
    named relative to it, each with its size and sha256 so a damaged one is noticed on reading."""
    files = {}
    for start, name in analysis.clip_files.items():
        path = Path(name)
        files[str(start)] = [path.relative_to(folder).as_posix(), path.stat().st_size, sha256_file(path)]
    meta = {"frame_count": analysis.frame_count, "fps": analysis.fps, "width": analysis.width,
            "height": analysis.height, "rotation": analysis.rotation, "cuts": analysis.cuts,
            "transitions": analysis.transitions, "segments": analysis.segments, "clip_files": files,
            "clips": [[c.start, c.end, c.start_s, c.end_s, c.keyframes] for c in analysis.clips]}
    return Entry(ENTRY_KIND, key, meta, arrays={f"stats/{k}": v for k, v in analysis.stats.items()},
                 blobs={f"keyframe/{frame}": jpeg for frame, jpeg in analysis.keyframe_jpegs.items()})


def analysis_from_entry(entry: Entry, folder: Path) -> VideoAnalysis:
    """The analysis an entry holds; CorruptEntry when a part is inconsistent, a keyframe is not
    a decodable JPEG or a cut file is missing or changed (a checksum cannot see those)."""
    try:
        meta = entry.meta
        count = int(meta["frame_count"])
        stats = {name.removeprefix("stats/"): array for name, array in entry.arrays.items()}
        if any(a.ndim != 1 or len(a) != count or a.dtype.kind != "f" for a in stats.values()):
            raise CorruptEntry("frame statistics do not match the frame count")
        jpegs = {int(name.removeprefix("keyframe/")): blob for name, blob in entry.blobs.items()}
        for frame, jpeg in jpegs.items():
            if cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR) is None:
                raise CorruptEntry(f"keyframe {frame} is not a decodable JPEG")
        clips = [Clip(int(a), int(b), float(sa), float(sb), {str(r): int(f) for r, f in roles.items()})
                 for a, b, sa, sb, roles in meta["clips"]]
        if any(not 0 <= c.start < c.end <= count for c in clips):
            raise CorruptEntry("a clip lies outside the video")
        files = {}
        for start, (name, size, digest) in meta["clip_files"].items():
            path = folder / name
            if not path.is_file() or path.stat().st_size != size or sha256_file(path) != digest:
                raise CorruptEntry(f"cut file {path} is missing or changed")
            files[int(start)] = str(path)
        return VideoAnalysis(
            frame_count=count, fps=float(meta["fps"]), width=int(meta["width"]),
            height=int(meta["height"]), rotation=int(meta["rotation"]),
            cuts=[int(c) for c in meta["cuts"]],
            transitions=[(int(a), int(b)) for a, b in meta["transitions"]],
            stats=stats, clips=clips, keyframe_jpegs=jpegs, clip_files=files,
            segments=int(meta["segments"]))
    except CorruptEntry:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a well-formed entry of the wrong shape
        raise CorruptEntry(f"unreadable analysis: {type(exc).__name__}: {exc}") from exc


@contextlib.contextmanager
def _opencv_on_one_thread() -> Iterator[None]:
    """OpenCV's thread pool costs more CPU than it saves on analysis-size frames (a few
    hundred pixels a side), and the decode thread already keeps a second core busy."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


class _Inline:
    """`_SideThread`'s interface, run in the caller's thread: for segment workers, where every
    CPU already has a process and threads would only take turns at the GIL."""

    def __init__(self, work: Callable[..., None], **_: int) -> None:
        self.put = work

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *_: object) -> None:
        return None


class _SideThread:
    """Calls `work(*args)` for every `put(*args)`, in order, on one background thread.

    Items cross in batches of `batch`. Leaving the `with` block waits for the backlog and
    re-raises the first error `work` raised (later items are skipped once one failed).
    """

    def __init__(self, work: Callable[..., None], batch: int = 8, backlog: int = 2) -> None:
        self._items: queue.Queue = queue.Queue(maxsize=backlog)
        self._batch = batch
        self._pending: list[tuple[Any, ...]] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name="analysis-side", daemon=True)

    def __enter__(self) -> _SideThread:
        self._thread.start()
        return self

    def put(self, *args: Any) -> None:
        if self._error is not None:
            raise self._error
        self._pending.append(args)
        if len(self._pending) >= self._batch:
            self._items.put(self._pending)
            self._pending = []

    def _run(self, work: Callable[..., None]) -> None:
        while (batch := self._items.get()) is not None:
            for args in batch:
                if self._error is None:
                    try:
                        work(*args)
                    except BaseException as exc:  # raised in the caller's thread
                        self._error = exc

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if self._pending and kind is None:
            self._items.put(self._pending)
        self._items.put(None)
        self._thread.join()
        if kind is None and self._error is not None:
            raise self._error


def analyze_video_decoding_once(path: Path, params: AnalysisParams) -> VideoAnalysis:
    """Decode `path` once; return its shots, per-frame statistics, clips and keyframes.

    A long video is split into segments that run on `params.segment_workers` processes; each
    frame is still decoded once for analysis (segments decode a few warm-up frames twice).
    """
    with OpenedVideo(path) as opened:  # one open: the rate, the frame list and the one pass
        return _analyze_opened(opened, params)


def _analyze_opened(opened: OpenedVideo, params: AnalysisParams) -> VideoAnalysis:
    path, rate = opened.path, opened.rate
    index = frame_index(opened.scan())
    every = _keyframe_spacing(rate, params, index)
    workers = params.segment_workers or available_cpus()
    parts = segment_count(index, workers, params.segment_min_frames) if params.detector != "transnetv2" else 1
    if index is not None and parts > 1:
        opened.take_packets()  # segments open the file themselves: free the packets meanwhile
        pool = segment_pool(workers)
        seams = _seams(params, rate)
        futures = [pool.submit(_analyze_segment, path, params, rate, every, segment)
                   for segment in plan_segments(index, parts, seams)]
        try:
            return _combine([future.result() for future in futures], params, rate, seams)
        except NotSegmentable:
            pass  # frames the scan did not foresee: one pass, numbered as they come
        except Exception:  # noqa: BLE001 (a broken file or a lost worker: one pass says which)
            for future in futures:
                future.cancel()
            reset_segment_pool()
    # segment_workers 1: the caller's processes already fill the CPUs (the clips tier's pool),
    # where the decode and side threads only take turns with this one and cost their hand-overs
    # (about 5% of a short video's CPU). Results are the same either way (segments run inline).
    threads = params.segment_workers != 1
    with _opencv_on_one_thread():
        return _combine([_analyze_span(path, params, rate, every, None, threads=threads, opened=opened)],
                        params, rate)


def _seams(params: AnalysisParams, rate: float) -> Seams:
    """Warm-up: the longest dissolve window, and the detector's memory (its last cut, `min_scene_len`
    back, and its score window). Margin: long enough past a segment's end for a cut to be
    confirmed there, and for the next segment's cuts to be compared with these over a stretch
    longer than `min_scene_len` (see `_check_seam`)."""
    detector = params.detector_params
    min_len = FrameTimecode(detector.get("min_scene_len", 15), fps=float(rate)).frame_num
    window = int(detector.get("window_width", 2))
    dissolve = max(DissolveDetector(**params.dissolve_params).lengths) + 1
    memory = min_len + window + 2 + params.flash_frames
    warmup = max(dissolve, 2 * memory)
    return Seams(warmup=warmup + warmup % 2, margin=3 * memory, tail=memory)


def _keyframe_spacing(rate: float, params: AnalysisParams, index: FrameIndex | None) -> int:
    """Frames between keyframe candidates: the asked rate, doubled until the video's candidates
    fit the cap. Without a frame count (no scan) the sampler thins itself out as it goes."""
    every = max(1, round(rate / params.keyframes_per_second))
    while index is not None and -(-index.count // every) > _KEYFRAME_CAP:
        every *= 2
    return every


def _analyze_segment(path: Path, params: AnalysisParams, rate: float, every: int,
                     segment: Segment) -> _Span:
    with _opencv_on_one_thread():
        return _analyze_span(path, params, rate, every, segment, threads=False)


@dataclass
class _Span:
    """What one pass over a run of frames found, for the frames it owns."""

    first: int
    width: int
    height: int
    rotation: int
    stats: dict[str, np.ndarray]
    durations: list[float]
    cuts: list[int]
    candidates: list[tuple[float, int, int]]  # dissolve windows (media/shots/dissolves.py)
    thumbs: dict[int, np.ndarray]  # thumbnails around those windows, owned or not
    keyframe_jpegs: dict[int, bytes]
    all_cuts: list[int] = field(default_factory=list)  # owned or not: compared across seams
    fed_from: int = 0
    # luma mean, spread and sharpness of every frame fed, owned or not: where two segments
    # both decoded a frame they must agree, or a seek did not reproduce the one-pass pixels.
    seen: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))


def _analyze_span(path: Path, params: AnalysisParams, rate: float, every: int,
                  segment: Segment | None, threads: bool, opened: OpenedVideo | None = None) -> _Span:
    detector = ShotDetector(params.detector, dict(params.detector_params), fps=rate,
                            repeat_below=params.repeat_below, flash_frames=params.flash_frames)
    keep_thumbs = params.refine_transitions or params.relit_across_short is not None
    dissolves = DissolveDetector(**{"keep_thumbs": keep_thumbs, **params.dissolve_params}
                                 ) if params.dissolves else None
    stats = FrameStats(motion_threshold=params.motion_threshold,
                       flow=FlowParams(frame_step=params.camera_frame_step))
    # With a known spacing the sampler never reaches its cap; without one it thins itself.
    sampler = KeyframeSampler(every=every, cap=_KEYFRAME_CAP)
    part: FrameRange | None = segment.frames if segment else None
    own_start, own_end = (segment.own_start, segment.own_end) if segment else (0, None)
    fed_from: int | None = None
    durations: list[float] = []
    width, height, rotation = 0, 0, 0

    def mine(index: int) -> bool:  # the frames this span reports; it may see more around them
        return index >= own_start and (own_end is None or index < own_end)

    def keep_keyframe(index: int, source: av.VideoFrame) -> None:
        # `every` only grows (the sampler thins itself out), so the caller's earlier look at
        # it sends every frame the sampler still wants, and perhaps a few it no longer does.
        if sampler.wants(index):
            sampler.add(index, frame_to_jpeg(source, params.keyframe_short_side, rotation, sampler.quality))

    # Statistics, camera flow and keyframe encoding are mostly OpenCV pixel loops, which
    # release the GIL: on threads of their own they run beside the detectors' Python.
    # Keyframe items hold full decoded frames: small batches keep few of them in flight.
    side = _SideThread if threads else _Inline
    with side(stats.add) as measure, side(keep_keyframe, batch=2) as keyframes:
        for frame in decode_analysis_frames(path, params.analysis_short_side, part=part, thread=threads,
                                            opened=opened):
            if fed_from is None:
                fed_from = frame.index
                width, height = frame.source.width, frame.source.height
                rotation = int(round(frame.source.rotation or 0)) % 360
            measure.put(frame.seconds, frame.luma)
            if mine(frame.index) and sampler.wants(frame.index):
                keyframes.put(frame.index, frame.source)
            detector.feed(frame.index, frame.bgr)
            if dissolves is not None:
                dissolves.feed(frame.index, frame.bgr)
            durations.append(frame.duration_s)
    detector.finish()
    if fed_from is None:
        raise ValueError(f"{path}: no frame could be decoded")

    rows = slice(own_start - fed_from, None if own_end is None else own_end - fed_from)
    arrays = stats.arrays()
    return _Span(
        first=own_start, width=width, height=height, rotation=rotation,
        stats={name: column[rows] for name, column in arrays.items()},
        durations=durations[rows], cuts=[c for c in detector.cuts if mine(c)],
        candidates=[c for c in (dissolves.candidates if dissolves else []) if mine(c[2])],
        thumbs=dissolves.thumbs if dissolves else {},
        keyframe_jpegs=sampler.frames, fed_from=fed_from, all_cuts=list(detector.cuts),
        seen=np.column_stack([arrays["luma_mean"], arrays["luma_std"], arrays["sharpness"]]),
    )


def _check_seam(before: _Span, after: _Span, seams: Seams) -> None:
    """NotSegmentable unless two neighbouring segments agree where both fed frames."""
    # Some files decode differently after a seek (parameter sets sent in-band earlier, open
    # GOPs): the frames both segments decoded show it.
    shared = before.fed_from + len(before.seen) - after.fed_from
    if shared <= 0 or not np.array_equal(before.seen[after.fed_from - before.fed_from :],
                                         after.seen[:shared]):
        raise NotSegmentable(f"frames from {after.fed_from} decode differently after a seek")
    # The detector remembers its last cut, so a run of near-misses (strobes, flashes) can keep
    # a late starter out of step for ever. Once both emit the same cuts over a stretch longer
    # than that memory, they are in the same state, and the later one's cuts are one pass's.
    # The stretch: from the later segment's own start to before the earlier one's last frames
    # (which end its detector early).
    end = before.fed_from + len(before.seen) - seams.tail
    stretch = range(after.first, max(after.first, end))
    if [c for c in before.all_cuts if c in stretch] != [c for c in after.all_cuts if c in stretch]:
        raise NotSegmentable(f"the shot detector had not settled by frame {after.first}")


def _combine(spans: list[_Span], params: AnalysisParams, rate: float,
             seams: Seams | None = None) -> VideoAnalysis:
    """One video's analysis from its spans (one, or its segments in order)."""
    expected = spans[0].first
    for span in spans:
        if span.first != expected or (span.width, span.height) != (spans[0].width, spans[0].height):
            raise NotSegmentable("segments do not join (a gap, or the frame size changes)")
        expected += len(span.durations)
    for before, after in zip(spans, spans[1:], strict=False):
        _check_seam(before, after, seams or Seams(0, 0, 0))
    arrays = {name: np.concatenate([span.stats[name] for span in spans]) for name in spans[0].stats}
    durations = [d for span in spans for d in span.durations]
    count = len(durations)
    if any(len(column) != count for column in arrays.values()):
        raise NotSegmentable("a segment's statistics and frames disagree in number")
    first = spans[0]
    starts = arrays["seconds"]
    ends = np.append(starts[1:], starts[-1] + durations[-1])
    candidates = [c for span in spans for c in span.candidates]
    transitions = choose_transitions(candidates) if params.dissolves else []
    if params.join_transitions_within is not None:
        transitions = _joined(transitions, params.join_transitions_within)
    found = sorted({c for span in spans for c in span.cuts})
    thumbs = {i: t for span in spans for i, t in span.thumbs.items()} if transitions else {}
    if params.refine_transitions and transitions:
        transitions = _refined(transitions, thumbs, count, found)
    # A detector firing at or inside a dissolve saw the same transition: the dissolve wins.
    cuts = [c for c in found if not any(s - _NEAR <= c <= e + _NEAR for s, e in transitions)]
    if params.relit_across_short is not None and transitions:
        transitions = _relit_between_short_pieces_dropped(
            transitions, cuts, thumbs, starts, ends, params.spans.min_clip_s, params.relit_across_short)
    spans_out = clip_spans(cuts, starts, ends, arrays["motion"], params.spans, transitions)
    fps = count / (ends[-1] - starts[0]) if ends[-1] > starts[0] else rate
    keyframes = {i: jpeg for span in spans for i, jpeg in span.keyframe_jpegs.items()}
    sampled = KeyframeSampler(frames=keyframes)
    clips = []
    for start, end in spans_out:
        wanted = keyframe_targets(start, end, arrays["sharpness"], arrays["motion"], fps)
        chosen = {role: sampled.nearest(target, start, end) for role, target in wanted.items()}
        clips.append(Clip(start, end, float(starts[start]), float(ends[end - 1]),
                          {r: i for r, i in chosen.items() if i is not None}))
    used = {i for clip in clips for i in clip.keyframes.values()}
    turned = first.rotation % 180 == 90
    return VideoAnalysis(
        frame_count=count, fps=fps,
        width=first.height if turned else first.width,
        height=first.width if turned else first.height,
        rotation=first.rotation, cuts=cuts, transitions=transitions, stats=arrays, clips=clips,
        keyframe_jpegs={i: b for i, b in keyframes.items() if i in used}, segments=len(spans),
    )


def _joined(transitions: list[tuple[int, int]], within: int) -> list[tuple[int, int]]:
    """Gradual transitions at most `within` frames apart as one: a fade out and the fade in
    after it (their windows meet at the black frame), or two halves of one long dissolve."""
    joined: list[tuple[int, int]] = []
    for start, end in transitions:
        if joined and start - joined[-1][1] <= within:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined


def _refined(transitions: list[tuple[int, int]], thumbs: dict[int, np.ndarray], count: int,
             cuts: list[int]) -> list[tuple[int, int]]:
    """Each transition's ends placed again (`refine_transition`), never reaching into the one
    before it, past the video, or over a hard cut it did not already hold (one it swallows
    would be dropped as part of it)."""
    out: list[tuple[int, int]] = []
    for start, end in transitions:
        a, b = refine_transition(thumbs, start, end)
        # (a cut within _NEAR of a transition is dropped as part of it: stay that far away)
        a = max([a, out[-1][1] if out else 0,
                 *(c + _NEAR + 1 for c in cuts if a - _NEAR <= c < start - _NEAR)])
        b = min([b, count, *(c - _NEAR - 1 for c in cuts if end + _NEAR < c <= b + _NEAR)])
        out.append((a, b) if b - a >= 2 else (start, end))
    return out


def _relit_between_short_pieces_dropped(
        transitions: list[tuple[int, int]], cuts: list[int], thumbs: dict[int, np.ndarray],
        starts: np.ndarray, ends: np.ndarray, min_clip_s: float, below: float) -> list[tuple[int, int]]:
    """`transitions` less those between two pieces each shorter than `min_clip_s` (and together
    long enough) whose frames after are the frames before relit (`relit_across` under `below`).
    On the calibration builds of bench/shots.py true dissolves read 0.83 and up there, light
    changes inside a shot 0.09-0.74."""
    kept = list(transitions)
    for transition in transitions:
        shots = shot_spans(cuts, len(starts), kept)
        before = next((s for s in shots if s[1] == transition[0]), None)
        after = next((s for s in shots if s[0] == transition[1]), None)
        if before is None or after is None:
            continue
        if (lasts(*before, starts, ends, min_clip_s) or lasts(*after, starts, ends, min_clip_s)
                or not lasts(before[0], after[1], starts, ends, min_clip_s)):
            continue
        misfit = relit_across(thumbs, *transition)
        if misfit is not None and misfit < below:
            kept.remove(transition)
    return kept


def start_segment_workers(workers: int | None = None) -> None:
    """Start the segment pool's processes now (imports included) instead of on the first long
    video: each worker unpickles `_warm_worker`, which imports this module there."""
    workers = workers or available_cpus()
    if workers > 1:
        pool = segment_pool(workers)
        for future in [pool.submit(_warm_worker) for _ in range(workers)]:
            future.result()


def _warm_worker() -> None:
    """Nothing to do: being called in a worker has already imported the analysis modules."""
