"""Reference solutions of the notebooks' checkable exercises, each checked against the package.

A student's own solution can be checked the same way: replace the reference function.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import encode
from PIL import Image

# --- 01, exercise 3: ELA in four steps ------------------------------------------------------


def ela_in_four_steps(path, quality: int = 90) -> np.ndarray:
    image = Image.open(path).convert("RGB")  # 1. open
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)  # 2. re-save
    resaved = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")  # 3. decode
    return np.abs(np.asarray(image, np.int16) - np.asarray(resaved, np.int16)).astype(np.uint8)  # 4. difference


def test_01_ela_in_four_steps(photo, tmp_path):
    from pmsp_utils.ela import ela

    path = tmp_path / "photo.jpg"
    path.write_bytes(encode(photo, "JPEG", quality=85))
    assert np.array_equal(ela_in_four_steps(path), ela(path))


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


# --- 03, exercises 2 and 4: ADD/CONCAT under PSPNet's rule; the pyramid by hand ---------------

keras = pytest.importorskip("keras", reason="the network exercises need Keras")


def test_03_add_concat_ratio_under_pspnet_rule():
    from pmsp_utils.network import build_pmsp
    from pmsp_utils.network.counting import count_after

    add = build_pmsp(192, fusion="add", pyramid_channels=1024 // 4, verbose=False)
    concat = build_pmsp(192, fusion="concat", pyramid_channels=2048 // 4, verbose=False)
    ratio = count_after(add, ("ppm", "head"))[0] / count_after(concat, ("ppm", "head"))[0]
    assert ratio == pytest.approx(0.38, abs=0.01)


def pyramid_by_hand(x, bins=(1, 2, 3, 6), channels=256):
    from keras import layers

    size = x.shape[1]
    branches = [x]
    for bin_count in bins:
        pool = size // bin_count
        y = layers.AveragePooling2D(pool, strides=pool)(x)
        y = layers.Conv2D(channels, 1, use_bias=False)(y)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        branches.append(layers.UpSampling2D(pool, interpolation="bilinear")(y))
    return layers.Concatenate()(branches)


def test_03_pyramid_by_hand_matches_the_package():
    from pmsp_utils.network.pyramid import pyramid_pooling

    inputs = keras.Input((12, 12, 64))
    mine, theirs = keras.Model(inputs, pyramid_by_hand(inputs)), keras.Model(inputs, pyramid_pooling(inputs))
    assert mine.output.shape == theirs.output.shape == (None, 12, 12, 64 + 4 * 256)
    assert mine.count_params() == theirs.count_params()
    theirs.set_weights(mine.get_weights())  # the same layers in the same order: the same function
    x = np.random.default_rng(0).normal(size=(1, 12, 12, 64)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mine(x)), keras.ops.convert_to_numpy(theirs(x)), atol=1e-5)


# --- 04, exercise 3: soft Dice -------------------------------------------------------------------


def test_04_bce_plus_my_dice_is_the_package_loss():
    from keras import ops

    from pmsp_utils.network.losses import WeightedBceDice

    rng = np.random.default_rng(0)
    target = (rng.random((3, 16, 16, 1)) < 0.2).astype("float32")
    prediction = rng.uniform(0.01, 0.99, (3, 16, 16, 1)).astype("float32")
    dice = 1.0 - (2.0 * ops.sum(target * prediction, axis=(1, 2, 3)) + 1.0) / (ops.sum(target, axis=(1, 2, 3)) + ops.sum(prediction, axis=(1, 2, 3)) + 1.0)
    bce = keras.losses.BinaryCrossentropy(reduction=None)(target, prediction)
    mine = ops.mean(ops.mean(bce, axis=(1, 2)) + dice)
    assert float(ops.convert_to_numpy(mine)) == pytest.approx(float(ops.convert_to_numpy(WeightedBceDice()(target, prediction))), rel=1e-4)


# --- 05, exercises 3 and 4: weighted recall is accuracy; AUC from histograms -------------------


def test_05_weighted_recall_is_accuracy():
    from sklearn.metrics import accuracy_score, recall_score

    rng = np.random.default_rng(1)
    for _ in range(5):
        truth, claimed = rng.random(5000) < rng.uniform(0.02, 0.5), rng.random(5000) < rng.uniform(0.02, 0.5)
        assert recall_score(truth, claimed, average="weighted") == pytest.approx(accuracy_score(truth, claimed))


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
    smallest = next(n for n in range(1, 10) if separation_probability(n) < 0.01)
    assert smallest == 5 and separation_probability(4) > 0.01


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
