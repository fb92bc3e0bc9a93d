"""The light inference runtime (pmsp_utils.runtime): a LiteRT copy gives Keras' maps, is made once, and starts without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("keras", reason="exporting needs Keras")
pytest.importorskip("ai_edge_litert", reason="the light runtime needs ai-edge-litert")

from pmsp_utils.model_settings import ModelSettings  # noqa: E402
from pmsp_utils.runtime import export_lite, lite_path, load_for_inference, _load_lite, model_identity  # noqa: E402


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A 96x96 network (stride 16, F3 decoder) saved as .keras with its settings."""
    from pmsp_utils.network import build_pmsp
    from pmsp_utils.models import save_model

    settings = ModelSettings(input_size=96, output_stride=16, decoder="f3")
    model = build_pmsp(**settings.architecture(), weights=None, dropout=0.0, verbose=False)
    path = tmp_path_factory.mktemp("model") / "small.keras"
    save_model(model, path, settings)
    return path


@pytest.fixture(scope="module")
def exported(small_model, tmp_path_factory):
    """(cache folder, what was said): ``small_model``'s LiteRT copy, exported once for the module the way ``pmsp
    localize`` does on first use (an export takes about 7 s). :func:`with_copy` puts it into a test's own cache."""
    folder = tmp_path_factory.mktemp("exported")
    messages = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PMSP_CACHE_DIR", str(folder))
        assert _load_lite(small_model) is None  # nothing exported yet
        loaded = load_for_inference(small_model, echo=messages.append)
    assert "LiteRT" in loaded.label
    return folder, messages


def with_copy(exported, cache_folder):
    """The module's exported copy, placed in this test's cache (``cache_folder``, where PMSP_CACHE_DIR points)."""
    import shutil

    shutil.copytree(exported[0], cache_folder, dirs_exist_ok=True)
    return cache_folder


@pytest.mark.slow
def test_the_exported_copy_gives_keras_maps(small_model, exported, cache_folder, photo):
    from pmsp_utils.models import load_model
    from pmsp_utils.pipeline import localize

    keras_model = load_model(small_model, inference=True)
    assert _load_lite(small_model) is None  # an empty cache: nothing exported
    with_copy(exported, cache_folder)
    lite = _load_lite(small_model)
    assert lite is not None and lite.settings == keras_model.settings and "LiteRT" in lite.label
    for flip in (False, True):
        expected = localize(keras_model, photo, flip=flip).probability
        got = localize(lite, photo, flip=flip).probability
        assert got.shape == expected.shape == photo.shape[:2]
        assert np.abs(got - expected).max() < 1e-4
    assert np.abs(localize(lite, photo, policy="tile").probability - localize(keras_model, photo, policy="tile").probability).max() < 1e-4


@pytest.mark.slow
def test_the_fast_export_matches_keras_own_and_falls_back_to_it(small_model, exported, tmp_path, photo, monkeypatch):
    from pmsp_utils import runtime
    from pmsp_utils.models import LoadedModel, load_model
    from pmsp_utils.pipeline import localize

    keras_model = load_model(small_model, inference=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PMSP_CACHE_DIR", str(exported[0]))
        fast = lite_path(small_model)  # the module's export: the fast path

    def moved(model):
        raise ImportError("convert_variables_to_constants_v2 moved")

    monkeypatch.setattr(runtime, "_frozen_flatbuffer", moved)
    kept = export_lite(keras_model, tmp_path / "keras.tflite")  # Keras' own export, through a SavedModel
    assert fast.read_bytes() != kept.read_bytes()  # two converters really ran
    maps = [localize(LoadedModel(runtime.LiteModel(path, keras_model.settings), keras_model.settings, None, "lite"), photo).probability
            for path in (fast, kept)]
    assert np.array_equal(maps[0], maps[1])


def test_the_identity_follows_the_weights(small_model, tmp_path):
    copy = tmp_path / "copy.keras"
    copy.write_bytes(small_model.read_bytes())
    assert model_identity(copy) == model_identity(copy)
    assert model_identity(copy, 192) != model_identity(copy)
    before = model_identity(copy)
    copy.write_bytes(small_model.read_bytes() + b"\0")
    assert model_identity(copy) != before  # new weights, a new copy: a stale export is never used
    with pytest.raises(FileNotFoundError, match="not a shipped model"):
        model_identity(tmp_path / "nothing.keras")


@pytest.mark.slow
def test_auto_exports_once_then_starts_without_tensorflow(small_model, exported, cache_folder, tmp_path, photo):
    from PIL import Image

    Image.fromarray(photo).save(tmp_path / "a.jpg", quality=90)
    messages = exported[1]  # the first use exported, and said so once
    assert len(messages) == 1 and "once" in messages[0]
    with_copy(exported, cache_folder)
    assert lite_path(small_model).is_file()
    assert load_for_inference(small_model, echo=pytest.fail).label.endswith("(LiteRT)")  # the second use: no export
    code = ("import sys; from pmsp_utils.cli import main; "
            f"code = main(['localize', {str(tmp_path / 'a.jpg')!r}, '--out', {str(tmp_path / 'out')!r}, '--weights', {str(small_model)!r}]); "
            "print('keras imported' if 'keras' in sys.modules or 'tensorflow' in sys.modules else 'no keras'); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PMSP_CACHE_DIR": str(cache_folder), "PMSP_RUNTIME": "auto"})
    assert done.returncode == 0, done.stderr
    assert "no keras" in done.stdout and "(LiteRT)" in done.stdout and "XNNPACK" not in done.stderr
    assert (tmp_path / "out" / "a_jpg_probability.png").is_file()


