"""The weights that ship with the package: present, small, documented, loadable offline."""

import numpy as np
import pytest

pytest.importorskip("keras", reason="the shipped model needs Keras: pip install -e '.[keras]'")

import pmsp_utils  # noqa: E402
from pmsp_utils import pretrained  # noqa: E402


def test_casia1_weights_ship_small_and_documented():
    assert "casia1" in pretrained.available()
    assert (pretrained.WEIGHTS_DIR / "casia1.npz").stat().st_size <= 40_000_000  # two float16 networks
    card = pretrained.model_card("casia1")
    for key in ("architecture", "data", "initialisation", "recipe", "training", "validation", "reproduce", "members"):
        assert card[key], key
    validation = card["validation"]
    assert 0.0 <= validation["per_image_f1@0.5"] <= 1.0 and 0.5 < validation["pooled_auc"] <= 1.0
    assert "per-image F1 at threshold 0.5" in validation["protocol"] and "pooled pixel AUC" in validation["protocol"]
    assert (pretrained.WEIGHTS_DIR / "casia1_splits" / "train.txt").read_text().count("\n") > 100
    # An ensemble: each member's own history, settings and view; flips come from the views, not from the settings.
    assert [member["view"] for member in card["members"]] == ["mirror", "image"] and card["settings"]["flip"] is False
    for member in card["members"]:
        history = pretrained.history("casia1", member=member["name"])
        assert member["training"]["best_epoch"] <= member["training"]["epochs_run"] == len(history)
        assert {"loss", "val_loss", "val_f1", "val_auc"} <= set(history[0])
    assert pretrained.history("casia1") == pretrained.history("casia1", member=card["members"][0]["name"])
    with pytest.raises(ValueError, match="no member 'third'; its members: stride16, synthetic_start"):
        pretrained.history("casia1", member="third")
    # These weights came back from a GPU without per-epoch predictions: the card says so, and asking names what ships.
    assert "snapshot_images" not in card and any("without snapshots" in stage for stage in card["training"]["stages"])
    with pytest.raises(FileNotFoundError, match="No snapshots recorded for 'casia1'.*with snapshots: synthetic"):
        pretrained.snapshots("casia1")
    synthetic = pretrained.model_card("synthetic")
    shots = pretrained.snapshots("synthetic")
    assert set(shots) == {f"epoch_{epoch:03d}" for epoch in range(1, synthetic["training"]["epochs_run"] + 1)}
    assert shots["epoch_001"].shape == (len(synthetic["snapshot_images"]), 96, 96)
    assert all(name.startswith("synthetic/") for name in synthetic["snapshot_images"])


def test_load_pretrained_offline(photo):
    from pmsp_utils.pipeline import localize

    from pmsp_utils.model import ensemble_members

    model = pmsp_utils.load_pretrained()
    card = pretrained.model_card("casia1")
    assert model.inputs[0].shape[1] == card["architecture"]["input_size"]
    assert list(ensemble_members(model)) == [member["name"] for member in card["members"]]
    probability = localize(model, photo).probability
    assert probability.shape == photo.shape[:2] and 0.0 <= probability.min() and probability.max() <= 1.0
    assert probability.std() > 1e-4, "a trained model does not give a flat map"
    larger = pmsp_utils.load_pretrained(input_size=576)
    assert larger.inputs[0].shape[1] == 576
    first = np.asarray(model.weights[0])
    np.testing.assert_array_equal(first, np.asarray(larger.weights[0]))


def test_unknown_pretrained_name():
    with pytest.raises(FileNotFoundError, match="No shipped model named 'imagenet'"):
        pretrained.model_card("imagenet")


def test_synthetic_weights_localize_held_out_synthetic_images(cache_folder):
    """The synthetic-only weights, scored here on held-out synthetic images (a seed no training used)."""
    from pmsp_utils.data.sources import load_source
    from pmsp_utils.metrics import PixelMetrics
    from pmsp_utils.pipeline import localize

    card = pretrained.model_card("synthetic")
    assert card["targets"]["pooled_auc"] == 0.90 and len(card["evaluations"]) == 2  # held-out synthetic, then real CASIA v1.0
    model = pmsp_utils.load_pretrained("synthetic")
    size = int(model.inputs[0].shape[1])
    metrics = PixelMetrics()
    for record in [r for r in load_source("synthetic", synthetic_count=12, seed=7, size=size) if r.is_tampered]:
        metrics.update(localize(model, record.image_path).probability, record.load_mask())
    assert metrics.pooled_auc() > 0.85, metrics.result()  # the card reports 0.98 on 169 images


def test_model_cards_for_people_match_their_json():
    for name in pretrained.available():
        assert (pretrained.WEIGHTS_DIR / f"{name}.md").read_text() == pretrained.card_markdown(pretrained.model_card(name)), name
