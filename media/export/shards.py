"""WebDataset tar shards written with the standard library: `{key}.mp4` + `{key}.json` per sample.

WebDataset groups a tar's members into samples by the name before the first dot, so keys
must not contain dots or slashes; members of one sample are written next to each other, as
its readers require.
"""

from __future__ import annotations

import io
import itertools
import json
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SHARD_PATTERN = "shard-{index:06d}.tar"


def write_shards(samples: Iterable[tuple[str, bytes, dict[str, Any]]], out_dir: Path,
                 max_samples_per_shard: int = 1000, pattern: str = SHARD_PATTERN) -> list[Path]:
    """Write samples (key, mp4 bytes, JSON-able metadata) into numbered tar shards.

    Shards are filled in order, each with at most `max_samples_per_shard` samples; members
    carry a fixed mtime so identical samples give byte-identical shards. Returns the shard
    paths in order (none for no samples). Raises ValueError for a key WebDataset would split.
    """
    if max_samples_per_shard < 1:
        raise ValueError(f"write_shards: max_samples_per_shard must be >= 1, got {max_samples_per_shard}")
    out_dir.mkdir(parents=True, exist_ok=True)
    shards: list[Path] = []
    seen: set[str] = set()
    iterator = iter(samples)
    while chunk := list(itertools.islice(iterator, max_samples_per_shard)):
        shards.append(out_dir / pattern.format(index=len(shards)))
        with tarfile.open(shards[-1], "w", format=tarfile.USTAR_FORMAT) as tar:
            for key, video, meta in chunk:
                if not key or "." in key or "/" in key or key in seen:
                    raise ValueError(f"write_shards: key {key!r} must be unique, non-empty, "
                                     "without '.' or '/'")
                seen.add(key)
                _add(tar, f"{key}.mp4", video)
                _add(tar, f"{key}.json", json.dumps(meta, sort_keys=True, ensure_ascii=False).encode())
    return shards


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))
