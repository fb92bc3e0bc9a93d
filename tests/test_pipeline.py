"""One image-to-input pipeline for training and inference; settings carried with every model; the grid ceiling."""

from __future__ import annotations

import json
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from pmsp_utils.metrics import best_grid_map, perfect_map_f1
from pmsp_utils.model_settings import ModelSettings, read_keras_settings
from pmsp_utils.pipeline import IGNORE, from_output, geometry, to_input, valid_region

# --- the pipeline, without Keras ----------------------------------------------------------


def test_resize_policy_stretches_and_comes_back():
    image = np.random.default_rng(0).integers(0, 255, (256, 384, 3), dtype=np.uint8)
    mask = np.zeros((256, 384), np.uint8)
    mask[10:50, 20:90] = 1
    rgb, ela_map, small, where = to_input(image, image, mask, 192, "resize")
    assert rgb.shape == ela_map.shape == (192, 192, 3) and small.shape == (192, 192)
    assert set(np.unique(small)) == {0, 1}
    assert from_output(np.ones((192, 192), np.float32), where).shape == (256, 384)


def test_pad_policy_keeps_the_pixels_and_marks_the_padding():
    image = np.random.default_rng(0).integers(0, 255, (256, 384, 3), dtype=np.uint8)
    mask = np.zeros((256, 384), np.uint8)
    mask[100:120, 300:340] = 1
    rgb, ela_map, small, where = to_input(image, image // 2, mask, 384, "pad")
    np.testing.assert_array_equal(rgb[:256], image)  # the image at its own pixels, no resampling
    np.testing.assert_array_equal(ela_map[:256], image // 2)
    assert (rgb[256:] == 0).all() and (small[256:] == IGNORE).all()
    np.testing.assert_array_equal(small[:256], mask)
    assert valid_region(small) == (slice(0, 256), slice(0, 384))
    planted = np.zeros((384, 384), np.float32)
    planted[256:] = 1.0  # a prediction in the padding is cropped away
    assert from_output(planted, where).max() == 0.0 and from_output(planted, where).shape == (256, 384)


def test_pad_policy_shrinks_a_larger_image_keeping_its_aspect():
    where = geometry(600, 1200, 384, "pad")
    assert (where.placed_height, where.placed_width) == (192, 384)
    image = np.zeros((600, 1200, 3), np.uint8)
    rgb, _, _, where = to_input(image, image, None, 384, "pad")
    assert rgb.shape == (384, 384, 3)
    assert from_output(np.full((384, 384), 0.7, np.float32), where).shape == (600, 1200)


def test_pipeline_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="policy must be one of"):
        geometry(10, 10, 192, "crop")
    with pytest.raises(ValueError, match="differ in size"):
        to_input(np.zeros((10, 10, 3), np.uint8), np.zeros((10, 12, 3), np.uint8), None, 192, "pad")


class RecordingModel:
    """Stands in for a Keras model: records what it is fed and answers a constant map."""

    def __init__(self, size: int, names=("rgb", "ela")) -> None:
        self.inputs = [SimpleNamespace(name=name, shape=(None, size, size, 3)) for name in names]
        self.fed: list[dict] = []

    def predict_on_batch(self, inputs):
        self.fed.append({name: np.array(value) for name, value in inputs.items()})
        first = next(iter(inputs.values()))
        return np.full(first.shape[:3] + (1,), 0.25, np.float32)


@pytest.mark.parametrize("policy", ["resize", "pad"])
def test_training_and_localize_feed_the_network_the_same_arrays(tmp_path, cache_folder, policy):
    """The same JPEG through the training pipeline (its batches, from the input cache) and through localize gives
    bit-identical network inputs."""
    from pmsp_utils.data.records import Record
    from pmsp_utils.data.synthetic import SyntheticForgerySet
    from pmsp_utils.ela import ElaCache, ElaSettings
    from pmsp_utils.pipeline import localize
    from pmsp_utils.train import TrainConfig, make_sequence

    forgery = SyntheticForgerySet(2, seed=3)[0]
    image = forgery.image[:150, :230]  # not square, not a multiple of 8
    path = tmp_path / "photo.jpg"
    Image.fromarray(image).save(path, quality=85)
    Image.fromarray(np.zeros(image.shape[:2], np.uint8)).save(tmp_path / "mask.png")
    record = Record("folder", "photo", "splicing", path, tmp_path / "mask.png")
    settings = ModelSettings(input_size=192, ela_quality=80, policy=policy)
    config = TrainConfig(data="folder", input_size=192, batch_size=1, workers=1, weights=None, policy=policy, ela_quality=80)
    batch, _ = make_sequence([record], config, shuffle=False, augment=False, ela_cache=ElaCache(settings=ElaSettings(quality=80)))[0]
    model = RecordingModel(192)
    result = localize(model, path, settings=settings)
    np.testing.assert_array_equal(model.fed[0]["rgb"][0], batch["rgb"][0].astype(np.float32))
    np.testing.assert_array_equal(model.fed[0]["ela"][0], batch["ela"][0].astype(np.float32))
    assert result.probability.shape == image.shape[:2] and np.allclose(result.probability, 0.25)


def test_localize_reads_the_ela_quality_from_the_settings(photo):
    from pmsp_utils.ela import ela
    from pmsp_utils.pipeline import localize

    fed = {}
    for quality in (70, 95):
        model = RecordingModel(192)
        localize(model, photo, settings=ModelSettings(input_size=192, ela_quality=quality, policy="pad"))
        fed[quality] = model.fed[0]["ela"][0, :123, :157]
        np.testing.assert_array_equal(fed[quality], ela(photo, quality=quality).astype(np.float32))
    assert not np.array_equal(fed[70], fed[95])


def test_localize_without_settings_says_what_to_do(photo):
    from pmsp_utils.pipeline import localize

    with pytest.raises(ValueError, match="carries none: load it with pmsp_utils.models.load_model"):
        localize(RecordingModel(192), photo)


def test_flip_augmentation_averages_the_mirrored_map(photo):
    from pmsp_utils.pipeline import localize

    class LeftHalf(RecordingModel):
        def predict_on_batch(self, inputs):
            first = next(iter(inputs.values()))
            answer = np.zeros(first.shape[:3] + (1,), np.float32)
            answer[:, :, : first.shape[2] // 2] = 1.0
            return answer

    settings = ModelSettings(input_size=192, policy="resize")
    plain = localize(LeftHalf(192), photo, settings=settings).probability
    flipped = localize(LeftHalf(192), photo, settings=settings, flip=True).probability
    assert plain[:, 0].mean() > 0.9 and plain[:, -1].mean() < 0.1
    assert np.allclose(flipped, 0.5, atol=0.05)  # left half and its mirror average to one half everywhere


# --- padding ignored by the metrics and the losses ------------------------------------------


def test_validation_metrics_ignore_a_planted_prediction_in_the_padding():
    from pmsp_utils.train import evaluate_pixels

    masks = np.full((1, 96, 96), IGNORE, np.uint8)
    masks[0, :64, :80] = 0
    masks[0, 10:30, 10:30] = 1
    targets = np.where(masks == IGNORE, -1.0, masks).astype(np.float32)[..., None]  # as the training batches hold them

    class Planted:
        loss = None

        def __init__(self, padding_value):
            self.padding_value = padding_value

        def predict_on_batch(self, inputs):
            answer = np.full((1, 96, 96, 1), self.padding_value, np.float32)
            answer[0, :64, :80] = 0.0
            answer[0, 10:30, 10:30] = 0.9
            return answer

    sequence = [({"rgb": np.zeros((1, 96, 96, 3), np.float32)}, targets)]
    clean, planted = evaluate_pixels(Planted(0.0), sequence), evaluate_pixels(Planted(1.0), sequence)
    assert clean["per_image_f1@0.5"] == planted["per_image_f1@0.5"] == pytest.approx(1.0)
    assert clean["pooled_auc"] == planted["pooled_auc"]


def test_losses_ignore_the_padding():
    pytest.importorskip("keras")
    import keras

    from pmsp_utils.network.losses import BinaryFocal, WeightedBceDice, WeightedBinaryCrossentropy

    target = np.zeros((1, 16, 16, 1), np.float32)
    target[0, 4:8, 4:8] = 1.0
    target[0, 12:] = -1.0  # padding
    inside = np.full((1, 16, 16, 1), 0.2, np.float32)
    inside[0, 4:8, 4:8] = 0.7
    for loss in (WeightedBinaryCrossentropy(2.0), WeightedBceDice(), BinaryFocal()):
        values = []
        for padding_value in (0.01, 0.99):
            prediction = inside.copy()
            prediction[0, 12:] = padding_value
            values.append(float(keras.ops.convert_to_numpy(loss(target, prediction))))
        assert values[0] == pytest.approx(values[1], rel=1e-6), type(loss).__name__
    cropped = WeightedBinaryCrossentropy()(target[:, :12], inside[:, :12])
    assert float(keras.ops.convert_to_numpy(WeightedBinaryCrossentropy()(target, inside))) == pytest.approx(
        float(keras.ops.convert_to_numpy(cropped)), rel=1e-6)


# --- settings travel with the model ---------------------------------------------------------


def test_settings_refuse_contradictions():
    with pytest.raises(ValueError, match="multiple of 96"):
        ModelSettings(input_size=200, output_stride=16)
    with pytest.raises(ValueError, match="policy must be one of"):
        ModelSettings(input_size=192, policy="stretch")
    with pytest.raises(ValueError, match="card.json: the model's saved settings do not fit together"):
        ModelSettings.from_dict({**ModelSettings(192).to_dict(), "decoder": "f5"}, source="card.json")
    with pytest.raises(ValueError, match="card.json: the model's saved settings lack attention, .*output_stride"):
        ModelSettings.from_dict({"input_size": 192}, source="card.json", required=ModelSettings.ARCHITECTURE)


def test_keras_file_settings_errors_name_the_file(tmp_path):
    plain = tmp_path / "plain.keras"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("config.json", "{}")
    with pytest.raises(ValueError, match="plain.keras: no saved pmsp settings"):
        read_keras_settings(plain)
    wrong = tmp_path / "wrong.keras"
    with zipfile.ZipFile(wrong, "w") as archive:
        archive.writestr("pmsp_settings.json", json.dumps({**ModelSettings(192).to_dict(), "input_size": 100}))
    with pytest.raises(ValueError, match="wrong.keras: the model's saved settings do not fit together"):
        read_keras_settings(wrong)
    (tmp_path / "text.keras").write_text("hello")
    with pytest.raises(ValueError, match="text.keras: not a readable .keras file"):
        read_keras_settings(tmp_path / "text.keras")


def test_settings_round_trip_through_keras_file_run_folder_and_card(tmp_path):
    pytest.importorskip("keras")
    from pmsp_utils import pretrained
    from pmsp_utils.network import build_pmsp
    from pmsp_utils.models import load_model, save_model, settings_of_run

    settings = ModelSettings(input_size=96, streams="rgb", output_stride=16, decoder="f3", ela_quality=85, policy="pad")
    model = build_pmsp(**settings.architecture(), verbose=False)
    save_model(model, tmp_path / "m.keras", settings)
    assert read_keras_settings(tmp_path / "m.keras") == settings
    loaded = load_model(tmp_path / "m.keras")
    assert loaded.settings == settings and loaded.model.pmsp_settings == settings
    np.testing.assert_array_equal(loaded.model.get_weights()[0], model.get_weights()[0])
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(settings.to_dict()))  # a run's config names its settings as ModelSettings does
    model.save_weights(run / "best.weights.h5")
    assert settings_of_run(run) == settings and load_model(run).settings == settings
    card = pretrained.model_card("casia1")
    assert load_model("casia1").settings == ModelSettings.from_dict(card["settings"])


@pytest.mark.slow
def test_shipped_model_loaded_for_inference_localizes_the_same(photo):
    pytest.importorskip("keras")
    from pmsp_utils.models import load_model
    from pmsp_utils.pipeline import localize

    plain, folded = load_model("casia1"), load_model("casia1", inference=True)
    assert folded.settings == plain.settings and folded.model.pmsp_settings == plain.settings
    assert folded.model.pmsp_folded >= 54 and folded.label == plain.label
    expected = localize(plain, photo).probability
    assert expected.max() - expected.min() > 0.05, "a map that varies, or the comparison means little"
    np.testing.assert_allclose(localize(folded, photo).probability, expected, atol=1e-4)


# --- the ceiling of an output grid ------------------------------------------------------------


def test_best_grid_map_is_each_cells_tampered_fraction():
    mask = np.zeros((64, 64), np.uint8)
    mask[:16, :32] = 1
    np.testing.assert_allclose(best_grid_map(mask, 32), [[0.5, 0.0], [0.0, 0.0]])


def test_perfect_map_f1_by_hand():
    """Left 16 of 64 columns tampered, stride 32 on a 64 input: the grid is [[0.5, 0], [0.5, 0]].

    Bilinear upsampling gives 0.5 for columns 0..15, then 0.5 * (1 - (x + 0.5 - 16) / 32):
    above 0.4 up to column 21. So 22 columns are claimed for 16 true ones: F1 = 2 * 16 / (22 + 16) = 0.842.
    At threshold 0.5 nothing is claimed (F1 0); at stride 8 the map is exact (F1 1).
    """
    mask = np.zeros((64, 64), np.uint8)
    mask[:, :16] = 1
    assert perfect_map_f1(mask, input_size=64, stride=32, threshold=0.4) == pytest.approx(32 / 38)
    assert perfect_map_f1(mask, input_size=64, stride=32, threshold=0.5) == 0.0
    assert perfect_map_f1(mask, input_size=64, stride=8) == pytest.approx(1.0)
    small = np.zeros((384, 256), np.uint8)
    small[100:110, 100:110] = 1  # 0.1% of the image: invisible to a 12x12 grid, visible to a 48x48 one
    assert perfect_map_f1(small, input_size=384, stride=32) == 0.0 and perfect_map_f1(small, input_size=384, stride=8) > 0.5


def test_other_models_and_files_are_refused_with_the_file_named(tmp_path):
    pytest.importorskip("keras")
    import keras

    from pmsp_utils.network import build_pmsp
    from pmsp_utils.models import init_weights_from, load_model

    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    other.save(tmp_path / "other.keras")
    with pytest.raises(ValueError, match="other.keras: no saved pmsp settings"):
        load_model(tmp_path / "other.keras")
    (tmp_path / "notes.weights.h5").write_text("not weights")
    model = build_pmsp(96, streams="rgb", output_stride=16, verbose=False)
    with pytest.raises(ValueError, match="notes.weights.h5: these weights do not fit this model"):
        init_weights_from(model, tmp_path / "notes.weights.h5")
    with pytest.raises(FileNotFoundError, match="not a shipped model"):
        init_weights_from(model, tmp_path / "notes.txt")
    report = init_weights_from(model, "synthetic")  # a stride-32 two-stream model fills the RGB stream and the head
    assert "filled" in report and "synthetic" in report
    # The shipped casia1 is an ensemble: a start from it takes its first member, whose layer names match.
    single = build_pmsp(192, output_stride=16, decoder="f3", verbose=False)
    report = init_weights_from(single, "casia1", strict=True)
    assert "member 'stride16' of the ensemble" in report and "kept fresh" not in report
    with pytest.raises(ValueError, match="not this network's architecture"):  # synthetic has no F3 decoder to give
        init_weights_from(single, "synthetic", strict=True)
    member = load_model("casia1").model.get_layer("stride16")
    np.testing.assert_array_equal(np.asarray(single.get_layer("head_logits").kernel),
                                  np.asarray(member.get_layer("head_logits").kernel))


def test_flip_follows_the_model_settings_unless_forced(photo):
    from dataclasses import replace

    from pmsp_utils.pipeline import localize

    class Counting(RecordingModel):
        pass

    settings = replace(ModelSettings(input_size=192), flip=True)
    model = Counting(192)
    localize(model, photo, settings=settings)
    fed = model.fed[-1]["rgb"]
    assert len(fed) == 2 and np.array_equal(fed[1], fed[0][:, ::-1])  # the image and its mirror, in one batch
    localize(model, photo, settings=settings, flip=False)
    assert len(model.fed[-1]["rgb"]) == 1
    assert ModelSettings.from_dict({**ModelSettings(192).to_dict(), "flip": True}).flip is True


def test_training_batches_pad_as_the_pipeline_says():
    """Padding has one source: the feed's empty batch is pipeline's pad value in the inputs and its ignored value
    in the targets, which the losses and the validation scoring skip."""
    from pmsp_utils.pipeline import PAD_VALUE, TARGET_IGNORE, empty_batch, valid_region

    rgb, ela, targets = empty_batch(2, 96)
    assert rgb.dtype == ela.dtype == np.uint8 and (rgb == PAD_VALUE).all() and (ela == PAD_VALUE).all()
    assert targets.shape == (2, 96, 96, 1) and (targets == TARGET_IGNORE).all()
    targets[0, :40, :30, 0] = 0.0  # an image of 40 x 30 placed top left
    rows, columns = valid_region(targets[0, ..., 0], ignore=TARGET_IGNORE)
    assert (rows.stop, columns.stop) == (40, 30)
    import inspect

    from pmsp_utils import feed, train

    assert "np.full(" not in inspect.getsource(feed) and "np.zeros((len(chosen)" not in inspect.getsource(feed)
    assert not hasattr(train, "ForgerySequence") and train.make_sequence is feed.make_sequence
