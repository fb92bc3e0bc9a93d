"""Where a trained model comes from, and the settings it carries. Explained in 05_evaluation.

One place knows the three kinds of model a command or notebook can name:

- a **shipped** model (``"casia1"``, ``"synthetic"``): float16 weights and a card in the package;
- a **training run** folder: ``model.keras`` when finished, else ``best.weights.h5`` with ``config.json``;
- a **``.keras``** file written by :func:`save_model`.

Each comes back as a :class:`LoadedModel` with its :class:`~pmsp_utils.model_settings.ModelSettings`
(input size, output stride, decoder, ELA quality and gain, input policy), read from
the card, the run's ``config.json`` or the ``.keras`` file itself: inference never
falls back to a default. Importing this module does not import Keras; loading does.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import pretrained
from .pretrained import SHARED_SETTINGS, WEIGHTS_DIR, weight_key
from .model_settings import SETTINGS_MEMBER, ModelSettings, check_keras_members, read_keras_settings
from .run_folder import read_json, settings_of_run
from .safe_write import save_npz_atomic, write_text_atomic

__all__ = ["LoadedModel", "export_ensemble", "export_pretrained", "init_weights_from", "load_model", "read_json", "save_model",
           "settings_of_run", "transfer_weights"]



@dataclass
class LoadedModel:
    """A Keras model with the settings its inputs depend on, its split lists (if known) and a label for tables."""

    model: object
    settings: ModelSettings
    splits: Path | None
    label: str

    def __post_init__(self) -> None:
        self.model.pmsp_settings = self.settings  # the Keras model carries them too, for localize(model.model, ...)


def save_model(model, path: str | Path, settings: ModelSettings, *, members: dict[str, dict] | None = None) -> Path:
    """Save ``model`` as ``.keras`` with its settings (and any other JSON ``members``) inside the archive, written to a
    temporary name and renamed once: the model and what travels with it change together."""
    from .safe_write import save_atomic

    def save(temporary: Path) -> None:
        model.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            for name, values in {SETTINGS_MEMBER: settings.to_dict(), **(members or {})}.items():
                archive.writestr(name, json.dumps(values, indent=2))

    return save_atomic(path, save, suffix=".keras")


def load_model(spec: str | Path = pretrained.DEFAULT_MODEL, *, input_size: int | None = None, inference: bool = False) -> LoadedModel:
    """A model from a shipped model's name, a training run folder or a ``.keras`` file, with its settings.

    ``input_size`` (shipped models only) builds the network at another size; no weight depends on it.
    ``inference``: fold each batch normalisation into the convolution before it
    (:func:`pmsp_utils.network.fold_batch_norm`): the same maps, about 1.2x faster
    on a CPU, for prediction only (``pmsp localize`` and ``pmsp evaluate`` use it).
    """
    loaded = _load(spec, input_size)
    if inference:
        from .network import fold_batch_norm

        loaded = LoadedModel(fold_batch_norm(loaded.model), loaded.settings, loaded.splits, loaded.label)
    return loaded


def _load(spec: str | Path, input_size: int | None) -> LoadedModel:
    spec_text = str(spec)
    if spec_text in pretrained.available():
        splits = pretrained.WEIGHTS_DIR / f"{spec_text}_splits"
        model, settings = _load_shipped(spec_text, input_size=input_size)
        return LoadedModel(model, settings, splits if splits.is_dir() else None, f"shipped {spec_text}")
    path = Path(spec)
    if path.is_dir():
        splits = path / "splits" if (path / "splits").is_dir() else None
        if (path / "model.keras").is_file():  # a finished run
            model, settings = _load_keras(path / "model.keras"), _keras_or_run_settings(path)
            _check_settings_describe(model, settings, path / "model.keras")
            return LoadedModel(model, settings, splits, f"run {path.name}")
        if (path / "best.weights.h5").is_file() and not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: a run folder without config.json (the run's settings); restore it from a backup, "
                                    "or the weights in best.weights.h5 cannot be built into a network.")
        if (path / "best.weights.h5").is_file():  # a run still going: its best epoch so far
            settings = settings_of_run(path)
            return LoadedModel(_load_run_best(path, settings), settings, splits, f"run {path.name} (best epoch so far)")
        raise FileNotFoundError(f"{path}: a folder without model.keras or best.weights.h5; pass a training run's folder.")
    if path.suffix == ".keras":
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file.")
        settings = read_keras_settings(path)
        model = _load_keras(path)
        _check_settings_describe(model, settings, path)
        return LoadedModel(model, settings, None, path.name)
    raise unknown_model(spec_text)


def settings_contradictions(model, settings: ModelSettings) -> list[str]:
    """What a model's recorded settings say that its network is not: input size, streams, decoder, output scale.

    A ``.keras`` file carries its settings beside the network; a wrong one (edited, or saved with another model's
    settings) would otherwise fail far away (inside the LiteRT export) or run silently with the wrong preprocessing."""
    found = []
    every = list(model._flatten_layers(include_self=False))  # an ensemble's member networks included
    names = {layer.name for layer in every}
    inputs = {tensor.name.split(":")[0]: tuple(tensor.shape) for tensor in model.inputs}
    for name, shape in inputs.items():
        if len(shape) == 4 and shape[1] is not None and shape[1] != settings.input_size:
            found.append(f"input size {settings.input_size}, but its {name} input is {shape[1]}x{shape[2]}")
            break
    wanted = {"both": {"rgb", "ela"}, "rgb": {"rgb"}, "ela": {"ela"}}.get(settings.streams)
    if wanted is not None and set(inputs) and set(inputs) != wanted:
        found.append(f"streams {settings.streams!r}, but its inputs are {', '.join(sorted(inputs))}")
    has_decoder = "decoder_concat" in names
    if has_decoder != (settings.decoder != "none"):
        found.append(f"decoder {settings.decoder!r}, but the network {'has' if has_decoder else 'has no'} F3 decoder")
    upsample = next((layer for layer in every if layer.name == "upsample"), None)
    if upsample is not None and tuple(upsample.size)[0] != settings.prediction_stride:
        found.append(f"one logit per {settings.prediction_stride} pixels (output stride {settings.output_stride}, decoder "
                     f"{settings.decoder!r}), but the network upsamples by {tuple(upsample.size)[0]}")
    return found


def _check_settings_describe(model, settings: ModelSettings, path: Path) -> None:
    contradictions = settings_contradictions(model, settings)
    if contradictions:
        raise ValueError(f"{path}: its recorded settings do not describe its network (they say {'; '.join(contradictions)}). "
                         "Re-save it with pmsp_utils.models.save_model and the settings it was trained with.")


def unknown_model(spec_text: str) -> FileNotFoundError:
    """The error for a model that is neither a shipped name, a run folder nor a model file (it lists the names)."""
    return FileNotFoundError(f"{spec_text!r}: not a shipped model ({', '.join(pretrained.available()) or 'none shipped'}), "
                             "a training run folder, nor a .keras file.")


def load_weights_strictly(model, path: Path) -> None:
    """``model.load_weights(path)``, where what Keras only warns about is an error: a group of the file "skipped"
    leaves those layers freshly initialised, a network that would predict noise without a word. Keras' own warnings
    do not reach the terminal; any failure raises :class:`LoadError`, whose message is one line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
        except Exception as error:  # h5py and Keras raise many types for a damaged or foreign file
            raise LoadError(one_line(f"{type(error).__name__}: {error}")) from None
    partial = [str(warning.message) for warning in caught if re.search(r"[Ss]kipping|freshly.initiali[sz]ed|could not be loaded", str(warning.message))]
    if partial:
        raise LoadError(one_line(f"only part of the network was loaded: {partial[0]}"))


