"""Technical quality of a clip from its stored keyframes and per-frame statistics (no decoding).

Each keyframe (RGB uint8, short side <= 384) yields sharpness, exposure, contrast,
colourfulness, noise and blockiness; the clip keeps their mean over keyframes (averaging a few
frames beats scoring every frame, per the HF video-dataset-scripts) plus summaries of the
per-frame statistics, and a combined `technical_quality` in [0, 1]. Every anchor and threshold
lives in `QualityParams`, so the policy file can mirror it; nothing here decides a route.

Combined score: each component is mapped to [0, 1] by a logistic through two anchors (worst
-> 0.05, best -> 0.95; sharpness on a log scale), then the components are joined by a weighted
geometric mean, so one bad component (noise, blocking, a black frame) pulls the clip down and
is not bought back by the others.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import cv2
import numpy as np

STATS_COLUMNS = ("luma_mean", "luma_std", "sharpness")
EXPOSURE_LABELS = ("under", "normal", "over")
COMPONENTS = ("sharpness", "exposure", "contrast", "colourfulness", "noise", "blockiness")

# Immerkær's noise kernel: the difference of two Laplacians, which cancels image structure
# that is locally linear and keeps (mostly) the noise.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
# White noise of variance s^2 gives the 3x3 Laplacian (0 1 0 / 1 -4 1 / 0 1 0) variance 20 s^2.
_LAPLACIAN_NOISE_GAIN = 20.0


@dataclass(frozen=True)
class QualityParams:
    """Anchors and thresholds of technical quality; luma values are 8-bit (0..255).

    An anchor pair is (worst, best): the component score is 0.05 at `worst` and 0.95 at
    `best`, in either direction. Construction fails with the field's name when a value is out
    of range.
    """

    # Exposure: pixels at or below / at or above these luma levels count as clipped.
    dark_level: int = 16
    bright_level: int = 239
    # exposure_label: "under" when the dark-clipped share or the mean luma crosses these.
    under_share: float = 0.5
    under_luma: float = 40.0
    over_share: float = 0.4
    over_luma: float = 215.0
    # Sharpness: frames larger than this short side are shrunk to it first (never enlarged).
    sharpness_side: int = 384
    # Added to the luma variance that normalises sharpness, so flat frames do not look sharp.
    sharpness_floor: float = 100.0
    # Noise: the Immerkær estimate skips this share of the strongest-gradient pixels (edges).
    noise_edge_share: float = 0.1
    # Blockiness: the grid of the block-transform codec (JPEG, MPEG-2/4, H.264 base block).
    block_size: int = 8
    # A 144 px analysis frame is blurry below this Laplacian variance / (luma variance +
    # sharpness_floor); blurred footage measured 0.001-0.045, its originals 0.03-1.1.
    blurry_frame_norm: float = 0.02
    sharpness_anchors: tuple[float, float] = (0.002, 0.1)  # sharpness_norm (log scale)
    clipped_anchors: tuple[float, float] = (0.8, 0.2)  # under_exposed + over_exposed
    luma_anchors: tuple[float, float] = (100.0, 40.0)  # |luma_mean - 128|
    contrast_anchors: tuple[float, float] = (0.04, 0.18)  # RMS contrast
    colourfulness_anchors: tuple[float, float] = (0.0, 30.0)  # Hasler-Suesstrunk M
    noise_anchors: tuple[float, float] = (8.0, 2.0)  # noise sigma in luma levels
    blockiness_anchors: tuple[float, float] = (2.0, 1.1)  # boundary / interior step ratio
    # Weights of the geometric mean; 0 leaves a component out of technical_quality.
    # Colourfulness counts little: black-and-white footage is not a defect.
    weight_sharpness: float = 1.0
    weight_exposure: float = 1.0
    weight_contrast: float = 1.0
    weight_colourfulness: float = 0.25
    weight_noise: float = 1.0
    weight_blockiness: float = 1.0

    def __post_init__(self) -> None:
        def fail(name: str, why: str) -> None:
            raise ValueError(f"QualityParams.{name} = {getattr(self, name)!r}: {why}")

        for name in ("dark_level", "bright_level"):
            if not 0 <= getattr(self, name) <= 255:
                fail(name, "must be a luma level in 0..255")
        for name in ("under_share", "over_share", "noise_edge_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                fail(name, "must be a share in 0..1")
        for name in ("sharpness_side", "block_size"):
            if getattr(self, name) < 2:
                fail(name, "must be at least 2")
        if self.sharpness_floor <= 0:
            fail("sharpness_floor", "must be positive")
        for f in fields(self):
            if f.name.endswith("_anchors"):
                pair = getattr(self, f.name)
                if len(pair) != 2 or pair[0] == pair[1]:
                    fail(f.name, "must be two different numbers (worst, best)")
            if f.name.startswith("weight_") and getattr(self, f.name) < 0:
                fail(f.name, "must not be negative")
        if min(self.sharpness_anchors) <= 0:
            fail("sharpness_anchors", "must be positive (they are compared on a log scale)")
        if sum(self.weights().values()) <= 0:
            fail("weight_sharpness", "at least one weight_* must be positive")

    def weights(self) -> dict[str, float]:
        """Component name -> weight in technical_quality."""
        return {name: float(getattr(self, f"weight_{name}")) for name in COMPONENTS}


@dataclass(frozen=True)
class KeyframeQuality:
    """Raw technical measures of one keyframe."""

    sharpness: float  # variance of the Laplacian of the luma at keyframe size
    sharpness_norm: float  # detail above noise / luma variance at <= sharpness_side (see below)
    under_exposed: float  # share of luma pixels <= dark_level
    over_exposed: float  # share of luma pixels >= bright_level
    luma_mean: float  # 0..255
    contrast: float  # RMS contrast: luma std / 255
    colourfulness: float  # Hasler–Süsstrunk M (0 for grey; ~15 moderate, ~45 highly colourful)
    noise: float  # noise standard deviation in luma levels (Immerkær, edges excluded)
    blockiness: float  # mean |difference| across block boundaries / inside blocks (1 = none)


@dataclass(frozen=True)
class QualitySignals:
    """A clip's technical quality: keyframe means, frame-statistics summaries, combined score.

    Keyframe fields are means over the clip's keyframes. `frame_*` fields summarise the
    per-frame statistics over the whole clip (144 px analysis frames; NaN when a clip has no
    frame rows). `scores` holds each component mapped to [0, 1]; `technical_quality` is their
    weighted geometric mean.
    """

    sharpness: float
    sharpness_norm: float
    under_exposed: float
    over_exposed: float
    luma_mean: float
    contrast: float
    colourfulness: float
    noise: float
    blockiness: float
    frame_sharpness_median: float  # Laplacian variance of the 144 px analysis frames
    blurry_frame_share: float  # frames below blurry_frame_norm (flat frames count as blurry)
    dark_frame_share: float  # frames whose mean luma <= under_luma
    bright_frame_share: float  # frames whose mean luma >= over_luma
    luma_flicker: float  # mean |change| of frame mean luma between consecutive frames
    exposure_label: str
    technical_quality: float
    scores: dict[str, float]
    keyframes: tuple[KeyframeQuality, ...]
    params: QualityParams = field(repr=False)

    def row(self) -> dict[str, float | str]:
        """The flat columns for the scored table (component scores prefixed `quality_`)."""
        skip = {"scores", "keyframes", "params"}
        out: dict[str, float | str] = {f.name: getattr(self, f.name) for f in fields(self)
                                       if f.name not in skip}
        out.update({f"quality_{name}": value for name, value in self.scores.items()})
        return out


def luma_of(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma (uint8), the same weights the decoder's Y plane uses."""
    if rgb.ndim == 2:
        return rgb
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def laplacian_variance(luma: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian: the frame-statistics sharpness measure."""
    return float(cv2.meanStdDev(cv2.Laplacian(luma, cv2.CV_16S))[1][0, 0] ** 2)


def normalised_sharpness(luma: np.ndarray, params: QualityParams, noise: float) -> float:
    """Detail above the noise floor, per unit of contrast, at a common scale.

    Laplacian variance minus what noise of σ = `noise` contributes to it (20σ² for the 3x3
    kernel), over (luma variance + floor). Frames larger than `sharpness_side` are shrunk to it
    first (never enlarged: upscaling only adds blur), so sizes compare; dividing by the luma
    variance lets a dim or hazy but focused frame read as sharp; removing the noise share stops
    grain from passing for detail.
    """
    h, w = luma.shape
    scale = params.sharpness_side / min(h, w)
    if scale < 1 - 1e-3:
        luma = cv2.resize(luma, (max(1, round(w * scale)), max(1, round(h * scale))),
                          interpolation=cv2.INTER_AREA)
        noise = noise_sigma(luma, params.noise_edge_share)  # shrinking averages noise away
    variance = float(cv2.meanStdDev(luma)[1][0, 0] ** 2)
    # Block edges of a heavily compressed frame are not detail: leave out the rows and
    # columns next to the codec grid (a shifted grid just makes this a 56% sample).
    laplacian = cv2.Laplacian(luma, cv2.CV_16S)
    rows = (np.arange(laplacian.shape[0]) + 1) % params.block_size > 1
    cols = (np.arange(laplacian.shape[1]) + 1) % params.block_size > 1
    interior = laplacian[np.ix_(rows, cols)] if rows.any() and cols.any() else laplacian
    lap_variance = float(cv2.meanStdDev(interior)[1][0, 0] ** 2)
    detail = max(lap_variance - _LAPLACIAN_NOISE_GAIN * noise**2, 0.0)
    return detail / (variance + params.sharpness_floor)


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness M over the opponent axes rg and yb."""
    r, g, b = cv2.split(rgb.astype(np.int16))
    rg_mean, rg_std = cv2.meanStdDev(r - g)
    yb2_mean, yb2_std = cv2.meanStdDev(r + g - 2 * b)  # 2·yb, kept integer; halved below
    return float(math.hypot(rg_std[0, 0], yb2_std[0, 0] / 2)
                 + 0.3 * math.hypot(rg_mean[0, 0], yb2_mean[0, 0] / 2))


def noise_sigma(luma: np.ndarray, edge_share: float) -> float:
    """Immerkær (1996) fast noise estimate, σ = sqrt(π/2)·mean|I * N| / 6, away from edges.

    Unbiased for white Gaussian noise on flat content. Texture and edges leak into the
    kernel's response; skipping the pixels with the strongest Sobel gradient (the top
    `edge_share`) keeps the estimate near the true noise level on real frames.
    """
    if min(luma.shape) < 3:
        return 0.0
    response = np.abs(cv2.filter2D(luma.astype(np.float32), -1, _NOISE_KERNEL))[1:-1, 1:-1]
    mask = None
    if edge_share > 0:
        gradient = cv2.add(np.abs(cv2.Sobel(luma, cv2.CV_16S, 1, 0)),
                           np.abs(cv2.Sobel(luma, cv2.CV_16S, 0, 1)))[1:-1, 1:-1]
        # Exact quantile of small integers from a histogram: much cheaper than np.quantile.
        counts = np.cumsum(np.bincount(gradient.ravel()))
        limit = int(np.searchsorted(counts, (1.0 - edge_share) * gradient.size))
        mask = (gradient <= limit).astype(np.uint8)
    return float(math.sqrt(math.pi / 2) * cv2.mean(response, mask=mask)[0] / 6.0)


def blockiness(luma: np.ndarray, block: int) -> float:
    """Mean absolute step across block boundaries over the mean step inside blocks.

    Heavy block-transform compression quantises each block on its own: steps at the grid
    lines grow while detail inside blocks is flattened, so the ratio rises above 1. Measured
    on the keyframe's own grid (horizontal and vertical steps pooled).
    """
    img = luma.astype(np.int16)
    steps_x = np.abs(np.diff(img, axis=1))  # step between column j and j+1
    steps_y = np.abs(np.diff(img, axis=0))
    on_x = (np.arange(steps_x.shape[1]) % block) == block - 1
    on_y = (np.arange(steps_y.shape[0]) % block) == block - 1
    boundary = steps_x[:, on_x].sum() + steps_y[on_y, :].sum()
    n_boundary = steps_x[:, on_x].size + steps_y[on_y, :].size
    inside = steps_x.sum() + steps_y.sum() - boundary
    n_inside = steps_x.size + steps_y.size - n_boundary
    if n_boundary == 0 or n_inside == 0:
        return 1.0
    # The +1 keeps flat frames (no steps anywhere) at a ratio of 1 rather than 0/0.
    return float((boundary / n_boundary + 1.0) / (inside / n_inside + 1.0))


def keyframe_quality(rgb: np.ndarray, params: QualityParams) -> KeyframeQuality:
    """Technical measures of one RGB (or grey) uint8 keyframe."""
    if rgb.dtype != np.uint8 or rgb.ndim not in (2, 3) or min(rgb.shape[:2]) < 3:
        raise ValueError(f"keyframe must be a uint8 HxWx3 image of at least 3x3, got "
                         f"{rgb.dtype} {rgb.shape}")
    luma = luma_of(rgb)
    mean, std = cv2.meanStdDev(luma)
    hist = np.bincount(luma.ravel(), minlength=256)
    noise = noise_sigma(luma, params.noise_edge_share)
    return KeyframeQuality(
        sharpness=laplacian_variance(luma),
        sharpness_norm=normalised_sharpness(luma, params, noise),
        under_exposed=float(hist[: params.dark_level + 1].sum() / luma.size),
        over_exposed=float(hist[params.bright_level :].sum() / luma.size),
        luma_mean=float(mean[0, 0]),
        contrast=float(std[0, 0]) / 255.0,
        colourfulness=colourfulness(rgb) if rgb.ndim == 3 else 0.0,
        noise=noise,
        blockiness=blockiness(luma, params.block_size),
    )


def soft_ramp(value: float, worst: float, best: float) -> float:
    """A logistic through (worst, 0.05) and (best, 0.95); either direction, strictly monotone.

    Strict (never flat) so that any further degradation still lowers the score, yet values
    beyond the anchors change it little.
    """
    slope = 2.0 * math.log(19.0) / (best - worst)
    z = slope * (value - (worst + best) / 2.0)
    return float(1.0 / (1.0 + math.exp(-z))) if z > -700 else 0.0


def component_scores(q: KeyframeQuality, params: QualityParams) -> dict[str, float]:
    """Each technical component mapped to [0, 1] (1 = good) by the ramps in `params`."""
    lo, hi = params.sharpness_anchors
    clipped = q.under_exposed + q.over_exposed
    return {
        "sharpness": soft_ramp(math.log(max(q.sharpness_norm, 1e-9)), math.log(lo), math.log(hi)),
        # A product, not a min, so clipping and a shifted mean each count wherever they lie.
        "exposure": (soft_ramp(clipped, *params.clipped_anchors)
                     * soft_ramp(abs(q.luma_mean - 128.0), *params.luma_anchors)),
        "contrast": soft_ramp(q.contrast, *params.contrast_anchors),
        "colourfulness": soft_ramp(q.colourfulness, *params.colourfulness_anchors),
        "noise": soft_ramp(q.noise, *params.noise_anchors),
        "blockiness": soft_ramp(q.blockiness, *params.blockiness_anchors),
    }


def combine(scores: dict[str, float], params: QualityParams) -> float:
    """Weighted geometric mean of component scores (each floored at 0.01, so never -inf)."""
    weights = params.weights()
    log_sum = sum(w * math.log(max(scores[name], 0.01)) for name, w in weights.items() if w > 0)
    return float(math.exp(log_sum / sum(weights.values())))


def exposure_label(under: float, over: float, luma_mean: float, params: QualityParams) -> str:
    """"under", "over" or "normal" from the clipped shares and the mean luma."""
    if under >= params.under_share or luma_mean <= params.under_luma:
        return "under"
    if over >= params.over_share or luma_mean >= params.over_luma:
        return "over"
    return "normal"


def _mean_keyframe(per_frame: list[KeyframeQuality]) -> KeyframeQuality:
    values = [asdict(q) for q in per_frame]
    return KeyframeQuality(**{name: float(np.mean([v[name] for v in values])) for name in values[0]})


def _frame_summaries(stats: dict[str, np.ndarray], params: QualityParams) -> dict[str, float]:
    missing = [c for c in STATS_COLUMNS if c not in stats]
    if missing:
        raise ValueError(f"frame statistics lack column(s) {missing}; expected {list(STATS_COLUMNS)}")
    luma = np.asarray(stats["luma_mean"], dtype=np.float64)
    sharp = np.asarray(stats["sharpness"], dtype=np.float64)
    sharp_norm = sharp / (np.asarray(stats["luma_std"], dtype=np.float64) ** 2 + params.sharpness_floor)
    if len(luma) == 0:
        nan = float("nan")
        return dict(frame_sharpness_median=nan, blurry_frame_share=nan, dark_frame_share=nan,
                    bright_frame_share=nan, luma_flicker=nan)
    return dict(
        frame_sharpness_median=float(np.median(sharp)),
        blurry_frame_share=float(np.mean(sharp_norm < params.blurry_frame_norm)),
        dark_frame_share=float(np.mean(luma <= params.under_luma)),
        bright_frame_share=float(np.mean(luma >= params.over_luma)),
        luma_flicker=float(np.mean(np.abs(np.diff(luma)))) if len(luma) > 1 else 0.0,
    )


def quality_signals(keyframes: list[np.ndarray], stats: dict[str, np.ndarray],
                    params: QualityParams | None = None) -> QualitySignals:
    """Technical quality of one clip from its keyframes and its per-frame statistics.

    `stats` maps column name to one value per analysis frame of the clip (luma_mean,
    luma_std, sharpness; other columns are ignored). Raises ValueError when there are no
    keyframes or a column is missing. Deterministic: the same inputs give the same floats.
    """
    params = params or QualityParams()
    if not keyframes:
        raise ValueError("quality_signals needs at least one keyframe")
    per_frame = tuple(keyframe_quality(rgb, params) for rgb in keyframes)
    mean = _mean_keyframe(list(per_frame))
    scores = component_scores(mean, params)
    return QualitySignals(
        **asdict(mean),
        **_frame_summaries(stats, params),
        exposure_label=exposure_label(mean.under_exposed, mean.over_exposed, mean.luma_mean, params),
        technical_quality=combine(scores, params),
        scores=scores,
        keyframes=per_frame,
        params=params,
    )
