"""The PMSP network: architecture, variants, weights, saving, inference, and two Keras backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="the model needs Keras: pip install -e '.[keras]'")

from pmsp_utils.network import (  # noqa: E402
    FEATURE_LAYERS,
    CoordinateAttention,
    WeightsUnavailableError,
    build_pmsp,
    fold_batch_norm,
    load_backbone_weights,
    mobilenet_v1_stream,
    nearest_valid_sizes,
)
from pmsp_utils.network import imagenet as weights_module  # noqa: E402
from pmsp_utils.pipeline import localize  # noqa: E402

SIZE = 192


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_pmsp(SIZE, dropout=0.0, verbose=False)  # no dropout: outputs under training=True are repeatable


def test_stream_equals_keras_applications_mobilenet():
    reference = keras.applications.MobileNet(input_shape=(SIZE, SIZE, 3), include_top=False, weights=None)
    stream = mobilenet_v1_stream((SIZE, SIZE, 3), "rgb_stream", attention="none")
    reference_weights = {layer.name: layer.get_weights() for layer in reference.layers if layer.weights}
    ours = [layer for layer in stream.layers if layer.weights]
    assert {layer.name for layer in ours} == set(reference_weights)
    for layer in ours:
        layer.set_weights(reference_weights[layer.name])
    x = np.random.default_rng(0).uniform(-1, 1, (1, SIZE, SIZE, 3)).astype("float32")
    features = stream(x, training=True)
    expected = keras.Model(reference.input, [reference.get_layer(name).output for name in FEATURE_LAYERS.values()])(x, training=True)
    for mine, theirs in zip(features, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs), atol=1e-5)


@pytest.mark.parametrize("output_stride, strides", [(32, [2, 4, 8, 16, 32]), (16, [2, 4, 8, 16, 16]), (8, [2, 4, 8, 8, 8])])
def test_output_stride_keeps_the_last_levels_at_its_resolution(output_stride, strides):
    stream = mobilenet_v1_stream((SIZE, SIZE, 3), "s", output_stride=output_stride)
    assert [SIZE // int(f.shape[1]) for f in stream.outputs] == strides
    plain = mobilenet_v1_stream((SIZE, SIZE, 3), "s")
    assert stream.count_params() == plain.count_params()  # dilation adds no weight
    dilations = [layer.dilation_rate[0] for layer in stream.layers if isinstance(layer, keras.layers.DepthwiseConv2D)]
    # TF-slim / DeepLab: the block that would have halved the map keeps the old rate, later blocks are dilated.
    expected = {32: [1] * 13, 16: [1] * 12 + [2], 8: [1] * 6 + [2] * 6 + [4]}[output_stride]
    assert dilations == expected


@pytest.mark.parametrize("output_stride, decoder, grid", [(32, "none", 6), (16, "none", 12), (8, "none", 24), (32, "f3", 24), (16, "f3", 24)])
def test_output_stride_and_decoder_set_the_prediction_grid(output_stride, decoder, grid):
    from pmsp_utils.model_settings import prediction_stride

    model = build_pmsp(SIZE, output_stride=output_stride, decoder=decoder, verbose=False)
    assert tuple(model.get_layer("head_logits").output.shape[1:3]) == (grid, grid)
    assert tuple(model.output.shape) == (None, SIZE, SIZE, 1)
    assert SIZE // prediction_stride(output_stride, decoder) == grid
    pool = model.get_layer("ppm_pool_6")  # pool sizes follow F5's size
    assert pool.pool_size == (SIZE // output_stride // 6,) * 2
    assert model.pmsp_settings.output_stride == output_stride and model.pmsp_settings.decoder == decoder


@pytest.mark.parametrize("output_stride, size, message", [(16, 100, "multiple of 96. Nearest: 96 or 192"),
                                                           (8, 200, "multiple of 48. Nearest: 192 or 240")])
def test_input_size_rule_follows_the_stride(output_stride, size, message):
    with pytest.raises(ValueError, match=message):
        build_pmsp(size, output_stride=output_stride, verbose=False)
    build_pmsp(96 if output_stride == 16 else 48, output_stride=output_stride, streams="rgb", verbose=False)


def test_five_feature_levels_at_strides_2_to_32():
    stream = mobilenet_v1_stream((576, 576, 3), "rgb_stream")
    assert [tuple(output.shape[1:]) for output in stream.outputs] == [
        (288, 288, 64), (144, 144, 128), (72, 72, 256), (36, 36, 512), (18, 18, 1024)]


def test_attention_placements():
    names = lambda m: [layer.name for layer in m.layers if isinstance(layer, CoordinateAttention)]  # noqa: E731
    assert names(mobilenet_v1_stream((SIZE, SIZE, 3), "s", attention="features")) == ["coord_attention_f3", "coord_attention_f4", "coord_attention_f5"]
    assert names(mobilenet_v1_stream((SIZE, SIZE, 3), "s", attention="none")) == []
    inside = names(mobilenet_v1_stream((SIZE, SIZE, 3), "s", attention="blocks"))
    assert inside == [f"coord_attention_dw_{block}" for block in range(4, 14)]


def test_coordinate_attention_follows_the_paper():
    layer = CoordinateAttention()
    x = np.random.default_rng(1).normal(size=(2, 12, 10, 256)).astype("float32")
    y = layer(x)
    assert layer.squeeze.filters == 8 and layer.attend_height.filters == 256  # max(8, 256 / 32)
    assert CoordinateAttention().__call__(np.zeros((1, 4, 4, 1024), "float32")).shape == (1, 4, 4, 1024)
    attention_height, attention_width = layer.attention_maps(x)
    assert tuple(attention_height.shape) == (2, 12, 1, 256) and tuple(attention_width.shape) == (2, 1, 10, 256)
    expected = x * keras.ops.convert_to_numpy(attention_height) * keras.ops.convert_to_numpy(attention_width)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), expected, rtol=1e-5, atol=1e-6)
    assert 0 < keras.ops.convert_to_numpy(attention_height).min() and keras.ops.convert_to_numpy(attention_width).max() < 1


def test_coordinate_attention_against_an_independent_computation():
    """Hou et al.'s block written out in NumPy from the layer's weights: pool along W and along H, one shared 1x1
    squeeze over both, BN, h-swish, split, a 1x1 convolution and a sigmoid per direction, y = x * a_h * a_w."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 5, 64)).astype("float32")
    layer = CoordinateAttention()
    layer(x)  # build
    for variable in layer.weights:  # random values everywhere, BN statistics included, so every term matters
        shape = tuple(variable.shape)
        value = rng.uniform(0.5, 1.5, shape) if "variance" in variable.path else rng.normal(scale=0.3, size=shape)
        variable.assign(value.astype("float32"))
    got = keras.ops.convert_to_numpy(layer(x, training=False))

    def conv1x1(values, conv):
        kernel, bias = (keras.ops.convert_to_numpy(w) for w in conv.weights)
        return values @ kernel[0, 0] + bias

    pooled_height = x.mean(axis=2)  # (B, H, C): average over the width
    pooled_width = x.mean(axis=1)  # (B, W, C): average over the height
    joint = conv1x1(np.concatenate([pooled_height, pooled_width], axis=1), layer.squeeze)  # one squeeze, shared
    gamma, beta, mean, variance = (keras.ops.convert_to_numpy(w) for w in layer.norm.weights)
    joint = gamma * (joint - mean) / np.sqrt(variance + layer.norm.epsilon) + beta
    joint = joint * np.clip(joint + 3.0, 0.0, 6.0) / 6.0  # h-swish
    sigmoid = lambda values: 1.0 / (1.0 + np.exp(-values))  # noqa: E731
    attention_height = sigmoid(conv1x1(joint[:, :6], layer.attend_height))[:, :, None, :]  # (B, H, 1, C)
    attention_width = sigmoid(conv1x1(joint[:, 6:], layer.attend_width))[:, None, :, :]  # (B, 1, W, C)
    np.testing.assert_allclose(got, x * attention_height * attention_width, rtol=1e-4, atol=1e-5)
    assert layer.squeeze.filters == 8  # max(8, 64 / 32)


