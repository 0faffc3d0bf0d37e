"""LAION aesthetic backend: the real loading and inference code, on a tiny CLIP the test builds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from media.signals.aesthetic import AestheticScorer, laion_mlp, load_aesthetic_scorer  # noqa: E402

PROJECTION = 16


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny CLIP vision tower + its image processor, saved like a real one."""
    path = tmp_path_factory.mktemp("clip")
    config = transformers.CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, patch_size=8, projection_dim=PROJECTION)
    torch.manual_seed(0)
    transformers.CLIPVisionModelWithProjection(config).save_pretrained(path)
    processor = transformers.CLIPImageProcessor(size={"shortest_edge": 32},
                                                crop_size={"height": 32, "width": 32})
    processor.save_pretrained(path)
    return path


def _mlp_file(path: Path, input_dim: int, seed: int = 1) -> Path:
    torch.manual_seed(seed)
    torch.save(laion_mlp(input_dim).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def mlp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _mlp_file(tmp_path_factory.mktemp("mlp") / "tiny-linearMSE.pth", PROJECTION)


def _images(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    sizes = [(48, 64), (64, 48), (40, 40), (90, 160), (33, 57), (64, 64), (120, 80)]
    return [rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(n)]


def _manual_scores(clip_dir: Path, mlp_path: Path, images: list[np.ndarray]) -> np.ndarray:
    """The LAION recipe written out: CLIP image_embeds -> L2 normalise -> five linear layers."""
    from PIL import Image

    processor = transformers.AutoImageProcessor.from_pretrained(clip_dir, local_files_only=True)
    clip = transformers.CLIPVisionModelWithProjection.from_pretrained(clip_dir, local_files_only=True)
    pixels = processor(images=[Image.fromarray(x) for x in images], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        x = clip.eval()(pixel_values=pixels).image_embeds.numpy().astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    state = torch.load(mlp_path, weights_only=True)
    for i in (0, 2, 4, 6, 7):  # Dropout layers are the identity at inference; there is no activation
        x = x @ state[f"layers.{i}.weight"].numpy().T + state[f"layers.{i}.bias"].numpy()
    return x[:, 0]


def test_scores_are_finite_deterministic_and_match_the_manual_forward_pass(clip_dir, mlp_path):
    images = _images(5)
    scorer = AestheticScorer(clip_dir, mlp_path, device="cpu", batch_size=2)
    scores = scorer.score(images)
    assert scores.shape == (5,) and scores.dtype == np.float32
    assert np.all(np.isfinite(scores))
    assert np.array_equal(scores, scorer.score(images))
    assert len(set(np.round(scores, 6))) == 5  # different images, different scores
    np.testing.assert_allclose(scores, _manual_scores(clip_dir, mlp_path, images), rtol=1e-4, atol=1e-5)
    assert scorer.score([]).shape == (0,)


def test_batched_scores_equal_one_by_one(clip_dir, mlp_path):
    images = _images(7)
    batched = AestheticScorer(clip_dir, mlp_path, device="cpu", batch_size=4).score(images)
    single = AestheticScorer(clip_dir, mlp_path, device="cpu", batch_size=1)
    one_by_one = np.concatenate([single.score([x]) for x in images])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-6)


def test_features_are_unit_length(clip_dir, mlp_path):
    features = AestheticScorer(clip_dir, mlp_path, device="cpu").features(_images(3))
    assert features.shape == (3, PROJECTION)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)


def test_safetensors_weights_give_the_same_scores(clip_dir, mlp_path, tmp_path):
    from safetensors.torch import save_file

    st_path = tmp_path / "mlp.safetensors"
    save_file(torch.load(mlp_path, weights_only=True), str(st_path))
    images = _images(3)
    np.testing.assert_array_equal(AestheticScorer(clip_dir, st_path, device="cpu").score(images),
                                  AestheticScorer(clip_dir, mlp_path, device="cpu").score(images))


def test_mlp_for_another_clip_width_is_refused_with_both_dims(clip_dir, tmp_path):
    wrong = _mlp_file(tmp_path / "vit-b-mlp.pth", 24)
    with pytest.raises(ValueError, match=r"takes 24-d features .* projects to 16-d"):
        AestheticScorer(clip_dir, wrong, device="cpu")


def test_missing_or_malformed_files_are_named(clip_dir, mlp_path, tmp_path):
    with pytest.raises(FileNotFoundError, match="CLIP model directory not found"):
        AestheticScorer(tmp_path / "no-clip", mlp_path, device="cpu")
    with pytest.raises(FileNotFoundError, match="aesthetic MLP weights not found"):
        AestheticScorer(clip_dir, tmp_path / "no-mlp.pth", device="cpu")
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(1, PROJECTION)}, other)
    with pytest.raises(ValueError, match="missing keys"):
        AestheticScorer(clip_dir, other, device="cpu")
    with pytest.raises(ValueError, match="RGB uint8"):
        AestheticScorer(clip_dir, mlp_path, device="cpu").score([np.zeros((8, 8), np.uint8)])


def test_the_scorer_is_loaded_once_per_process(clip_dir, mlp_path):
    first = load_aesthetic_scorer(str(clip_dir), str(mlp_path), "cpu", 8)
    assert load_aesthetic_scorer(str(clip_dir), str(mlp_path), "cpu", 8) is first
    assert first.version.startswith("laion-mlp:")


def test_module_imports_without_the_models_extra_and_says_how_to_get_it(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['transformers'] = None\n"
        "import media.signals.aesthetic as a\n"
        "try:\n"
        "    a.AestheticScorer('clip', 'mlp.pth')\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         check=True)
    assert "uv sync --extra models" in out.stdout
