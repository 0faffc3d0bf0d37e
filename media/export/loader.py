"""Training-side loader of a WebDataset export: weighted, bucketed, sharded across ranks, resumable.

    dataset = BucketedVideoDataset("exports/release-20261121-1", batch_size=8, seed=0)
    for batch in dataset: batch["video"]  # uint8 (batch, frames, height, width, 3), one bucket

Each epoch is a plan fixed by (seed, epoch): samples drawn by weight, grouped into batches of
one bucket (same size and frame count, so they stack), batches dealt round-robin to ranks and,
within a rank, to DataLoader workers. A position in that plan is the whole resume state, so a
restarted job skips what it saw without decoding it. With torch installed the class is a
`torch.utils.data.IterableDataset` (use `DataLoader(dataset, batch_size=None, ...)`); without
torch it is a plain iterable. Either way the code path is the same.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

try:  # optional: torch is not in the default install
    from torch.utils.data import IterableDataset as _Base
    from torch.utils.data import get_worker_info as _worker_info
except ImportError:  # pragma: no cover - exercised where torch is absent
    _Base = object  # type: ignore[assignment,misc]

    def _worker_info() -> Any:
        return None


@dataclass(frozen=True)
class Member:
    """One sample's place in its shard: byte ranges of the MP4 and the JSON members."""
    key: str
    bucket: str
    shard: Path
    mp4: tuple[int, int]
    meta: dict[str, Any]


def scan_export(root: Path) -> tuple[dict[str, Any], list[Member]]:
    """index.json and every sample of a WebDataset export (tar headers and JSON members only)."""
    index = json.loads((root / "index.json").read_text())
    if index.get("format") != "webdataset":
        raise ValueError(f"{root}: a {index.get('format')!r} export; the loader reads webdataset exports")
    members: list[Member] = []
    for bucket, entry in sorted(index["buckets"].items()):
        for shard in entry["shards"]:
            members += _scan_shard(root / shard["path"], bucket)
    return index, members


def _scan_shard(path: Path, bucket: str) -> list[Member]:
    found: dict[str, dict[str, Any]] = {}
    with tarfile.open(path) as tar:
        for info in tar:
            key, _, ext = info.name.partition(".")
            found.setdefault(key, {})[ext] = (info.offset_data, info.size)
    with path.open("rb") as raw:
        out = []
        for key, parts in found.items():
            start, size = parts["json"]
            raw.seek(start)
            out.append(Member(key, bucket, path, parts["mp4"], json.loads(raw.read(size))))
    return out


def decode_mp4(data: bytes, out: np.ndarray | None = None) -> np.ndarray:
    """Every frame of an MP4 as uint8 RGB, (frames, height, width, 3); into `out` when given
    (a slot of the batch: no second copy), which must then hold exactly that many frames."""
    # PyAV's default threading: parallelism comes from DataLoader workers and ranks, and frame
    # threads on top of them oversubscribe the cores (measured no faster here, bench/export_load.py).
    with av.open(io.BytesIO(data)) as container:
        frames = container.decode(video=0)
        if out is None:
            return np.stack([f.to_ndarray(format="rgb24") for f in frames])
        count = 0
        for count, frame in enumerate(frames, 1):
            image = frame.to_ndarray(format="rgb24")
            if count > len(out) or image.shape != out.shape[1:]:
                raise ValueError(f"decoded frame {count} of shape {image.shape}, expected {out.shape[1:]}")
            out[count - 1] = image
        if count != len(out):
            raise ValueError(f"decoded {count} frames, expected {len(out)}")
        return out


