"""Weights that ship inside the package, with their model cards. Defined in 04_training.

Each shipped model is ``pmsp_utils/weights/<name>.npz`` (float16 values keyed by
variable path, cast back to float32 on loading) beside ``<name>.json`` (the
model card: architecture, data, split lists, initialisation, recipe, epochs,
validation metrics with their protocol, history) and ``<name>.md`` (the same,
for people). Nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .architecture import ModelSettings
from .runs import read_history, settings_of_run

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
METRIC_LABELS = {"per_image_f1@0.5": "per-image F1", "pooled_auc": "pooled AUC", "missed_share": "at most this share missed (F1 < 0.1)",
                 "missed_share_copy_move": "at most this share of copy-moves missed"}


def available() -> list[str]:
    """The names of the shipped models."""
    return sorted(path.stem for path in WEIGHTS_DIR.glob("*.npz") if path.with_suffix(".json").exists())


def model_card(name: str = "casia1") -> dict:
    """The model card of a shipped model (a dictionary; see ``<name>.md`` for the prose)."""
    path = WEIGHTS_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"No shipped model named {name!r}; shipped: {available() or 'none'}.")
    return json.loads(path.read_text())


def load_pretrained(name: str = "casia1", *, input_size: int | None = None):
    """Build the network and load a shipped model's weights, offline.

    ``input_size`` defaults to the size it was trained at (see the card); any
    size valid for its output stride works, since no weight depends on the
    input size. The settings its inputs need come with
    :func:`pmsp_utils.models.load_model` (or :func:`load_pretrained_with_settings`).
    """
    return load_pretrained_with_settings(name, input_size=input_size)[0]


def load_pretrained_with_settings(name: str = "casia1", *, input_size: int | None = None):
    """(model, settings) of a shipped model; the settings come from its card."""
    from dataclasses import replace

    from .model import build_pmsp
    card = model_card(name)
    settings = settings_of_card(card, str(WEIGHTS_DIR / f"{name}.json"))
    if input_size is not None:
        settings = replace(settings, input_size=input_size)
    model = build_pmsp(**settings.architecture(), weights=None, verbose=False)
    stored = np.load(WEIGHTS_DIR / f"{name}.npz")
    keys = [weight_key(index, variable) for index, variable in enumerate(model.weights)]
    missing = [key for key in keys if key not in stored.files]
    if missing or len(keys) != len(stored.files):
        raise ValueError(f"{name}.npz does not fit this version of the network ({len(missing)} weights missing, e.g. {missing[:1]}).")
    for key, variable in zip(keys, model.weights):
        variable.assign(stored[key].astype(np.float32))
    model.pmsp_settings = settings  # localize() reads ELA quality, input size and policy from here
    return model, settings


def settings_of_card(card: dict, source: str) -> ModelSettings:
    """The settings in a shipped model's card (``settings``)."""
    if "settings" not in card:
        raise ValueError(f"{source}: the card has no 'settings' (input size, ELA quality, output stride, input policy).")
    return ModelSettings.from_dict(card["settings"], source=source, required=ModelSettings.ARCHITECTURE)


def weight_key(index: int, variable) -> str:
    """A weight's key in a shipped file: its position and path (paths alone repeat across the two streams)."""
    return f"{index:04d}:{variable.path}"


