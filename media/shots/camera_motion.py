"""Camera motion: a global similarity model fitted to dense optical flow, per frame and per clip.

Per frame (`GlobalMotion`, fed during the one decode): the luma frame is shrunk by a whole
factor to about `FlowParams.short_side` pixels, DIS optical flow (OpenCV, ultrafast preset)
runs between the previous and the current frame, and a similarity model (translation, scale,
rotation about the frame centre) of the background is fitted by least squares, started from
the median translation and refitted on the vectors it explains, to flow vectors sampled on a
grid of textured pixels (flow on flat pixels is a guess).

Conventions (per-frame values describe how the picture CONTENT moves, image y points down):

* ``cam_dx``: content shift right, in frame widths per frame; ``cam_dy``: shift down, in frame
  heights per frame. A camera that pans LEFT makes content move RIGHT (dx > 0); a camera that
  tilts UP makes content move DOWN (dy > 0).
* ``cam_zoom``: scale - 1 per frame; content that grows (zoom IN) gives zoom > 0.
* ``cam_rot``: rotation of the content in radians per frame, positive clockwise on screen.
* ``cam_residual``: share (0..1) of textured flow vectors that the background model does not
  explain: independent subject motion, parallax, or a model that does not fit at all.
* ``cam_texture``: share (0..1) of the frame's pixels with enough gradient to carry flow.

The first frame of a video, the first frame after a size change, and frames with too few
textured pixels to fit a model get NaN motion (not 0: "not measured" is not "no motion");
``cam_texture`` is always measured.

Per clip (`classify_camera`) speeds are reported in CAMERA terms, matching the labels:
``pan_speed`` > 0 pans right, ``tilt_speed`` > 0 tilts up, ``zoom_speed`` > 0 zooms in.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np

from media.decode.frames import shrink_by_whole_factors

COLUMNS = ("cam_dx", "cam_dy", "cam_zoom", "cam_rot", "cam_residual", "cam_texture")
_MIN_FLOW_SIDE = 16  # px: below this DIS has no pyramid to work with
LABELS = ("static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out",
          "handheld", "complex")


@dataclass(frozen=True)
class FlowParams:
    """How the per-frame motion is measured (changing any of these changes stored analyses)."""

    short_side: int = 60  # flow frame short side, approximate: reached by a whole shrink factor
    finest_scale: int = 1  # DIS pyramid level where flow stops refining (0 = full flow size)
    grid_step: int = 3  # px between sampled flow vectors at flow size
    border: int = 3  # px at the frame edge left out: content enters and leaves there
    texture_gradient: int = 48  # |Sobel x| + |Sobel y| (3x3: 8 per grey level/px): 48 ~ 6 levels/px
    min_points: int = 24  # fewer textured flow vectors than this: no model (NaN)
    inlier_px: float = 0.4  # residual at flow size, per frame, under which a vector counts as explained
    frame_step: int = 1  # flow from every n-th frame to the next; the frames between share it equally


@dataclass(frozen=True)
class FrameMotion:
    """One frame's global motion (module docstring: units and signs)."""

    dx: float
    dy: float
    zoom: float
    rot: float
    residual: float
    texture: float

    def as_columns(self) -> dict[str, float]:
        return dict(zip(COLUMNS, (self.dx, self.dy, self.zoom, self.rot, self.residual,
                                  self.texture), strict=True))


