"""Maintainers: ship several finished training runs as one ensemble with a model card.

    python scripts/ship_ensemble.py NAME --member ROLE=RUN_DIR:VIEW --member ROLE=RUN_DIR:VIEW \
        --data-root PATH --card card.json

VIEW is ``image`` or ``mirror`` (that member sees the horizontally mirrored image;
pmsp_utils.network.ensemble). ``--card`` is a JSON file with the card's prose:
``data``, ``initialisation``, ``reproduce``, ``training`` (``stages``; ``device``),
``members`` (per role: ``initialisation``, ``training``), ``targets``,
``reference``, ``limitations``. The members must share the split and the input
settings. The float16 ensemble, as shipped, is then scored like
scripts/ship_weights.py scores one run: on the validation part (which chose each
member's epoch and the ensemble), the test part and both together, by kind.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from ship_weights import HELD_OUT_PROTOCOL, held_out_rows, score, validation_entry  # noqa: E402

from pmsp_utils import pretrained  # noqa: E402
from pmsp_utils.data import load_casia1, split_by  # noqa: E402
from pmsp_utils.data.splits import read_split_list  # noqa: E402
from pmsp_utils.models import export_ensemble, load_model  # noqa: E402
from pmsp_utils.safe_write import write_text_atomic  # noqa: E402
from pmsp_utils.train import TrainConfig, read_history  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("--member", action="append", required=True, help="ROLE=RUN_DIR:VIEW, in order (repeat)")
    parser.add_argument("--data-root", required=True, help="the CASIA v1.0 folder the runs trained on")
    parser.add_argument("--card", type=Path, required=True, help="a JSON file with the card's prose (see the docstring)")
    args = parser.parse_args()
    members = {}
    for item in args.member:
        role, rest = item.split("=", 1)
        run_dir, view = rest.rsplit(":", 1)
        members[role] = (Path(run_dir), view)
    prose = json.loads(args.card.read_text())
    first = next(iter(members.values()))[0]
    config = TrainConfig.from_saved(json.loads((first / "config.json").read_text()))
    card = {key: value for key, value in prose.items() if key not in ("members", "targets", "reference", "limitations")}
    card["name"] = args.name
    card["architecture"] = {"input_size": config.model.input_size, "members": list(members)}
    card.setdefault("recipe", {})
    export_ensemble({role: (str(run), view) for role, (run, view) in members.items()}, args.name, card=card)
    card = pretrained.model_card(args.name)
    for entry in card["members"]:
        run = members[entry["name"]][0]
        state = json.loads((run / "state.json").read_text())
        extra = prose.get("members", {}).get(entry["name"], {})
        entry["initialisation"] = extra.get("initialisation", "")
        entry["training"] = {"epochs_run": len(read_history(run)), "best_epoch": state["best_epoch"], **extra.get("training", {})}
    model = load_model(args.name).model  # the float16 weights, as shipped
    names = {key for key, _ in read_split_list(first / "splits" / "validation.txt")}
    tampered = [r for r in load_casia1(args.data_root) if r.is_tampered]
    records = [r for r in tampered if f"{r.dataset}/{r.name}" in names]
    split = split_by(config.split, tampered)
    test_records = [r for r in split.test if f"{r.dataset}/{r.name}" not in names]
    scores = score(model, records, config)
    protocol = (f"the {len(records)} tampered validation images of the members' split (they chose each member's epoch and the "
                "ensemble); shipped float16 weights; localize with the model's own settings (RGB and ELA resized to the model "
                "input, each member's map resized back to the image's own size after averaging), scored against the original "
                "mask at each image's own size; per-image F1 at threshold 0.5 averaged over tampered images; pooled pixel AUC "
                "over all their pixels (1000-bin histogram)")
    card["validation"] = validation_entry(records, scores, protocol)
    card["targets"] = prose.get("targets", {})
    card["evaluations"] = [
        held_out_rows(model, test_records, f"the {len(test_records)} tampered test images of the split (never used in training, "
                                           "model selection or choosing the ensemble)"),
        held_out_rows(model, records + test_records, f"validation and test together: {len(records) + len(test_records)} held-out "
                                                     "tampered images"),
    ]
    for row in card["evaluations"]:
        row["protocol"] = HELD_OUT_PROTOCOL
    card["reference"] = prose.get("reference")
    card["limitations"] = prose.get("limitations", [])
    write_text_atomic(pretrained.WEIGHTS_DIR / f"{args.name}.json", json.dumps(card, indent=2) + "\n")
    write_text_atomic(pretrained.WEIGHTS_DIR / f"{args.name}.md", pretrained.card_markdown(card))
    sizes = [(pretrained.WEIGHTS_DIR / filename).stat().st_size / 1e6 for filename in pretrained.weight_files(args.name, card)]
    print(json.dumps({"validation": card["validation"], "evaluations": card["evaluations"]}, indent=2),
          "\nweights: " + " + ".join(f"{size:.1f}" for size in sizes) + " MB")


if __name__ == "__main__":
    main()
