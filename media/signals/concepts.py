"""Concept clusters: k-means over clip embeddings, so later stages can rebalance by concept."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

from media.signals.nsfw import l2_normalise

_MINIBATCH_FROM = 20_000  # items; full k-means above this costs minutes on two cores


@dataclass(frozen=True)
class ConceptParams:
    k: int = 64  # clusters wanted; fewer when there are fewer distinct clips
    seed: int = 0


def fit_concepts(embeddings: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """(k', D) unit centroids, k' = min(k, distinct rows); the same inputs and seed give
    the same centroids. Rows should be unit vectors (k-means on them approximates cosine)."""
    data = np.asarray(embeddings, np.float32)
    if data.ndim != 2:
        raise ValueError(f"fit_concepts: embeddings must be (N, D), got shape {data.shape}")
    k = min(k, len(np.unique(data, axis=0))) if len(data) else 0
    if k < 1:
        return np.empty((0, data.shape[1]), np.float32)
    if len(data) >= _MINIBATCH_FROM:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=3)
    return l2_normalise(model.fit(data).cluster_centers_)


def assign_concepts(embeddings: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster id per row as int32, cosine to that centroid as float32); nearest by cosine."""
    data = np.asarray(embeddings, np.float32)
    if len(centroids) == 0:
        raise ValueError("assign_concepts: no centroids (fit_concepts on an empty set?)")
    cosine = data @ np.asarray(centroids, np.float32).T
    ids = np.argmax(cosine, axis=1).astype(np.int32)
    return ids, cosine[np.arange(len(data)), ids].astype(np.float32)
