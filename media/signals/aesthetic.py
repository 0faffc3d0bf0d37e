"""LAION aesthetic score: CLIP image features -> L2 normalise -> the LAION MLP (needs `--extra models`).

The MLP is the one from LAION's improved-aesthetic-predictor (`sac+logos+ava1-l14-linearMSE.pth`,
trained on CLIP ViT-L/14 features): an `nn.Sequential` named `layers` of Linear(d, 1024),
Dropout, Linear(1024, 128), Dropout, Linear(128, 64), Dropout, Linear(64, 16), Linear(16, 1),
where d is the CLIP projection dim (768 for ViT-L/14). Scores land roughly on 1..10.

No weights ship in a package: CLIP comes from a local directory written by `save_pretrained`
(or a hub id, only when `allow_download=True`), the MLP from a .pth/.pt state dict or a
.safetensors file. torch and transformers are imported when a scorer is built, so this module
imports without them.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODELS_EXTRA_HINT = "install the models extra: uv sync --extra models"
# Layer indices of LAION's nn.Sequential that hold weights (the others are Dropout).
MLP_LINEAR_LAYERS = (0, 2, 4, 6, 7)
MLP_WIDTHS = (1024, 128, 64, 16, 1)


def _import_models() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise RuntimeError(f"the aesthetic backend needs torch and transformers: {MODELS_EXTRA_HINT}"
                           ) from exc
    return torch, transformers


def laion_mlp(input_dim: int) -> Any:
    """An untrained MLP with the LAION layout (state-dict keys layers.0 ... layers.7)."""
    torch, _ = _import_models()
    nn = torch.nn

    class AestheticMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(input_dim, 1024), nn.Dropout(0.2),
                nn.Linear(1024, 128), nn.Dropout(0.2),
                nn.Linear(128, 64), nn.Dropout(0.1),
                nn.Linear(64, 16),
                nn.Linear(16, 1),
            )

        def forward(self, x: Any) -> Any:
            return self.layers(x)

    return AestheticMLP()


def load_mlp_state(path: Path) -> dict[str, Any]:
    """The MLP's tensors from a .pth/.pt (torch.load, weights only) or .safetensors file."""
    torch, _ = _import_models()
    if not path.is_file():
        raise FileNotFoundError(f"aesthetic MLP weights not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict (layers.0.weight ...), got {type(state).__name__}")
    return state


def _mlp_input_dim(state: dict[str, Any], path: Path) -> int:
    expected = {f"layers.{i}.{p}" for i in MLP_LINEAR_LAYERS for p in ("weight", "bias")}
    missing = sorted(expected - set(state))
    if missing:
        raise ValueError(f"{path}: not a LAION aesthetic MLP state dict; missing keys {missing} "
                         f"(found {sorted(state)[:6]})")
    return int(state["layers.0.weight"].shape[1])


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class AestheticScorer:
    """CLIP vision tower + LAION MLP, loaded once; `score` is batched and deterministic.

    On CUDA the CLIP tower runs in bfloat16 and the (tiny) MLP in float32 on float32
    features; on CPU everything is float32. `version` identifies the weights (MLP file
    digest and CLIP config), for content-addressed caching of scores.
    """

    def __init__(self, clip_path: str | Path, mlp_path: str | Path, device: str = "auto",
                 batch_size: int = 32, allow_download: bool = False) -> None:
        torch, transformers = _import_models()
        if batch_size < 1:
            raise ValueError(f"AestheticScorer batch_size must be >= 1, got {batch_size}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise ValueError(f"AestheticScorer device must be 'cpu', 'cuda' or 'auto', got {device!r}")
        self.device = device
        self.batch_size = batch_size
        self.dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32

        clip_source = Path(clip_path)
        local = clip_source.exists()
        if not local and not allow_download:
            raise FileNotFoundError(f"CLIP model directory not found: {clip_path} (a directory written "
                                    "by save_pretrained; pass allow_download=True to use a hub id)")
        if local and not (clip_source / "preprocessor_config.json").is_file():
            raise FileNotFoundError(f"{clip_source}: no preprocessor_config.json; save the "
                                    "CLIPImageProcessor next to the model (processor.save_pretrained)")
        source = str(clip_source) if local else str(clip_path)
        # AutoImageProcessor picks the CLIP processor backend that is installed (the PIL one
        # without torchvision) from preprocessor_config.json.
        self.processor = transformers.AutoImageProcessor.from_pretrained(source, local_files_only=local)
        self.clip = transformers.CLIPVisionModelWithProjection.from_pretrained(
            source, local_files_only=local, dtype=self.dtype).to(device).eval()
        clip_dim = int(self.clip.config.projection_dim)

        mlp_file = Path(mlp_path)
        state = load_mlp_state(mlp_file)
        mlp_dim = _mlp_input_dim(state, mlp_file)
        if mlp_dim != clip_dim:
            raise ValueError(f"{mlp_file}: the aesthetic MLP takes {mlp_dim}-d features but the CLIP "
                             f"model at {clip_path} projects to {clip_dim}-d; pair the MLP with the "
                             "CLIP it was trained on (ViT-L/14: 768)")
        self.mlp = laion_mlp(mlp_dim)
        try:
            self.mlp.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(f"{mlp_file}: layer widths differ from the LAION layout "
                             f"{MLP_WIDTHS}: {exc}") from exc
        self.mlp = self.mlp.to(device).eval()
        config = repr(sorted(self.clip.config.to_dict().items())).encode()
        self.version = (f"laion-mlp:{_file_digest(mlp_file)[:16]}"
                        f"+clip:{hashlib.sha256(config).hexdigest()[:16]}")

    def features(self, rgbs: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised CLIP image embeddings (float32, one row per image)."""
        torch, _ = _import_models()
        out = []
        for start in range(0, len(rgbs), self.batch_size):
            pixels = self._pixels(rgbs[start : start + self.batch_size])
            with torch.inference_mode():
                embeds = self.clip(pixel_values=pixels).image_embeds.float()
                out.append(torch.nn.functional.normalize(embeds, dim=-1).cpu().numpy())
        width = int(self.clip.config.projection_dim)
        return np.concatenate(out) if out else np.zeros((0, width), np.float32)

    def score(self, rgbs: Sequence[np.ndarray]) -> np.ndarray:
        """One aesthetic score per RGB uint8 image (float32 array of len(rgbs))."""
        torch, _ = _import_models()
        features = self.features(rgbs)
        if len(features) == 0:
            return np.zeros(0, np.float32)
        with torch.inference_mode():
            scores = self.mlp(torch.from_numpy(features).to(self.device))
        return scores[:, 0].float().cpu().numpy()

    def _pixels(self, rgbs: Sequence[np.ndarray]) -> Any:
        from PIL import Image

        for rgb in rgbs:
            if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
                raise ValueError(f"aesthetic score expects RGB uint8 HxWx3 images, got {rgb.dtype} "
                                 f"{rgb.shape}")
        # PIL images leave no doubt about channel order, whatever the image size.
        batch = self.processor(images=[Image.fromarray(rgb) for rgb in rgbs], return_tensors="pt")
        return batch["pixel_values"].to(self.device, dtype=self.dtype)


@functools.lru_cache(maxsize=4)
def load_aesthetic_scorer(clip_path: str, mlp_path: str, device: str = "auto",
                          batch_size: int = 32) -> AestheticScorer:
    """One scorer per (paths, device, batch size) per process: load models once per worker."""
    return AestheticScorer(clip_path, mlp_path, device=device, batch_size=batch_size)