class GlobalMotion:
    """Fed consecutive luma frames (uint8 HxW, any size); settles each frame's `FrameMotion`, in order.

    Flow runs from one frame to the one `FlowParams.frame_step` frames later, and every frame
    of that step gets an equal share of the motion (a steady camera moves the same amount
    each frame; shake faster than the step is smoothed). The last frames of a video, and the
    frames before a size change, are settled one frame at a time. `add` returns the frames
    its frame settled (none while a step is open); `finish` settles the rest.
    """

    def __init__(self, params: FlowParams | None = None) -> None:
        self.params = params or FlowParams()
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._flow.setFinestScale(self.params.finest_scale)
        self._step = max(1, self.params.frame_step)
        # Per-frame inlier distance, scaled to the step: a subject moving n px a frame moves
        # step * n px between the flow's frames.
        self._step_params = replace(self.params, inlier_px=self.params.inlier_px * self._step)
        self._anchor: np.ndarray | None = None  # flow frame of the last settled frame
        self._source_shape: tuple[int, ...] | None = None
        self._open: list[tuple[np.ndarray, np.ndarray, float]] = []  # (flow frame, mask, texture)

    def add(self, luma: np.ndarray) -> list[FrameMotion]:
        small = flow_frame(luma, self.params.short_side)
        texture_mask = _textured(small, self.params.texture_gradient)
        texture = float(np.count_nonzero(texture_mask)) / texture_mask.size
        if self._source_shape != luma.shape or min(small.shape) < _MIN_FLOW_SIDE:
            settled = self.finish()
            self._anchor, self._source_shape = small, luma.shape
            if min(small.shape) < _MIN_FLOW_SIDE:
                self._anchor = None
            return [*settled, _unmeasured(texture)]
        if self._anchor is None:
            self._anchor = small
            return [_unmeasured(texture)]
        self._open.append((small, texture_mask, texture))
        if len(self._open) < self._step:
            return []
        step_motion = self._measure(self._anchor, small, texture_mask, texture, self._step_params)
        settled = [_share(step_motion, self._step, frame_texture) for _, _, frame_texture in self._open]
        self._anchor, self._open = small, []
        return settled

    def finish(self) -> list[FrameMotion]:
        """Settle the frames of an unfinished step, one frame at a time."""
        settled = []
        for small, texture_mask, texture in self._open:
            settled.append(self._measure(self._anchor, small, texture_mask, texture, self.params))
            self._anchor = small
        self._open = []
        return settled

    def _measure(self, previous: np.ndarray | None, current: np.ndarray, texture_mask: np.ndarray,
                 texture: float, params: FlowParams) -> FrameMotion:
        if previous is None:
            return _unmeasured(texture)
        return _fit_similarity(self._flow.calc(previous, current, None), texture_mask, texture, params)


def _share(motion: FrameMotion, frames: int, texture: float) -> FrameMotion:
    """One frame's equal share of `motion` measured over `frames` frames."""
    if frames == 1 or math.isnan(motion.dx):
        return replace(motion, texture=texture)
    return FrameMotion(dx=motion.dx / frames, dy=motion.dy / frames,
                       zoom=(1.0 + motion.zoom) ** (1.0 / frames) - 1.0, rot=motion.rot / frames,
                       residual=motion.residual, texture=texture)


def global_motion(previous: np.ndarray, current: np.ndarray, params: FlowParams | None = None
                  ) -> FrameMotion:
    """The motion from `previous` to `current` (two luma frames of one size)."""
    estimator = GlobalMotion(replace(params or FlowParams(), frame_step=1))
    estimator.add(previous)
    return estimator.add(current)[-1]


def flow_frame(luma: np.ndarray, short_side: int) -> np.ndarray:
    """`luma` shrunk by the whole factor bringing its short side nearest `short_side`.

    A whole factor keeps OpenCV's area resize on its fast path (an arbitrary scale costs more
    than the flow itself) and the image centre where the model expects it.
    """
    factor = max(1, round(min(luma.shape[:2]) / short_side))
    return shrink_by_whole_factors(luma, factor, factor)


def _textured(small: np.ndarray, threshold: int) -> np.ndarray:
    gx, gy = cv2.spatialGradient(small)  # both 3x3 Sobel derivatives in one pass
    return cv2.add(cv2.convertScaleAbs(gx), cv2.convertScaleAbs(gy)) >= threshold  # saturates at 255