def plan_epoch(members: list[Member], batch_size: int, seed: int, epoch: int, replacement: bool = False,
               num_samples: int | None = None, drop_last: bool = False) -> list[list[int]]:
    """Batches (lists of member indices) of one bucket each, in the order they are served.

    Without replacement every sample comes once, ordered by weighted random keys
    (Efraimidis-Spirakis: heavier samples tend to come earlier); with replacement `num_samples`
    draws are made in proportion to weight, so the weight is how often a sample is seen.
    A bucket's batch is emitted when it fills, so buckets interleave as the draw does.
    """
    rng = np.random.default_rng([seed, epoch])
    weights = np.array([max(float(m.meta.get("weight", 1.0)), 0.0) for m in members])
    if len(members) == 0 or weights.sum() == 0:
        return []
    if replacement:
        order = rng.choice(len(members), size=num_samples or len(members), p=weights / weights.sum())
    else:
        keys = np.where(weights > 0, rng.random(len(members)) ** (1.0 / np.maximum(weights, 1e-12)), -1.0)
        order = np.argsort(-keys, kind="stable")[: num_samples or int((weights > 0).sum())]
    pending: dict[str, list[int]] = {}
    batches: list[list[int]] = []
    for i in order.tolist():
        group = pending.setdefault(members[i].bucket, [])
        group.append(i)
        if len(group) == batch_size:
            batches.append(pending.pop(members[i].bucket))
    if not drop_last:
        batches += [group for _, group in sorted(pending.items())]
    return batches


class BucketedVideoDataset(_Base):
    """Batches of decoded clips from one bucket at a time; see the module docstring."""

    def __init__(self, root: str | Path, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 epoch: int = 0, start: int = 0, replacement: bool = False, num_samples: int | None = None,
                 drop_last: bool = False) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"loader: rank {rank} is not in [0, {world_size})")
        if batch_size < 1:
            raise ValueError(f"loader: batch_size must be >= 1, got {batch_size}")
        self.root = Path(root)
        self.index, self.members = scan_export(self.root)
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.epoch, self.position = epoch, start
        self.replacement, self.num_samples, self.drop_last = replacement, num_samples, drop_last

    def rank_batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch. With drop_last every rank gets the same
        number (what distributed training needs to stay in step)."""
        batches = plan_epoch(self.members, self.batch_size, self.seed, self.epoch, self.replacement,
                             self.num_samples, self.drop_last)
        if self.drop_last:
            batches = batches[: len(batches) - len(batches) % self.world_size]
        return batches[self.rank::self.world_size]

    def __len__(self) -> int:
        return len(self.rank_batches())

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.position = epoch, 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed,
                "rank": self.rank, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume: same seed and ranks, next batch after `position` (a batch's own "position")."""
        if (state["seed"], state["world_size"]) != (self.seed, self.world_size):
            raise ValueError("loader: the state was saved with another seed or world size")
        self.epoch, self.position = state["epoch"], state["position"]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = _worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        batches = self.rank_batches()
        # Round-robin over workers keeps DataLoader's in-order output equal to the plan's order.
        for at in range(self.position + worker, len(batches), workers):
            batch = self._load(batches[at])
            batch["position"] = at + 1
            if info is None:
                self.position = at + 1
            yield batch

    def _load(self, indices: list[int]) -> dict[str, Any]:
        members = [self.members[i] for i in indices]
        shape = members[0].meta["bucket"]
        videos = np.empty((len(members), shape["frames"], shape["height"], shape["width"], 3), np.uint8)
        for slot, m in zip(videos, members, strict=True):
            with m.shard.open("rb") as raw:
                raw.seek(m.mp4[0])
                data = raw.read(m.mp4[1])
            try:  # a batch must stack; a file off its bucket is an export bug, said loudly
                decode_mp4(data, out=slot)
            except ValueError as exc:
                raise ValueError(f"loader: sample {m.key} ({m.bucket}): {exc}") from exc
        return {"video": videos, "caption": [m.meta["caption"] for m in members],
                "weight": np.array([m.meta["weight"] for m in members], np.float32),
                "bucket": members[0].bucket, "key": [m.key for m in members],
                "meta": [m.meta for m in members]}