class LoadError(ValueError):
    """Weights that do not load whole into a network (the message is one line, without the file's name)."""


def one_line(text: str, limit: int = 300) -> str:
    """A library's message on one line (its lines joined, its blank lines and lists of objects dropped), cut at
    ``limit`` characters: what goes into pmsp's own one-line errors."""
    joined = " ".join(line.strip() for line in str(text).splitlines() if line.strip() and not line.strip().startswith(("[<", "List of objects")))
    return joined if len(joined) <= limit else joined[: limit - 3].rstrip() + "..."


def _load_run_best(run_dir: str | Path, settings: ModelSettings | None = None):
    """The network a run's ``config.json`` describes, with its best epoch so far (``best.weights.h5``): what
    :func:`load_model` gives for a run still going, and what the ship scripts export."""
    run_dir = Path(run_dir)
    settings = settings or settings_of_run(run_dir)
    model = _build(settings)
    try:
        load_weights_strictly(model, run_dir / "best.weights.h5")
    except LoadError as error:
        raise ValueError(f"{run_dir / 'best.weights.h5'}: cannot be loaded into the network its config.json describes "
                         f"({error}); the folder's config.json may have been edited, or the file belongs to another run.") from None
    check_finite(model, run_dir / "best.weights.h5")
    return model


def _keras_or_run_settings(run_dir: Path) -> ModelSettings:
    try:
        return read_keras_settings(run_dir / "model.keras")
    except ValueError:
        return settings_of_run(run_dir)  # runs saved before settings went into the .keras file