def test_runtime_choices_are_checked(small_model):
    with pytest.raises(ValueError, match="PMSP_RUNTIME"):
        load_for_inference(small_model, runtime="fast")


@pytest.mark.slow
def test_prepare_exports_each_model_once_and_goes_on_past_a_bad_one(small_model, cache_folder, tmp_path, capsys, monkeypatch):
    from pmsp_utils import runtime
    from pmsp_utils.cli import main

    missing = tmp_path / "missing.keras"
    assert main(["prepare", "--weights", str(missing), str(small_model)]) == 1
    printed = capsys.readouterr()
    assert f"error: '{missing}'" in printed.err and "not a shipped model" in printed.err
    copy = lite_path(small_model)
    assert copy.is_file() and "exported in" in printed.out and str(copy) in printed.out  # the bad one did not stop it
    made = copy.stat().st_mtime_ns
    assert main(["prepare", "--weights", str(small_model)]) == 0
    assert "already prepared" in capsys.readouterr().out and copy.stat().st_mtime_ns == made  # not exported twice
    assert load_for_inference(small_model, echo=pytest.fail).label.endswith("(LiteRT)")  # localize finds it: no export
    monkeypatch.setattr(runtime, "litert_available", lambda: False)
    assert main(["prepare"]) == 0 and "nothing to prepare" in capsys.readouterr().out


def test_a_damaged_settings_file_of_a_cached_copy_is_named_with_what_to_do(tmp_path, monkeypatch):
    from pmsp_utils import runtime

    if not runtime.litert_available():
        pytest.skip("LiteRT is not installed here (its absence is tested elsewhere)")
    monkeypatch.setenv("PMSP_CACHE_DIR", str(tmp_path))
    path = runtime.lite_path("synthetic", None)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not read")
    path.with_name(path.name + ".json").write_text("{not json")
    with pytest.raises(ValueError, match=r"settings file is damaged .*; delete it and its"):
        runtime._load_lite("synthetic")