def _unmeasured(texture: float) -> FrameMotion:
    return FrameMotion(math.nan, math.nan, math.nan, math.nan, math.nan, texture)


def _fit_similarity(flow: np.ndarray, texture_mask: np.ndarray, texture: float, params: FlowParams
                    ) -> FrameMotion:
    """Robust least squares for u = a*x - b*y + tx, v = b*x + a*y + ty (x, y from the centre).

    Then scale = |1 + a + ib| and rotation = arg(1 + a + ib). The model is the BACKGROUND's
    (the camera's), not the mean of all motion: it starts from the median translation of the
    textured vectors (robust while most of them belong to the background, however fast the
    subject moves), keeps the vectors near it, and refits on those, twice, each time keeping
    the vectors within `_INLIER_SPREAD` times the typical residual of the last inliers. A
    plain least-squares start (before issue 17) was dragged towards a large moving subject,
    so the cut that followed kept the subject and dropped the background, and the frame read
    as mostly unexplained ("complex") or moved with the subject. The closed-form solution
    (about the centroid) keeps the fit cheaper than the flow: every sum it needs comes from
    one 4x4 product of the centred (x, y, u, v) rows; residuals stay squared (no sqrt).
    """
    height, width = texture_mask.shape
    b, s = params.border, params.grid_step
    keep = texture_mask[b : height - b : s, b : width - b : s]
    count = np.count_nonzero(keep)
    if count < params.min_points:
        return _unmeasured(texture)
    grid_x, grid_y = _grid(texture_mask.shape, b, s)
    points = np.empty((4, count))
    points[0], points[1] = grid_x[keep], grid_y[keep]
    points[2:] = flow[b : height - b : s, b : width - b : s][keep].T
    x, y, u, v = points
    floor, spread2 = params.inlier_px**2, _INLIER_SPREAD**2
    du, dv = u - _median(u), v - _median(v)
    squared = du * du + dv * dv  # squared residual of the median translation
    used = squared <= max(floor, spread2 * _median(squared))
    model = None
    for round_ in range(2):
        if np.count_nonzero(used) < params.min_points:
            break  # too few vectors agree with the start: keep the last model, if any
        fitted = _least_squares(points[:, used])
        if fitted is None:  # every vector at one point: no model
            break
        model = fitted
        a, bb, tx, ty = model
        du, dv = a * x - bb * y + tx - u, bb * x + a * y + ty - v
        squared = du * du + dv * dv
        if round_ == 1:
            break  # the refit is final: its inlier set would decide nothing more
        next_used = squared <= max(floor, spread2 * _median(squared[used]))
        if np.array_equal(next_used, used):
            break  # the same inliers: the refit would be the same fit
        used = next_used
    if model is None:
        return _unmeasured(texture)
    a, bb, tx, ty = model
    unexplained = float(np.count_nonzero(squared > floor)) / count
    return FrameMotion(dx=tx / width, dy=ty / height, zoom=math.hypot(1.0 + a, bb) - 1.0,
                       rot=math.atan2(bb, 1.0 + a), residual=unexplained, texture=texture)


_INLIER_SPREAD = 2.5  # inliers: residual under this many times the typical (median) one


def _median(values: np.ndarray) -> float:
    """The upper median (np.partition: cheaper than np.median on a few hundred values)."""
    middle = len(values) // 2
    return float(np.partition(values, middle)[middle])


def _least_squares(points: np.ndarray) -> tuple[float, float, float, float] | None:
    """(a, b, tx, ty) of the similarity closest to the (x, y, u, v) rows; None without spread."""
    mean = points.mean(axis=1)
    centred = points - mean[:, None]
    sums = centred @ centred.T  # rows x, y, u, v
    spread = sums[0, 0] + sums[1, 1]
    if spread <= 0.0:
        return None
    a = float(sums[0, 2] + sums[1, 3]) / spread
    bb = float(sums[0, 3] - sums[1, 2]) / spread
    return (a, bb, float(mean[2] - a * mean[0] + bb * mean[1]),
            float(mean[3] - bb * mean[0] - a * mean[1]))


