"""Reference solutions of the notebooks' checkable exercises, each checked against the package.

A student's own solution can be checked the same way: replace the reference function.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

# --- 01, exercise 3: the pixel AUC as the area under a ROC curve ---------------------------


def auc_by_roc_curve(score: np.ndarray, mask: np.ndarray) -> float:
    """Every distinct score as a threshold ("score >= threshold" marks tampered), the trapezoid rule over the curve."""
    score, positive = np.asarray(score, np.float64).ravel(), np.asarray(mask).ravel() == 1
    thresholds = np.unique(score)[::-1]  # from the highest: the curve starts at (0, 0)
    true_positive_rate = [0.0] + [(score[positive] >= t).mean() for t in thresholds]
    false_positive_rate = [0.0] + [(score[~positive] >= t).mean() for t in thresholds]
    return float(np.trapezoid(true_positive_rate, false_positive_rate))


def test_01_auc_by_roc_curve_is_the_package_auc():
    from pmsp_utils.data.synthetic import tutorial_forgeries
    from pmsp_utils.ela import ela
    from pmsp_utils.metrics import pixel_auc

    palace = tutorial_forgeries()["palace copy, q85"]
    score = ela(palace.data).mean(axis=2)  # few distinct values: many ties, which both readings count half
    assert len(np.unique(score)) < 200
    assert abs(auc_by_roc_curve(score, palace.mask) - pixel_auc(score, palace.mask)) < 1e-9


# --- 02, exercise 3: groups of forgeries sharing a source photo ------------------------------


def groups(names: list[str]) -> list[set[str]]:
    parent: dict[str, str] = {}

    def root(key):
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    ids = {name: name.split("_")[4:6] for name in names}  # Sp_D_NRN_A_ani0097_ani0082_0427 -> ani0097, ani0082
    for first, second in ids.values():
        parent[root(second)] = root(first)
    found: dict[str, set[str]] = {}
    for name, (first, _) in ids.items():
        found.setdefault(root(first), set()).add(name)
    return sorted(found.values(), key=min)


def test_02_groups_match_the_package():
    from pmsp_utils.data import Record, source_groups

    names = ["Sp_D_NRN_A_ani0097_ani0082_0427", "Sp_D_NRN_A_ani0082_art0001_0428", "Sp_S_CND_A_pla0016_pla0016_0196",
             "Sp_D_CNN_A_art0001_sec0005_0300", "Sp_S_NRN_A_cha0001_cha0001_0100"]
    records = [Record("casia1", name, "splicing", f"{name}.jpg", source_ids=tuple(name.split("_")[4:6])) for name in names]
    theirs = sorted(({record.name for record in group} for group in source_groups(records).values()), key=min)
    assert groups(names) == theirs
    assert len(theirs) == 3  # ani0097-ani0082-art0001-sec0005 are one scene family


# --- 03, exercises 2 and 4: squeeze-and-excitation against Coordinate Attention; other pyramid bins ----------------

keras = pytest.importorskip("keras", reason="the network exercises need Keras")


def squeeze_excitation_layer():
    """Exercise 2's reference: a squeeze-and-excitation block (Hu et al. 2018) as a Keras layer."""
    from keras import layers, ops

    class SqueezeExcitation(layers.Layer):
        def build(self, input_shape):
            channels = input_shape[-1]
            self.squeeze = layers.Conv2D(max(8, channels // 32), 1, activation="relu")
            self.excite = layers.Conv2D(channels, 1, activation="sigmoid")
            self.squeeze.build((None, 1, 1, channels))
            self.excite.build((None, 1, 1, self.squeeze.filters))

        def factor(self, inputs):
            return self.excite(self.squeeze(ops.mean(inputs, axis=(1, 2), keepdims=True)))  # (B, 1, 1, C)

        def call(self, inputs):
            return inputs * self.factor(inputs)

    return SqueezeExcitation()


def test_03_squeeze_excitation_against_coordinate_attention():
    from pmsp_utils.network.attention import CoordinateAttention

    block, attention = squeeze_excitation_layer(), CoordinateAttention()
    block.build((None, 72, 72, 256))
    attention.build((None, 72, 72, 256))
    # 256 -> 8 -> 256 once, against a shared squeeze, its normalisation and two convolutions back to 256.
    assert block.count_params() == 256 * 8 + 8 + 8 * 256 + 256 == 4360
    assert attention.count_params() == 256 * 8 + 8 + 4 * 8 + 2 * (8 * 256 + 256) == 6696
    x = np.random.default_rng(0).normal(size=(1, 72, 72, 256)).astype("float32")
    factor = keras.ops.convert_to_numpy(block(x)) / x  # the same at every position of a channel: it cannot mark a region
    assert np.allclose(factor, factor[:, :1, :1, :], rtol=1e-4)
    maps = np.multiply(*(keras.ops.convert_to_numpy(a) for a in attention.attention_maps(x, training=False)))
    assert maps.std(axis=(1, 2)).max() > 1e-3  # Coordinate Attention's factor varies over rows and columns


def test_03_other_pyramid_bins():
    from pmsp_utils.model_settings import nearest_valid_sizes
    from pmsp_utils.network.pyramid import pyramid_pooling

    assert nearest_valid_sizes(576, bins=(1, 2, 4, 8)) == (512, 768)  # multiples of 32 * lcm(1, 2, 4, 8) = 256
    with pytest.raises(ValueError, match="18x18 feature map does not divide into 4x4 bins"):
        pyramid_pooling(keras.Input((18, 18, 1024)), bins=(1, 2, 4, 8))
    counts = []
    for side, bins in ((18, (1, 2, 3, 6)), (16, (1, 2, 4, 8))):
        inputs = keras.Input((side, side, 1024))
        counts.append(keras.Model(inputs, pyramid_pooling(inputs, bins=bins)).count_params())
    assert counts[0] == counts[1] == 4 * (1024 * 256 + 4 * 256)  # a 1x1 reduction and a normalisation per bin, whatever its size


# --- 04, exercise 3: the focal loss -----------------------------------------------------------------


def my_focal(target, prediction, alpha=0.25, gamma=2.0, eps=1e-7):
    """Focal loss per image: -alpha_t (1 - p_t)^gamma log p_t over the valid pixels (a target of -1 is padding)."""
    from keras import ops

    prediction = ops.convert_to_tensor(prediction)
    target = ops.cast(target, prediction.dtype)
    valid = ops.cast(target >= 0, prediction.dtype)
    y, p = target * valid, ops.clip(prediction, eps, 1 - eps)
    p_true = y * p + (1 - y) * (1 - p)  # the probability given to the pixel's true class
    alpha_true = y * alpha + (1 - y) * (1 - alpha)
    per_pixel = -alpha_true * (1 - p_true) ** gamma * ops.log(p_true)
    return ops.sum(per_pixel * valid, axis=(1, 2, 3)) / ops.maximum(ops.sum(valid, axis=(1, 2, 3)), 1.0)


def test_04_my_focal_loss_is_the_package_loss():
    from keras import ops

    from pmsp_utils.network.losses import BinaryFocal

    rng = np.random.default_rng(0)
    target = (rng.random((3, 16, 16, 1)) < 0.2).astype("float32")
    target[0, 12:] = -1.0  # padding, ignored
    prediction = rng.uniform(0.0, 1.0, (3, 16, 16, 1)).astype("float32")
    mine = ops.convert_to_numpy(my_focal(target, prediction))
    np.testing.assert_allclose(mine, ops.convert_to_numpy(BinaryFocal(reduction=None)(target, prediction)), rtol=1e-5)
    assert float(np.mean(mine)) == pytest.approx(float(ops.convert_to_numpy(BinaryFocal()(target, prediction))), rel=1e-5)


# --- 05, exercises 3 and 4: weighted recall is accuracy; AUC from histograms -------------------


def test_05_weighted_recall_is_accuracy():
    from sklearn.metrics import accuracy_score, precision_score, recall_score

    rng = np.random.default_rng(1)
    for _ in range(5):
        truth, claimed = rng.random(5000) < rng.uniform(0.02, 0.5), rng.random(5000) < rng.uniform(0.02, 0.5)
        assert recall_score(truth, claimed, average="weighted") == pytest.approx(accuracy_score(truth, claimed))
        # ... and the class-weighted precision does not (the exercise's second half)
        assert abs(precision_score(truth, claimed, average="weighted") - accuracy_score(truth, claimed)) > 1e-3


def histogram_auc(scores, truth, bins: int = 1000) -> float:
    positive = np.histogram(scores[truth], bins=bins, range=(0, 1))[0].astype(float)
    negative = np.histogram(scores[~truth], bins=bins, range=(0, 1))[0].astype(float)
    below = np.cumsum(negative) - negative  # negatives in lower bins
    return float((positive * below).sum() + 0.5 * (positive * negative).sum()) / (positive.sum() * negative.sum())


def test_05_auc_from_histograms():
    from sklearn.metrics import roc_auc_score

    from pmsp_utils.metrics import PixelMetrics

    rng = np.random.default_rng(2)
    truth = rng.random(20000) < 0.1
    scores = np.clip(rng.normal(0.3 + 0.3 * truth, 0.2), 0, 1)
    assert histogram_auc(scores, truth) == pytest.approx(roc_auc_score(truth, scores), abs=1e-3)
    metrics = PixelMetrics()
    metrics.update(scores.reshape(100, 200), truth.reshape(100, 200).astype(np.uint8))
    assert histogram_auc(scores, truth) == pytest.approx(metrics.pooled_auc(), abs=1e-6)


# --- 05, exercise 2: does the tampered area matter? The two halves, with a bootstrap interval -------------------


def area_halves(f1, area, *, resamples: int = 4000, confidence: float = 0.9, seed: int = 0) -> tuple[float, float, float]:
    """Mean F1 of the images with more than the median area minus that of the rest, and its percentile interval: each
    half resampled with replacement on its own (the halves hold different images, so the draws are not paired)."""
    f1, area = np.asarray(f1, float), np.asarray(area, float)
    larger = area > np.median(area)
    big, little = f1[larger], f1[~larger]
    random = np.random.default_rng(seed)
    draws = (random.choice(big, (resamples, len(big))).mean(axis=1)
             - random.choice(little, (resamples, len(little))).mean(axis=1))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(big.mean() - little.mean()), float(low), float(high)


def test_05_area_halves_find_a_real_trend_and_not_a_made_up_one():
    random = np.random.default_rng(3)
    area = random.uniform(0.01, 0.4, 200)
    difference, low, high = area_halves(np.clip(2 * area + random.normal(0, 0.15, 200), 0, 1), area)  # F1 grows with area
    assert 0 < low < difference < high
    difference, low, high = area_halves(random.uniform(0, 1, 200), area)  # F1 unrelated to the area
    assert low < 0 < high


# --- 05, exercise 5: a map read upside down scores 1 - AUC ----------------------------------------------------------


def test_05_reading_a_map_upside_down_gives_one_minus_its_auc():
    from pmsp_utils.metrics import PixelMetrics

    random = np.random.default_rng(4)
    mask = (random.random((60, 80)) < 0.2).astype(np.uint8)
    scores = np.clip(random.normal(0.5 - 0.1 * mask, 0.2), 0, 1)  # anti-correlated: tampered pixels score lower
    upright, upside_down = PixelMetrics(), PixelMetrics()
    upright.update(scores, mask)
    upside_down.update(1 - scores, mask)
    assert upright.pooled_auc() < 0.5
    assert upside_down.pooled_auc() == pytest.approx(1 - upright.pooled_auc(), abs=2e-3)


# --- 06, exercise 2: the chance that every seed of one identical variant beats every seed of the other ---------------


def separation_probability(n: int, m: int | None = None) -> float:
    """P(all n of A above all m of B) when the n + m scores are exchangeable: one of C(n+m, n) equally likely rank sets."""
    from math import comb

    return 1 / comb(n + (n if m is None else m), n)


def test_06_separation_probability_by_enumeration():
    from itertools import permutations

    for n in (1, 2, 3):
        orders = list(permutations(range(2 * n)))  # positions 0..n-1 are A's seeds, the rest B's; values are ranks
        separated = sum(min(order[:n]) > max(order[n:]) for order in orders)
        assert separated / len(orders) == pytest.approx(separation_probability(n))
    assert separation_probability(3) == pytest.approx(1 / 20)  # so "confirmed or contradicted" by chance: 1 in 10
    smallest = next(n for n in range(1, 10) if separation_probability(n) < 0.001)  # rarer than one in a thousand
    assert smallest == 7 and separation_probability(6) > 0.001


def test_06_the_range_rule_is_the_packages_verdict():
    from pmsp_utils.ablation import verdict

    rng = np.random.default_rng(0)
    trials, confirmed = 4000, 0
    for _ in range(trials):  # two identical variants: the package calls "confirmed" about 1 time in 20
        values = rng.normal(size=6)
        rows = [{"variant": "paper", "seed": s, "per_image_f1@0.5": v} for s, v in enumerate(values[:3])]
        rows += [{"variant": "fusion-concat", "seed": s, "per_image_f1@0.5": v} for s, v in enumerate(values[3:])]
        confirmed += verdict(rows, "paper", "fusion-concat") == "confirmed"
    assert confirmed / trials == pytest.approx(separation_probability(3), abs=0.015)


# --- 06, exercise 3: a paired comparison over seeds -------------------------------------------------------------------


def paired_difference(rows: list[dict], first: str, second: str, metric: str = "per_image_f1@0.5") -> tuple[float, float]:
    """Mean over shared seeds of (first - second), and its standard error."""
    by_seed = {}
    for row in rows:
        by_seed.setdefault(row["seed"], {})[row["variant"]] = row[metric]
    differences = np.array([scores[first] - scores[second] for scores in by_seed.values() if first in scores and second in scores])
    return float(differences.mean()), float(differences.std(ddof=1) / np.sqrt(len(differences)))


def test_06_paired_difference_by_hand():
    rows = [{"variant": "paper", "seed": s, "per_image_f1@0.5": v} for s, v in enumerate((0.30, 0.40, 0.50))]
    rows += [{"variant": "attention-none", "seed": s, "per_image_f1@0.5": v} for s, v in enumerate((0.28, 0.37, 0.49))]
    mean, error = paired_difference(rows, "paper", "attention-none")
    assert mean == pytest.approx(0.02)  # differences 0.02, 0.03, 0.01
    assert error == pytest.approx(0.01 / np.sqrt(3))
    from pmsp_utils.ablation import verdict

    assert verdict(rows, "paper", "attention-none") == "ranges overlap"  # the ranges overlap, yet every pair favours paper


def test_06_paired_difference_on_the_shipped_study():
    from pmsp_utils.ablation import load_study

    study = load_study()
    mean, error = paired_difference(study.rows, "paper", "fusion-concat")
    by_hand = np.mean([row["per_image_f1@0.5"] for row in study.rows if row["variant"] == "paper"]) - np.mean(
        [row["per_image_f1@0.5"] for row in study.rows if row["variant"] == "fusion-concat"])
    assert mean == pytest.approx(by_hand) and error > 0  # with every seed run for both, the paired mean is the difference of means


# --- 07, exercise 2: rotation by 90 degrees leaves the features unchanged -------------------


def features_after_quarter_turn(grey: np.ndarray, row: int, column: int) -> tuple[np.ndarray, np.ndarray]:
    """(features at (row, column), features of np.rot90(grey) at where that pixel went)."""
    from pmsp_utils.copymove import patch_features

    features, _ = patch_features(grey)
    turned, _ = patch_features(np.ascontiguousarray(np.rot90(grey)))
    width = grey.shape[1]
    return features[row, column], turned[width - 1 - column, row]  # np.rot90 turns counter-clockwise


def test_07_a_quarter_turn_leaves_the_features_unchanged():
    from pmsp_utils.copymove import luminance

    grey = luminance(np.asarray(Image.open(io.BytesIO(_coffee_jpeg()))))
    before, after = features_after_quarter_turn(grey, 120, 200)
    np.testing.assert_allclose(before, after, rtol=1e-3, atol=1e-4)


def _coffee_jpeg(quality: int = 85) -> bytes:
    from pmsp_utils.data.photos import load_photo

    buffer = io.BytesIO()
    Image.fromarray(load_photo("coffee")).save(buffer, "JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


# --- 07, exercise 3: exact block matching (Fridrich et al. 2003) ------------------------------


def exact_duplicates(grey: np.ndarray, block: int = 8, min_offset: int = 24, min_contrast: int = 10):
    """The most common offset (rows, columns) between identical ``block`` x ``block`` blocks at least ``min_offset``
    apart, or None. Every overlapping block is a row of pixel values; sorting the rows puts identical blocks side by side."""
    from collections import Counter

    grey = np.asarray(np.round(grey), np.uint8)
    windows = np.lib.stride_tricks.sliding_window_view(grey, (block, block))
    rows, columns = windows.shape[:2]
    values = windows.reshape(rows * columns, block * block)
    detailed = values.max(axis=1).astype(int) - values.min(axis=1) >= min_contrast  # flat blocks match everywhere
    index = np.flatnonzero(detailed)
    order = index[np.lexsort(values[index].T[::-1])]
    same = np.all(values[order[1:]] == values[order[:-1]], axis=1)
    first, second = np.divmod(order[:-1][same], columns), np.divmod(order[1:][same], columns)
    offsets = Counter()
    for (r1, c1), (r2, c2) in zip(zip(*first), zip(*second)):
        offset = (int(r2 - r1), int(c2 - c1))
        if offset < (0, 0):
            offset = (-offset[0], -offset[1])
        if offset[0] ** 2 + offset[1] ** 2 >= min_offset ** 2:
            offsets[offset] += 1
    if not offsets:
        return None
    offset, count = offsets.most_common(1)[0]
    return offset if count >= 50 else None


def test_07_exact_block_matching_finds_a_copy_on_the_grid_only():
    from pmsp_utils.copymove import luminance

    def saved(image, quality):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality, subsampling=0)
        return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))

    host = np.asarray(Image.open(io.BytesIO(_coffee_jpeg())).convert("RGB"))
    forged, shifted = host.copy(), host.copy()
    forged[208:288, 256:352] = host[48:128, 64:160]
    shifted[211:291, 259:355] = host[48:128, 64:160]
    assert exact_duplicates(luminance(forged)) == (160, 192)
    assert exact_duplicates(luminance(saved(forged, 90))) == (160, 192)  # on the grid, identical blocks stay identical
    assert exact_duplicates(luminance(shifted)) == (163, 195)
    assert exact_duplicates(luminance(saved(shifted, 90))) is None  # off the grid, the save quantizes them differently
