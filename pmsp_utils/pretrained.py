"""Weights that ship inside the package, with their model cards. Defined in 04_training.

Each shipped model is ``pmsp_utils/weights/<name>.npz`` (an ensemble: ``<name>_<member>.npz`` per member; float16 values keyed by
variable path, cast back to float32 on loading) beside ``<name>.json`` (the
model card: architecture, data, split lists, initialisation, recipe, epochs,
validation metrics with their protocol, history) and ``<name>.md`` (the same,
for people). A card with ``members`` describes an ensemble (``casia1``: two
networks averaged, :mod:`pmsp_utils.network.ensemble`), each member with its own
settings, view, training and history. Nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .model_settings import ModelSettings
from .run_folder import read_history

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The model ``pmsp localize``, ``pmsp evaluate`` and every loader use when none is named.
DEFAULT_MODEL = "casia1-forged"  # one network, chosen on validation (benchmarks/RESULTS.md); the "casia1" pair stays shipped
#: The settings an ensemble's members share: what turns an image into their inputs (each keeps its own architecture).
SHARED_SETTINGS = ("input_size", "ela_quality", "ela_scaling", "policy", "flip")
METRIC_LABELS = {"per_image_f1@0.5": "per-image F1", "pooled_auc": "pooled AUC", "missed_share": "at most this share missed (F1 < 0.1)",
                 "missed_share_copy_move": "at most this share of copy-moves missed"}


def available() -> list[str]:
    """The names of the shipped models: a card whose weights are all there (one file, or one per ensemble member)."""
    return sorted(path.stem for path in WEIGHTS_DIR.glob("*.json") if _complete(path))


def _complete(card_path: Path) -> bool:
    """Whether a card reads and all its weight files are there (a broken card hides only its own model)."""
    try:
        return all((WEIGHTS_DIR / filename).exists() for filename in weight_files(card_path.stem, json.loads(card_path.read_text())))
    except (ValueError, KeyError, TypeError, OSError):
        return False


def weight_files(name: str, card: dict) -> list[str]:
    """The weight files of a shipped model: ``<name>.npz``, or for an ensemble one per member (``<name>_<member>.npz``)."""
    return [member["weights"] for member in card["members"]] if card.get("members") else [f"{name}.npz"]


def model_card(name: str = DEFAULT_MODEL) -> dict:
    """The model card of a shipped model (a dictionary; see ``<name>.md`` for the prose)."""
    path = WEIGHTS_DIR / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"No shipped model named {name!r}; shipped: {available() or 'none'}.")
    try:
        card = json.loads(path.read_text())
    except ValueError as error:
        raise ValueError(f"{path}: the model card is not valid JSON ({error}); reinstall pmsp-utils or restore it from git.") from None
    if not isinstance(card, dict):
        raise ValueError(f"{path}: the model card is not a JSON object.")
    for key in ("settings", "architecture"):
        if key in card and not isinstance(card[key], dict):
            raise ValueError(f"{path}: the card's {key!r} is a JSON {type(card[key]).__name__}, not an object of named fields; "
                             "reinstall pmsp-utils or restore it from git.")
    architecture = card.get("architecture") or {}
    for key, value in architecture.items():  # the card's settings must agree with its own architecture block
        if key in (card.get("settings") or {}) and card["settings"][key] != value:
            raise ValueError(f"{path}: the card contradicts itself: settings say {key}={card['settings'][key]!r}, "
                             f"its architecture block {value!r}.")
    return card


def settings_of_card(card: dict, source: str) -> ModelSettings:
    """The settings in a shipped model's card (``settings``)."""
    if "settings" not in card:
        raise ValueError(f"{source}: the card has no 'settings' (input size, ELA quality, output stride, input policy).")
    return ModelSettings.from_dict(card["settings"], source=source, required=ModelSettings.ARCHITECTURE)


def weight_key(index: int, variable) -> str:
    """A weight's key in a shipped file: its position and path (paths alone repeat across the two streams)."""
    return f"{index:04d}:{variable.path}"


def history(name: str = DEFAULT_MODEL, member: str | None = None) -> list[dict]:
    """The recorded training history of a shipped model (one dictionary per epoch).

    For an ensemble, its first member's, or ``member``'s (a name in the card's ``members``).
    """
    filename = f"{name}_history.csv"
    if member is not None:
        entries = {entry["name"]: entry for entry in model_card(name).get("members", [])}
        if member not in entries:
            raise ValueError(f"{name!r} has no member {member!r}; its members: {', '.join(entries) or 'none (one network)'}.")
        filename = entries[member].get("history", filename)
    path = WEIGHTS_DIR / filename
    if not path.exists():
        raise FileNotFoundError(f"No recorded history for {name!r}" + (f" member {member!r}." if member else "."))
    return read_history(path)


