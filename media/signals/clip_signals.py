"""Every scored-tier signal of one video's clips, from stored keyframes and frame statistics.

Nothing here decodes the raw video: the inputs are the keyframe JPEGs and the per-frame
statistics the clips tier stored. Models are loaded once per worker process (`models_for`)
and run batched over all keyframes of a video. Every value returned is a raw score; labels
and routes are decided later from these scores and the policy.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from media.cache_entries import CorruptEntry, Entry
from media.decode.hashing import phash
from media.shots.camera_motion import CameraMotion, CameraParams, classify_camera
from media.shots.keyframes import decode_keyframe
from media.signals.borders import BorderParams, BorderSignals, border_signals
from media.signals.dedup import temporal_signature
from media.signals.embeddings import DinoV2Embedder, OpenNsfwEmbedder, clip_embedding
from media.signals.nsfw import NsfwModel, centre_crop, drawn_score
from media.signals.quality import QualityParams, QualitySignals, quality_signals
from media.signals.text import TextBox, TextDetector, TextParams, TextSignals, text_signals
from media.signals.watermark import WatermarkParams, WatermarkSignals, watermark_signals

SIGNALS_VERSION = "signals-9"  # 2: temporal_signature for dedup; 3: TextParams.precision (fp32: same values);
# 4: keyframe_nsfw and keyframe_drawn (the drawn-picture guard of the safety layer); 5: text
# regions and the text outside subtitles, letterbox bars off the coding-block grid; 6: the
# centre-region embedding (OpenNSFW's centre cells) for crop dedup, stored in the cache entry;
# 7: OpenNSFW with its batch norms folded into its convolutions (values move by float rounding),
# camera speeds from the frames the background model explains (CameraParams.trusted_residual);
# 8: the crop embedding (a centre crop of the clip's middle keyframe, embedded) for crop dedup;
# 9: the middle keyframe's own embedding, which other clips' crop embeddings are compared with


@dataclass(frozen=True)
class AestheticConfig:
    backend: str = "none"  # none | laion
    clip_path: str = ""
    mlp_path: str = ""
    device: str = "auto"


@dataclass(frozen=True)
class SignalParams:
    """Everything that changes a signal's value (the cache key); routing thresholds are not here."""

    text: TextParams = field(default_factory=TextParams)
    borders: BorderParams = field(default_factory=BorderParams)
    watermark: WatermarkParams = field(default_factory=WatermarkParams)
    quality: QualityParams = field(default_factory=QualityParams)
    camera: CameraParams = field(default_factory=CameraParams)
    embedder: str = "dinov2"  # dinov2 | opennsfw
    # Keyframes OpenNSFW scores at least this high also get a drawn_score (the others are left
    # unmeasured: None). The safety guard needs it only near block_at, and it costs 2 ms a keyframe.
    drawn_min_nsfw: float = 0.5
    # The crop embedding (ClipSignals.crop_embedding, OpenNSFW embedder only): one more inference
    # per clip, spent only where dedup's crop link is on (policy crop_cosine_threshold < 1).
    crop_embedding: bool = True
    aesthetic: AestheticConfig = field(default_factory=AestheticConfig)
    models_dir: str = ""  # where edited ONNX graphs are cached; not part of the fingerprint
    threads: int = 1  # per worker process

    def fingerprint(self) -> str:
        payload = asdict(self)
        payload.pop("models_dir")
        payload.pop("threads")
        text = json.dumps({"v": SIGNALS_VERSION, **payload}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ClipInput:
    clip_id: str
    start_frame: int
    end_frame: int
    fps: float
    keyframes: list[tuple[str, int, bytes]]  # (role, frame, JPEG), roles may share a frame


@dataclass
class ClipSignals:
    clip_id: str
    columns: dict[str, object]  # the scored table's signal columns
    embedding: np.ndarray  # clip vector, L2-normalised
    seconds: dict[str, float]  # CPU seconds per signal family, for the funnel's cost column
    # the clip vector of its keyframes' centre regions (clip_embedding over the same keyframes);
    # None where the embedder has none (DINOv2)
    centre_embedding: np.ndarray | None = None
    # OpenNSFW's embedding of a centre crop of the clip's middle distinct keyframe
    # (media.signals.nsfw.centre_crop); None where the embedder is DINOv2
    crop_embedding: np.ndarray | None = None
    # OpenNSFW's embedding of that middle keyframe whole: what another clip's crop embedding is
    # compared with (the same moment, not the mean over the clip); present with crop_embedding
    middle_embedding: np.ndarray | None = None


ENTRY_KIND = "clip-signals"
# The optional vectors of a clip: (part name in a cache entry's meta and arrays, ClipSignals field,
# which is also the embeddings table's column name).
VECTOR_PARTS = (("centre", "centre_embedding"), ("crop", "crop_embedding"), ("middle", "middle_embedding"))


def signals_to_entry(signals: list[ClipSignals], key: str) -> Entry:
    """A cache entry (media/cache_entries.py) of one video's clip signals: per clip i the arrays
    `embedding/{i}` and, where `centre` / `crop` / `middle` is true in its meta, `centre/{i}` /
    `crop/{i}` / `middle/{i}`."""
    meta = [{"clip_id": s.clip_id, "columns": s.columns, "seconds": s.seconds,
             **{part: getattr(s, name) is not None for part, name in VECTOR_PARTS}} for s in signals]
    arrays = {f"embedding/{i}": s.embedding for i, s in enumerate(signals)}
    for part, field_name in VECTOR_PARTS:
        arrays.update({f"{part}/{i}": getattr(s, field_name) for i, s in enumerate(signals)
                       if getattr(s, field_name) is not None})
    return Entry(ENTRY_KIND, key, meta, arrays=arrays)


def signals_from_entry(entry: Entry) -> list[ClipSignals]:
    """The signals an entry holds; CorruptEntry when its parts do not fit together (an entry
    written before centre, crop or middle embeddings, without that part in its meta, included: it
    is recomputed)."""
    try:
        out = []
        for i, item in enumerate(entry.meta):
            vector = entry.arrays[f"embedding/{i}"]
            if not all(isinstance(item[part], bool) for part, _ in VECTOR_PARTS):
                raise CorruptEntry(f"clip {i}: malformed signals")
            parts = {name: entry.arrays[f"{part}/{i}"] if item[part] else None
                     for part, name in VECTOR_PARTS}
            if (any(v.ndim != 1 or v.dtype.kind != "f" for v in (vector, *parts.values()) if v is not None)
                    or not isinstance(item["columns"], dict)):
                raise CorruptEntry(f"clip {i}: malformed signals")
            out.append(ClipSignals(str(item["clip_id"]), item["columns"], vector,
                                   {str(k): float(v) for k, v in item["seconds"].items()}, **parts))
    except CorruptEntry:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a well-formed entry of the wrong shape
        raise CorruptEntry(f"unreadable signals: {type(exc).__name__}: {exc}") from exc
    optional = sum(getattr(s, name) is not None for s in out for _, name in VECTOR_PARTS)
    if len(entry.arrays) != len(out) + optional:
        raise CorruptEntry("embeddings and clips differ in number")
    return out


class SignalModels:
    """The models one worker process holds: PP-OCR detection, OpenNSFW, the embedder."""

    def __init__(self, params: SignalParams):
        cache = Path(params.models_dir or Path.home() / ".cache" / "vcurate" / "models")
        self.text = TextDetector(params.text, threads=params.threads, cache_dir=cache)
        # with the OpenNSFW embedder the same inference also gives the centre-region embeddings
        self.nsfw = NsfwModel(cache, threads=params.threads, regions=params.embedder == "opennsfw")
        self.embedder = (DinoV2Embedder(cache, threads=params.threads) if params.embedder == "dinov2"
                         else OpenNsfwEmbedder(self.nsfw))
        self.aesthetic = None
        if params.aesthetic.backend == "laion":
            from media.signals.aesthetic import AestheticScorer

            self.aesthetic = AestheticScorer(params.aesthetic.clip_path, params.aesthetic.mlp_path,
                                             device=params.aesthetic.device)


_MODELS: dict[str, SignalModels] = {}


def models_for(params: SignalParams) -> SignalModels:
    """This process's models for `params`, loaded on first use."""
    key = params.fingerprint()
    if key not in _MODELS:
        _MODELS.clear()  # one model set per process: a new policy replaces the old models
        _MODELS[key] = SignalModels(params)
    return _MODELS[key]


def score_video_clips(clips: list[ClipInput], stats: dict[str, np.ndarray], params: SignalParams,
                      models: SignalModels | None = None) -> list[ClipSignals]:
    """Signals of one video's clips. `stats` holds the video's per-frame columns (index = frame)."""
    models = models or models_for(params)
    batch = _score_keyframes(clips, params, models)
    return [_score_clip(clip, stats, params, models, batch) for clip in clips]


@dataclass
class _KeyframeScores:
    """The batched model outputs of every distinct keyframe JPEG of one video."""

    images: dict[bytes, np.ndarray]  # JPEG -> decoded RGB
    unique: list[bytes]  # the distinct JPEGs, in first-seen order
    boxes: dict[bytes, list[TextBox]]
    nsfw_scores: dict[bytes, float]
    drawn: dict[bytes, float | None]  # drawn_score where OpenNSFW >= SignalParams.drawn_min_nsfw
    embedding: dict[bytes, np.ndarray]
    centre: dict[bytes, np.ndarray] | None  # centre-region embeddings (OpenNSFW embedder only)
    crop: dict[bytes, np.ndarray] | None  # embeddings of each clip's middle keyframe's centre crop (ditto)
    aesthetic: dict[bytes, float] | None
    hashes: dict[bytes, int]
    seconds: dict[str, float]  # CPU seconds per batched signal family, for all keyframes


def _score_keyframes(clips: list[ClipInput], params: SignalParams, models: SignalModels) -> _KeyframeScores:
    """Decode every distinct keyframe once and run each model over all of them in one batch."""
    timer = _Timer()
    with timer("decode_keyframes"):
        images = _decode_distinct_keyframes(clips)
        unique = list(images)
        rgbs = [images[j] for j in unique]
    with timer("text"):
        boxes = dict(zip(unique, models.text.detect_batch(rgbs), strict=True))
    with timer("nsfw"):
        nsfw = models.nsfw.infer(rgbs)
        nsfw_scores = dict(zip(unique, nsfw.scores.tolist(), strict=True))
        drawn = {j: drawn_score(images[j]) if nsfw_scores[j] >= params.drawn_min_nsfw else None
                 for j in unique}
    with timer("embedding"):
        vectors = nsfw.embeddings if params.embedder == "opennsfw" else models.embedder.embed(rgbs)
        embedding = dict(zip(unique, vectors, strict=True))
        centre = (dict(zip(unique, nsfw.centre, strict=True))
                  if params.embedder == "opennsfw" and nsfw.centre is not None else None)
        crop = (_crop_embeddings(clips, images, models) if centre is not None and params.crop_embedding
                else None)
    aesthetic = None
    if models.aesthetic is not None:
        with timer("aesthetic"):
            aesthetic = dict(zip(unique, models.aesthetic.score(rgbs).tolist(), strict=True))
    with timer("phash"):
        hashes = {j: phash(images[j]) for j in unique}
    return _KeyframeScores(images, unique, boxes, nsfw_scores, drawn, embedding, centre, crop, aesthetic,
                           hashes, timer.seconds)


def _middle_keyframe(clip: ClipInput) -> bytes:
    frames = _distinct([jpeg for _, _, jpeg in clip.keyframes])
    return frames[len(frames) // 2]


def _crop_embeddings(clips: list[ClipInput], images: dict[bytes, np.ndarray],
                     models: SignalModels) -> dict[bytes, np.ndarray]:
    """OpenNSFW's pooled embedding of the centre crop of each clip's middle keyframe, one batch."""
    middles = list(dict.fromkeys(_middle_keyframe(clip) for clip in clips))
    crops = models.nsfw.infer([centre_crop(images[j]) for j in middles]).embeddings if middles else []
    return dict(zip(middles, crops, strict=True))


def _decode_distinct_keyframes(clips: list[ClipInput]) -> dict[bytes, np.ndarray]:
    images: dict[bytes, np.ndarray] = {}
    for clip in clips:
        for _, _, jpeg in clip.keyframes:
            if jpeg not in images:
                images[jpeg] = decode_keyframe(jpeg)
    return images


def _score_clip(clip: ClipInput, stats: dict[str, np.ndarray], params: SignalParams, models: SignalModels,
                batch: _KeyframeScores) -> ClipSignals:
    """One clip's signals: its own per-clip signals, and its keyframes' share of the batched ones."""
    own = _Timer()
    frames = _distinct([jpeg for _, _, jpeg in clip.keyframes])
    pictures = [batch.images[j] for j in frames]
    part = {name: values[clip.start_frame : clip.end_frame] for name, values in stats.items()}
    with own("text"):
        text = text_signals([p.shape[:2] for p in pictures], [batch.boxes[j] for j in frames], params.text)
    with own("borders"):
        borders = border_signals(pictures, params.borders)
    with own("watermark"):
        mark = watermark_signals(pictures, text, params.watermark, active=borders.crop)
    with own("quality"):
        quality = quality_signals(pictures, part, params.quality)
    with own("camera"):
        camera = classify_camera(part, clip.fps, params.camera)
    columns = {
        **_overlay_columns(text, mark, borders),
        **_content_columns([batch.nsfw_scores[j] for j in frames], [batch.drawn[j] for j in frames], quality,
                           [batch.aesthetic[j] for j in frames] if batch.aesthetic else None),
        **_motion_columns(part, camera),
        **_identity_columns(frames, batch.hashes, part, models.embedder.name),
    }
    seconds = _clip_seconds(batch.seconds, own.seconds, len(frames), len(batch.unique))
    centre = (clip_embedding(np.stack([batch.centre[j] for j in frames])) if batch.centre is not None
              else None)
    middle = _middle_keyframe(clip)
    crop = batch.crop[middle] if batch.crop is not None else None
    return ClipSignals(clip.clip_id, columns, clip_embedding(np.stack([batch.embedding[j] for j in frames])),
                       seconds, centre, crop, batch.embedding[middle] if crop is not None else None)


def _overlay_columns(text: TextSignals, mark: WatermarkSignals, borders: BorderSignals) -> dict[str, object]:
    """Burned-in text, watermark and letterbox columns."""
    return {
        "text_ratio_max": text.text_ratio_max, "text_ratio_mean": text.text_ratio_mean,
        "text_box_max_px": int(text.largest_box_px),
        "text_box_max_fraction": text.largest_box_fraction,
        "text_keyframes": int(text.text_frames), "subtitle_band": bool(text.subtitle_band),
        "corner_text": text.corner_text is not None,
        "text_regions": "+".join(text.text_regions) or None,
        "text_ratio_outside_subtitles_max": text.outside_subtitles_ratio_max,
        "text_box_outside_subtitles_max_fraction": text.outside_subtitles_box_fraction,
        "watermark_score": float(mark.watermark_score), "watermark_corner": mark.corner,
        "border_top": borders.top, "border_bottom": borders.bottom,
        "border_left": borders.left, "border_right": borders.right,
    }


def _content_columns(scores: list[float], drawn: list[float | None], quality: QualitySignals,
                     aesthetic: list[float] | None) -> dict[str, object]:
    """Safety, technical quality and aesthetic columns (`aesthetic` is None without a scorer).
    The per-keyframe lists follow the clip's distinct keyframes, in the order of `phashes`."""
    return {
        "nsfw_max": float(max(scores)), "nsfw_mean": float(np.mean(scores)),
        "keyframe_nsfw": [float(v) for v in scores],
        "keyframe_drawn": [None if v is None else float(v) for v in drawn],
        "sharpness": quality.sharpness, "exposure_under": quality.under_exposed,
        "exposure_over": quality.over_exposed, "exposure_label": quality.exposure_label,
        "brightness": quality.luma_mean, "contrast": quality.contrast,
        "colourfulness": quality.colourfulness, "noise": quality.noise,
        "blockiness": quality.blockiness, "technical_quality": quality.technical_quality,
        "aesthetic": float(np.mean(aesthetic)) if aesthetic is not None else None,
    }


def _motion_columns(part: dict[str, np.ndarray], camera: CameraMotion) -> dict[str, object]:
    """Frame-difference motion and camera-motion columns."""
    motion = part["motion"][1:] if len(part["motion"]) > 1 else part["motion"]
    return {
        "motion_mean": float(motion.mean()) if len(motion) else 0.0,
        "motion_max": float(motion.max()) if len(motion) else 0.0,
        "camera_motion": camera.label, "camera_jitter": _finite(camera.jitter),
        "camera_pan_speed": _finite(camera.pan_speed), "camera_tilt_speed": _finite(camera.tilt_speed),
        "camera_zoom_speed": _finite(camera.zoom_speed), "camera_confidence": _finite(camera.confidence),
    }


def _identity_columns(frames: list[bytes], hashes: dict[bytes, int], part: dict[str, np.ndarray],
                      embedder: str) -> dict[str, object]:
    """What near-duplicate detection compares: content key, pHashes, temporal signature."""
    return {
        "content_key": hashlib.sha256(b"".join(frames)).hexdigest(),
        "phashes": [hashes[j] for j in frames],
        "temporal_signature": temporal_signature(part).tolist(),
        "embedder": embedder,
    }


def _clip_seconds(shared: dict[str, float], own: dict[str, float], keyframes: int,
                  unique: int) -> dict[str, float]:
    """Shared (batched) model time is spread over the clips by keyframe count, plus the clip's own."""
    share = keyframes / max(1, unique)
    seconds = {k: v * share for k, v in shared.items()}
    for k, v in own.items():
        seconds[k] = seconds.get(k, 0.0) + v
    return seconds


def _distinct(items: list[bytes]) -> list[bytes]:
    return list(dict.fromkeys(items))


def _finite(value: float) -> float:
    """Unmeasured camera figures are NaN in media/camera_motion; the table stores 0 (with
    camera_confidence 0 saying the motion was not measured)."""
    return float(value) if value is not None and math.isfinite(value) else 0.0


class _Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        start = time.process_time()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.process_time() - start
