"""The weights that ship with the package: present, small, documented, loadable offline."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("keras", reason="the shipped model needs Keras: pip install -e '.[keras]'")

from pmsp_utils.models import export_ensemble, load_model  # noqa: E402
from pmsp_utils import pretrained  # noqa: E402


def test_casia1_weights_ship_small_and_documented():
    assert "casia1" in pretrained.available()
    card = pretrained.model_card("casia1")
    files = pretrained.weight_files("casia1", card)
    assert files == ["casia1_stride16.npz", "casia1_synthetic_start.npz"]  # one float16 file per network
    assert all((pretrained.WEIGHTS_DIR / filename).stat().st_size <= 25_000_000 for filename in files)
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
    with pytest.raises(FileNotFoundError, match="No snapshots recorded for 'casia1'.*with snapshots: .*synthetic"):
        pretrained.snapshots("casia1")
    synthetic = pretrained.model_card("synthetic")
    shots = pretrained.snapshots("synthetic")
    assert set(shots) == {f"epoch_{epoch:03d}" for epoch in range(1, synthetic["training"]["epochs_run"] + 1)}
    assert shots["epoch_001"].shape == (len(synthetic["snapshot_images"]), 96, 96)
    assert all(name.startswith("synthetic/") for name in synthetic["snapshot_images"])


def test_load_model_takes_a_shipped_name_offline(photo):
    from pmsp_utils.pipeline import localize

    from pmsp_utils.network import ensemble_members

    model = load_model("casia1").model
    card = pretrained.model_card("casia1")
    assert model.inputs[0].shape[1] == card["architecture"]["input_size"]
    assert list(ensemble_members(model)) == [member["name"] for member in card["members"]]
    probability = localize(model, photo).probability
    assert probability.shape == photo.shape[:2] and 0.0 <= probability.min() and probability.max() <= 1.0
    assert probability.std() > 1e-4, "a trained model does not give a flat map"
    larger = load_model("casia1", input_size=576).model
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
    model = load_model("synthetic").model
    size = int(model.inputs[0].shape[1])
    metrics = PixelMetrics()
    for record in [r for r in load_source("synthetic", synthetic_count=12, seed=7, size=size) if r.is_tampered]:
        metrics.update(localize(model, record.image_path).probability, record.load_mask())
    assert metrics.pooled_auc() > 0.85, metrics.result()  # the card reports 0.98 on 169 images


def test_model_cards_for_people_match_their_json():
    for name in pretrained.available():
        assert (pretrained.WEIGHTS_DIR / f"{name}.md").read_text() == pretrained.card_markdown(pretrained.model_card(name)), name


def _fake_run(folder, output_stride: int, *, seed: int, ela_quality: int = 90, validation: str = "casia1/a\n"):
    """A finished run folder as pmsp train leaves one: config, best weights, split lists, history."""
    import json

    import keras

    from pmsp_utils.network import build_pmsp

    folder.mkdir()
    keras.utils.set_random_seed(seed)
    build_pmsp(192, output_stride=output_stride, verbose=False).save_weights(folder / "best.weights.h5")
    (folder / "config.json").write_text(json.dumps({"input_size": 192, "output_stride": output_stride, "decoder": "none",
                                                    "ela_quality": ela_quality, "policy": "resize"}))
    (folder / "splits").mkdir()
    (folder / "splits" / "train.txt").write_text("casia1/b\n")
    (folder / "splits" / "validation.txt").write_text(validation)
    (folder / "history.csv").write_text("epoch,loss\n0,1.0\n1,0.5\n")
    return folder


@pytest.mark.slow
def test_an_ensemble_ships_one_file_per_member_and_loads_as_the_pair(tmp_path, monkeypatch):
    from pmsp_utils.network import build_ensemble, build_pmsp

    fine, coarse = _fake_run(tmp_path / "fine", 16, seed=0), _fake_run(tmp_path / "coarse", 32, seed=1)
    shipped = tmp_path / "weights"
    export_ensemble({"fine": (fine, "mirror"), "coarse": (coarse, "image")}, "pair",
                               card={"name": "pair"}, destination=shipped)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", shipped)
    assert pretrained.available() == ["pair"]
    card = pretrained.model_card("pair")
    assert pretrained.weight_files("pair", card) == ["pair_fine.npz", "pair_coarse.npz"] and card["settings"]["flip"] is False
    assert [entry["settings"]["output_stride"] for entry in card["members"]] == [16, 32]
    assert len(pretrained.history("pair", member="coarse")) == 2 and (shipped / "pair_splits" / "train.txt").exists()
    loaded = load_model("pair")
    model, settings = loaded.model, loaded.settings
    assert settings.input_size == 192 and settings.ela_quality == 90
    networks = {}
    for name, folder, stride in (("fine", fine, 16), ("coarse", coarse, 32)):
        networks[name] = build_pmsp(192, output_stride=stride, verbose=False)
        networks[name].load_weights(folder / "best.weights.h5")
    expected = build_ensemble({"fine": (networks["fine"], "mirror"), "coarse": (networks["coarse"], "image")})
    x = {"rgb": np.random.default_rng(0).uniform(0, 255, (1, 192, 192, 3)).astype("float32"),
         "ela": np.random.default_rng(1).uniform(0, 20, (1, 192, 192, 3)).astype("float32")}
    np.testing.assert_allclose(model.predict_on_batch(x), expected.predict_on_batch(x), atol=5e-3)  # float16 as shipped
    (shipped / "pair_coarse.npz").unlink()  # a member's weights missing: not offered as shipped
    assert pretrained.available() == []


@pytest.mark.slow
def test_an_ensemble_refuses_members_that_read_other_inputs_or_another_split(tmp_path):
    first = _fake_run(tmp_path / "first", 32, seed=0)
    other_quality = _fake_run(tmp_path / "quality", 32, seed=1, ela_quality=75)
    other_split = _fake_run(tmp_path / "split", 32, seed=1, validation="casia1/c\n")
    with pytest.raises(ValueError, match="quality: its input settings .* differ from the first member's"):
        export_ensemble({"a": (first, "image"), "b": (other_quality, "mirror")}, "x", card={}, destination=tmp_path / "w")
    with pytest.raises(ValueError, match="split: its split lists differ from the first member's"):
        export_ensemble({"a": (first, "image"), "b": (other_split, "mirror")}, "x", card={}, destination=tmp_path / "w2")


def test_the_default_model_is_one_small_network_and_reproduces_its_recorded_map():
    """The default (issue 22): one network, at most 12 M parameters and 20 MB shipped, loaded offline, giving the map
    recorded when it shipped on a packaged photo."""
    from pmsp_utils.data import load_photo
    from pmsp_utils.network import ensemble_members
    from pmsp_utils.pipeline import localize

    name = pretrained.DEFAULT_MODEL
    card = pretrained.model_card(name)
    assert not card.get("members") and (pretrained.WEIGHTS_DIR / f"{name}.npz").stat().st_size <= 20_000_000
    model = load_model().model
    assert not ensemble_members(model) and model.count_params() <= 12_000_000
    recorded = np.load(Path(__file__).parent / "data" / f"{name}_reference_map.npz")
    probability = localize(model, load_photo(str(recorded["photo"]))).probability
    blocks = probability[: probability.shape[0] // 16 * 16, : probability.shape[1] // 16 * 16]
    blocks = blocks.reshape(blocks.shape[0] // 16, 16, blocks.shape[1] // 16, 16).mean(axis=(1, 3))
    assert np.abs(blocks - recorded["blocks"]).max() < 2e-3