def snapshots(name: str = DEFAULT_MODEL) -> dict[str, np.ndarray]:
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
    validation, recipe = card["validation"], card["recipe"]
    lines = [
        f"# Model card: `{card['name']}`",
        "",
        (f"An ensemble of {len(card['members'])} PMSP networks, " + " and ".join(f"`{member['name']}`" for member in card["members"])
         + ", their maps averaged (each: two MobileNetV1 streams, Coordinate Attention after F3-F5, "
         if card.get("members") else "Weights of the PMSP network (two MobileNetV1 streams, Coordinate Attention after F3-F5, ")
        + f"{card['settings']['fusion'].upper()} fusion, pyramid pooling"
        + (", and beyond the paper a decoder that refines the map with F3 at stride 8" if card.get("settings", {}).get("decoder", "none") != "none" else "")
        + ") shipped with `pmsp_utils`; "
        f"load them with `pmsp_utils.models.load_model({card['name']!r})`.",
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
        *(["## Architecture and input settings", *[f"- {key.replace('_', ' ')}: {value}" for key, value in card.get("settings", {}).items()]]
          if not card.get("members") else
          ["## Input settings (every member's; each member's architecture is under Training)",
           *[f"- {key.replace('_', ' ')}: {card['settings'][key]}" for key in SHARED_SETTINGS]]),
        "",
        "## Training",
        *(_ensemble_training_lines(card, recipe) if card.get("members") else _training_lines(card, recipe)),
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
          + (f", pooled F1 {row['pooled_f1@0.5']:.3f}, missed (F1 < 0.1) {row['missed_share']:.1%}" if "missed_share" in row else "")
          + "".join(f"; {kind}: F1 {value['per_image_f1@0.5']:.3f} over {value['images']} images, missed {value['missed_share']:.1%}"
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
    if card.get("tamper_score"):
        score = card["tamper_score"]
        lines += ["## Image-level score (`tamper_score`)", score["means"],
                  f"- calibration: sigmoid({score['slope']:.4f} x raw + {score['intercept']:.4f}), fitted on {score['fitted_on']}",
                  f"- at 0.5: {score['detected_at_0.5']:.1%} of the tampered validation images pass it, and {score['false_alarms_at_0.5']:.1%} "
                  f"of the untouched validation photos (false alarms); image-level AUC {score['image_auc']:.3f}",
                  f"- untouched validation photos with more than 1% of their area marked at 0.5: {score['flagged_share']:.1%}", ""]
    if card.get("limitations"):
        lines += ["## Limitations", *[f"- {item}" for item in card["limitations"]], ""]
    lines += ["## Cross-dataset protocol", CROSS_DATASET_PROTOCOL, ""]
    return "\n".join(lines)


#: Said in every model card and in the README: what a cross-dataset number of this project means.
CROSS_DATASET_PROTOCOL = ("Everything about this model (training, epochs, thresholds, recipes, the choice to ship it) was decided on "
                          "CASIA v1.0 and on forgeries the project generated itself, never on another public benchmark (not COVERAGE, "
                          "Columbia, NIST16, IMD2020, CoMoFoD or CASIA v2.0, whose samples are a check only). A cross-dataset score "
                          "of it means something only under that rule; `benchmarks/generalization.py` measures them without choosing.")


def _training_lines(card: dict, recipe: dict) -> list[str]:
    training = card["training"]
    return [f"- epochs run: {training['epochs_run']}, best (by {recipe.get('early_stopping', 'validation loss').split(',')[0]}): "
            f"{training['best_epoch']}",
            *[f"- {stage}" for stage in training.get("stages", [])],
            f"- device: {training['device']}; about {training['seconds'] / 60:.0f} minutes",
            f"- history: `{card['name']}_history.csv`" + (f"; prediction snapshots: `{card['name']}_snapshots.npz`"
                                                           if card.get("snapshot_images") else "; no prediction snapshots")]


def _ensemble_training_lines(card: dict, recipe: dict) -> list[str]:
    return [*[f"- {stage}" for stage in card["training"].get("stages", [])],
            *[line for member in card["members"] for line in _member_lines(member, recipe)]]


def _member_lines(member: dict, recipe: dict) -> list[str]:
    """An ensemble member on the card: what it sees, its architecture, start and training."""
    settings, training = member["settings"], member.get("training", {})
    return [f"- member `{member['name']}` (sees the {'image' if member['view'] == 'image' else 'mirrored image'}): output stride "
            f"{settings['output_stride']}, {settings['fusion'].upper()} fusion, decoder {settings['decoder']}; "
            f"{member.get('initialisation', '')} Epochs run {training.get('epochs_run', '?')}, best (by "
            f"{recipe.get('early_stopping', 'validation loss').split(',')[0]}) {training.get('best_epoch', '?')}; "
            f"{training.get('device', '')}; history `{member.get('history', '-')}`"]