def export_pretrained(run_dir: str | Path, name: str, *, card: dict, destination: Path = WEIGHTS_DIR) -> Path:
    """Store a run's best weights (``best.weights.h5``) as shipped float16 weights with its card, history and split lists."""
    from .data.splits import read_split_list
    from .model import build_pmsp

    run_dir = Path(run_dir)
    settings = settings_of_run(run_dir)
    model = build_pmsp(**settings.architecture(), weights=None, verbose=False)
    model.load_weights(run_dir / "best.weights.h5")
    destination.mkdir(parents=True, exist_ok=True)
    values = {weight_key(index, variable): np.asarray(variable).astype(np.float16) for index, variable in enumerate(model.weights)}
    np.savez_compressed(destination / f"{name}.npz", **values)
    card = {**card, "settings": settings.to_dict()}
    if (run_dir / "history.csv").exists():
        shutil.copy(run_dir / "history.csv", destination / f"{name}_history.csv")
    if (run_dir / "snapshots.npz").exists():
        # Only the model's own predictions ship: the inputs and masks are the dataset's, which stays with its owners.
        shots = {key: value for key, value in np.load(run_dir / "snapshots.npz").items() if key.startswith("epoch_")}
        np.savez_compressed(destination / f"{name}_snapshots.npz", **shots)
        validation = [key for key, _ in read_split_list(run_dir / "splits" / "validation.txt")]
        card["snapshot_images"] = validation[: len(next(iter(shots.values())))] if shots else []
    splits = destination / f"{name}_splits"
    splits.mkdir(exist_ok=True)
    for path in (run_dir / "splits").glob("*.txt"):
        shutil.copy(path, splits / path.name)
    (destination / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")  # last: with the snapshot images named
    return destination / f"{name}.npz"


def history(name: str = "casia1") -> list[dict]:
    """The recorded training history of a shipped model (one dictionary per epoch)."""
    path = WEIGHTS_DIR / f"{name}_history.csv"
    if not path.exists():
        raise FileNotFoundError(f"No recorded history for {name!r}.")
    return read_history(path)


def snapshots(name: str = "casia1") -> dict[str, np.ndarray]:
    """Small (96x96) validation predictions saved after each epoch, keyed ``epoch_NNN``.

    The images they belong to are named in the card's ``snapshot_images``; the
    images themselves are not shipped (they belong to the dataset).
    """
    path = WEIGHTS_DIR / f"{name}_snapshots.npz"
    if not path.exists():
        shipped = [other.name.removesuffix("_snapshots.npz") for other in sorted(WEIGHTS_DIR.glob("*_snapshots.npz"))]
        raise FileNotFoundError(f"No snapshots recorded for {name!r} (its card says why under training); shipped with snapshots: "
                                f"{', '.join(shipped) or 'none'}.")
    return dict(np.load(path))


def card_markdown(card: dict) -> str:
    """The model card as Markdown, for people (written beside the JSON by scripts/ship_weights.py)."""
    validation, recipe, training = card["validation"], card["recipe"], card["training"]
    lines = [
        f"# Model card: `{card['name']}`",
        "",
        "Weights of the PMSP network (two MobileNetV1 streams, Coordinate Attention after F3-F5, "
        f"{card['architecture']['fusion'].upper()} fusion, pyramid pooling"
        + (", and beyond the paper a decoder that refines the map with F3 at stride 8" if card.get("settings", {}).get("decoder", "none") != "none" else "")
        + ") shipped with `pmsp_utils`; "
        f"load them with `pmsp_utils.load_pretrained({card['name']!r})`.",
        "",
        "## Data",
        card["data"],
        "",
        "Split lists: `" + f"{card['name']}_splits/" + "` (train, validation). Nothing of the test or withheld data was used.",
        "",
        "## Initialisation",
        card["initialisation"],
        "",
        "## Recipe",
        *[f"- {key.replace('_', ' ')}: {value}" for key, value in recipe.items()],
        "",
        "## Architecture and input settings",
        *[f"- {key.replace('_', ' ')}: {value}" for key, value in card.get("settings", {}).items()],
        "",
        "## Training",
        f"- epochs run: {training['epochs_run']}, best (by {recipe.get('early_stopping', 'validation loss').split(',')[0]}): "
        f"{training['best_epoch']}",
        *[f"- {stage}" for stage in training.get("stages", [])],
        f"- device: {training['device']}; about {training['seconds'] / 60:.0f} minutes",
        f"- history: `{card['name']}_history.csv`" + (f"; prediction snapshots: `{card['name']}_snapshots.npz`"
                                                       if card.get("snapshot_images") else "; no prediction snapshots"),
        "",
        "## Validation",
        f"- per-image F1 at 0.5: **{validation['per_image_f1@0.5']:.3f}**; pooled pixel AUC: **{validation['pooled_auc']:.3f}**",
        f"- protocol: {validation['protocol']}",
        f"- at the model's input size (masks resized by nearest neighbour): per-image F1 {validation['at_model_input_size']['per_image_f1@0.5']:.3f}, "
        f"pooled AUC {validation['at_model_input_size']['pooled_auc']:.3f}",
        f"- scored on {validation['scored']}",
        *(["- targets: " + ", ".join(f"{METRIC_LABELS.get(key, key)} {value}" for key, value in card["targets"].items() if key != "on")
           + f" on {card['targets']['on']}"] if card.get("targets") else []),
        *[f"- on {row['on']}: per-image F1 at 0.5 **{row['per_image_f1@0.5']:.3f}**, pooled pixel AUC **{row['pooled_auc']:.3f}**"
          + (f", pooled F1 {row['pooled_f1@0.5']:.3f}, missed (F1 < 0.1) {row['missed_share']:.0%}" if "missed_share" in row else "")
          + "".join(f"; {kind}: F1 {value['per_image_f1@0.5']:.3f} over {value['images']} images, missed {value['missed_share']:.0%}"
                    for kind, value in row.get("by_kind", {}).items())
          for row in card.get("evaluations", [])],
        *([f"- for context: {card['reference']}"] if card.get("reference") else []),
        "",
        "## Reproduce",
        "```bash",
        card["reproduce"],
        "```",
        "",
    ]
    if card.get("limitations"):
        lines += ["## Limitations", *[f"- {item}" for item in card["limitations"]], ""]
    return "\n".join(lines)