def _build(settings: ModelSettings):
    from .network import build_pmsp

    return build_pmsp(**settings.architecture(), weights=None, verbose=False)


def _read_keras(path: str | Path, *, compile: bool = True):
    """The one reader of ``.keras`` archives (finished runs, checkpoints, files saved by :func:`save_model`): safe mode
    on (no code in the file runs), the package's layers and losses registered, and the settings attached as
    ``model.pmsp_settings`` when the archive carries them (a checkpoint's come from its run folder).

    ``compile`` False leaves the saved optimizer and loss unread: a model to predict with needs neither, and a file
    trained on another Keras backend names that backend's classes there (reading them would import PyTorch or JAX)."""
    import keras

    from .network import attention, losses  # noqa: F401  (registers CoordinateAttention and the losses)

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file.")
    try:
        with zipfile.ZipFile(path) as archive:
            check_keras_members(path, archive)  # before Keras inflates any member
    except zipfile.BadZipFile:
        pass  # Keras names it
    model = keras.models.load_model(path, safe_mode=True, compile=compile)
    try:
        model.pmsp_settings = read_keras_settings(path)
    except ValueError:
        pass
    return model


def _load_keras(path: Path):
    import zipfile

    if not zipfile.is_zipfile(path):  # Keras says "File not found" for random bytes
        raise ValueError(f"{path}: not a Keras archive (a .keras file is a zip); the file is damaged or another format.")
    try:
        model = _read_keras(path, compile=False)  # to predict with: the optimizer and loss stay in the file
    except (FileNotFoundError, ValueError):
        raise
    except Exception as error:  # Keras raises KeyError, TypeError ... for archives of other models
        raise ValueError(f"{path}: not a PMSP model this version can load ({one_line(f'{type(error).__name__}: {error}')}).") from None
    check_finite(model, path)
    return model


def _load_shipped(name: str, *, input_size: int | None = None):
    """(model, settings) of a shipped model; the settings come from its card.

    A card with ``members`` is an ensemble (:func:`pmsp_utils.network.build_ensemble`):
    each member is built from its own settings, and ``settings`` holds what
    their inputs share (input size, ELA, policy, flip).
    """
    from dataclasses import replace

    from .network import build_ensemble, build_pmsp

    card = pretrained.model_card(name)
    source = str(pretrained.WEIGHTS_DIR / f"{name}.json")
    settings = pretrained.settings_of_card(card, source)
    if input_size is not None:
        settings = replace(settings, input_size=input_size)
    if card.get("members"):
        members = {}
        for member in card["members"]:
            own = pretrained.settings_of_card(member, f"{source} (member {member.get('name')!r})")
            network = build_pmsp(**{**own.architecture(), "input_size": settings.input_size}, weights=None, verbose=False)
            _assign_shipped(network, pretrained.WEIGHTS_DIR / member["weights"])
            members[member["name"]] = (network, member["view"])
        model = build_ensemble(members)
    else:
        model = build_pmsp(**settings.architecture(), weights=None, verbose=False)
        _assign_shipped(model, pretrained.WEIGHTS_DIR / f"{name}.npz")
    model.pmsp_settings = settings  # localize() reads ELA quality, input size and policy from here
    return model, settings


