"""Content addressing: a video is identified by the bytes it holds, not by its name."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

_CHUNK = 1 << 20
_PHASH_SIDE = 32
_PHASH_BAND = 8


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def video_id_for(sha256: str) -> str:
    """Deterministic video id: the same bytes get the same id in every source and every run.

    128 bits of the content hash keep ids short in paths while collisions stay negligible.
    """
    return "v" + sha256[:32]


def phash(rgb: np.ndarray) -> int:
    """64-bit DCT perceptual hash of an RGB (or grey) uint8 image.

    Grey, area-resized to 32x32, 2-D DCT; bit k (row-major over the top-left 8x8 block) is
    set when that coefficient exceeds the median of the block's 63 AC coefficients. The DC
    term is left out of the median because it carries brightness, not structure. Equal
    images hash equal; re-encoding and rescaling move few bits.
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    small = cv2.resize(grey, (_PHASH_SIDE, _PHASH_SIDE), interpolation=cv2.INTER_AREA)
    band = cv2.dct(small.astype(np.float32))[:_PHASH_BAND, :_PHASH_BAND].ravel()
    bits = band > np.median(band[1:])
    return int(np.packbits(bits).view(">u8")[0])


def phashes(rgbs: Sequence[np.ndarray]) -> np.ndarray:
    """(N,) uint64 perceptual hashes, one per image."""
    return np.fromiter((phash(rgb) for rgb in rgbs), dtype=np.uint64, count=len(rgbs))


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return (int(a) ^ int(b)).bit_count()


def hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) uint8 pairwise Hamming distances between uint64 hash arrays."""
    return np.bitwise_count(np.asarray(a, np.uint64)[:, None] ^ np.asarray(b, np.uint64)[None, :])
