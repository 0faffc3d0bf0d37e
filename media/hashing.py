"""Content addressing: a video is identified by the bytes it holds, not by its name."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


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