def test_an_unwritable_cache_falls_back_to_keras_and_names_the_variable(small_model, tmp_path, monkeypatch, capsys):
    """A cache that is a file (or read-only): the Keras model already loaded runs, with one line naming PMSP_CACHE_DIR;
    pmsp prepare blames the cache, not the model."""
    from pmsp_utils.cli import main

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PMSP_CACHE_DIR", str(blocker))
    loaded = load_for_inference(small_model, echo=lambda message: None)
    assert not loaded.label.endswith("(LiteRT)")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"note: PMSP_CACHE_DIR: {blocker} cannot be written") and "Keras" in err[0]
    assert main(["prepare", "--weights", str(small_model)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: PMSP_CACHE_DIR: {blocker} cannot be written (Not a directory); point PMSP_CACHE_DIR at a writable folder."]
    from pmsp_utils import runtime

    monkeypatch.delenv("PMSP_CACHE_DIR")  # the default place (a read-only HOME): the message suggests the variable
    said = runtime._unwritable(blocker / "lite", OSError(30, "Read-only file system"))
    assert said == f"the cache {blocker} cannot be written (Read-only file system); set PMSP_CACHE_DIR to a writable folder"


def test_a_copy_that_cannot_run_is_not_kept(small_model, cache_folder, monkeypatch, capsys):
    """LiteRT converts some graphs it cannot prepare ('SPLIT_V failed to prepare'): the copy is removed at once, so a
    rerun does not fail the same way, and the Keras model runs."""
    from pmsp_utils import runtime

    def cannot_prepare(path, settings):
        raise RuntimeError("tensorflow/lite/kernels/split_v.cc Node number 12 (SPLIT_V) failed to prepare.")

    def converted(loaded, path):  # what a conversion leaves: the settings and a flatbuffer (here a stand-in)
        path.with_name(path.name + ".json").write_text("{}")
        path.write_bytes(b"flatbuffer")

    monkeypatch.setattr(runtime, "export_lite", converted)
    monkeypatch.setattr(runtime, "_smoke_run", cannot_prepare)
    loaded = load_for_inference(small_model, echo=lambda message: None)
    assert not loaded.label.endswith("(LiteRT)") and "does not run" in capsys.readouterr().err
    copy = lite_path(small_model)
    assert not copy.exists() and not copy.with_name(copy.name + ".json").exists()


def test_settings_that_contradict_the_network_are_refused_by_name(tmp_path):
    """A .keras file whose settings say input 192 for a 96 network, or claim a decoder it lacks."""
    from dataclasses import replace

    from pmsp_utils.models import load_model, save_model
    from pmsp_utils.network import build_pmsp

    settings = ModelSettings(input_size=96, output_stride=16, decoder="none")
    network = build_pmsp(**settings.architecture(), weights=None, verbose=False)
    for wrong, said in ((replace(settings, input_size=192), "input size 192, but its rgb input is 96x96"),
                        (replace(settings, decoder="f3"), "decoder 'f3', but the network has no F3 decoder")):
        path = save_model(network, tmp_path / "wrong.keras", wrong)
        with pytest.raises(ValueError, match="its recorded settings do not describe its network") as caught:
            load_model(path)
        assert said in str(caught.value) and str(path) in str(caught.value)
    assert load_model(save_model(network, tmp_path / "right.keras", settings)).settings == settings


@pytest.mark.slow
def test_a_cached_copy_changed_since_its_export_is_replaced_not_trusted(small_model, exported, cache_folder, capsys):
    """1000 bytes flipped in the middle of the cached .tflite (same size) changed the map without a word, and an edited
    settings file (calibration, flip) changed the score: the settings file records the model's hash and its own, so
    either change, or a copy from before the hashes, is removed with one note and exported again."""
    import json
    import shutil

    from pmsp_utils.runtime import prepare_lite

    with_copy(exported, cache_folder)
    path = prepare_lite(small_model, echo=pytest.fail)  # already there: not exported
    described = path.with_name(path.name + ".json")
    kept = {file: file.read_bytes() for file in (path, described)}
    assert _load_lite(small_model) is not None and capsys.readouterr().err == ""

    def changed(what: str, change) -> None:
        for file, data in kept.items():
            file.write_bytes(data)
        change()
        assert _load_lite(small_model) is None, what
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"note: {path}: the cached LiteRT copy is not what pmsp exported ({what}" in err[0], err
        assert not path.exists() and not described.exists()

    def flip_bytes():
        data = bytearray(kept[path])
        middle = len(data) // 2
        data[middle : middle + 1000] = bytes(255 - byte for byte in data[middle : middle + 1000])
        path.write_bytes(bytes(data))

    def edit_settings(**changes):
        facts = json.loads(kept[described])
        facts.update(changes)
        described.write_text(json.dumps(facts))

    changed("the model file's bytes differ", flip_bytes)
    changed("its settings file was edited", lambda: edit_settings(settings={**json.loads(kept[described])["settings"], "flip": True}))
    changed("it was exported by an earlier version", lambda: edit_settings(sha256=None) or described.write_text(
        json.dumps({key: value for key, value in json.loads(kept[described]).items() if key not in ("sha256", "check")})))
    assert prepare_lite(small_model, echo=lambda line: None) == path and _load_lite(small_model) is not None  # exported again
    shutil.rmtree(cache_folder, ignore_errors=True)
