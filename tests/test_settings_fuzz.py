"""A settings fuzzer: mutated ``config.json`` files and model cards give a correct load or one named error.

Every field of a run's ``config.json`` and of a shipped card's ``settings`` is deleted or replaced by values of
the wrong kind (strings, lists, objects, null, booleans, NaN, infinities, huge and negative numbers, unknown choices),
and the files themselves are replaced by JSON of the wrong shape. Each mutation must either be read as valid
:class:`~pmsp_utils.model_settings.ModelSettings` or raise ``ValueError`` / ``FileNotFoundError`` whose message names
the file: never an ``AttributeError``, ``KeyError`` or ``TypeError`` from deep inside, which the command line can
only show as "unexpected, report it".
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import fields

import pytest

from pmsp_utils import pretrained
from pmsp_utils.model_settings import ModelSettings
from pmsp_utils.run_folder import settings_of_run

#: Values of every wrong kind, and a few right ones.
PALETTE = (None, "", "x", "576", "true", [], [576], {}, {"a": 1}, True, False, 0, -1, 1, 7, 96, 192, 10**12, 1.5, -0.5,
           90.0, math.nan, math.inf, -math.inf, "none", "f3", "pad", "raw")
#: Files that are valid JSON of the wrong shape, or not JSON.
WRONG_SHAPES = ("[]", "[1, 2]", '"settings"', "42", "null", "", "{", '{"input_size": 576,}')


def _outcome(read, path):
    """'ok' with valid settings, or the named error's type; anything else fails the test."""
    try:
        settings = read()
    except (ValueError, FileNotFoundError) as error:
        assert str(path) in str(error) or path.name in str(error), f"the error does not name {path.name}: {error}"
        assert "\n" not in str(error).strip(), f"not one line: {error}"
        return type(error).__name__
    assert isinstance(settings, ModelSettings)
    assert settings == ModelSettings(**settings.to_dict())  # what was read is a valid, self-consistent setting
    return "ok"


def _mutations(base: dict):
    names = [field.name for field in fields(ModelSettings)]
    for name in names:
        reduced = dict(base)
        reduced.pop(name, None)
        yield f"without {name}", reduced
        for value in PALETTE:
            yield f"{name}={value!r}", {**base, name: value}