def _assign_shipped(network, path: Path) -> None:
    """Fill ``network`` with the float16 values of one shipped weight file (keyed by :func:`pmsp_utils.pretrained.weight_key`)."""
    import zipfile
    import zlib

    if not path.is_file():
        raise FileNotFoundError(f"{path}: the shipped weight file is missing; reinstall pmsp-utils (or git checkout the file).")
    keys = [pretrained.weight_key(index, variable) for index, variable in enumerate(network.weights)]
    try:
        with np.load(path) as stored:
            missing = [key for key in keys if key not in stored.files]
            if missing or len(keys) != len(stored.files):
                raise ValueError(f"{path}: does not fit this version of the network ({len(missing)} weights missing, e.g. {missing[:1]}).")
            values = [stored[key].astype(np.float32) for key in keys]
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as error:
        raise ValueError(f"{path}: the weight file is damaged ({type(error).__name__}: {error}); reinstall pmsp-utils or restore the file "
                         "from git.") from None
    for key, variable, value in zip(keys, network.weights, values):
        if value.shape != tuple(variable.shape):
            raise ValueError(f"{path}: {key} has shape {value.shape}, the network expects {tuple(variable.shape)}; the file does not fit.")
        if not np.isfinite(value).all():
            raise ValueError(f"{path}: {key} holds non-finite values (NaN or infinity); the file is damaged.")
        variable.assign(value)


def check_finite(model, source) -> None:
    """Refuse a model whose weights hold NaN or infinity (a training run that diverged, a damaged file), naming it."""
    import numpy as np

    for variable in model.weights:
        if not np.isfinite(np.asarray(variable)).all():
            raise ValueError(f"{source}: the weight {variable.path} holds non-finite values (NaN or infinity); the model is "
                             "damaged or its training diverged.")


def init_weights_from(model, spec: str | Path, *, strict: bool = False) -> str:
    """Fill ``model`` with the weights of another model (shipped name, run folder, ``.keras`` or whole-model
    ``.weights.h5``), layer by layer by name where the shapes agree; returns a one-line report.

    Layers the source lacks (a new decoder) or holds in another shape stay as they are; ``strict``: refuse instead
    (ValueError), for when every layer must come from ``spec`` (averaging weights).
    Dilation and the output stride change no weight, so a stride-32 model fills a stride-8 one.
    An ensemble (the shipped ``casia1``) gives its first member's weights.
    """
    path = Path(spec)
    if str(spec).endswith(".weights.h5"):
        if not path.is_file():
            raise FileNotFoundError(f"--init-from {spec}: no such weights file (e.g. RUN_DIR/best.weights.h5).")
        try:
            load_weights_strictly(model, path)
        except LoadError as error:
            raise ValueError(f"--init-from {spec}: these weights do not fit this model ({error}); "
                             "pass a shipped model's name, a run folder or a .keras file to copy matching layers only.") from None
        return f"{spec}: all weights loaded"
    from .network import ensemble_members

    source, origin = load_model(spec).model, f"{spec}"
    members = ensemble_members(source)
    if members:  # an ensemble: start from its first member, the one network whose layers match by name
        role, source = next(iter(members.items()))
        origin += f" (member {role!r} of the ensemble)"
    pairs, skipped = _matching_layers(source, model)
    if strict and skipped:  # refused before anything is copied: the model stays as it was
        raise ValueError(f"{spec}: not this network's architecture; {len(skipped)} layer(s) missing or of another shape there "
                         f"({', '.join(skipped[:3])}{' ...' if len(skipped) > 3 else ''}).")
    filled = _copy_layers(pairs)
    return f"{origin}: filled {filled} layers with weights by name" + (f"; kept fresh: {', '.join(skipped)}" if skipped else "")


def _layers_by_path(model, prefix: str = "") -> dict[str, object]:
    import keras

    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.update(_layers_by_path(layer, f"{prefix}{layer.name}/"))
        elif layer.weights:
            found[f"{prefix}{layer.name}"] = layer
    return found


def transfer_weights(source, target) -> tuple[int, list[str]]:
    """Copy weights from ``source`` to ``target`` for every layer (nested paths) present in both with equal shapes."""
    pairs, skipped = _matching_layers(source, target)
    return _copy_layers(pairs), skipped


def _matching_layers(source, target) -> tuple[list[tuple[object, object]], list[str]]:
    """(source layer, target layer) pairs with the same nested path and weight shapes, and the target paths left out."""
    sources = _layers_by_path(source)
    pairs, skipped = [], []
    for path, layer in _layers_by_path(target).items():
        other = sources.get(path)
        if other is None or [tuple(w.shape) for w in other.weights] != [tuple(w.shape) for w in layer.weights]:
            skipped.append(path)
        else:
            pairs.append((other, layer))
    return pairs, skipped


def _copy_layers(pairs) -> int:
    for other, layer in pairs:
        layer.set_weights(other.get_weights())
    return len(pairs)


