"""Burned-in text on keyframes: PP-OCR text detection (no recognition) and per-clip text signals.

The detector is rapidocr's packaged PP-OCR detection model run through ONNX Runtime; it is
built once per worker process and fed keyframes one by one (on CPU a batch of four costs the
same per image as four single runs, so there is nothing to gain from stacking them).
`text_signals` then turns a clip's boxes into area ratios and placement labels read from box
geometry over the clip's keyframes. Boxes on one line are joined into a row first, so a long
subtitle split into words is one centred row, not text in two corners. A row is a ticker when
it runs off a side of the frame in the top or bottom band; a bottom band, top band or centre
when it is central (crosses the middle of the width) in that third of the height; a corner
when it sits in one corner. A region is named when it persists over enough keyframes. Boxes
the detector is only weakly sure of (faint, small, low-contrast overlays) are kept when they
recur at the same place in other keyframes, which an overlay does and picture texture under a
moving camera does not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
# Where a clip's text is, as text_signals names it (TextSignals.text_regions).
REGIONS = ("bottom_band", "top_band", "centre", "corner", "ticker")
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
    # DB probability map binarisation; 0.2 (was 0.3) lets faint and low-contrast text form a box,
    # which box_threshold 0.5 (was 0.4) then judges (bench/text.py, calibration half).
    pixel_threshold: float = 0.2
    box_threshold: float = 0.5  # minimum mean probability inside a box (rapidocr's default: 0.5)
    # Boxes down to this probability are detected too, and kept only where they recur (IoU ≥
    # weak_min_iou) in at least weak_min_share of the clip's other keyframes: a faint static overlay.
    weak_box_threshold: float = 0.25
    weak_min_iou: float = 0.5
    weak_min_share: float = 1.0
    unclip_ratio: float = 1.6  # how far DB grows a text kernel into its box
    min_box_height: int = 7  # px at keyframe size; smaller boxes are texture, not legible text
    # The detector marks some large smooth regions (sky, walls, a dark background) as one huge box;
    # a line of text is rarely taller than this fraction of the frame height.
    max_box_height: float = 0.25
    subtitle_band_top: float = 2 / 3  # subtitles sit below this fraction of the height
    subtitle_centre_width: float = 0.5  # ... with their centre in this central share of the width
    subtitle_min_share: float = 0.5  # share of keyframes that must show such text
    top_band_bottom: float = 1 / 3  # a top band sits above this fraction of the height
    band_min_share: float = 0.5  # share of keyframes for a top band, centre text or a ticker
    ticker_side: float = 0.015  # a row within this fraction of the width of a side runs off it
    ticker_min_width: float = 0.5  # ... and a ticker row spans at least this share of the width
    corner_size: float = 0.25  # a corner region is this fraction of the width and of the height
    corner_min_share: float = 1.0  # share of keyframes with text in the same corner
    # ... or this share, when the corner's boxes sit at the same place (IoU ≥ weak_min_iou) in
    # them: a faint static bug the detector misses in some keyframes
    corner_static_share: float = 0.5
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
    # Sorted REGIONS names that persist; when text is seen but none persists, the one seen in
    # the most keyframes. Empty without text.
    text_regions: tuple[str, ...] = ()
    region_shares: tuple[tuple[str, float], ...] = ()  # (REGIONS name, share of keyframes with it)
    # text_ratio_max and largest_box_fraction of the boxes off bottom-band rows: what is left
    # when subtitles, which the policy keeps, are set aside
    outside_subtitles_ratio_max: float = 0.0
    outside_subtitles_box_fraction: float = 0.0


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
        det.box_thresh = min(params.box_threshold, params.weak_box_threshold)
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
        # rapidocr builds a new preprocessor per call; this one is built once
        self._preprocess = _lookup_preprocess(det.limit_side_len, det.limit_type, det.mean, det.std)
        self.params = params
        self.model_name = model.name

    def detect(self, rgb: np.ndarray) -> list[TextBox]:
        """Text boxes in `rgb` (H×W×3 uint8, RGB), in its pixels, top to bottom: every box down to
        min(box_threshold, weak_box_threshold); `text_signals` decides which weak boxes to keep."""
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # PP-OCR was trained on BGR input
        height, width = rgb.shape[:2]
        # rapidocr's own __call__ re-sorts the boxes but not their scores (3.10.0), so a box
        # would be kept or dropped by another box's score: its steps are run here instead.
        prepared = self._preprocess(bgr)
        if prepared is None:
            return []
        quads, scores = self._detector.postprocess_op(self._detector.session(prepared), (height, width))
        boxes = []
        for quad, score in zip(quads, scores, strict=True):
            x0, y0 = np.floor(quad.min(axis=0)).astype(int)
            x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 1
            box = TextBox(max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1)),
                          float(score))
            if self.params.min_box_height <= box.y1 - box.y0 <= self.params.max_box_height * height:
                boxes.append(box)
        return sorted(boxes, key=lambda b: (b.y0, b.x0))

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


def _rows(boxes: list[TextBox]) -> list[TextBox]:
    """Boxes on one line joined into one box: of similar height (the smaller at least 0.6 of the
    larger), overlapping by half the smaller one's height and less than a line height apart, so
    a corner bug beside a subtitle line stays apart. The score is the best of the joined boxes."""
    rows: list[TextBox] = []
    for box in sorted(boxes, key=lambda b: b.x0):
        for i, row in enumerate(rows):
            overlap = min(row.y1, box.y1) - max(row.y0, box.y0)
            low, high = sorted((row.y1 - row.y0, box.y1 - box.y0))
            if (low >= 0.6 * high and overlap >= 0.5 * low
                    and box.x0 - row.x1 < high and row.x0 - box.x1 < high):
                rows[i] = TextBox(min(row.x0, box.x0), min(row.y0, box.y0), max(row.x1, box.x1),
                                  max(row.y1, box.y1), max(row.score, box.score))
                break
        else:
            rows.append(box)
    return rows


def region_of(row: TextBox, height: int, width: int, params: TextParams = TextParams()) -> str:
    """Where one row of text sits (REGIONS; "corner" rows are named by `corner_of`)."""
    cx, cy = row.centre
    low, high = cy >= params.subtitle_band_top * height, cy < params.top_band_bottom * height
    side = params.ticker_side * width
    runs_off = row.x0 <= side or row.x1 >= width - side
    if (low or high) and runs_off and row.x1 - row.x0 >= params.ticker_min_width * width:
        return "ticker"
    margin = (1 - params.subtitle_centre_width) / 2
    central = margin * width <= cx <= (1 - margin) * width or row.x0 < width / 2 < row.x1
    if not central and corner_of(row, height, width, params.corner_size):
        return "corner"
    return "bottom_band" if low else "top_band" if high else "centre"


def _iou(a: TextBox, b: TextBox) -> float:
    inter = max(0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0, min(a.y1, b.y1) - max(a.y0, b.y0))
    union = a.area + b.area - inter
    return inter / union if union else 0.0


def text_boxes(boxes: list[list[TextBox]], params: TextParams = TextParams()) -> list[list[TextBox]]:
    """The boxes a clip keeps, per keyframe: every box at or above `box_threshold`, and a weaker
    one (down to `weak_box_threshold`) when a box overlaps it by `weak_min_iou` in at least
    `weak_min_share` of the other keyframes (and in one at least)."""
    others = max(1, len(boxes) - 1)
    kept = []
    for i, frame_boxes in enumerate(boxes):
        keep = []
        for box in frame_boxes:
            if box.score >= params.box_threshold:
                keep.append(box)
            elif box.score >= params.weak_box_threshold and len(boxes) >= params.min_keyframes:
                recurs = sum(any(_iou(box, other) >= params.weak_min_iou for other in boxes[j])
                             for j in range(len(boxes)) if j != i)
                if recurs and recurs / others >= params.weak_min_share:
                    keep.append(box)
        kept.append(keep)
    return kept


def _on_line(a: TextBox, b: TextBox) -> bool:
    """Whether two rows share a line: they overlap by half the lower one's height."""
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    return overlap >= 0.5 * min(a.y1 - a.y0, b.y1 - b.y0)


