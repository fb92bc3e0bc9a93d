"""The ``pmsp`` command line.

- ``pmsp notebooks``: execute the tutorial notebooks headlessly (the suite's main job).
- ``pmsp ela IMAGE... --out DIR``: write ELA maps of images as PNG files.
- ``pmsp train --data synthetic|casia1|casia2|folder [--root PATH] --run-dir DIR``: train, or ``--resume``.
- ``pmsp evaluate --data casia1 [synthetic ...] [--weights casia1]``: Tables I and II (CSV + JSON), robustness curves.
- ``pmsp localize IMAGE|FOLDER|GLOB... --out DIR``: probability maps, masks, overlays and a tamper score per image.
- ``pmsp ablate --grid attention|fusion|streams|output|all --seeds 0 1 2 --out DIR``: the paper's ablations, resumable.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
from pathlib import Path

from . import __version__
from .environment import keras_environment


#: What a user's input, files or environment can raise; reported as one line, the batch goes on where it can.
USER_ERRORS = (ValueError, OSError, KeyError)


def _notebooks(args: argparse.Namespace) -> int:
    from .environment import build_dir, smoke_mode
    from .notebooks import find_notebooks, run_notebooks

    smoke_mode(strict=True)  # a malformed PMSP_SMOKE or CI is refused here, where the answer matters

    from .localize_outputs import check_output_folder

    every = find_notebooks(args.notebooks)
    notebooks = list(dict.fromkeys(_notebook_named(name, every) for name in args.only)) if args.only else every  # once each
    out = check_output_folder((args.out or build_dir()).resolve())  # before any kernel starts
    runs = run_notebooks(notebooks, out, in_place=args.in_place, smoke=True if args.smoke else None, timeout=args.timeout,
                         jobs=args.jobs, keep_going=True)
    done = [run for run in runs if run.error is None]
    print("\nExecuted notebooks:")
    for run in done:
        print(f"  {run.executed}")
    print(f"Figures ({sum(len(run.figures) for run in done)}): {out / 'figures'}")
    for run in runs:
        if run.error is not None:
            print(f"error: {run.error}", file=sys.stderr)
    return 1 if len(done) < len(runs) else 0


def _ela(args: argparse.Namespace) -> int:
    import errno

    import numpy as np

    from .ela import ElaSettings, ela_result
    from .localize_outputs import ELA_OUTPUTS, Ledger, check_output_folder, expand_inputs, plan_outputs
    from .safe_write import save_png_atomic
    from .viz import ela_for_display

    ElaSettings(quality=args.quality, scaling=args.display)  # a bad setting is one error, before any file
    out = check_output_folder(args.out)
    files, problems = expand_inputs(args.images)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    stems = plan_outputs(files, out, ELA_OUTPUTS)  # nothing written may overwrite an input or another output
    ledger = Ledger(out)
    failures, written, made = len(problems), 0, []
    for path, stem in stems.items():
        target = out / f"{stem}_ela.png"
        try:
            ledger.claim(target.name)  # a user's own file of that name is never replaced
            result = ela_result(path, quality=args.quality, scaling=args.display)
            _note_conversions(path, result.conversions)
            picture = result.ela if args.display != "raw" else (ela_for_display(result.ela) * 255).astype(np.uint8)
            save_png_atomic(target, picture)
            try:
                ledger.record(target, source=path)
            except OSError:  # a map the ledger does not list would be refused by the next run: kept with its record or not at all
                target.unlink(missing_ok=True)
                raise
        except OSError as error:
            if error.errno == errno.ENOSPC:  # the output folder is full: no input is to blame, and no later one can be written
                print(f"error: --out {out}: the disk is full after {written} map(s); {target.name} was not written. "
                      "Free some space and run again (the finished maps are kept; a rerun writes every map again).", file=sys.stderr)
                return 1
            print(f"error: {_with_file(error, path)}", file=sys.stderr)
            failures += 1
            continue
        except (*USER_ERRORS, MemoryError) as error:
            print(f"error: {_with_file(error, path)}", file=sys.stderr)
            failures += 1
            continue
        written += 1
        made.append(target.name)
        print(_printable(str(target)))
    others = _record_ela_settings(out, ledger, {"quality": args.quality, "display": args.display}, made)
    if others:
        (name, setting), count = next(iter(others.items())), len(others)
        print(f"note: {out} also holds {count} map(s) made with other settings ({_printable(name)}: quality {setting['quality']}, "
              f"display {setting['display']}; these: quality {args.quality}, display {args.display}); give each setting its own "
              "--out to keep them apart.", file=sys.stderr)
    return 1 if failures else 0


def _record_ela_settings(out: Path, ledger, settings: dict, made: list[str]) -> dict[str, dict]:
    """Note the settings of the maps just ``made`` in ``out/.pmsp-ela.json`` (with the ledger), so that a later run
    with other settings into the same folder is told; returns {map: its settings} of the maps there made otherwise."""
    import json

    from .safe_write import write_text_atomic

    record = out / ".pmsp-ela.json"
    try:
        recorded = json.loads(record.read_text()) if record.is_file() and ledger.owns(record.name) else {}
    except (OSError, ValueError):
        recorded = {}
    recorded = {name: value for name, value in recorded.items() if isinstance(value, dict) and (out / name).is_file()}
    recorded.update({name: settings for name in made})
    if made:
        try:
            write_text_atomic(record, json.dumps(recorded, indent=0, sort_keys=True))
            ledger.record(record)
        except OSError as error:
            print(f"warning: {record}: the maps' settings cannot be noted ({error.strerror or error}); a later run with other "
                  "settings will not be told.", file=sys.stderr)
    return {name: value for name, value in recorded.items() if value != settings}


#: Below this many pixels on its shorter side an image holds too few 8x8 JPEG blocks for a map to mean much; above this
#: ratio of its sides the resize policy squashes it past recognition.
SMALLEST_SIDE, WIDEST_RATIO = 32, 8


def _note_shape(path: Path, shape: tuple[int, int], policy: str) -> None:
    """One line on stderr for an image whose map cannot mean much: tiny, or squashed to a square under ``resize``."""
    height, width = shape
    if min(height, width) < SMALLEST_SIDE:
        print(f"note: {_printable(str(path))}: only {width}x{height} pixels, too few 8x8 blocks for a reliable map.", file=sys.stderr)
    elif policy == "resize" and max(height, width) > WIDEST_RATIO * min(height, width):
        print(f"note: {_printable(str(path))}: {width}x{height} is squashed {max(height, width) / min(height, width):.0f}:1 into the "
              "model's square input (the resize policy); its map is unreliable (--policy pad keeps its pixels).", file=sys.stderr)


def _note_conversions(path: Path, conversions) -> None:
    """One line on stderr when reading an image dropped or cut something (an animated GIF's later frames, alpha, bits)."""
    from .images import lossy_conversions

    lossy = lossy_conversions(conversions)
    if lossy:
        print(f"note: {_printable(str(path))}: {'; '.join(lossy)}", file=sys.stderr)


def _train_config(args: argparse.Namespace):
    """The TrainConfig the options describe (``train`` and ``ablate``); a resumed run keeps the settings not typed again."""
    from .train_config import TrainConfig

    values = {name: getattr(args, name) for name in TrainConfig.setting_names() if hasattr(args, name)}
    typed = set(getattr(args, "explicit", ()))
    if getattr(args, "recipe", None):  # the recipe's fields replace the defaults; what was typed replaces the recipe's
        from .recipes import recipe

        values.update({key: value for key, value in recipe(args.recipe).items() if key not in typed})
    values["weights"] = None if values["weights"] in {"none", "None", ""} else values["weights"]
    if getattr(args, "resume", False) and (args.run_dir / "config.json").is_file():
        # Resuming takes the run's own settings; only what the user typed again is compared with them.
        from .run_folder import read_json

        saved = TrainConfig.from_saved(read_json(args.run_dir / "config.json"), source=str(args.run_dir / "config.json")).flat()
        values = {**values, **{key: value for key, value in saved.items() if key in values and key not in typed}}
    config = TrainConfig(**values)
    config.check()
    return config


def _imagenet_weights_first(config, resume: bool = False) -> None:
    """Have the ImageNet weights a new run starts from (found, or downloaded once) before any folder is written: without
    internet, the one-line error comes first, not after a half-made run folder."""
    if config.weights == "imagenet" and not config.init_from and not resume:
        from .network.imagenet import available_imagenet_weights, imagenet_weights_path

        available_imagenet_weights() or imagenet_weights_path()


def _train(args: argparse.Namespace) -> int:
    keras_environment()
    from .train import train
    from .train_config import training_records

    config = _train_config(args)
    if args.run_dir.exists() and not args.run_dir.is_dir():
        raise ValueError(f"--run-dir {args.run_dir}: a file, not a folder; name a new folder (or a run's folder with --resume).")
    if not args.run_dir.exists():  # it will be made: say now, not after the data is read, where it cannot be
        parent = next(folder for folder in args.run_dir.absolute().parents if folder.exists())
        if not parent.is_dir():
            raise ValueError(f"--run-dir {args.run_dir}: {parent} is a file, so no folder can be made under it; name another folder.")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ValueError(f"--run-dir {args.run_dir}: {parent} cannot be written to, so the folder cannot be made there; name "
                             "a folder you can write to.")
    if args.resume and not (args.run_dir / "checkpoint.keras").exists():
        never = " The run never finished its first epoch: start it again with the same command, without --resume." if (
            args.run_dir / "config.json").exists() else ""
        raise FileNotFoundError(f"--run-dir {args.run_dir}: no checkpoint to resume from (checkpoint.keras is written after each epoch).{never}")
    if not args.resume and args.run_dir.is_dir() and not (args.run_dir / "state.json").exists():
        from .train_config import claim_run_dir

        claim_run_dir(args.run_dir, remove=False)  # a folder of someone else's files is refused before the data is read
    train_records, validation_records, _, protocol = training_records(config, include_authentic=args.include_authentic)
    _imagenet_weights_first(config, args.resume)  # after the data is found, before the run folder is written
    _, history = train(config, train_records, validation_records, args.run_dir, resume=args.resume, split_protocol=protocol)
    if history:
        from .run_folder import read_json

        chosen = read_json(args.run_dir / "state.json")["best_epoch"]  # as --monitor chose it (loss or F1)
        best = next((row for row in history if int(row["epoch"]) + 1 == chosen), min(history, key=lambda row: row["val_loss"]))
        print(f"best epoch {int(best['epoch']) + 1} (by {config.monitor}): val_loss {best['val_loss']:.4f}, val per-image F1@0.5 {best['val_f1']:.3f}, "
              f"val pooled AUC {best['val_auc']:.3f}")
    print(f"run directory: {args.run_dir} (model.keras, best.weights.h5, history.csv, config.json, splits/)")
    return 0


def _ablate(args: argparse.Namespace) -> int:
    keras_environment()
    from .ablation import describe_difference, run_ablation, summarise, variant_names
    from .train_config import training_records

    names = variant_names(args.grid)  # a bad name fails before any data is read
    config = _train_config(args)
    train_records, validation_records, test_records, protocol = training_records(config)
    _imagenet_weights_first(config)  # after the data is found, before the study's folder is written
    scored = test_records if args.score == "test" else validation_records
    print(f"ablation: {len(names)} variants x {len(args.seeds)} seeds; {protocol}; scored on the {args.score} part ({len(scored)} images)")
    rows = run_ablation(names, args.seeds, config, train_records, validation_records, args.out, robustness=args.robustness,
                        score_records=scored, score_part=args.score, split_protocol=protocol)
    print(f"\nper-image F1@0.5 on the {args.score} part, over seeds:")
    for row in summarise(rows):
        print(f"  {row['variant']:18s} {row['mean']:.3f} ± {row['std']:.3f} ({row['seeds']} seeds)")
    if "paper" in names:
        for other in names:
            if other != "paper":
                print("  " + describe_difference(rows, "paper", other))
    print(f"results: {args.out / 'results.csv'}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    keras_environment()
    from .baselines import BASELINES
    from .data.sources import load_source
    from .localize_outputs import check_output_folder
    from .evaluate import (BASELINE_LABELS, DATASET_LABELS, baseline_predictor, claim_tables, evaluate, format_table,
                           model_predictor, paper_tables, select_records, write_tables)
    from .models import load_model

    repeated = sorted({data for data in args.data if args.data.count(data) > 1})
    if repeated:
        raise ValueError(f"--data lists {', '.join(repeated)} more than once; each dataset is scored once, so name it once.")
    if args.root and len(args.data) > 1:
        raise ValueError("--root names one dataset's folder; with several --data, set PMSP_DATA_DIR to the folder that holds them.")
    unknown = set(args.baselines) - set(BASELINES)
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}; choose from {sorted(BASELINES)} (or --baselines with none).")
    out = check_output_folder(args.out)
    claim_tables(out)  # a user's own table1.csv refuses the run before any image is scored, not after
    model = load_model(args.weights, inference=True)
    _warn_other_policy(args.policy, model.settings.policy, model.label)
    model_splits, model_label, size = model.splits, model.label, model.settings.input_size
    methods = {f"PMSP ({model_label})": model_predictor(model, policy=args.policy, flip=args.flip, copy_move=args.copy_move)}
    methods.update({BASELINE_LABELS[name]: baseline_predictor(name) for name in args.baselines})
    from .data.download import card_identity

    evaluations, scored, cards, refused = [], [], {}, False
    for data in args.data:
        dataset = load_source(data, args.root, synthetic_count=args.synthetic_count, seed=args.seed, size=size)
        identity = card_identity(dataset.root) if data != "synthetic" else None
        if identity:  # the exact copy a number was measured on (pmsp data download's card)
            cards[data] = identity
        for line in dataset.loading_report():
            print(line, file=sys.stderr)
        refused = refused or bool(dataset.inconsistent)  # images left out (a mask two images claim, a mask of another size)
        records = [record for record in dataset if args.include_authentic or record.is_tampered]
        if not any(record.is_tampered for record in records):  # every figure of the tables is about the tampered pixels
            raise ValueError(f"{dataset.root}: no tampered image with a usable mask to evaluate"
                             + (" (only untouched ones)" if records else "")
                             + "; the folder layout is images/ (tampered) with masks/ beside them, and authentic/ for "
                             "--include-authentic" + (" (the lines above say what loading left out)." if dataset.loading_report() else "."))
        if data == "synthetic":
            images = f"{len(records)} synthetic images from seed {args.seed}, held out (training uses other seeds)"
            untouched = sum(not record.is_tampered for record in dataset)
            if untouched and not args.include_authentic:  # asked for N, scoring fewer: say which were left out and why
                images += f"; its {untouched} untouched image(s) are left out (--include-authentic scores them)"
        else:
            records, images = select_records(records, args.split, model_splits=model_splits, protocol=args.protocol)
        scored.append(records)  # before --limit: the robustness curves take their own number
        if args.limit:
            records = records[: args.limit]
            images += f", first {len(records)}"
        label = DATASET_LABELS[data]
        print(f"{label}: scoring {images}")
        evaluations.append(evaluate(records, methods, dataset=label, images=images, threshold=args.threshold))
    written = write_tables(evaluations, out, extra={"weights": model_label, "policy": args.policy or model.settings.policy,
                                                    "copy_move": bool(args.copy_move),
                                                    "flip": model.settings.flip if args.flip is None else args.flip,
                                                    "settings": model.settings.to_dict(), "dataset_cards": cards})
    table1 = [row for evaluation in evaluations for row in evaluation.table1()]
    table2 = [row for evaluation in evaluations for row in evaluation.table2()]
    threshold = f"{args.threshold:g}"
    print("\nTable I style, ours (F1 per image at the threshold and per-image oracle; AUC pooled)")
    print(format_table(table1, ["method", "dataset", "tampered_images", f"f1_per_image@{threshold}", "f1_per_image_oracle", "auc_pooled"]))
    print("\nTable II style, ours (the network; one row per protocol, see table2.json for each protocol in words)")
    print(format_table(table2, ["dataset", "protocol", "threshold", "images", "accuracy", "precision", "recall", "f1", "auc"]))
    paper = paper_tables()
    print("\nThe paper's numbers, as reported (its data, splits and protocols: not comparable row by row with ours)")
    print(format_table(paper["table1"], ["method", "dataset (as the paper labels it)", "f1", "auc", "source"]))
    print(format_table(paper["table2"], ["dataset", "accuracy", "precision", "recall", "f1", "auc", "source"]))
    by_kind = [row for evaluation in evaluations for row in evaluation.by_kind(next(iter(methods)))]
    print("\nBy manipulation kind (the network; missed: per-image F1 below 0.1; F1 found: mean F1 over the images not missed)")
    print(format_table(by_kind, ["dataset", "kind", "images", f"f1_per_image@{threshold}", "missed_share", "f1_found"]))
    if args.robustness:
        written += _robustness(args, model, scored[0], out)
    print("\nwritten: " + ", ".join(str(path) for path in written))
    return 1 if refused or any(evaluation.skipped for evaluation in evaluations) else 0


def _robustness(args, model, records, out: Path) -> list[Path]:
    """Robustness curves on the first dataset's scored images (its tampered ones, up to --robustness-limit)."""
    from .safe_write import write_csv
    from .evaluate import model_predictor
    from .robustness import robustness_curves

    records = [record for record in records if record.is_tampered][: args.robustness_limit]
    print(f"\nRobustness on {len(records)} tampered images of {args.data[0]} (per-image F1@{args.threshold:g}, pooled AUC)")
    points = robustness_curves(records, model_predictor(model, policy=args.policy, flip=args.flip), threshold=args.threshold)
    path = out / "robustness.csv"
    for point in points:
        print(f"  {point.perturbation:7s} {point.level:>5s}  F1 {point.per_image_f1:.3f}  AUC {point.pooled_auc:.3f}")
    write_csv(path, [[point.perturbation, point.level, point.images, f"{point.per_image_f1:.4f}", f"{point.pooled_auc:.4f}"]
                     for point in points], ["perturbation", "level", "images", f"per_image_f1@{args.threshold:g}", "pooled_auc"])
    return [path]


def _notebook_named(name: str, every: list[Path]) -> Path:
    """A path as given, or a notebook of the suite named by its file name or number (``02``, ``02_forgery_datasets``)."""
    path = Path(name)
    if path.is_file():
        return path
    found = [notebook for notebook in every if notebook.name == name or notebook.stem == name or notebook.name.startswith(f"{name}_")]
    if len(found) != 1:
        raise FileNotFoundError(f"--only {name}: no such notebook; the suite's are {', '.join(notebook.name for notebook in every)}.")
    return found[0]


def _data_list(args: argparse.Namespace) -> int:
    from .data.download import data_list

    for row in data_list():
        print(f"{row['source']}\n  present:  {row['present']}\n  get it:   {row['download']}" + (f" ({row['size']})" if row["size"] else "")
              + f"\n  licence:  {row['licence']}\n  cite:     {row['citation']}")
    return 0


def _data_download(args: argparse.Namespace) -> int:
    from .data.download import download

    download(args.source, to=args.to, from_=args.from_ or (), accept_terms=args.accept_terms)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .compare import compare, format_comparison, read_scores

    comparison = compare(read_scores(args.a, args.method_a), read_scores(args.b, args.method_b), confidence=args.confidence)
    print(format_comparison(comparison))
    return 0


def _localize(args: argparse.Namespace) -> int:
    import errno

    from .localize_outputs import (LOCALIZE_OUTPUTS, LOCALIZE_PICTURES, OutputFolderError, RunFolder, check_output_folder, expand_inputs,
                                   plan_outputs, write_outputs)

    out = check_output_folder(args.out)  # before the model loads: a bad --out fails fast
    files, problems = expand_inputs(args.images)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not files:
        print("error: no images to localize.", file=sys.stderr)
        return 2
    from .pipeline import localize
    from .runtime import load_for_inference, model_identity

    model = load_for_inference(args.weights, runtime=args.runtime)  # LiteRT's copy when there is one: no TensorFlow import
    label = model.label
    # An earlier run into --out with the same settings keeps its images' picture names and rows (a run with other
    # settings does not mix its rows into this table).
    settings = {"model": model_identity(args.weights), "threshold": args.threshold, "policy": args.policy or model.settings.policy,
                "flip": bool(args.flip), "copy_move": bool(args.copy_move)}
    earlier = RunFolder.earlier_rows(out, settings)
    stems = plan_outputs(files, out, LOCALIZE_OUTPUTS, RunFolder.earlier_stems(earlier))
    _warn_other_policy(args.policy, model.settings.policy, label)
    failures, count = len(problems), 0
    columns = ["image", "tamper_score", "tampered_fraction", "probability_png"]
    if args.copy_move:
        columns += ["copy_move_pair", "copy_move_score", "copy_move_copy"]
    from collections import Counter

    alike = {name for name, times in Counter(path.name for path in files).items() if times > 1}
    with RunFolder(out, columns, earlier, settings) as table:  # a refused folder is said before any table starts
        print(f"{len(files)} image(s), model {label}, threshold {args.threshold:g}, policy {args.policy or model.settings.policy}")
        print(f"{'image':40s} {'score':>6s} {'area':>7s}")
        for row, missing, removed in table.dropped_except(files):  # an image of this run gets its three pictures again below
            gone = f"; its other picture(s) {', '.join(removed)} were removed with it" if removed else ""
            print(f"note: {_printable(row['image'])}: {', '.join(missing)} is no longer in {out}, so its row left scores.csv{gone} "
                  "(localize it again to get all three back).", file=sys.stderr)
        for path, stem in stems.items():
            table.start(path, stem)
            try:
                table.ledger.claim(*(f"{stem}{ending}" for ending, _, _ in LOCALIZE_PICTURES))  # before any work for it
                result = localize(model, path, policy=args.policy, flip=args.flip)
                _note_conversions(path, result.conversions)
                _note_shape(path, result.image.shape[:2], args.policy or model.settings.policy)
                image, probability, found = result.image, result.probability, None
                if args.copy_move:  # the matcher's pairs, their copies told by ELA and the network's map, fused in
                    from .copymove import fused_with

                    probability, found = fused_with(result)
                result = None  # the full-size ELA map is not written: free it before the pictures are made
                written = write_outputs(out, stem, path, image, probability, args.threshold, model.settings.score_calibration,
                                        pairs=found.pairs if found else None, ledger=table.ledger)
                image = probability = None
            except OSError as error:
                if error.errno == errno.ENOSPC:  # nothing more can be written: say so once, keep what is complete
                    raise OutputFolderError(f"--out {out}: the disk is full after {count} image(s); this image's partial files were "
                                            f"removed and {RunFolder.PARTIAL} lists the finished ones. Free some space and run again.") from None
                print(f"error: {_with_file(error, path)}", file=sys.stderr)
                failures += 1
                continue
            except (*USER_ERRORS, MemoryError) as error:  # one input never stops the batch
                print(f"error: {_with_file(error, path)}", file=sys.stderr)
                failures += 1
                continue
            row = [str(written.source), f"{written.score:.4f}", f"{written.tampered_fraction:.4f}", written.files[0].name]
            if found is not None:
                best = found.pairs[0] if found.pairs else None
                row += ["yes" if best else "no", f"{found.score:.3f}", "" if best is None else {"a": "first", "b": "second"}.get(best.copy, "undecided")]
            table.add(row)
            count += 1
            shown = f"{path.parent.name}/{path.name}" if path.name in alike else path.name  # two img.jpg told apart
            print(f"{_printable(shown)[-40:]:40s} {written.score:6.3f} {written.tampered_fraction:7.2%}")
    others = table.unlisted()
    if others:
        print(f"note: {len(others)} picture(s) in {out} ({_printable(others[0])}{' ...' if len(others) > 1 else ''}) are an earlier "
              f"run's with other settings and are not in scores.csv, which lists this run's settings only; move them, or "
              "give each setting its own --out.", file=sys.stderr)
    failed = f"; {failures} input(s) failed" if failures else ""
    print(f"wrote {count} x 3 pictures (probability and mask PNG, overlay JPEG) and scores.csv to {out}{failed}")
    return 1 if failures else 0


def _warn_other_policy(chosen: str | None, own: str, label: str) -> None:
    """One line when ``--policy`` is not the model's own: a network trained on squeezed squares sees other pixels when
    images keep their own, and the other way round, and its maps are worse."""
    if chosen and chosen != own and not (chosen == "tile" and own == "native"):
        print(f"warning: --policy {chosen} is not {label}'s own policy ({own}), the one it was trained and measured with; "
              f"expect worse maps (leave --policy out to use {own}).", file=sys.stderr)


def _prepare(args: argparse.Namespace) -> int:
    import time

    from .runtime import CacheNotWritable, litert_available, prepare_lite

    if not litert_available():
        print("ai-edge-litert is not installed: pmsp localize runs Keras, and there is nothing to prepare "
              "(pip install ai-edge-litert for a start-up of about a second).")
        return 0
    failures = 0
    for spec in args.weights:
        exported, start = [], time.perf_counter()
        try:
            path = prepare_lite(spec, echo=exported.append)  # echo is called only when it exports
        except CacheNotWritable as error:  # the cache, not the model: no other model can be prepared either
            print(f"error: {_printable(str(error))}.", file=sys.stderr)
            return 1
        except USER_ERRORS as error:  # one model never stops the others
            print(f"error: {_with_file(error, Path(spec))}", file=sys.stderr)
            failures += 1
            continue
        done = f"exported in {time.perf_counter() - start:.1f} s" if exported else "already prepared"
        print(f"{spec}: {done}, {path}")
    return 1 if failures else 0


#: Control characters (C0, DEL, C1) and the bidirectional overrides, which would reorder what a line shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _printable(text: str) -> str:
    """``text`` as the console can print it on one line: a name it cannot encode gets escapes, not an exception that
    stops the batch, and a control character in a name (a newline, a tab, an escape) is written as its escape, so that
    a file name cannot break a line of the table or of a message in two, or send the terminal a command."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    text = _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)
    return text.encode(encoding, errors="backslashreplace").decode(encoding, errors="replace")


def _number(kind, *, low: float, high: float = math.inf, open_low: bool = False, open_high: bool = False, says: str):
    """An argparse type: ``kind`` (int or float) of ``text``, finite and within the bounds, else "must be SAYS, got X"."""

    def check(text: str):
        value = kind(text)
        inside = (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
        if not (math.isfinite(value) and inside):  # NaN fails both
            raise argparse.ArgumentTypeError(f"must be {says}, got {value if kind is int else format(value, 'g')}")
        return value

    check.__name__ = "whole number" if kind is int else "number"  # argparse says "invalid number value: 'x'"
    return check


_threshold = _number(float, low=0.0, high=1.0, open_low=True, open_high=True, says="strictly between 0 and 1 (0 and 1 themselves excluded)")
_positive_int = _number(int, low=1, says="at least 1")
_count = _number(int, low=0, says="0 or more")
_share = _number(float, low=0.0, high=1.0, says="in [0, 1]")
_positive_float = _number(float, low=0.0, open_low=True, says="positive and finite")
_nonnegative_float = _number(float, low=0.0, says="0 or more and finite")
_seed = _number(int, low=0, high=2**32 - 1, says="a whole number from 0 to 4294967295 (2**32 - 1, NumPy's and Keras' seed range)")


def _postprocessing(text: str) -> dict:
    from .augment import PostProcessing

    try:
        return PostProcessing.parse(text).to_dict()
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _named(text: str) -> str:
    """A name or path that must not be empty (an empty --out would mean the current folder without saying so)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty; name a file or folder (. for the current folder)")
    return text


def _model_name(text: str) -> str:
    """--weights: a shipped name wins over a folder or file of the same name here, and says so (it did silently)."""
    from . import pretrained

    if not text.strip():
        raise argparse.ArgumentTypeError(f"must not be empty; name a shipped model ({', '.join(pretrained.available())}), "
                                         "a .keras file or a run folder")

    if text in pretrained.available() and Path(text).exists():
        print(f"note: --weights {text} is the shipped model; the {'folder' if Path(text).is_dir() else 'file'} ./{text} here "
              f"is not used (pass ./{text} for it)", file=sys.stderr)
    return text


def _path(text: str) -> Path:
    return Path(_named(text))


def _recipe_arguments(command, defaults: dict) -> None:
    """The options a training recipe shares between ``pmsp train`` and ``pmsp ablate``, with their defaults from
    ``defaults`` (:meth:`TrainConfig.defaults`, with the ``ablation`` recipe on top for ``pmsp ablate``)."""
    from .model_settings import INPUT_POLICIES
    from .data.sources import DATA_SOURCES
    from .train_config import LOSSES, MONITORS, SPLIT_PROTOCOLS

    command.add_argument("--recipe", metavar="NAME", help="start from a named recipe (pmsp_utils/recipes.toml: paper, synthetic, ablation, "
                         "casia1-stride16, casia1-synthetic-start, one-network); options typed here override its fields")
    command.add_argument("--data", choices=DATA_SOURCES, default=defaults["data"])
    command.add_argument("--root", type=_named, help="folder of the dataset (default: PMSP_DATA_DIR/<data>)")
    command.add_argument("--epochs", type=_positive_int, default=defaults["epochs"])
    command.add_argument("--batch-size", type=_positive_int, default=defaults["batch_size"])
    command.add_argument("--input-size", type=_positive_int, default=defaults["input_size"],
                         help=f"a multiple of 96 at output stride 16, of 192 at 32 (default {defaults['input_size']})")
    command.add_argument("--learning-rate", type=_positive_float, default=defaults["learning_rate"])
    command.add_argument("--patience", type=_positive_int, default=defaults["patience"], help="early stopping: epochs without a better --monitor")
    command.add_argument("--loss", choices=LOSSES, default=defaults["loss"])
    command.add_argument("--monitor", choices=MONITORS, default=defaults["monitor"], help="what picks the best epoch and stops early")
    command.add_argument("--split", choices=SPLIT_PROTOCOLS, default=defaults["split"],
                         help="paper: 90/5/5 by name hash; grouped: forgeries sharing a source photo on one side")
    command.add_argument("--policy", choices=INPUT_POLICIES, default=defaults["policy"],
                         help="how images reach the square input: resize (the paper) or pad (own pixels, padding ignored)")
    command.add_argument("--weights", default=defaults["weights"], help="'imagenet', a legacy .h5 path, or 'none'")
    command.add_argument("--synthetic-count", type=_positive_int, default=defaults["synthetic_count"])
    command.add_argument("--synthetic-copy-move", type=float, default=defaults["synthetic_copy_move"], metavar="SHARE",
                         help="share of the synthetic forgeries that are copy-moves (default: the generator's 0.44; 0.5: as many as splicings)")
    command.add_argument("--workers", type=_positive_int, default=defaults["workers"])
    command.add_argument("--devices", type=_positive_int, default=defaults["devices"], metavar="N",
                         help="data-parallel: split each batch across N GPUs (or TPU cores); --batch-size must divide by N")
    command.add_argument("--max-train-images", type=_positive_int, default=defaults["max_train_images"],
                         help="train on this many images of the training part (a fixed name-hash sample, the same for every run)")
    command.add_argument("--recompress", type=float, default=defaults["recompress"], metavar="P",
                         help="probability of re-saving a training image as JPEG (quality 70..100) before ELA")
    command.add_argument("--init-from", help="start from another model: a shipped name (e.g. synthetic), a run folder or a .keras "
                         "file (layers copied by name where shapes agree), or a whole model's .weights.h5")
    command.add_argument("--ema", type=float, default=defaults["ema"], metavar="MOMENTUM",
                         help="score and keep an exponential moving average of the weights (e.g. 0.99; default 0: off)")
    command.add_argument("--postprocess", type=_postprocessing, default=defaults["postprocess"], metavar="SPEC",
                         help="post-process whole training images before ELA: 'photo' (resize 0.3, jpeg 0.5, blur 0.15, noise 0.15), "
                         "or STEP=P pairs, e.g. resize=0.3,jpeg=0.5 (steps: resize 0.5-1.0x, jpeg quality 50-100, blur, noise; "
                         "resize_range=0.5-2 widens the resize factors; default: off)")
    command.add_argument("--forgeries", type=_count, default=defaults["forgeries"], metavar="N",
                         help="add N forgeries made on real photos to the training part (split by photo; default 0)")
    command.add_argument("--forgery-photos", metavar="FOLDER", help="authentic photos for --forgeries (default: ROOT/authentic)")
    command.add_argument("--authentic", type=_count, default=defaults["authentic"], metavar="N",
                         help="add N untouched photos of the training side as negatives (all-zero masks; default 0)")


def _inference_arguments(command) -> None:
    """How images reach a trained network: ``pmsp evaluate`` and ``pmsp localize``."""
    from .pipeline import LOCALIZE_POLICIES

    command.add_argument("--policy", choices=LOCALIZE_POLICIES, default=None, help="how images reach the network (default: the model's own)")
    command.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                         help="test-time augmentation, the map averaged with the flipped image's (default: the model's own setting)")