def test_output_and_parameters(model):
    assert [t.name for t in model.inputs] == ["rgb", "ela"]
    assert tuple(model.output.shape) == (None, SIZE, SIZE, 1)
    assert model.get_layer("fusion_add") is not None
    x = {"rgb": np.full((1, SIZE, SIZE, 3), 128, "float32"), "ela": np.zeros((1, SIZE, SIZE, 3), "float32")}
    y = keras.ops.convert_to_numpy(model(x))
    assert y.shape == (1, SIZE, SIZE, 1) and (0 <= y).all() and (y <= 1).all()


def test_add_fusion_has_fewer_parameters_after_it_than_concat():
    after = lambda m: sum(layer.count_params() for layer in m.layers if layer.name.startswith(("ppm", "head")))
    add, concat = build_pmsp(SIZE, fusion="add", verbose=False), build_pmsp(SIZE, fusion="concat", verbose=False)
    assert concat.get_layer("fusion_concat").output.shape[-1] == 2048
    assert 0.5 <= after(add) / after(concat) < 0.7


def test_single_stream_variants():
    rgb = build_pmsp(SIZE, streams="rgb", verbose=False)
    assert [t.name for t in rgb.inputs] == ["rgb"] and rgb.name == "pmsp_rgb_features"
    assert [t.name for t in build_pmsp(SIZE, streams="ela", attention="none", verbose=False).inputs] == ["ela"]


