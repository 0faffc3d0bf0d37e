"""Burned-in text on keyframes: PP-OCR text detection (no recognition) and per-clip text signals.

The detector is rapidocr's packaged PP-OCR detection model run through ONNX Runtime; it is
built once per worker process and fed keyframes one by one (on CPU a batch of four costs the
same per image as four single runs, so there is nothing to gain from stacking them).
`text_signals` then turns a clip's boxes into area ratios and two placement labels: a
subtitle band (text low and central in most keyframes) and corner text (a bug or credit that
stays in one corner).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
# Where the int8 detector is kept when no cache folder is given: one per machine, made once.
DEFAULT_MODEL_CACHE = Path.home() / ".cache" / "vcurate" / "models"


@dataclass(frozen=True)
class TextBox:
    """An axis-aligned text box in pixels of the image it was found in: [x0, x1) × [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float  # mean text probability inside the detected polygon (0..1)

    @property
    def area(self) -> int:
        return max(0, self.x1 - self.x0) * max(0, self.y1 - self.y0)

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2


@dataclass(frozen=True)
class TextParams:
    """What a user tunes about text detection and its per-clip labels (mirrored in the policy)."""

    detect_short_side: int = 384  # the detector sees at least this short side (keyframes are 384)
    # fp32: the packaged model as it ships; int8: quantized on this machine (media/signals/int8.py),
    # 2.2x cheaper, to be run with box_threshold 0.6 (one validation overlay fewer, see there)
    precision: str = "fp32"
    pixel_threshold: float = 0.3  # DB probability map binarisation
    box_threshold: float = 0.4  # minimum mean probability inside a box (rapidocr's default: 0.5)
    unclip_ratio: float = 1.6  # how far DB grows a text kernel into its box
    min_box_height: int = 7  # px at keyframe size; smaller boxes are texture, not legible text
    # The detector marks some large smooth regions (sky, walls, a dark background) as one huge box;
    # a line of text is rarely taller than this fraction of the frame height.
    max_box_height: float = 0.25
    subtitle_band_top: float = 2 / 3  # subtitles sit below this fraction of the height
    subtitle_centre_width: float = 0.5  # ... with their centre in this central share of the width
    subtitle_min_share: float = 0.5  # share of keyframes that must show such text
    corner_size: float = 0.25  # a corner region is this fraction of the width and of the height
    corner_min_share: float = 1.0  # share of keyframes with text in the same corner
    min_keyframes: int = 2  # persistence needs at least this many keyframes


@dataclass(frozen=True)
class TextSignals:
    """Text measurements of one clip's keyframes (ratios are of the keyframe area)."""

    text_ratio: tuple[float, ...]  # per keyframe: area of the union of boxes / frame area
    text_ratio_max: float
    text_ratio_mean: float
    largest_box_px: int  # at keyframe size
    largest_box_fraction: float
    text_frames: int  # keyframes with at least one box
    subtitle_share: float  # share of keyframes with text in the subtitle band
    subtitle_band: bool  # subtitle_share ≥ params.subtitle_min_share over ≥ params.min_keyframes
    corner_share: float  # best corner's share of keyframes with text in it
    corner_text: str | None  # that corner's name (CORNERS) when it persists, else None
    params: TextParams


class TextDetector:
    """rapidocr's default PP-OCR detection model, loaded from the wheel; detection only.

    One instance per worker process. The model file path is given to rapidocr directly, so
    its download-if-missing code never runs: a broken install fails here with the path.
    """

    def __init__(self, params: TextParams = TextParams(), threads: int = 1,
                 cache_dir: Path | None = None) -> None:
        import rapidocr
        from rapidocr.ch_ppocr_det import TextDetector as _RapidDetector
        from rapidocr.inference_engine.base import FileInfo, InferSession
        from rapidocr.utils.parse_parameters import ParseParams

        logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # it logs every model load at INFO
        root = Path(rapidocr.__file__).parent
        cfg: Any = ParseParams.load(root / "config.yaml")
        det = cfg.Det
        info = InferSession.get_model_url(
            FileInfo(det.engine_type, det.ocr_version, det.task_type, det.lang_type, det.model_type))
        model = root / "models" / Path(info["model_dir"]).name
        if not model.is_file():
            raise FileNotFoundError(f"{model}: rapidocr's packaged detection model is missing; "
                                    "reinstall rapidocr==3.10.0 (nothing is downloaded at run time)")
        if params.precision == "int8":
            from rapidocr.ch_ppocr_det.utils import DetPreProcess

            from media.signals.int8 import int8_detector_model

            prepare = DetPreProcess(params.detect_short_side, det.limit_type, det.mean, det.std)
            source, model = model, int8_detector_model(model, cache_dir or DEFAULT_MODEL_CACHE, prepare)
        elif params.precision != "fp32":
            raise ValueError(f"text precision {params.precision!r}: expected 'int8' or 'fp32'")
        det.model_path = str(model)
        det.limit_side_len = params.detect_short_side
        det.thresh = params.pixel_threshold
        det.box_thresh = params.box_threshold
        det.unclip_ratio = params.unclip_ratio
        engine = cfg.EngineConfig.onnxruntime
        engine.intra_op_num_threads = threads
        engine.inter_op_num_threads = 1
        det.engine_cfg = engine
        try:
            self._detector = _RapidDetector(det)
        except Exception:
            if params.precision != "int8":
                raise
            model.unlink(missing_ok=True)  # a damaged cached copy: made again, once
            det.model_path = str(int8_detector_model(source, cache_dir or DEFAULT_MODEL_CACHE, prepare))
            self._detector = _RapidDetector(det)
        lookup = _lookup_preprocess(det.limit_side_len, det.limit_type, det.mean, det.std)
        self._detector.get_preprocess = lambda: lookup  # rapidocr builds a new one per call
        self.params = params
        self.model_name = model.name

    def detect(self, rgb: np.ndarray) -> list[TextBox]:
        """Text boxes in `rgb` (H×W×3 uint8, RGB), in its pixels, top to bottom."""
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # PP-OCR was trained on BGR input
        result = self._detector(bgr)
        if result.boxes is None:
            return []
        height, width = rgb.shape[:2]
        boxes = []
        for quad, score in zip(result.boxes, result.scores, strict=True):
            x0, y0 = np.floor(quad.min(axis=0)).astype(int)
            x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 1
            box = TextBox(max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1)),
                          float(score))
            if self.params.min_box_height <= box.y1 - box.y0 <= self.params.max_box_height * height:
                boxes.append(box)
        return boxes

    def detect_batch(self, frames: list[np.ndarray]) -> list[list[TextBox]]:
        """`detect` for each frame, in order."""
        return [self.detect(frame) for frame in frames]