def build_parser() -> argparse.ArgumentParser:
    from .model_settings import ATTENTION_PLACEMENTS, DECODERS, DEFAULT_ELA_QUALITY, FUSIONS, OUTPUT_STRIDES, STREAMS
    from .train_config import SCHEDULES
    from .data.sources import DATA_SOURCES
    from .ela import SCALINGS
    from .pretrained import DEFAULT_MODEL
    from .evaluate import SPLITS
    from .runtime import RUNTIMES
    from .train_config import MODEL_FIELDS, SPLIT_PROTOCOLS, TrainConfig
    from .recipes import recipe

    from .copymove import ON_BY_DEFAULT

    parser = _Parser(prog="pmsp", description="The PMSP image-forensics tutorial suite.")
    parser.add_argument("--version", action="version", version=f"pmsp {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("notebooks", help="execute the tutorial notebooks headlessly")
    run.add_argument("--out", type=_path, default=None, help="output folder (default: build/ in the checkout)")
    run.add_argument("--notebooks", type=Path, default=None, help="folder of numbered notebooks (default: the checkout's)")
    run.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebook files")
    run.add_argument("--smoke", action="store_true", help="smoke mode: every notebook in seconds")
    run.add_argument("--in-place", action="store_true", help="write executed notebooks over their sources")
    run.add_argument("--timeout", type=_positive_int, default=1800, help="seconds allowed per cell (enforced: a cell that runs longer fails)")
    run.add_argument("--jobs", type=_positive_int, default=1,
                     help="notebooks run at once, each in its own kernel (make run uses 2; each kernel needs about 2 GB)")
    run.set_defaults(handler=_notebooks)

    ela_command = commands.add_parser("ela", help="write ELA maps of images as PNG files")
    ela_command.add_argument("images", nargs="+", help="image files")
    ela_command.add_argument("--out", required=True, type=_named, help="output folder")
    ela_command.add_argument("--quality", type=int, default=DEFAULT_ELA_QUALITY,
                             help=f"re-save JPEG quality (1..100, default {DEFAULT_ELA_QUALITY}, the network's)")
    ela_command.add_argument("--display", "--scaling", dest="display", choices=SCALINGS, default="max",
                             help="how the saved picture is stretched for the eye: max (default; the largest difference "
                                  "becomes white), fixed (x20) or raw (the network's input, stretched for viewing)")
    ela_command.set_defaults(handler=_ela)

    train_command = commands.add_parser("train", help="train the network (the paper's recipe by default)")
    training = TrainConfig.defaults()  # every default of the options below, from the one source
    _recipe_arguments(train_command, training)
    train_command.add_argument("--run-dir", required=True, type=_path, help="where checkpoints, history and the model go")
    train_command.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    train_command.add_argument("--budget-minutes", type=_nonnegative_float, default=training["budget_minutes"], metavar="N",
                               help="stop cleanly after the last epoch that fits N minutes (set-up included; 0: no budget); "
                               "--resume continues later")
    train_command.add_argument("--positive-weight", type=_positive_float, default=training["positive_weight"], help="weight of tampered pixels in BCE")
    train_command.add_argument("--schedule", choices=SCHEDULES, default=training["schedule"],
                               help="plateau: learning rate x0.3 after every 2 epochs without a better --monitor (validation loss or per-image F1)")
    train_command.add_argument("--mixed-precision", action="store_true", help="bfloat16 compute (on a GPU)")
    train_command.add_argument("--no-augment", dest="augment", action="store_false", help="no flips")
    train_command.add_argument("--seed", type=_seed, default=training["seed"])
    train_command.add_argument("--attention", choices=ATTENTION_PLACEMENTS, default=training["attention"])
    train_command.add_argument("--fusion", choices=FUSIONS, default=training["fusion"])
    train_command.add_argument("--streams", choices=STREAMS, default=training["streams"])
    train_command.add_argument("--output-stride", type=int, choices=OUTPUT_STRIDES, default=training["output_stride"],
                               help="F5's stride: 16 (default: the last stage dilated, as in PSPNet), 8, or 32 (the paper)")
    train_command.add_argument("--decoder", choices=DECODERS, default=training["decoder"], help="f3: refine the pyramid output with F3 (stride 8)")
    train_command.add_argument("--include-authentic", action="store_true", help="also train on authentic images (all-zero masks)")
    train_command.add_argument("--distill-from", metavar="MODEL", help="a teacher (shipped name, run folder or .keras) whose maps of the "
                               "dataset's training images are mixed into their targets (cached once)")
    train_command.add_argument("--distill-weight", type=_share, default=training["distill_weight"], metavar="W",
                               help=f"target = (1 - W) * mask + W * teacher (default {training['distill_weight']})")
    train_command.set_defaults(handler=_train)

    ablate_command = commands.add_parser("ablate", help="train a grid of the paper's ablation variants over seeds (resumable)")
    ablate_command.add_argument("--grid", default="all", help="attention, fusion, streams, output, all, or variant names joined by commas")
    ablate_command.add_argument("--seeds", type=_seed, nargs="+", default=[0, 1, 2])
    ablate_command.add_argument("--out", type=_path, required=True, help="the study's folder (results.csv, one run folder per cell)")
    ablate_command.add_argument("--robustness", type=_count, default=0, metavar="N", help="also score N of the scored images under JPEG and resizing")
    ablate_command.add_argument("--score", choices=("test", "validation"), default="test",
                                help="which part the results table scores: test (never used to pick an epoch, the default) or validation")
    ablation = {**training, **recipe("ablation")}  # its variants change the paper's network (stride 32) at a small scale
    _recipe_arguments(ablate_command, ablation)
    ablate_command.set_defaults(handler=_ablate, **{name: ablation[name] for name in MODEL_FIELDS if name not in ("input_size", "policy")})

    evaluate_command = commands.add_parser("evaluate", help="score the network and the classic baselines (Tables I and II)")
    evaluate_command.add_argument("--data", nargs="+", choices=DATA_SOURCES, default=["synthetic"],
                                  help="one or more datasets (real ones from --root or PMSP_DATA_DIR/<data>)")
    evaluate_command.add_argument("--root", type=_named, help="folder of the dataset, with one --data")
    evaluate_command.add_argument("--weights", type=_model_name, default=DEFAULT_MODEL,
                                  help=f"a shipped model's name, a run folder or a .keras file (default: {DEFAULT_MODEL})")
    evaluate_command.add_argument("--split", choices=SPLITS, default="test",
                                  help="which images of a real dataset (default test; unseen: not in the model's own train/validation lists)")
    evaluate_command.add_argument("--baselines", nargs="*", default=["ela", "noi1", "cfa1"], help="classic baselines to score beside it")
    evaluate_command.add_argument("--protocol", choices=SPLIT_PROTOCOLS, default="paper",
                                  help="which split --split test/validation/train refers to: paper (by name hash) or grouped (by source photo)")
    evaluate_command.add_argument("--threshold", type=_threshold, default=0.5)
    _inference_arguments(evaluate_command)
    evaluate_command.add_argument("--limit", type=_positive_int, help="score only the first N images")
    evaluate_command.add_argument("--include-authentic", action="store_true", help="also score authentic images (pooled protocols)")
    evaluate_command.add_argument("--synthetic-count", type=_positive_int, default=200)
    evaluate_command.add_argument("--seed", type=_seed, default=1, help="seed of the synthetic images (training uses seed 0)")
    evaluate_command.add_argument("--robustness", action="store_true", help="also write robustness curves (first dataset)")
    evaluate_command.add_argument("--robustness-limit", type=_positive_int, default=20, help="images for the robustness curves")
    evaluate_command.add_argument("--out", type=_path, default=Path("build/evaluation"), help="folder for the CSV and JSON tables")
    evaluate_command.add_argument("--copy-move", action=argparse.BooleanOptionalAction, default=ON_BY_DEFAULT,
                                  help="fuse the copy-move matcher's pairs into the network's map, as pmsp localize does "
                                  f"(default: {'on' if ON_BY_DEFAULT else 'off'})")
    evaluate_command.set_defaults(handler=_evaluate)

    data_command = commands.add_parser("data", help="datasets: list what the suite knows, download CASIA v1 in one command")
    data_commands = data_command.add_subparsers(dest="data_command", required=True)
    data_commands.add_parser("list", help="every source: present or not, how to get it, size, licence, citation").set_defaults(handler=_data_list)
    download_command = data_commands.add_parser("download", help="fetch, verify file by file and lay out a dataset (e.g. casia1)")
    download_command.add_argument("source", help="what to download (pmsp data list says which can be)")
    download_command.add_argument("--to", type=_named, help="the dataset's folder (default: $PMSP_DATA_DIR/SOURCE)")
    download_command.add_argument("--from", dest="from_", action="append", metavar="FILE_OR_DIR",
                                  help="use a copy you already have: the archives, or a folder holding the files (repeatable)")
    download_command.add_argument("--accept-terms", action="store_true", help="accept the dataset's terms without a prompt")
    download_command.set_defaults(handler=_data_download)

    compare_command = commands.add_parser("compare", help="is B better than A? two evaluations paired image by image")
    compare_command.add_argument("a", help="output folder of 'pmsp evaluate' (or its per_image.csv): the reference")
    compare_command.add_argument("b", help="the same for the challenger, scored on the same images")
    compare_command.add_argument("--method-a", help="which method of A's table (default: the network, its PMSP method; else its first)")
    compare_command.add_argument("--method-b", help="which method of B's table (default: the network, its PMSP method; else its first)")
    compare_command.add_argument("--confidence", type=float, default=0.9, help="width of the bootstrap interval (default 0.9)")
    compare_command.set_defaults(handler=_compare)

    localize_command = commands.add_parser("localize", help="write probability maps, masks and overlays of images")
    localize_command.add_argument("images", nargs="+", help="image files, folders or glob patterns")
    localize_command.add_argument("--out", required=True, type=_named, help="output folder")
    localize_command.add_argument("--weights", type=_model_name, default=DEFAULT_MODEL,
                                  help=f"a shipped model's name, a run folder or a .keras file (default: {DEFAULT_MODEL})")
    localize_command.add_argument("--threshold", type=_threshold, default=0.5, help="probability above which a pixel is tampered")
    localize_command.add_argument("--runtime", choices=RUNTIMES, default=os.environ.get("PMSP_RUNTIME") or "auto",
                                  help="auto (default): a LiteRT copy of the model, exported once, when ai-edge-litert is installed "
                                  "(starts in about a second), else Keras; keras or litert to choose (default from PMSP_RUNTIME)")
    _inference_arguments(localize_command)

    localize_command.add_argument("--copy-move", action=argparse.BooleanOptionalAction, default=ON_BY_DEFAULT,
                                  help="also look for a region that appears twice (pmsp_utils.copymove) and mark its copy; adds "
                                  f"copy_move_* columns to scores.csv and arrows to the overlays (default: {'on' if ON_BY_DEFAULT else 'off'}, "
                                  "as measured on validation: benchmarks/RESULTS.md)")
    localize_command.set_defaults(handler=_localize)

    prepare_command = commands.add_parser("prepare", help="export models' LiteRT copies now, so that the first pmsp localize starts in about a second")
    prepare_command.add_argument("--weights", type=_model_name, nargs="+", default=[DEFAULT_MODEL], metavar="MODEL",
                                 help=f"shipped models' names, run folders or .keras files (default: {DEFAULT_MODEL})")
    prepare_command.set_defaults(handler=_prepare)
    return parser


def _explicit_options(argv: list[str] | None) -> set[str]:
    """The destinations of the options the user actually typed (so a resumed run keeps the ones not repeated)."""
    quiet = build_parser()
    for action in _all_actions(quiet):
        action.default = argparse.SUPPRESS
    try:
        return set(vars(quiet.parse_args(argv)))
    except SystemExit:
        return set()


def _all_actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_actions(sub)


def _with_file(error: BaseException, path: Path) -> str:
    """An error's message, starting with the file it is about."""
    message = str(error) if not isinstance(error, OSError) or not error.strerror else f"{error.strerror}"
    if isinstance(error, MemoryError):
        message = ("out of memory while reading or analysing it" + (f" ({message})" if message else "") + "; if it is very large, "
                   "set PMSP_MAX_IMAGE_PIXELS to refuse such images, or free memory")
    if isinstance(error, PermissionError):
        message = f"permission denied ({error.strerror}); check that you can read it"
    return _printable(message if str(path) in message or path.name in message else f"{path}: {message}")


#: The arguments :func:`main` is parsing (for :class:`_Parser`'s hint).
_ARGV: list[str] = []


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors also say when a word it took for an option is a file here ("-x.jpg")."""

    def error(self, message: str):
        files = [word for word in _ARGV if word.startswith("-") and len(word) > 1 and Path(word).exists()]
        if files:
            message += (f" ({files[0]} is a file here: put file names that start with '-' after --, e.g. "
                        f"pmsp {next((w for w in _ARGV if not w.startswith('-')), 'ela')} ... -- {files[0]}, or write ./{files[0]})")
        super().error(message)


def _check_environment() -> None:
    """A malformed setting read from the environment is one error before any work, not one per image."""
    from . import images

    images._apply_environment_limit()  # PMSP_MAX_IMAGE_PIXELS, read again: the process's own value
    if images._ENVIRONMENT_ERROR is not None:
        raise images._ENVIRONMENT_ERROR


class _PipeSafeStdout:
    """Standard output that a closed pipe does not stop (``pmsp compare A B | head -1``): once the reader has gone, the
    rest is dropped and the command finishes its work and its exit code as it would have, instead of ending in
    ``[Errno 32] Broken pipe`` on stderr with exit code 2."""

    def __init__(self, stream) -> None:
        self.stream, self.gone = stream, False

    def _reader_gone(self) -> None:
        self.gone = True
        try:  # Python flushes stdout once more at exit: let that flush reach /dev/null, not the closed pipe
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stream.fileno())
            os.close(null)
        except (OSError, ValueError):
            pass

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def main(argv: list[str] | None = None) -> int:
    """Run a command; every failure a user can cause is one line ``error: ...`` (``--debug`` shows the traceback)."""
    if argv is None and not isinstance(sys.stdout, _PipeSafeStdout) and sys.stdout is not None:  # the pmsp command itself
        sys.stdout = _PipeSafeStdout(sys.stdout)
    parser = build_parser()
    global _ARGV
    _ARGV = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.explicit = _explicit_options(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    restore = _stop_on_sigterm()
    try:
        _check_environment()
        return args.handler(args)
    except KeyboardInterrupt as stop:
        stopped = isinstance(stop, Terminated)
        said = "stopped (SIGTERM)" if stopped else "interrupted"
        if args.handler is _train and getattr(args, "run_dir", None):
            said += (f"; the last finished epoch's checkpoint in {args.run_dir} is whole: pmsp train --run-dir {args.run_dir} "
                     "--resume continues from it")
        print(f"error: {said}", file=sys.stderr)
        return 143 if stopped else 130
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"error: {_explained(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001  (no traceback for users; --debug keeps it for bug reports)
        if args.debug:
            raise
        print(f"error: {type(error).__name__}: {error} (unexpected; run again with --debug for the traceback and report it)",
              file=sys.stderr)
        return 1
    finally:
        restore()


def _explained(error: BaseException) -> str:
    """A user error as one line; an operating-system error on pmsp's cache folder says which variable moves it."""
    import errno

    from .environment import cache_dir, unwritable_cache

    if isinstance(error, OSError) and error.filename and error.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC):
        cache = Path(os.path.abspath(cache_dir()))
        path = Path(os.path.abspath(os.fsdecode(error.filename)))
        if path == cache or cache in path.parents or path in cache.parents:
            full = error.errno == errno.ENOSPC
            why = f"{'the disk is full' if full else error.strerror or error}: {path}"
            return unwritable_cache(cache, why, noun="the cache folder") + (", or free some space." if full else ".")
    return str(error)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler, a closed session), raised where the command is, so that it stops as Ctrl-C stops it:
    what is half written is cleaned up, and the line says what was stopped and how to go on."""


def _stop_on_sigterm():
    """Turn SIGTERM into :class:`Terminated` for the command's duration; returns what puts the earlier handler back
    (nothing to put back where handlers cannot be set: not the main thread)."""
    def stop(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread of the main interpreter
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