@pytest.mark.parametrize("size, nearest", [(500, "384 or 576"), (100, "192"), (577, "576 or 768")])
def test_invalid_sizes_name_the_nearest_valid_ones(size, nearest):
    with pytest.raises(ValueError, match=f"multiple of 192. Nearest: {nearest}"):
        build_pmsp(size)
    assert nearest_valid_sizes(576) == (576,)


def test_invalid_arguments():
    for argument in ({"attention": "everywhere"}, {"fusion": "multiply"}, {"streams": "noise"}):
        with pytest.raises(ValueError, match="must be one of"):
            build_pmsp(SIZE, **argument)
    with pytest.raises(TypeError, match="must be an integer"):
        build_pmsp(576.0)


# --- weights --------------------------------------------------------------------------


def write_legacy_h5(path: Path, skip: tuple[str, ...] = ("conv_pw_13",)) -> keras.Model:
    """A Keras 2 style weights file from a random MobileNet, without the layers in ``skip``."""
    import h5py

    keras.utils.set_random_seed(3)
    reference = keras.applications.MobileNet(input_shape=(224, 224, 3), include_top=False, weights=None)
    layers = [layer for layer in reference.layers if layer.weights and layer.name not in skip]
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [layer.name.encode() for layer in layers]
        for layer in layers:
            group = handle.create_group(layer.name)
            names = [f"{layer.name}/{w.path.split('/')[-1]}:0" for w in layer.weights]
            group.attrs["weight_names"] = [name.encode() for name in names]
            for name, value in zip(names, layer.get_weights()):
                group.create_dataset(name, data=value)
    return reference