def _static_share(corner_rows: list[list[TextBox]], frames_shape: list[tuple[int, int]], corner: str,
                  params: TextParams) -> float:
    """Share of keyframes whose text in `corner` overlaps (IoU ≥ weak_min_iou) text in that
    corner of another keyframe."""
    rows = [[r for r in frame if corner_of(r, *shape, params.corner_size) == corner]
            for frame, shape in zip(corner_rows, frames_shape, strict=True)]
    static = sum(any(_iou(r, o) >= params.weak_min_iou
                     for r in frame for j, other in enumerate(rows) if j != i for o in other)
                 for i, frame in enumerate(rows))
    return static / len(rows)


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
    boxes = text_boxes(boxes, params)
    ratios, largest_px, largest_fraction = [], 0, 0.0
    subtitle_frames = 0
    corner_frames = dict.fromkeys(CORNERS, 0)
    region_frames = dict.fromkeys(REGIONS, 0)
    outside_ratio = outside_box = 0.0
    corner_rows: list[list[TextBox]] = []
    ticker_rows: list[TextBox] = []
    for (height, width), frame_boxes in zip(frames_shape, boxes, strict=True):
        area = height * width
        ratios.append(union_area(frame_boxes, height, width) / area if area else 0.0)
        for box in frame_boxes:
            if box.area > largest_px:
                largest_px, largest_fraction = box.area, box.area / area
        rows = [(row, region_of(row, height, width, params)) for row in _rows(frame_boxes)]
        outside = [b for b in frame_boxes if not any(
            r == "bottom_band" and row.x0 <= b.x0 and b.x1 <= row.x1 and row.y0 <= b.y0 and b.y1 <= row.y1
            for row, r in rows)]
        outside_ratio = max(outside_ratio, union_area(outside, height, width) / area if area else 0.0)
        outside_box = max([outside_box, *(b.area / area for b in outside if area)])
        seen = {region for _, region in rows}
        for region in seen:
            region_frames[region] += 1
        subtitle_frames += "bottom_band" in seen
        corner_rows.append([row for row, r in rows if r == "corner"])
        ticker_rows += [row for row, r in rows if r == "ticker"]
    count = len(ratios)
    persistent = count >= params.min_keyframes
    subtitle_share = subtitle_frames / count if count else 0.0
    shares = {r: region_frames[r] / count if count else 0.0 for r in REGIONS}
    if persistent and shares["ticker"] >= params.band_min_share:
        # a crawl's pieces at the frame's side, on the ticker's line, are not a corner bug
        corner_rows = [[c for c in frame if not any(_on_line(c, t) for t in ticker_rows)]
                       for frame in corner_rows]
        region_frames["corner"] = sum(bool(frame) for frame in corner_rows)
    for frame, (height, width) in zip(corner_rows, frames_shape, strict=True):
        for corner in {corner_of(row, height, width, params.corner_size) for row in frame}:
            corner_frames[corner] += 1
    best = max(CORNERS, key=lambda c: corner_frames[c])
    corner_share = corner_frames[best] / count if count else 0.0
    static_share = _static_share(corner_rows, frames_shape, best, params) if count else 0.0
    corner_text = (best if persistent and corner_share > 0 and (corner_share >= params.corner_min_share
                                                                or static_share >= params.corner_static_share)
                   else None)
    subtitle_band = persistent and subtitle_share >= params.subtitle_min_share
    shares["corner"] = region_frames["corner"] / count if count else 0.0
    regions = {r for r in ("top_band", "centre", "ticker")
               if persistent and shares[r] >= params.band_min_share}
    regions |= {"bottom_band"} if subtitle_band else set()
    regions |= {"corner"} if corner_text else set()
    if not regions and any(region_frames.values()):
        regions = {max(REGIONS, key=lambda r: region_frames[r])}  # ties: REGIONS order
    return TextSignals(
        text_ratio=tuple(ratios),
        text_ratio_max=max(ratios, default=0.0),
        text_ratio_mean=float(np.mean(ratios)) if ratios else 0.0,
        largest_box_px=largest_px,
        largest_box_fraction=largest_fraction,
        text_frames=sum(bool(b) for b in boxes),
        subtitle_share=subtitle_share,
        subtitle_band=subtitle_band,
        corner_share=corner_share,
        corner_text=corner_text,
        params=params,
        text_regions=tuple(sorted(regions)),
        region_shares=tuple(shares.items()),
        outside_subtitles_ratio_max=outside_ratio,
        outside_subtitles_box_fraction=outside_box,
    )