@functools.lru_cache(maxsize=8)
def _grid(shape: tuple[int, int], border: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y (from the frame centre) of the sampled flow vectors, one value per grid cell."""
    height, width = shape
    ys = np.arange(border, height - border, step, dtype=np.float64) - (height - 1) / 2.0
    xs = np.arange(border, width - border, step, dtype=np.float64) - (width - 1) / 2.0
    grid_x, grid_y = np.meshgrid(xs, ys)
    grid_x.flags.writeable = grid_y.flags.writeable = False
    return grid_x, grid_y


@dataclass(frozen=True)
class CameraParams:
    """Every threshold of the per-clip camera label (mirror these in the policy)."""

    min_texture: float = 0.05  # frames with less textured area are not used
    min_measured_share: float = 0.5  # fewer usable frames than this share: unmeasured (static, conf 0)
    # rms of the camera's slow, non-steady motion (frames/s: the smoothed per-frame translation
    # about its mean) under which, with jitter under jitter_max, the camera is static. Issue 17,
    # calibration: a static camera over hand-held footage sways up to 0.065 (single_face), and
    # every shaking camera is already handheld by its jitter (0.0033 and up on stills), so
    # 0.04 only turned static shots into handheld; 0.1 is 1.5x the largest static sway.
    static_speed: float = 0.1
    pan_min_speed: float = 0.04  # mean horizontal speed (frame widths/s) for a pan label
    tilt_min_speed: float = 0.04  # mean vertical speed (frame heights/s) for a tilt label
    zoom_min_speed: float = 0.03  # mean log-scale change per second for a zoom label
    jitter_max: float = 0.0025  # high-frequency translation (frames/frame) above which: handheld
    jitter_window_s: float = 0.5  # smoothing window separating jitter from intended motion
    complex_residual: float = 0.4  # median unexplained share above which: complex
    # Frames whose background model leaves more than this share of the flow unexplained do not
    # set the camera's speeds (a subject over about half the textured picture can win the fit
    # and lend it its own motion), unless fewer than min_trusted_share of the usable frames are
    # under it: then every usable frame does (a clip that is all subject has nothing better).
    trusted_residual: float = 0.3
    min_trusted_share: float = 0.5

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class CameraMotion:
    """A clip's camera label and the raw figures behind it.

    `confidence` is 0 when the motion could not be measured (flat or too short clip; label
    then reads "static" and speeds are NaN), 0.5 at the deciding threshold, approaching 1 far
    past it, and scaled by the share of frames measured.
    """

    label: str
    confidence: float
    pan_speed: float  # frame widths/s, > 0 pans right
    tilt_speed: float  # frame heights/s, > 0 tilts up
    zoom_speed: float  # log-scale per second, > 0 zooms in
    roll_speed: float  # radians/s, content turning clockwise
    jitter: float  # rms high-frequency translation, frames per frame
    residual: float  # median share of flow the global model leaves unexplained
    measured_share: float  # share of the clip's frame steps with a usable model
    sway: float = math.nan  # rms slow non-steady translation, frames/s (classify_camera)

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


def classify_camera(columns: dict[str, np.ndarray], fps: float, params: CameraParams | None = None
                    ) -> CameraMotion:
    """Label one clip from its slice of the per-frame columns (`COLUMNS`).

    The slice's first row is ignored: its values measure the step from the frame before the
    clip, which after a cut belongs to another shot. `fps` turns per-frame into per-second.
    The speeds come from the frames whose model explains most of the flow
    (`CameraParams.trusted_residual`); jitter and sway from every usable frame (they need the
    frames' order), and "complex" from the median unexplained share of every usable frame.
    """
    params, fps = params or CameraParams(), float(fps)
    dx, dy, zoom, rot, residual, texture = (np.asarray(columns[c], dtype=np.float64)[1:] for c in COLUMNS)
    usable = np.isfinite(dx) & (texture >= params.min_texture)
    share = float(np.count_nonzero(usable)) / len(usable) if len(usable) else 0.0
    if np.count_nonzero(usable) < 2 or share < params.min_measured_share:
        nan = math.nan
        return CameraMotion("static", 0.0, nan, nan, nan, nan, nan, nan, share)
    dx, dy, zoom, rot, residual = dx[usable], dy[usable], zoom[usable], rot[usable], residual[usable]
    trusted = residual <= params.trusted_residual
    if np.count_nonzero(trusted) < max(2.0, params.min_trusted_share * len(residual)):
        trusted = np.ones(len(residual), dtype=bool)
    pan, tilt = -float(dx[trusted].mean()) * fps, float(dy[trusted].mean()) * fps
    # DIS stops refining one pyramid level above the flow frame: zoom reads 5-20 % low.
    zoom_rate, roll = float(np.log1p(zoom[trusted]).mean()) * fps, float(rot[trusted].mean()) * fps
    window = max(3, round(params.jitter_window_s * fps) | 1)
    # Two bands of the translation's spectrum: jitter above 1/jitter_window_s (shake, and the
    # estimator's own frame-to-frame noise, white and small), sway below it about the steady
    # mean (a hand's drift). A static camera is quiet in both; the frame-to-frame noise alone
    # must not make a static shot "move" (it did when one rms of the raw motion decided).
    jitter = _jitter(dx, dy, window)
    sway = _sway(dx, dy, window) * fps
    unexplained = float(np.median(residual))

    def result(label: str, ratio: float) -> CameraMotion:
        confidence = share * min(1.0, max(0.0, 1.0 - 0.5 / ratio)) if ratio > 0 else 0.0
        confidence = float(confidence)
        return CameraMotion(label, confidence, pan, tilt, zoom_rate, roll, jitter, unexplained, share, sway)

    if unexplained >= params.complex_residual:
        return result("complex", unexplained / params.complex_residual)
    strengths = {
        "pan_right" if pan > 0 else "pan_left": abs(pan) / params.pan_min_speed,
        "tilt_up" if tilt > 0 else "tilt_down": abs(tilt) / params.tilt_min_speed,
        "zoom_in" if zoom_rate > 0 else "zoom_out": abs(zoom_rate) / params.zoom_min_speed,
    }
    label, strength = max(strengths.items(), key=lambda item: item[1])
    if strength >= 1.0:
        return result(label, strength)
    if jitter >= params.jitter_max:
        return result("handheld", jitter / params.jitter_max)
    if sway >= params.static_speed:  # moving, with no direction and no shake: a hand's sway
        return result("handheld", sway / params.static_speed)
    quiet = max(jitter / params.jitter_max, sway / params.static_speed)
    return result("static", 1.0 / max(quiet, 1e-12))


def _moving_average(v: np.ndarray, window: int) -> np.ndarray:
    """`v` smoothed over `window` frames, the same length as `v` (edges reflected)."""
    padded = np.pad(v, window // 2, mode="reflect" if len(v) > window // 2 else "edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def _sway(dx: np.ndarray, dy: np.ndarray, window: int) -> float:
    """Rms of the per-frame translation's moving average about its mean: slow motion that is
    neither a steady pan nor shake."""
    if len(dx) < 3:
        return 0.0
    return math.sqrt(sum(float(np.mean((_moving_average(v, window) - v.mean()) ** 2)) for v in (dx, dy)))


def _jitter(dx: np.ndarray, dy: np.ndarray, window: int) -> float:
    """Rms of the per-frame translation minus its moving average: shake, not intended motion."""
    if len(dx) < 3:
        return 0.0
    return math.sqrt(sum(float(np.mean((v - _moving_average(v, window)) ** 2)) for v in (dx, dy)))
