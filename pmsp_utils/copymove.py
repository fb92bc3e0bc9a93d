"""Copy-move detection: find the region that appears twice. Explained in 07_copy_move.

A copy-moved region comes from the same photo, with the same camera, noise and compression history as the rest, so
ELA has little to see. What gives it away is that its content appears twice. This module is a training-free dense-field
detector in the line of Cozzolino, Poggi and Verdoliva (2015), in five steps, each a function:

1. :func:`patch_features`: for every pixel, Zernike moments of the disc of radius :data:`RADIUS` around it, the
   magnitudes (unchanged by a rotation of the patch) and the two real m = 0 moments, with the patch's mean left out
   and its contrast divided out (unchanged by a brightness or contrast change). Flat patches (sky, walls) are gated
   out by their standard deviation.
2. :func:`match`: for every pixel, the most similar patch at least ``min_offset`` pixels away: PatchMatch (Barnes et
   al. 2009) in vectorised NumPy, its propagation by jump flooding (neighbours 1, 4 and 16 pixels away along each axis,
   so a good offset crosses a region in a few passes) and its random search at halving radii.
3. :func:`regular_matches`: keep a match only where the offset field is locally regular (its median over a window
   agrees with it), its distance is small, and the pixel it points to points back.
4. :func:`duplicated_pairs`: group the kept pixels by offset into pairs of regions, drop small ones, drop a pair
   whose pattern repeats one more step along its offset (a periodic texture: bricks, tiles, fences), close small
   holes, and score each pair. A second pass groups the kept pixels left over by place, for copies that were rotated.
5. A cross-scale pass (:data:`SCALES`): :func:`match` again, each pixel's disc against the discs of the same image
   1.375 times larger, for copies that were enlarged or shrunk; its kept pixels become pairs as in the second pass.

Then :func:`which_is_copy` decides which region of a pair is the pasted copy (CASIA's masks and most benchmarks'
mark only the copy) from evidence the two share nothing else of: the network's map, when given, and their ELA (same
content, so a difference comes from their compression history); when the evidence is weak it says so and both are
marked. :func:`detect` runs it all; :func:`fuse` combines its result with the network's map (the rule is in its
docstring).

Scale: matching works on at most :data:`WORKING_PIXELS` pixels (a larger photo is shrunk for matching only, and the
regions are brought back to its size): a copied region is still duplicated at the smaller scale, and memory stays
bounded on a 12-megapixel photo. Above :data:`GRID_PIXELS` pixels the matching runs on every second pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

#: Radius of the patch each feature describes (a disc of 2 * 8 + 1 = 17 pixels across).
RADIUS = 8
#: Zernike orders (n, m) used: every n <= 5 with n - m even, but (0, 0), the patch's mean.
ORDERS = tuple((n, m) for n in range(1, 6) for m in range(n % 2, n + 1, 2))
#: A patch whose standard deviation is below this (grey levels, 0..255) is flat: it is never matched.
FLAT_STD = 4.0
#: ... and one whose fine detail (the RMS of the image minus its 3x3 mean, over the patch) is below this: smooth
#: gradients (a sky, a lit wall) have a large standard deviation but no detail, and every one of their patches
#: looks like every other.
FLAT_DETAIL = 1.5
#: A match must be this many times closer than the patch a few pixels beside its match (a copy's content is
#: distinctive; in fur, foliage or a gradient, a shifted target matches nearly as well).
DISTINCT_RATIO = 1.8
#: Matching works on at most this many pixels: larger photos are shrunk for matching only.
WORKING_PIXELS = 1_000_000
#: Above this many working pixels, matching runs on every second pixel (its offsets are then spread to the rest).
GRID_PIXELS = 400_000
#: {jump: spans}: at each propagation jump (of 16, 4 and 1 pixels) :func:`match` also tries each neighbour's offset
#: continued linearly, for copies that were rotated, scaled or mirrored, with the change per jump measured over each
#: span of jumps (1: from the pixel one jump beyond the neighbour, ``2 * near - far``; 4: from the pixel four jumps
#: beyond, a quarter of the change, rounded). On the generated copy-moves of CASIA v1's validation photos (the matcher
#: alone) pairs were found in 13 of 33 with {4: (1,), 1: (1,)} instead of 9 without, for 7% more time. Wider settings
#: find more of a planted copy rotated 45 degrees ({16: (1,), 4: (1, 2), 1: (1, 4)}: 59% of its pixels kept instead of
#: 13%, and the copy found), but on validation they moved as many images down as up, for a fifth more time, so they
#: are not the default (benchmarks/RESULTS.md, 2026-12-07 night).
EXTRAPOLATED = {4: (1,), 1: (1,)}
#: The smallest distance, in pixels, between a patch and its match (a patch must not match its own neighbourhood).
MIN_OFFSET = 24
#: Feature distance (Euclidean, features normalised by contrast) under which a match counts.
MATCH_DISTANCE = 0.35
#: A pair whose regions together cover less than this share of the image is dropped: on CASIA v1 validation, the
#: pairs found in untouched photos were mostly smaller (eyes, letters, leaves), the copies mostly larger.
MIN_AREA = 0.01
#: ... and less than this many working pixels in all.
MIN_PIXELS = 200
#: A pair whose pattern repeats one more step along its offset nearly as well as it matches is a periodic texture.
PERIODIC_RATIO = 1.6
#: The two regions' pixels, one brought onto the other by the affine map fitted to the offset field, must correlate
#: at least this much (a copy, even rotated, scaled and re-saved, correlates above 0.95; lattices and other repeated
#: structures seen at another angle fall below 0.85).
ALIGNED_CORRELATION = 0.90
#: Score at or above which a pair is reported (an aligned correlation of 0.94; chosen on CASIA v1 validation,
#: benchmarks/RESULTS.md).
PAIR_THRESHOLD = 0.5
#: Whether ``pmsp localize`` and ``pmsp evaluate`` run the matcher unless told (``--copy-move``/``--no-copy-move``): on,
#: since with the default model it won on validation under the selection rule, +0.042 (95% paired interval +0.027 to
#: +0.057, with the cross-scale pass; +0.041 before it, +0.036 before the second pass, +0.031 before the copy was told as
#: :data:`NETWORK_MARGIN` says), CASIA splicings within noise (benchmarks/RESULTS.md, issue 36).
ON_BY_DEFAULT = True
#: Telling the copy from its source (:func:`which_is_copy`). Measured on CASIA v1's training part (219 copy-move pairs
#: the matcher found, the test part unread): the sign of the two regions' ELA log-ratio named the copy for 54% of them,
#: little better than a coin, since a CASIA copy and its source share one compression history; the network's
#: difference named it for 96% there (images it was trained on) and for 13 of 16 on validation, where ELA named 9.
#: So the network decides where its mean probability in the two regions differs by :data:`NETWORK_MARGIN` or more;
#: otherwise the ELA log-ratio decides when it is :data:`ELA_MARGIN` or more in size (a copy saved at another quality
#: before it was pasted); otherwise both regions are marked. On CASIA v1 validation this took the fused map's
#: copy-moves from 0.627 to 0.669 per-image F1 (+0.042, 95% paired interval +0.000 to +0.096) and from 11.5% to 7.7%
#: missed, against the sum of the two terms; generated copy-moves and all splicings unchanged (benchmarks/RESULTS.md).
NETWORK_MARGIN = 0.05
ELA_MARGIN = 0.3
#: The measurement behind that order (benchmarks/copymove_study.py, default model, the test part unread): on the pairs the
#: matcher found among CASIA v1 copy-moves, {part: (pairs, named right by the sign of the ELA term, by the network's)}.
EVIDENCE_MEASURED = {"training part (images the network was trained on)": (219, 118, 211), "validation part": (16, 9, 13)}


# --- 1. features ------------------------------------------------------------------------


def luminance(image: np.ndarray) -> np.ndarray:
    """float32 (H, W) grey levels 0..255 of a uint8 RGB or grey image (ITU-R 601 weights, as JPEG's Y)."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.float32)
    rgb = image[..., :3].astype(np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)


def zernike_kernels(radius: int = RADIUS, orders=ORDERS) -> dict[tuple[int, int], np.ndarray]:
    """{(n, m): complex64 (2r+1, 2r+1) kernel}: the Zernike polynomial V_nm conjugated, on the unit disc sampled at
    the pixels, zero outside, each with its mean over the disc removed (so a constant patch gives 0)."""
    axis = np.arange(-radius, radius + 1, dtype=np.float64) / radius
    x, y = np.meshgrid(axis, axis)
    rho, theta = np.hypot(x, y), np.arctan2(y, x)
    disc = rho <= 1.0
    kernels = {}
    for n, m in orders:
        radial = np.zeros_like(rho)
        for k in range((n - m) // 2 + 1):
            radial += ((-1) ** k * math.factorial(n - k) / (math.factorial(k) * math.factorial((n + m) // 2 - k)
                       * math.factorial((n - m) // 2 - k))) * rho ** (n - 2 * k)
        kernel = (n + 1) / math.pi * radial * np.exp(-1j * m * theta) * disc
        kernel[disc] -= kernel[disc].mean()
        kernels[(n, m)] = (kernel / disc.sum()).astype(np.complex64)
    return kernels


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    return uniform_filter(values, size=2 * radius + 1, mode="reflect")


def patch_features(grey: np.ndarray, radius: int = RADIUS, orders=ORDERS) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 (H, W, F), textured bool (H, W)) of a grey image.

    Features: per order (n, m), |Z_nm| for m > 0 (a rotation of the patch only turns the phase) and Z_n0 for m = 0
    (real, and unchanged by a rotation), each divided by the patch's standard deviation (a contrast change cancels;
    the kernels have zero mean, so a brightness change does too). ``textured``: the patch's standard deviation is at
    least :data:`FLAT_STD`, and the whole disc lies inside the image.
    """
    from scipy.signal import fftconvolve

    grey = np.asarray(grey, np.float32)
    height, width = grey.shape
    mean = _box_mean(grey, radius)
    std = np.sqrt(np.maximum(_box_mean(grey * grey, radius) - mean * mean, 0.0))
    scale = 1.0 / np.maximum(std, FLAT_STD)
    features = np.empty((height, width, len(orders)), np.float32)
    for index, (order, kernel) in enumerate(zernike_kernels(radius, orders).items()):
        # correlation with the conjugated polynomial = convolution with the kernel flipped
        response = fftconvolve(grey, kernel[::-1, ::-1], mode="same")
        features[..., index] = (np.abs(response) if order[1] else response.real) * scale
    detail = grey - _box_mean(grey, 1)
    detail = np.sqrt(np.maximum(_box_mean(detail * detail, radius), 0.0))
    textured = (std >= FLAT_STD) & (detail >= FLAT_DETAIL)
    textured[:radius], textured[height - radius :], textured[:, :radius], textured[:, width - radius :] = False, False, False, False
    return features, textured


# --- 2. matching ------------------------------------------------------------------------


class _Field:
    """The textured pixels of a feature image as flat arrays, for :func:`match`'s many distance evaluations."""

    def __init__(self, features: np.ndarray, textured: np.ndarray, min_offset: int,
                 target: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.height, self.width = textured.shape
        self.index = np.flatnonzero(textured.ravel())
        self.rows, self.columns = np.divmod(self.index, self.width)
        self.own = features.reshape(-1, features.shape[-1])[self.index]
        target_features, target_textured = target if target is not None else (features, textured)
        self.flat = target_features.reshape(-1, target_features.shape[-1])
        self.textured = target_textured.ravel()
        self.min_offset = min_offset
        self.position = np.full(self.height * self.width, -1, np.int64)  # each pixel's place among the textured, or -1
        self.position[self.index] = np.arange(len(self.index))

    def neighbours(self, shift: int, axis: int) -> np.ndarray:
        """(V,) the place among the textured pixels of each one's neighbour ``shift`` pixels back along ``axis``
        (wrapping round the border), -1 where that neighbour is flat."""
        if axis == 0:
            source = ((self.rows - shift) % self.height) * self.width + self.columns
        else:
            source = self.rows * self.width + (self.columns - shift) % self.width
        return self.position[source]

    def cost(self, offsets: np.ndarray) -> np.ndarray:
        """(V,) feature distances of the textured pixels to the pixels ``offsets`` (V, 2) away (inf where that is
        outside the image, flat, or nearer than ``min_offset``)."""
        target_rows, target_columns = self.rows + offsets[:, 0], self.columns + offsets[:, 1]
        inside = (target_rows >= 0) & (target_rows < self.height) & (target_columns >= 0) & (target_columns < self.width)
        target = np.where(inside, target_rows * self.width + target_columns, 0)
        difference = self.own - np.take(self.flat, target, axis=0)  # np.take: three times faster than flat[target]
        distance = np.sqrt(np.einsum("ij,ij->i", difference, difference))
        far = offsets[:, 0] * offsets[:, 0] + offsets[:, 1] * offsets[:, 1] >= self.min_offset * self.min_offset
        distance[~(inside & far & np.take(self.textured, target))] = np.inf
        return distance


def match(features: np.ndarray, textured: np.ndarray, *, min_offset: int = MIN_OFFSET, iterations: int = 4,
          seed: int = 0, target: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int32 (H, W, 2), distance float32 (H, W)): for every pixel, the offset (rows, columns) to the most
    similar textured patch at least ``min_offset`` away that PatchMatch found, and its feature distance (inf where
    none was found, flat pixels included). Deterministic for a ``seed``.

    Propagation tries each neighbour's offset as it is (right for a translated copy, whose offsets are all one) and,
    continued linearly (:data:`EXTRAPOLATED`: ``near + (near - far) / span``, with ``far`` the pixel ``span`` jumps
    beyond the neighbour): over a rotated, scaled or mirrored copy the offsets change linearly across the region, so a
    neighbour's offset as it is misses by 2 sin(angle / 2) pixels per pixel of jump for a rotation (a third of a pixel at
    20 degrees; two for a mirror), and the continued one is right to within a pixel (offsets are whole pixels).
    A flat neighbour offers the offset (0, 0), which is never taken.

    ``target``: (features, textured) of the same image computed over a larger disc: each pixel's patch is then matched
    against the larger patches (the cross-scale pass of :func:`detect`, for copies that were scaled)."""
    rng = np.random.default_rng(seed)
    height, width = textured.shape
    field = _Field(features, textured, min_offset, target)
    count = len(field.index)
    mine = np.stack([rng.integers(0, height, count) - field.rows, rng.integers(0, width, count) - field.columns], axis=1)
    distance = field.cost(mine)

    def consider(candidate):
        trial = field.cost(candidate)
        better = trial < distance
        mine[better], distance[better] = candidate[better], trial[better]

    def offsets_of(places):  # the offsets found so far at these places, (0, 0) for a flat neighbour
        offsets = np.take(mine, places, axis=0)
        offsets[places < 0] = 0
        return offsets

    # jump flooding: each pixel takes a neighbour's offset, from near and far, along each axis; the neighbours of every
    # jump and direction (and the pixels beyond them that a continued offset is measured from) are found once
    jumps = [step for step in (16, 4, 1) if step < max(height, width)]
    plan = [(field.neighbours(sign * step, axis), [(span, field.neighbours((span + 1) * sign * step, axis)) for span in EXTRAPOLATED.get(step, ())])
            for step in jumps for axis, sign in ((0, 1), (0, -1), (1, 1), (1, -1))]
    for _ in range(iterations):
        for near, beyond in plan:
            consider(offsets_of(near))
            for span, further in beyond:  # the neighbour's offset continued linearly (rotated, scaled, mirrored)
                offsets = offsets_of(near)
                change = offsets - offsets_of(further)
                consider(offsets + np.rint(change / span).astype(offsets.dtype))
        radius = max(height, width)
        while radius >= 1:  # random search around the current offset, at halving radii
            consider(mine + rng.integers(-radius, radius + 1, mine.shape))
            radius //= 2
    offsets = np.zeros((height, width, 2), np.int32)
    offsets.reshape(-1, 2)[field.index] = mine
    full = np.full(height * width, np.inf, np.float32)
    full[field.index] = distance
    return offsets, full.reshape(height, width)


# --- 3. filtering -----------------------------------------------------------------------


def regular_matches(offsets: np.ndarray, distance: np.ndarray, *, window: int = 7, tolerance: float = 2.0,
                    max_distance: float = MATCH_DISTANCE, returned: bool = True) -> np.ndarray:
    """bool (H, W): the pixels whose match is close (``max_distance``), agrees with the median offset of its
    ``window`` (the field is locally regular, as a copied region's is and chance matches are not) and is returned
    (the pixel it points to points back within ``tolerance``). ``returned=False`` leaves the last check out: a
    cross-scale field (:func:`match` with ``target``) points one way only, from the smaller patch to the larger."""
    from scipy.ndimage import median_filter

    height, width = distance.shape
    close = np.isfinite(distance) & (distance <= max_distance)
    regular = close.copy()
    for axis in range(2):
        median = median_filter(offsets[..., axis], size=window, mode="nearest")
        regular &= np.abs(offsets[..., axis] - median) <= tolerance
    if not returned:
        return regular
    rows, columns = np.mgrid[0:height, 0:width]
    target_rows = np.clip(rows + offsets[..., 0], 0, height - 1)
    target_columns = np.clip(columns + offsets[..., 1], 0, width - 1)
    back = offsets[target_rows, target_columns]
    returned = (np.abs(back[..., 0] + offsets[..., 0]) <= tolerance) & (np.abs(back[..., 1] + offsets[..., 1]) <= tolerance)
    return regular & returned & close[target_rows, target_columns]


# --- 4. pairs ---------------------------------------------------------------------------


@dataclass
class DuplicatedPair:
    """Two regions of one image with the same content: ``region_b`` is ``region_a`` moved by ``offset`` (rows,
    columns; approximately, when the copy was rotated or scaled). Masks are bool at the image's own size.
    ``copy``: "a", "b", or None when the evidence cannot tell; ``evidence``: what it was told from (:func:`which_is_copy`:
    the network's difference or the ELA log-ratio; positive points to b)."""

    offset: tuple[int, int]
    score: float
    region_a: np.ndarray
    region_b: np.ndarray
    copy: str | None = None
    evidence: float = 0.0

    @property
    def copy_region(self) -> np.ndarray:
        """The copy's mask, or both regions when the copy cannot be told from its source."""
        if self.copy == "a":
            return self.region_a
        if self.copy == "b":
            return self.region_b
        return self.region_a | self.region_b

    @property
    def source_region(self) -> np.ndarray | None:
        return {"a": self.region_b, "b": self.region_a}.get(self.copy)

    def centres(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(row, column) centres of region a and region b."""
        return tuple(tuple(float(v) for v in np.argwhere(region).mean(axis=0)) for region in (self.region_a, self.region_b))


def _canonical(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets turned to point down, or right on a row; +1/-1 where each pixel's offset was kept/turned)."""
    forward = (offsets[..., 0] > 0) | ((offsets[..., 0] == 0) & (offsets[..., 1] > 0))
    sign = np.where(forward, 1, -1)
    return offsets * sign[..., None], sign


def duplicated_pairs(features: np.ndarray, offsets: np.ndarray, distance: np.ndarray, kept: np.ndarray, *,
                     min_area: float = MIN_AREA, min_pixels: int = MIN_PIXELS, periodic_ratio: float = PERIODIC_RATIO,
                     textured: np.ndarray | None = None, grey: np.ndarray | None = None,
                     min_correlation: float = ALIGNED_CORRELATION) -> list[tuple[tuple[int, int], float, np.ndarray, np.ndarray]]:
    """[(offset, score, region a, region b)] at the working scale, best first.

    Kept pixels are grouped by their offset turned to point one way (a pixel of region a points to b, one of b back
    to a); each group of at least ``min_pixels`` and ``min_area`` of the image becomes a pair. A pair is dropped as
    periodic when the pixels one more offset before region a (and after b) match nearly as well as the pair does
    (``periodic_ratio``), or when its patches match only roughly: with ``grey`` (the image the features came from),
    the affine map that best explains region a's offsets (dense linear fitting) must bring its pixels onto region
    b's with a correlation of at least ``min_correlation``. The score, from 0 to 1, is that correlation rescaled
    (0.90 gives 0, 0.94 gives 0.5, 0.98 and above 1), or without ``grey`` the closeness of the features' match.

    With ``grey``, a second pass finds copies that were rotated, scaled or mirrored, whose offsets change across the
    region and so fall into many small groups: the kept pixels left over are grouped by where they are instead
    (:func:`_transformed_pairs`).
    """
    from scipy.ndimage import binary_closing, binary_fill_holes

    height, width = kept.shape
    if not kept.any():
        return []
    canonical, sign = _canonical(offsets)
    smallest = max(min_pixels, int(min_area * height * width))
    # group by offset, 6-pixel bins (copies that were rotated or scaled a little drift across one bin, so a bin's
    # neighbours join it)
    bins = np.round(canonical[kept] / 6.0).astype(np.int64)
    keys, counts = np.unique(bins, axis=0, return_counts=True)
    inverse = _bin_index(bins)
    pairs, taken = [], np.zeros(len(keys), bool)
    rows, columns = np.nonzero(kept)
    for index in np.argsort(-counts):
        if taken[index] or counts[index] < smallest // 4:
            continue
        near = np.all(np.abs(keys - keys[index]) <= 1, axis=1) & ~taken
        taken |= near
        members = near[inverse]
        if members.sum() < smallest:
            continue
        member_rows, member_columns = rows[members], columns[members]
        offset = tuple(int(v) for v in np.median(canonical[member_rows, member_columns], axis=0))
        region_a, region_b = np.zeros((height, width), bool), np.zeros((height, width), bool)
        forward = sign[member_rows, member_columns] > 0
        region_a[member_rows[forward], member_columns[forward]] = True
        region_b[member_rows[~forward], member_columns[~forward]] = True
        # a region's largest pieces only: stray matches elsewhere with the same offset are coincidences
        region_a, region_b = (_main_pieces(region, smallest // 4) for region in (region_a, region_b))
        if region_a.sum() + region_b.sum() < smallest or not region_a.any() or not region_b.any():
            continue
        match_distance = float(np.median(distance[region_a | region_b]))
        if _periodic(features, region_a, offset, match_distance, periodic_ratio, textured):
            continue
        rows_a, columns_a = np.nonzero(region_a)
        if not _distinct(features, rows_a, columns_a, rows_a + offset[0], columns_a + offset[1], match_distance):
            continue
        correlation = aligned_correlation(grey, offsets, np.nonzero(region_a & kept & (sign > 0))) if grey is not None else None
        if correlation is not None and correlation < min_correlation:
            continue
        structure = np.ones((5, 5), bool)
        region_a, region_b = (binary_fill_holes(binary_closing(region, structure)) for region in (region_a, region_b))
        if correlation is not None:  # 0 at a correlation of 0.90, 0.5 at 0.94, 1 from 0.98 on
            score = min(1.0, max(0.0, (correlation - 0.90) / 0.08))
        else:
            score = max(0.0, 1.0 - match_distance / MATCH_DISTANCE)
        pairs.append((offset, float(score), region_a, region_b))
    if grey is not None:
        pairs += _transformed_pairs(features, offsets, distance, kept & ~_covered(pairs, (height, width)), sign, smallest,
                                    grey, min_correlation)
    return sorted(pairs, key=lambda pair: -pair[1])


def _robust_affine(rows, columns, target_rows, target_columns, *, tolerance: float = 2.0, trials: int = 200,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(affine (3, 2), inliers bool): the affine map taking (row, column, 1) to the targets that most pixels follow
    within ``tolerance`` pixels (RANSAC over ``trials`` triples, then least squares on its inliers). A piece of kept
    pixels holds a copy's source and, beside it, chance matches; plain least squares over all of them fits neither."""
    here = np.c_[rows, columns, np.ones(len(rows))].astype(np.float64)
    there = np.c_[target_rows, target_columns].astype(np.float64)
    rng = np.random.default_rng(seed)
    triples = rng.integers(0, len(rows), (trials, 3))
    best, best_count = np.zeros(len(rows), bool), -1
    for triple in triples:
        try:
            affine = np.linalg.solve(here[triple], there[triple])
        except np.linalg.LinAlgError:  # three points on a line
            continue
        inliers = np.sum((here @ affine - there) ** 2, axis=1) <= tolerance * tolerance
        if inliers.sum() > best_count:
            best, best_count = inliers, int(inliers.sum())
    if best_count < 3:
        return np.linalg.lstsq(here, there, rcond=None)[0], np.ones(len(rows), bool)
    affine = np.linalg.lstsq(here[best], there[best], rcond=None)[0]
    return affine, np.sum((here @ affine - there) ** 2, axis=1) <= tolerance * tolerance


def _covered(pairs, shape) -> np.ndarray:
    covered = np.zeros(shape, bool)
    for _, _, region_a, region_b in pairs:
        covered |= region_a | region_b
    return covered


#: A group whose fitted affine map differs from the identity by less than this in every entry is a translation: the
#: grouping by offset is the one to find it, so the second pass leaves it alone (letters and other repeats, which that
#: grouping's checks turned down, would come back through it).
TRANSLATION_TOLERANCE = 0.08
#: ... and its regions must lie at least this many working pixels apart (the median offset): on CASIA v1 validation
#: the second pass's false pairs were neighbouring letters and look-alikes about 30 pixels apart, which a rotation or
#: mirror relates as well as a copy.
TRANSFORMED_MIN_OFFSET = 2 * MIN_OFFSET
#: Whether a copy that was mirrored is reported: no. A mirror-symmetric object (a facade, a vase, a face) gives the
#: same evidence as a mirrored copy, and reporting mirrors paired 2 more of CASIA v1's 47 untouched validation photos
#: (both by symmetry), while the copy-move benchmarks we know of rotate and scale their copies but do not mirror them.
MIRRORS_REPORTED = False


def _transformed_pairs(features, offsets, distance, kept, sign, smallest, grey, min_correlation):
    """The second pass of :func:`duplicated_pairs`, for a copy that was rotated or scaled: its offsets change across
    the region, so grouping by offset splits it into many small groups. The kept pixels pointing one way are grouped by
    where they are instead (:func:`_pairs_by_place`). A pair must be a transform (its map is not a translation,
    :data:`TRANSLATION_TOLERANCE`) and not a mirror image (:data:`MIRRORS_REPORTED`)."""

    def accept(linear, points, area):
        transform = np.abs(linear - np.eye(2)).max() >= TRANSLATION_TOLERANCE
        return area >= smallest and transform and (np.linalg.det(linear) > 0 or MIRRORS_REPORTED)

    return _pairs_by_place(features, offsets, distance, kept & (sign > 0), smallest, grey, min_correlation, accept)


def _pairs_by_place(features, offsets, distance, pointing, smallest, grey, min_correlation, accept, target_features=None):
    """Pairs from kept pixels grouped by where they are (the second and the cross-scale passes): connected pieces of
    ``pointing`` (2-pixel gaps bridged), each cut down to the pixels that follow one affine map
    (:func:`_robust_affine`: a copy's source, with chance matches beside it); region b is where those point. A piece
    becomes a pair when its regions overlap little, lie :data:`TRANSFORMED_MIN_OFFSET` or more apart, pass
    ``accept(linear part of the map, pixels followed, region a's area + region b's)`` (each pass's own rule), are
    distinct (against ``target_features`` when the match read other features) and correlate through the map as in
    the first pass."""
    from scipy.ndimage import binary_closing, binary_dilation, binary_fill_holes, label

    height, width = pointing.shape
    pieces, count = label(binary_dilation(pointing, np.ones((5, 5), bool)), structure=np.ones((3, 3), bool))
    found = []
    for index in range(1, count + 1):
        members = pointing & (pieces == index)
        if members.sum() < smallest // 4:
            continue
        rows, columns = np.nonzero(members)
        target_rows, target_columns = rows + offsets[rows, columns, 0], columns + offsets[rows, columns, 1]
        inside = (target_rows >= 0) & (target_rows < height) & (target_columns >= 0) & (target_columns < width)
        if inside.sum() < smallest // 4:
            continue
        affine, inliers = _robust_affine(rows[inside], columns[inside], target_rows[inside], target_columns[inside])
        chosen = np.flatnonzero(inside)[inliers]
        rows, columns, target_rows, target_columns = rows[chosen], columns[chosen], target_rows[chosen], target_columns[chosen]
        region_a, region_b = np.zeros((height, width), bool), np.zeros((height, width), bool)
        region_a[rows, columns], region_b[target_rows, target_columns] = True, True
        if (region_a & region_b).sum() > 0.2 * region_a.sum():
            continue
        offset = tuple(int(v) for v in np.median(np.c_[target_rows - rows, target_columns - columns], axis=0))
        if math.hypot(*offset) < TRANSFORMED_MIN_OFFSET or not accept(affine[:2].T, len(rows), region_a.sum() + region_b.sum()):
            continue
        if not _distinct(features, rows, columns, target_rows, target_columns, float(np.median(distance[rows, columns])),
                         target_features=target_features):
            continue
        correlation = aligned_correlation(grey, offsets, (rows, columns))
        if correlation < min_correlation:
            continue
        structure = np.ones((5, 5), bool)
        region_a, region_b = (binary_fill_holes(binary_closing(region, structure)) for region in (region_a, region_b))
        found.append((offset, min(1.0, max(0.0, (correlation - 0.90) / 0.08)), region_a, region_b))
    return found


#: The cross-scale passes of :func:`detect`: each pixel's disc of :data:`RADIUS` is matched against the discs this many
#: times larger, which finds a copy enlarged or shrunk by about that factor (Zernike moments averaged over a disc scale
#: with it). On a planted piece of a photo, one pass at 1.375 (discs of 11 pixels against 8) found the piece scaled by
#: 0.67, 1.25 and 1.5, and by 1.25 and rotated 15 degrees, none of which the first two passes found (x0.8 they found in
#: part); two passes (1.25 and 1.5) found the same at half as much time again, and one on a grid twice as coarse lost
#: x1.5. Each pass costs about what the first pass does. On CASIA v1 validation it found pairs in 3 more of 33
#: generated copy-moves and nowhere else (benchmarks/RESULTS.md). () leaves them out.
SCALES = (1.375,)
#: A cross-scale pair's fitted scale (the square root of its affine map's determinant) must lie within this share of its
#: pass's factor (1.375: up to 1.72, a copy shrunk to 0.58 or enlarged 1.72 times) ...
SCALE_TOLERANCE = 0.25
#: ... and differ from 1 by at least this much (so from 1.1): an unscaled copy is the first two passes' to find.
SCALE_MIN_CHANGE = 0.1


def _scaled_pairs(features, target_features, offsets, distance, kept, smallest, grey, min_correlation, factor):
    """The pairs of one cross-scale pass (:func:`match` with ``target``): the kept pixels point from the smaller of two
    copies to the larger, one way only, and are grouped by place as in the second pass (:func:`_pairs_by_place`). The
    map must scale by about ``factor`` (:data:`SCALE_TOLERANCE`, and :data:`SCALE_MIN_CHANGE` from 1) and not mirror.
    Region a is the smaller copy, region b the larger."""

    def accept(linear, points, area):
        determinant = float(np.linalg.det(linear))
        if 2 * points < smallest or determinant <= 0:  # too few pixels follow it; a mirror, or no map at all
            return False
        fitted = math.sqrt(determinant)
        return abs(fitted / factor - 1.0) <= SCALE_TOLERANCE and abs(fitted - 1.0) >= SCALE_MIN_CHANGE

    return _pairs_by_place(features, offsets, distance, kept, smallest, grey, min_correlation, accept, target_features)


def aligned_correlation(grey: np.ndarray, offsets: np.ndarray, members: tuple[np.ndarray, np.ndarray]) -> float:
    """The correlation of the pixels at ``members`` (rows, columns) with the pixels the affine map fitted to their
    offsets brings them to (least squares, as Cozzolino et al.'s dense linear fitting; bilinear sampling)."""
    from scipy.ndimage import map_coordinates

    rows, columns = members
    if len(rows) < 6:
        return 0.0
    here = np.stack([rows, columns], axis=1).astype(np.float64)
    there = here + offsets[rows, columns]
    design = np.c_[here, np.ones(len(here))]
    affine, *_ = np.linalg.lstsq(design, there, rcond=None)
    mapped = design @ affine
    a = grey[rows, columns].astype(np.float64)
    b = map_coordinates(np.asarray(grey, np.float64), mapped.T, order=1, mode="nearest")
    a, b = a - a.mean(), b - b.mean()
    scale = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / scale) if scale > 0 else 0.0


def _bin_index(bins: np.ndarray) -> np.ndarray:
    """For each row of ``bins``, its row among np.unique's sorted rows of them."""
    _, inverse = np.unique(bins, axis=0, return_inverse=True)
    return inverse.ravel()


def _main_pieces(region: np.ndarray, smallest: int) -> np.ndarray:
    from scipy.ndimage import label

    labels, count = label(region, structure=np.ones((3, 3), bool))
    if count == 0:
        return region
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return np.isin(labels, np.flatnonzero(sizes >= max(1, smallest)))


def _periodic(features, region_a, offset, match_distance, ratio, textured) -> bool:
    """Whether region a also matches the pixels one offset before it (a repeating pattern, not one copy)."""
    height, width = region_a.shape
    rows, columns = np.nonzero(region_a)
    before_rows, before_columns = rows - offset[0], columns - offset[1]
    inside = (before_rows >= 0) & (before_rows < height) & (before_columns >= 0) & (before_columns < width)
    if inside.sum() < 0.3 * len(rows):
        return False  # no room for a further repeat: nothing to say
    rows, columns, before_rows, before_columns = rows[inside], columns[inside], before_rows[inside], before_columns[inside]
    if textured is not None:
        flat = ~textured[before_rows, before_columns]
        if flat.mean() > 0.5:
            return False
    difference = features[rows, columns] - features[before_rows, before_columns]
    repeat = float(np.median(np.sqrt(np.einsum("ij,ij->i", difference, difference))))
    return repeat <= ratio * max(match_distance, 1e-3) and repeat <= MATCH_DISTANCE


def _distinct(features, rows, columns, target_rows, target_columns, match_distance, ratio: float = DISTINCT_RATIO,
              shift: int = 6, target_features=None) -> bool:
    """Whether the pixels at ``rows, columns`` match the ones they point to clearly better than the patches ``shift``
    pixels beside those, in eight directions (the median over the pixels of the nearest of those eight).
    ``target_features``: the features the targets are read from (the larger discs of a cross-scale match)."""
    height, width = features.shape[:2]
    beside = features if target_features is None else target_features
    nearest = np.full(len(rows), np.inf, np.float32)
    for delta_rows, delta_columns in ((shift, 0), (-shift, 0), (0, shift), (0, -shift), (shift, shift), (-shift, -shift), (shift, -shift), (-shift, shift)):
        beside_rows, beside_columns = target_rows + delta_rows, target_columns + delta_columns
        inside = (beside_rows >= 0) & (beside_rows < height) & (beside_columns >= 0) & (beside_columns < width)
        difference = features[rows[inside], columns[inside]] - beside[beside_rows[inside], beside_columns[inside]]
        nearest[inside] = np.minimum(nearest[inside], np.sqrt(np.einsum("ij,ij->i", difference, difference)))
    finite = np.isfinite(nearest)
    if finite.sum() < 0.3 * len(rows):
        return True  # nothing beside to compare with
    return float(np.median(nearest[finite])) >= ratio * max(match_distance, 0.02)


# --- source or copy ---------------------------------------------------------------------


def copy_evidence(region_a: np.ndarray, region_b: np.ndarray, ela_map: np.ndarray | None,
                  network: np.ndarray | None = None) -> tuple[float, float]:
    """(ELA term, network term) of :func:`which_is_copy`'s evidence, each positive for b: the log-ratio of the regions'
    mean ELA, and the difference of the network's mean probability in them (0.0 for a map not given)."""
    ela_term = network_term = 0.0
    if ela_map is not None:
        energy = np.asarray(ela_map, np.float32)
        energy = energy.mean(axis=2) if energy.ndim == 3 else energy
        inside_a, inside_b = float(energy[region_a].mean()), float(energy[region_b].mean())
        ela_term = math.log((inside_b + 0.5) / (inside_a + 0.5))
    if network is not None:
        network_term = float(np.mean(network[region_b]) - np.mean(network[region_a]))
    return ela_term, network_term


def which_is_copy(region_a: np.ndarray, region_b: np.ndarray, ela_map: np.ndarray | None, network: np.ndarray | None = None,
                  *, network_margin: float = NETWORK_MARGIN, ela_margin: float = ELA_MARGIN) -> tuple[str | None, float]:
    """("a", "b" or None, evidence): which region of a pair is the pasted copy, and the evidence that told it (positive
    for b).

    The two regions hold the same content, so what differs between them comes from their history (:func:`copy_evidence`).
    The network's map, when given, decides where its mean probability in the two regions differs by ``network_margin``
    or more (the evidence is that difference). Otherwise the log-ratio of their mean ELA decides where it is
    ``ela_margin`` or more in size (a pasted copy that went through another resampling and save has another error
    level; the evidence is that log-ratio). Otherwise: None, both regions marked. Why this order: :data:`NETWORK_MARGIN`.
    """
    ela_term, network_term = copy_evidence(region_a, region_b, ela_map, network)
    if network is not None and abs(network_term) >= network_margin:
        return ("b" if network_term > 0 else "a"), network_term
    if abs(ela_term) >= ela_margin:
        return ("b" if ela_term > 0 else "a"), ela_term
    return None, ela_term


# --- the whole detector -----------------------------------------------------------------


@dataclass
class CopyMoveResult:
    """What :func:`detect` found in one image: its pairs (best first), the working scale, and the mask of every
    reported pair's copy (both regions where the copy could not be told)."""

    pairs: list[DuplicatedPair]
    shape: tuple[int, int]
    scale: float = 1.0
    settings: dict = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return bool(self.pairs)

    @property
    def score(self) -> float:
        """The best pair's score (0 without a pair)."""
        return max((pair.score for pair in self.pairs), default=0.0)

    def copy_mask(self) -> np.ndarray:
        mask = np.zeros(self.shape, bool)
        for pair in self.pairs:
            mask |= pair.copy_region
        return mask

    def both_mask(self) -> np.ndarray:
        mask = np.zeros(self.shape, bool)
        for pair in self.pairs:
            mask |= pair.region_a | pair.region_b
        return mask


def working_scale(height: int, width: int, working_pixels: int = WORKING_PIXELS) -> float:
    """The factor a photo is shrunk by for matching (1.0 when it has at most ``working_pixels``)."""
    return min(1.0, math.sqrt(working_pixels / max(1, height * width)))


def detect(image: np.ndarray, *, ela_map: np.ndarray | None = None, network: np.ndarray | None = None,
           min_offset: int = MIN_OFFSET, radius: int = RADIUS, threshold: float = PAIR_THRESHOLD,
           working_pixels: int = WORKING_PIXELS, seed: int = 0, scales: tuple[float, ...] = SCALES) -> CopyMoveResult:
    """Duplicated regions of ``image`` (uint8 RGB or grey (H, W)), at its own size.

    ``ela_map`` and ``network`` (the network's probability map), both at the image's size, are the evidence
    :func:`which_is_copy` tells the copy from its source with; without either, every pair is undecided.
    ``min_offset`` and ``radius`` are in the image's own pixels; ``threshold``: the score a pair must reach.
    ``scales``: the cross-scale passes (:data:`SCALES`), for copies that were enlarged or shrunk.
    """
    image = np.asarray(image)
    height, width = image.shape[:2]
    scale = working_scale(height, width, working_pixels)
    grey = luminance(image)
    if scale < 1.0:
        small = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = np.asarray(Image.fromarray(grey).resize(small, Image.Resampling.BOX), np.float32)
    features, textured = patch_features(grey, radius)
    step = 2 if grey.size > GRID_PIXELS else 1
    near = max(1, int(round(min_offset * scale / step)))
    offsets, distance = match(features[::step, ::step], textured[::step, ::step], min_offset=near, seed=seed)
    kept = regular_matches(offsets, distance)
    found = duplicated_pairs(features[::step, ::step], offsets, distance, kept, textured=textured[::step, ::step],
                             grey=grey[::step, ::step])
    covered = _covered(found, kept.shape)
    smallest = max(MIN_PIXELS, int(MIN_AREA * kept.size))
    for enlarged in scales:  # copies enlarged or shrunk: each patch against the larger patches of the same image
        larger, larger_textured = patch_features(grey, int(round(radius * enlarged)))
        target = (larger[::step, ::step], larger_textured[::step, ::step])
        scaled_offsets, scaled_distance = match(features[::step, ::step], textured[::step, ::step], min_offset=near, seed=seed,
                                                target=target)
        scaled_kept = regular_matches(scaled_offsets, scaled_distance, returned=False) & ~covered
        more = _scaled_pairs(features[::step, ::step], target[0], scaled_offsets, scaled_distance, scaled_kept, smallest,
                             grey[::step, ::step], ALIGNED_CORRELATION, enlarged)
        found += more
        covered |= _covered(more, kept.shape)
    found.sort(key=lambda pair: -pair[1])
    pairs = []
    grow = max(1, radius // step)
    for offset, score, region_a, region_b in found:
        if score < threshold:
            continue
        region_a, region_b = (_to_image(_grown(region, grow), height, width) for region in (region_a, region_b))
        copy, evidence = which_is_copy(region_a, region_b, ela_map, network)
        factor = step / scale
        pairs.append(DuplicatedPair((int(round(offset[0] * factor)), int(round(offset[1] * factor))), score, region_a, region_b, copy, evidence))
    return CopyMoveResult(pairs, (height, width), scale,
                          {"min_offset": min_offset, "radius": radius, "threshold": threshold, "grid_step": step,
                           "scales": tuple(scales)})


def _grown(region: np.ndarray, by: int) -> np.ndarray:
    """The region dilated by ``by`` pixels: a kept pixel is a patch centre, and its patch reaches past it."""
    from scipy.ndimage import binary_dilation

    return binary_dilation(region, structure=np.ones((3, 3), bool), iterations=by)


def _to_image(region: np.ndarray, height: int, width: int) -> np.ndarray:
    if region.shape == (height, width):
        return region
    return np.asarray(Image.fromarray(region.view(np.uint8) * np.uint8(255)).resize((width, height), Image.Resampling.NEAREST)) > 127


def fused_with(localization) -> tuple[np.ndarray, CopyMoveResult]:
    """(the map with the copy-move evidence fused in, what the matcher found) for a
    :class:`~pmsp_utils.pipeline.Localization`: its decoded image, its ELA and the network's map are the matcher's input
    and evidence, nothing is decoded or computed again. What ``pmsp localize`` and ``pmsp evaluate`` do by default."""
    found = detect(localization.image, ela_map=localization.ela, network=localization.probability)
    return fuse(localization.probability, found), found


def fuse(network: np.ndarray, result: CopyMoveResult) -> np.ndarray:
    """The network's map with the copy-move evidence: float32 (H, W) in [0, 1].

    Rule: inside each reported pair's copy (both regions when the copy could not be told) the probability is raised to
    at least ``0.5 + 0.5 * score`` of the pair, so the region is marked at the default threshold 0.5 whatever the
    network said; elsewhere the network's map is kept unchanged. Nothing is lowered: a splicing the network found
    stays found.
    """
    fused = np.array(network, np.float32, copy=True)
    for pair in result.pairs:
        region = pair.copy_region
        fused[region] = np.maximum(fused[region], 0.5 + 0.5 * pair.score)
    return fused