@pytest.mark.parametrize("output_stride", [32, 16, 8])
def test_local_h5_loads_by_name_and_reports(tmp_path, output_stride):
    reference = write_legacy_h5(tmp_path / "mobilenet.h5")
    model = build_pmsp(SIZE, verbose=False, output_stride=output_stride)  # dilation changes no weight
    report = load_backbone_weights(model, tmp_path / "mobilenet.h5")
    assert len(report.filled) == 106 and report.missing == ["rgb_stream/conv_pw_13", "ela_stream/conv_pw_13"]
    assert "filled 106 of 108" in str(report) and "conv_pw_13" in str(report)
    for stream in ("rgb_stream", "ela_stream"):
        for name in ("conv1", "conv_dw_7_bn", "conv_pw_12"):
            for mine, theirs in zip(model.get_layer(stream).get_layer(name).get_weights(), reference.get_layer(name).get_weights()):
                np.testing.assert_array_equal(mine, theirs)


def test_bad_weight_files(tmp_path):
    model = build_pmsp(SIZE, streams="rgb", verbose=False)
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        load_backbone_weights(model, tmp_path / "none.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ValueError, match="not an HDF5 weights file"):
        load_backbone_weights(model, tmp_path / "text.h5")
    model.save_weights(tmp_path / "keras3.weights.h5")
    with pytest.raises(ValueError, match="not a legacy Keras .h5"):
        load_backbone_weights(model, tmp_path / "keras3.weights.h5")


def test_imagenet_offline_gives_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com: None -- [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(weights_module.keras.utils, "get_file", no_network)
    with pytest.raises(WeightsUnavailableError, match="Could not download the ImageNet weights.*mobilenet_1_0_224_tf_no_top.h5.*weights='path/to"):
        build_pmsp(SIZE, weights="imagenet")


def test_imagenet_uses_the_keras_cache_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    write_legacy_h5(tmp_path / "models" / "mobilenet_1_0_224_tf_no_top.h5", skip=())
    monkeypatch.setattr(weights_module.keras.utils, "get_file", lambda *a, **k: pytest.fail("downloaded although cached"))
    report = load_backbone_weights(build_pmsp(SIZE, verbose=False), "imagenet")
    assert len(report.filled) == 108 and not report.missing and report.source == "ImageNet (Keras)"


# --- saving, inference ----------------------------------------------------------------


def test_save_and_load_keras_file_in_safe_mode(model, tmp_path):
    path = tmp_path / "pmsp.keras"
    model.save(path)
    from pmsp_utils.models import _read_keras

    loaded = _read_keras(path)
    x = {"rgb": np.random.default_rng(0).uniform(0, 255, (1, SIZE, SIZE, 3)).astype("float32"),
         "ela": np.random.default_rng(1).uniform(0, 20, (1, SIZE, SIZE, 3)).astype("float32")}
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=True)), keras.ops.convert_to_numpy(model(x, training=True)), atol=1e-6)
    with pytest.raises(FileNotFoundError):
        _read_keras(tmp_path / "missing.keras")


@pytest.mark.parametrize("policy", ["resize", "tile"])
def test_localize_returns_a_map_at_the_image_size(model, photo, policy):
    result = localize(model, photo, policy=policy)
    assert result.probability.shape == photo.shape[:2] and result.probability.dtype == np.float32
    assert (0 <= result.probability).all() and (result.probability <= 1).all()
    large = np.tile(photo, (4, 4, 1))  # 492 x 628: several tiles
    assert localize(model, large, policy=policy).probability.shape == large.shape[:2]


def test_localize_bad_arguments(model, photo):
    with pytest.raises(ValueError, match="policy must be one of"):
        localize(model, photo, policy="crop")
    with pytest.raises(ValueError, match="overlap"):
        localize(model, photo, policy="tile", overlap=1.0)


# --- batch normalisation folded for inference -------------------------------------------


def randomise_batch_norms(model, seed: int = 0) -> int:
    """Give every batch normalisation (nested ones included) statistics far from the identity; returns their count."""
    rng, count = np.random.default_rng(seed), 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            values = {"gamma": rng.uniform(0.5, 2.0, channels), "beta": rng.normal(0, 0.5, channels),
                      "moving_mean": rng.normal(0, 0.5, channels), "moving_variance": rng.uniform(0.2, 3.0, channels)}
            for variable in layer.weights:
                variable.assign(values[variable.name].astype("float32"))
            count += 1
    return count