def test_mutated_run_configs_load_or_name_the_file(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    base_model = ModelSettings(input_size=192, output_stride=16, decoder="f3").to_dict()
    base = {**base_model, "epochs": 3, "learning_rate": 1e-4}
    outcomes = {}
    for label, config in _mutations(base):
        (run / "config.json").write_text(json.dumps(config))
        outcomes[label] = _outcome(lambda: settings_of_run(run), run / "config.json")
    for text in WRONG_SHAPES:
        (run / "config.json").write_text(text)
        outcomes[f"file {text!r}"] = _outcome(lambda: settings_of_run(run), run / "config.json")
    for label, model in _mutations(base):  # the layout since 2026-12-03: the model's settings in their own object
        if label in ("without epochs", "without learning_rate"):
            continue
        (run / "config.json").write_text(json.dumps({"model": {k: v for k, v in model.items() if k in base_model}, "epochs": 3}))
        outcomes[f"model: {label}"] = _outcome(lambda: settings_of_run(run), run / "config.json")
    for value in PALETTE:
        (run / "config.json").write_text(json.dumps({"model": value, "epochs": 3}))
        outcomes[f"model={value!r}"] = _outcome(lambda: settings_of_run(run), run / "config.json")
    (run / "config.json").unlink()
    outcomes["no file"] = _outcome(lambda: settings_of_run(run), run / "config.json")
    # the fuzzer must exercise both outcomes, and the obvious cases must come out right
    assert outcomes["input_size=192"] == "ok" and outcomes["input_size='576'"] == "ValueError"
    assert outcomes["flip='true'"] == "ValueError" and outcomes["ela_gain=nan"] == "ValueError"
    assert outcomes["file '[]'"] == "ValueError" and outcomes["no file"] == "FileNotFoundError"
    assert outcomes["model: input_size=192"] == "ok" and outcomes["model: without input_size"] == "ValueError"
    assert outcomes["model=[]"] == "ValueError" and outcomes["model: flip='true'"] == "ValueError"
    assert sum(outcome == "ok" for outcome in outcomes.values()) >= 20


def test_mutated_cards_load_or_name_the_card(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(pretrained.WEIGHTS_DIR / "synthetic.json", folder / "synthetic.json")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", folder)
    card = json.loads((folder / "synthetic.json").read_text())
    path = folder / "synthetic.json"

    def read():
        return pretrained.settings_of_card(pretrained.model_card("synthetic"), str(path))

    outcomes = {}
    for label, settings in _mutations(card["settings"]):
        path.write_text(json.dumps({**card, "settings": settings}))
        outcomes[label] = _outcome(read, path)
    for label, value in (("settings null", None), ("settings a list", [1]), ("settings a string", "576"), ("architecture a list", [])):
        key = label.split()[0]
        path.write_text(json.dumps({**card, key: value}))
        outcomes[label] = _outcome(read, path)
    for text in WRONG_SHAPES:
        path.write_text(text)
        outcomes[f"file {text!r}"] = _outcome(read, path)
    assert outcomes["without input_size"] == "ValueError" and outcomes["settings a list"] == "ValueError"
    assert sum(outcome == "ok" for outcome in outcomes.values()) >= 5


def test_a_mutated_run_through_the_command_line_is_one_error_line(tmp_path, capsys):
    """End to end: ``pmsp localize --weights RUN`` with a damaged config prints one line naming the file, exit 2."""
    from pmsp_utils.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "best.weights.h5").write_bytes(b"not weights")
    (run / "config.json").write_text(json.dumps({"input_size": [576]}))
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (64, 48), (120, 90, 60)).save(image)
    code = main(["localize", "--weights", str(run), "--runtime", "keras", str(image), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code != 0 and "config.json" in err and "Traceback" not in err and "report it" not in err, err


def test_mutated_training_configs_resume_or_name_the_file(tmp_path):
    """``pmsp train --resume`` reads the run's config.json back: every mutated field gives a checked config or one
    ValueError naming the file (before: wrong types reached comparisons as TypeError, or trained as the wrong kind)."""
    from dataclasses import asdict

    from pmsp_utils.train import TrainConfig

    path = tmp_path / "config.json"
    nested = json.loads(json.dumps(asdict(TrainConfig(data="synthetic", input_size=192, epochs=3))))  # as written since 2026-12-03
    flat = json.loads(json.dumps(TrainConfig(data="synthetic", input_size=192, epochs=3).flat()))  # as written before

    def read(values) -> str:
        try:
            config = TrainConfig.from_saved(values, source=str(path))
        except ValueError as error:
            assert str(path) in str(error) and "\n" not in str(error), error
            return "ValueError"
        config.check()  # what came back is a working config
        return "ok"

    outcomes = {}
    for name in flat:
        for value in PALETTE:
            label = f"{name}={value!r}"
            outcomes[label] = read({**flat, name: value})
            in_model = {**nested, "model": {**nested["model"], name: value}} if name in nested["model"] else {**nested, name: value}
            assert read(in_model) == outcomes[label], f"the two layouts disagree on {label}"
    for value in PALETTE:
        outcomes[f"model={value!r}"] = read({**nested, "model": value})
    assert outcomes["epochs=True"] == "ValueError" and outcomes["epochs='576'"] == "ValueError"  # a bool is no count
    assert outcomes["augment='true'"] == "ValueError" and outcomes["learning_rate=nan"] == "ValueError"
    assert outcomes["epochs=7"] == "ok" and outcomes["decoder='f3'"] == "ok"
    assert outcomes["model={}"] == "ok" and outcomes["model='x'"] == "ok"  # no model object: the flat fields (here the defaults)
    with pytest.raises(ValueError, match="config.json: holds a JSON list"):
        TrainConfig.from_saved([], source=str(path))