def _lookup_preprocess_class() -> type:
    from rapidocr.ch_ppocr_det.utils import DetPreProcess

    class LookupPreProcess(DetPreProcess):
        """rapidocr's detector preprocessing with its per-pixel normalisation read from a table.

        rapidocr normalises in float64 and casts to float32 (7 ms of a 384x672 keyframe); the
        normalisation depends only on the uint8 value and the channel, so a 256x3 table made by
        rapidocr's own `normalize` gives the very same float32 input, bit for bit.
        """

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            values = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
            self._table = np.ascontiguousarray(self.normalize(values).astype(np.float32).T)  # (3, 256)

        def __call__(self, img: np.ndarray) -> np.ndarray | None:
            resized = self.resize(img)
            if resized is None:
                return None
            out = np.empty((1, 3, *resized.shape[:2]), np.float32)
            for channel in range(3):
                np.take(self._table[channel], resized[..., channel], out=out[0, channel])
            return out

    return LookupPreProcess


def _lookup_preprocess(*args: Any) -> Any:
    """A LookupPreProcess; the class is made on first use (rapidocr is imported late)."""
    global _LOOKUP_CLASS
    if _LOOKUP_CLASS is None:
        _LOOKUP_CLASS = _lookup_preprocess_class()
    return _LOOKUP_CLASS(*args)


_LOOKUP_CLASS: type | None = None


def corner_of(box: TextBox, height: int, width: int, size: float) -> str | None:
    """The corner region (CORNERS) holding the box centre, or None."""
    cx, cy = box.centre
    horizontal = "left" if cx < size * width else "right" if cx >= (1 - size) * width else None
    vertical = "top" if cy < size * height else "bottom" if cy >= (1 - size) * height else None
    return f"{vertical}_{horizontal}" if horizontal and vertical else None


def _is_subtitle(box: TextBox, height: int, width: int, params: TextParams) -> bool:
    cx, cy = box.centre
    margin = (1 - params.subtitle_centre_width) / 2
    return cy >= params.subtitle_band_top * height and margin * width <= cx <= (1 - margin) * width


def union_area(boxes: list[TextBox], height: int, width: int) -> int:
    """Pixels covered by at least one box (overlaps counted once)."""
    if not boxes:
        return 0
    mask = np.zeros((height, width), np.bool_)
    for box in boxes:
        mask[box.y0 : box.y1, box.x0 : box.x1] = True
    return int(mask.sum())


def text_signals(frames_shape: list[tuple[int, int]], boxes: list[list[TextBox]],
                 params: TextParams = TextParams()) -> TextSignals:
    """Aggregate one clip's keyframes: `frames_shape[i]` is (height, width) of keyframe i,
    `boxes[i]` its detected boxes. Pass each distinct keyframe once (roles may share a frame).
    """
    if len(frames_shape) != len(boxes):
        raise ValueError(f"text_signals: {len(frames_shape)} frame shapes but {len(boxes)} box lists")
    ratios, largest_px, largest_fraction = [], 0, 0.0
    subtitle_frames = 0
    corner_frames = dict.fromkeys(CORNERS, 0)
    for (height, width), frame_boxes in zip(frames_shape, boxes, strict=True):
        area = height * width
        ratios.append(union_area(frame_boxes, height, width) / area if area else 0.0)
        for box in frame_boxes:
            if box.area > largest_px:
                largest_px, largest_fraction = box.area, box.area / area
        subtitle_frames += any(_is_subtitle(b, height, width, params) for b in frame_boxes)
        for corner in {corner_of(b, height, width, params.corner_size) for b in frame_boxes} - {None}:
            corner_frames[corner] += 1
    count = len(ratios)
    persistent = count >= params.min_keyframes
    subtitle_share = subtitle_frames / count if count else 0.0
    best = max(CORNERS, key=lambda c: corner_frames[c])
    corner_share = corner_frames[best] / count if count else 0.0
    return TextSignals(
        text_ratio=tuple(ratios),
        text_ratio_max=max(ratios, default=0.0),
        text_ratio_mean=float(np.mean(ratios)) if ratios else 0.0,
        largest_box_px=largest_px,
        largest_box_fraction=largest_fraction,
        text_frames=sum(bool(b) for b in boxes),
        subtitle_share=subtitle_share,
        subtitle_band=persistent and subtitle_share >= params.subtitle_min_share,
        corner_share=corner_share,
        corner_text=best if persistent and corner_share >= params.corner_min_share and corner_share > 0
        else None,
        params=params,
    )