# --- shipping a run's weights with the package (scripts/ship_weights.py, ship_ensemble.py) ----------------------------------


def _store(network, path: Path) -> None:
    """Write ``network``'s weights as one shipped float16 file."""
    values = {weight_key(index, variable): np.asarray(variable).astype(np.float16) for index, variable in enumerate(network.weights)}
    save_npz_atomic(path, values)


def export_pretrained(run_dir: str | Path, name: str, *, card: dict, destination: Path = WEIGHTS_DIR) -> Path:
    """Store a run's best weights (``best.weights.h5``) as shipped float16 weights with its card, history and split lists."""
    from .data.splits import read_split_list

    run_dir = Path(run_dir)
    settings = settings_of_run(run_dir)
    model = _load_run_best(run_dir, settings)
    destination.mkdir(parents=True, exist_ok=True)
    _store(model, destination / f"{name}.npz")
    card = {**card, "settings": settings.to_dict()}
    if (run_dir / "history.csv").exists():
        shutil.copy(run_dir / "history.csv", destination / f"{name}_history.csv")
    if (run_dir / "snapshots.npz").exists():
        # Only the model's own predictions ship: the inputs and masks are the dataset's, which stays with its owners.
        shots = {key: value for key, value in np.load(run_dir / "snapshots.npz").items() if key.startswith("epoch_")}
        save_npz_atomic(destination / f"{name}_snapshots.npz", shots)
        validation = [key for key, _ in read_split_list(run_dir / "splits" / "validation.txt")]
        card["snapshot_images"] = validation[: len(next(iter(shots.values())))] if shots else []
    splits = destination / f"{name}_splits"
    splits.mkdir(exist_ok=True)
    for path in (run_dir / "splits").glob("*.txt"):
        shutil.copy(path, splits / path.name)
    write_text_atomic(destination / f"{name}.json", json.dumps(card, indent=2) + "\n")  # last: with the snapshot images named
    return destination / f"{name}.npz"


def export_ensemble(members: dict[str, tuple[str | Path, str]], name: str, *, card: dict, destination: Path = WEIGHTS_DIR) -> Path:
    """Store several runs' best weights as one shipped ensemble: ``{role: (run_dir, view)}``.

    Each member's weights go to ``<name>_<role>.npz`` (float16, as for one network), its
    history beside them (the first member's as ``<name>_history.csv``); the first member's
    split lists ship (the members must share the split and the input settings); the card
    gains ``members``. Returns the card's path.
    """
    from .network import build_ensemble

    destination.mkdir(parents=True, exist_ok=True)
    built, entries, first = {}, [], None
    for index, (role, (run_dir, view)) in enumerate(members.items()):
        run_dir = Path(run_dir)
        settings = settings_of_run(run_dir)
        inputs = {key: getattr(settings, key) for key in SHARED_SETTINGS}
        lists = {path.name: path.read_text() for path in sorted((run_dir / "splits").glob("*.txt"))}
        first = first or (inputs, lists)
        if inputs != first[0]:
            raise ValueError(f"{run_dir}: its input settings {inputs} differ from the first member's {first[0]}; "
                             "an ensemble's members must read the same inputs.")
        if lists != first[1]:
            raise ValueError(f"{run_dir}: its split lists differ from the first member's; an ensemble's members must share the split.")
        network = _load_run_best(run_dir, settings)
        _store(network, destination / f"{name}_{role}.npz")
        built[role] = (network, view)
        entry = {"name": role, "view": view, "settings": settings.to_dict(), "run": run_dir.name, "weights": f"{name}_{role}.npz"}
        if (run_dir / "history.csv").exists():
            entry["history"] = f"{name}_history.csv" if index == 0 else f"{name}_history_{role}.csv"
            shutil.copy(run_dir / "history.csv", destination / entry["history"])
        entries.append(entry)
    build_ensemble(built)  # the members fit together (the same inputs; known views)
    splits = destination / f"{name}_splits"
    splits.mkdir(exist_ok=True)
    for path in (Path(next(iter(members.values()))[0]) / "splits").glob("*.txt"):
        shutil.copy(path, splits / path.name)
    card = {**card, "settings": {**entries[0]["settings"], "flip": False}, "members": entries}
    write_text_atomic(destination / f"{name}.json", json.dumps(card, indent=2) + "\n")
    return destination / f"{name}.json"