def test_folding_keeps_the_map_and_skips_what_it_cannot_fold():
    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="with_bias")(inputs)  # a bias of its own
    a = keras.layers.BatchNormalization(scale=False, name="a_bn")(a)
    b = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", use_bias=False, name="dw")(a)
    b = keras.layers.BatchNormalization(name="dw_bn")(b)
    shared = keras.layers.Conv2D(8, 1, use_bias=False, name="shared")(b)  # read twice: cannot be folded
    c = keras.layers.BatchNormalization(name="shared_bn")(shared)
    outputs = keras.layers.Add()([c, shared])
    model = keras.Model(inputs, outputs)
    assert randomise_batch_norms(model) == 3
    folded = fold_batch_norm(model)
    assert folded.pmsp_folded == 2
    assert [type(folded.get_layer(name)).__name__ for name in ("a_bn", "dw_bn", "shared_bn")] == ["Folded", "Folded", "BatchNormalization"]
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(folded(x, training=False)), expected, rtol=1e-4, atol=1e-4)
    assert np.abs(expected).max() > 1.0, "statistics far from the identity, or folding would be untested"


@pytest.mark.parametrize("variant", [{"output_stride": 32}, {"output_stride": 16, "decoder": "f3"}])
def test_folded_network_predicts_the_same_maps(variant):
    keras.utils.set_random_seed(0)
    network = build_pmsp(SIZE, dropout=0.0, verbose=False, **variant)
    normalisations = randomise_batch_norms(network)
    folded = fold_batch_norm(network)
    inside_attention = 2 * 3  # Coordinate Attention keeps its own (a layer of its own, not a graph node): 3 per stream
    assert folded.pmsp_folded == normalisations - inside_attention
    left = [layer.path for layer in folded._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(left) == inside_attention and all("coord_attention" in path for path in left), left
    x = {"rgb": np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32"),
         "ela": np.random.default_rng(1).uniform(0, 20, (2, SIZE, SIZE, 3)).astype("float32")}
    expected = keras.ops.convert_to_numpy(network(x, training=False))
    assert expected.std() > 1e-3
    np.testing.assert_allclose(keras.ops.convert_to_numpy(folded(x, training=False)), expected, atol=2e-5)
    assert [layer.name for layer in folded.layers] == [layer.name for layer in network.layers]


# --- ensembles: several networks averaged, each seeing the image or its mirror ---------


@pytest.mark.slow
def test_ensemble_averages_each_members_view_and_folds_and_saves(tmp_path):
    from pmsp_utils.model_settings import ModelSettings
    from pmsp_utils.network import build_ensemble, ensemble_members
    from pmsp_utils.models import load_model, save_model

    keras.utils.set_random_seed(0)
    first = build_pmsp(SIZE, output_stride=16, decoder="f3", dropout=0.0, verbose=False)
    second = build_pmsp(SIZE, dropout=0.0, verbose=False)
    randomise_batch_norms(first), randomise_batch_norms(second, seed=1)
    ensemble = build_ensemble({"fine": (first, "mirror"), "coarse": (second, "image")})
    assert list(ensemble_members(ensemble)) == ["fine", "coarse"] and ensemble_members(first) == {}
    assert ensemble.count_params() == first.count_params() + second.count_params()
    rng = np.random.default_rng(0)
    x = {"rgb": rng.uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32"), "ela": rng.uniform(0, 20, (2, SIZE, SIZE, 3)).astype("float32")}
    mirrored = {name: values[:, :, ::-1] for name, values in x.items()}
    # By hand: the first member on the mirrored image, its map mirrored back; the second on the image; the mean. The
    # members, the folded pair and the reloaded one run eagerly (tracing each for predict_on_batch cost 2-4 s apiece);
    # the pair itself through predict_on_batch, as localize runs it.
    def run(model, inputs):
        return keras.ops.convert_to_numpy(model(inputs, training=False))

    expected = 0.5 * (run(first, mirrored)[:, :, ::-1] + run(second, x))
    predicted = ensemble.predict_on_batch(x)
    np.testing.assert_allclose(predicted, expected, atol=1e-6)
    assert np.abs(predicted - 0.5 * (run(first, x) + run(second, x))).max() > 1e-3, "the mirror must matter"
    folded = fold_batch_norm(ensemble)
    assert folded.pmsp_folded == fold_batch_norm(first).pmsp_folded + fold_batch_norm(second).pmsp_folded
    np.testing.assert_allclose(run(folded, x), predicted, atol=2e-5)
    save_model(ensemble, tmp_path / "pair.keras", ModelSettings(input_size=SIZE, output_stride=16, decoder="f3"))
    loaded = load_model(tmp_path / "pair.keras")
    assert list(ensemble_members(loaded.model)) == ["fine", "coarse"]
    np.testing.assert_allclose(run(loaded.model, x), predicted, atol=1e-6)


def test_ensemble_refuses_what_does_not_fit():
    from pmsp_utils.network import build_ensemble

    one = build_pmsp(SIZE, verbose=False)
    with pytest.raises(ValueError, match="at least two members"):
        build_ensemble({"one": (one, "image")})
    with pytest.raises(ValueError, match="member 'two': view must be one of"):
        build_ensemble({"one": (one, "image"), "two": (build_pmsp(SIZE, verbose=False), "upside-down")})
    with pytest.raises(ValueError, match="take different inputs"):
        build_ensemble({"one": (one, "image"), "two": (build_pmsp(2 * SIZE, verbose=False), "image")})


def test_multiply_adds_by_hand():
    from keras import layers

    from pmsp_utils.network.counting import count_after, multiply_adds

    inputs = keras.Input((72, 72, 256))
    standard = keras.Model(inputs, layers.Conv2D(256, 3, padding="same", use_bias=False)(inputs))
    depthwise = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(inputs)
    separable = keras.Model(inputs, layers.Conv2D(256, 1, use_bias=False)(depthwise))
    assert multiply_adds(standard) == 72 * 72 * 3 * 3 * 256 * 256
    assert multiply_adds(separable) == 72 * 72 * 3 * 3 * 256 + 72 * 72 * 256 * 256
    attention_in = keras.Input((12, 10, 256))
    attention = keras.Model(attention_in, CoordinateAttention()(attention_in))
    assert multiply_adds(attention) == (12 + 10) * 256 * 8 * 2
    model = build_pmsp(SIZE, verbose=False)
    parameters, _ = count_after(model, ("head_logits",))
    assert parameters == 128 + 1
    # MobileNet 1.0 at 224 is 569 million multiply-adds (Howard et al. 2017, Table 8).
    mobilenet = keras.applications.MobileNet(input_shape=(224, 224, 3), include_top=True, weights=None)
    assert abs(multiply_adds(mobilenet) - 569e6) / 569e6 < 0.01


def test_available_imagenet_weights_never_downloads(tmp_path, monkeypatch):
    from pmsp_utils.network.imagenet import available_imagenet_weights

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("PMSP_IMAGENET_WEIGHTS", raising=False)
    monkeypatch.setattr(weights_module.keras.utils, "get_file", lambda *a, **k: pytest.fail("downloaded"))
    assert available_imagenet_weights() is None
    local = tmp_path / "mine.h5"
    local.write_bytes(b"x")
    monkeypatch.setenv("PMSP_IMAGENET_WEIGHTS", str(local))
    assert available_imagenet_weights() == local
    monkeypatch.setenv("PMSP_IMAGENET_WEIGHTS", str(tmp_path / "missing.h5"))
    with pytest.raises(FileNotFoundError, match="is not a file"):
        available_imagenet_weights()
