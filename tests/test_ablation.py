"""The ablation runner on a tiny grid: rows and columns, resume, clear errors; the comparison words."""

from __future__ import annotations

import pytest

from pmsp_utils.ablation import GRIDS, RESULT_COLUMNS, VARIANTS, describe_difference, read_results, summarise, variant_names


def test_variant_names_and_grids():
    assert variant_names("attention") == ["attention-none", "attention-blocks", "paper"]
    assert variant_names("paper, fusion-concat") == ["paper", "fusion-concat"]
    assert set(GRIDS["all"]) == set(VARIANTS)
    with pytest.raises(ValueError, match="unknown ablation variant 'attention-everywhere'; variants: paper, attention-none"):
        variant_names(["paper", "attention-everywhere"])


def test_every_variant_is_a_setting_build_pmsp_accepts():
    from pmsp_utils.ablation import variant_settings
    from pmsp_utils.model_settings import ModelSettings

    base = ModelSettings(input_size=192)
    for name in VARIANTS:
        settings = variant_settings(name, base)  # ModelSettings checks every value against the choices build_pmsp takes
        assert settings.input_size == 192


def test_summary_and_words_by_hand():
    rows = [{"variant": "paper", "seed": seed, "per_image_f1@0.5": value} for seed, value in enumerate((0.50, 0.52, 0.54))]
    rows += [{"variant": "fusion-concat", "seed": seed, "per_image_f1@0.5": value} for seed, value in enumerate((0.40, 0.41, 0.42))]
    rows += [{"variant": "streams-rgb", "seed": seed, "per_image_f1@0.5": value} for seed, value in enumerate((0.45, 0.51, 0.60))]
    summary = {row["variant"]: row for row in summarise(rows)}
    assert summary["paper"]["mean"] == pytest.approx(0.52) and summary["paper"]["std"] == pytest.approx(0.02)
    assert "paper 0.520 ± 0.020 beats fusion-concat 0.410" in describe_difference(rows, "paper", "fusion-concat")
    assert "within each other's spread" in describe_difference(rows, "paper", "streams-rgb")
    assert "not both measured" in describe_difference(rows, "paper", "decoder-f3")


keras = pytest.importorskip("keras", reason="training the grid needs Keras")


@pytest.mark.slow
def test_tiny_grid_writes_rows_and_resumes(tmp_path, cache_folder):
    from pmsp_utils.ablation import run_ablation
    from pmsp_utils.data.synthetic import SyntheticConfig, SyntheticForgerySet
    from pmsp_utils.train import TrainConfig

    dataset = SyntheticForgerySet(8, seed=5, config=SyntheticConfig(size=96, splicing=0.6, copy_move=0.4)).write(tmp_path / "s", show_progress=False)
    tampered = [record for record in dataset if record.is_tampered]
    config = TrainConfig(data="synthetic", input_size=96, batch_size=2, epochs=1, weights=None, workers=1, streams="rgb")
    said = []
    rows = run_ablation(["streams-rgb", "attention-none"], [0], config, tampered[:4], tampered[4:6], tmp_path / "study",
                        robustness=1, echo=said.append)
    assert [(row["variant"], row["seed"]) for row in rows] == [("streams-rgb", 0), ("attention-none", 0)]
    table = read_results(tmp_path / "study" / "results.csv")
    assert set(RESULT_COLUMNS) <= set(table[0]) and "f1_jpeg_50" in table[0] and "f1_resize_0.5" in table[0]
    assert table[1]["parameters"] < table[0]["parameters"]  # one RGB stream in both (the recipe's); attention-none drops the attention
    assert all(0.0 <= row["pooled_auc"] <= 1.0 and row["epochs"] == 1 for row in table)
    again = run_ablation(["streams-rgb", "attention-none"], [0], config, tampered[:4], tampered[4:6], tmp_path / "study", echo=said.append)
    assert len(again) == 2 and sum("done already, skipped" in line for line in said) == 2
    import numpy as np

    snapshots = np.load(tmp_path / "study" / "snapshots.npz")
    assert "streams-rgb/seed0/0" in snapshots.files and snapshots["streams-rgb/seed0/0"].dtype == np.uint8

    from pmsp_utils.ablation import load_study, ship_study

    shipped = load_study(ship_study(tmp_path / "study", tmp_path / "shipped"))  # small files only: no run folders, no weights
    assert sorted(path.name for path in (tmp_path / "shipped").iterdir()) == ["histories.csv", "results.csv", "snapshots.npz", "study.json"]
    assert shipped.rows == table and shipped.variants == ["streams-rgb", "attention-none"] and shipped.seeds == [0]
    assert [(row["variant"], row["seed"], row["epoch"]) for row in shipped.histories] == [("attention-none", 0, 0), ("streams-rgb", 0, 0)]
    assert shipped.settings["scored_part"] == "validation" and shipped.snapshot_images == [f"synthetic/{r.name}" for r in tampered[4:6]]


def test_ablate_command_refuses_a_bad_variant(tmp_path, capsys):
    from pmsp_utils.cli import main

    assert main(["ablate", "--grid", "paper,nonsense", "--out", str(tmp_path)]) == 2
    assert "unknown ablation variant 'nonsense'" in capsys.readouterr().err


def test_verdicts_by_hand():
    from pmsp_utils.ablation import verdict

    rows = [{"variant": "paper", "seed": s, "per_image_f1@0.5": v, "pooled_auc": 0.8} for s, v in enumerate((0.50, 0.52, 0.54))]
    rows += [{"variant": "fusion-concat", "seed": s, "per_image_f1@0.5": v, "pooled_auc": 0.9} for s, v in enumerate((0.40, 0.41, 0.42))]
    rows += [{"variant": "streams-rgb", "seed": s, "per_image_f1@0.5": v, "pooled_auc": 0.7} for s, v in enumerate((0.45, 0.51, 0.60))]
    assert verdict(rows, "paper", "fusion-concat") == "confirmed"
    assert verdict(rows, "fusion-concat", "paper") == "contradicted"
    assert verdict(rows, "paper", "fusion-concat", "pooled_auc") == "contradicted"
    assert verdict(rows, "paper", "streams-rgb") == "ranges overlap"
    assert verdict(rows, "paper", "decoder-f3") == "not measured"
    assert verdict(rows[:1] + rows[3:], "paper", "fusion-concat") == "not measured"  # one seed: no spread to judge by


def test_the_shipped_study_loads_whole():
    from pmsp_utils.ablation import SHIPPED_STUDY, load_study

    study = load_study()
    assert study.folder == SHIPPED_STUDY
    assert set(study.variants) == set(VARIANTS), "every variant of the grid was trained"
    assert len(study.seeds) >= 3 and len(study.rows) == len(VARIANTS) * len(study.seeds), "every variant at every seed, once"
    assert set(RESULT_COLUMNS) <= set(study.rows[0])
    for row in study.rows:
        assert 0.0 <= row["per_image_f1@0.5"] <= 1.0 and 0.0 <= row["pooled_auc"] <= 1.0 and 1 <= row["best_epoch"] <= row["epochs"]
        assert {f"f1_jpeg_{quality}" for quality in (90, 70, 50)} <= set(row), "the robustness columns"
    assert study.settings["scored_part"] == "test" and study.settings["recipe"]["split"] == "grouped"
    for variant in VARIANTS:  # Figure 7 and the curves draw from these
        assert study.snapshot(variant, study.seeds[0], 0).dtype.name == "uint8"
        assert {row["seed"] for row in study.histories if row["variant"] == variant} == set(study.seeds)
    assert len(study.snapshot_images) >= 3


def test_the_shipped_study_is_what_build_pmsp_builds():
    """Each shipped variant name builds, and builds a network of the parameter count the study recorded."""
    from pmsp_utils.ablation import load_study, variant_settings
    from pmsp_utils.model_settings import ModelSettings
    from pmsp_utils.network import build_pmsp

    study = load_study()
    base = ModelSettings(input_size=study.settings["recipe"]["input_size"])
    recorded = {row["variant"]: row["parameters"] for row in study.rows}
    for variant in study.variants:
        settings = variant_settings(variant, base)
        model = build_pmsp(settings.input_size, attention=settings.attention, fusion=settings.fusion, streams=settings.streams,
                           output_stride=settings.output_stride, decoder=settings.decoder, weights=None, verbose=False)
        assert model.count_params() == recorded[variant], variant


def test_load_study_errors(tmp_path):
    from pmsp_utils.ablation import load_study

    with pytest.raises(FileNotFoundError, match="no ablation study here"):
        load_study(tmp_path)
    (tmp_path / "results.csv").write_text("variant,seed,per_image_f1@0.5\nattention-everywhere,0,0.5\n")
    (tmp_path / "study.json").write_text("{}")
    with pytest.raises(ValueError, match="unknown variant.*attention-everywhere"):
        load_study(tmp_path)


def test_ablate_takes_the_recipe_options_train_has(tmp_path):
    from pmsp_utils.ablation import variant_config
    from pmsp_utils.cli import _train_config, build_parser

    args = build_parser().parse_args(["ablate", "--grid", "paper", "--out", str(tmp_path), "--init-from", "synthetic", "--ema", "0.99"])
    cell = variant_config(_train_config(args), "stride16")
    assert (cell.init_from, cell.ema, cell.model.output_stride, cell.model.input_size) == ("synthetic", 0.99, 16, 192)
    paper = variant_config(_train_config(args), "paper")  # the paper's network, although pmsp train's default stride is 16
    assert (paper.model.output_stride, paper.model.decoder, paper.model.fusion, paper.model.attention) == (32, "none", "add", "features")
    with pytest.raises(ValueError, match="ema is a momentum"):
        _train_config(build_parser().parse_args(["ablate", "--out", str(tmp_path), "--ema", "1.5"]))


def test_an_ablation_with_nothing_to_score_is_refused_before_training(tmp_path):
    from pmsp_utils.ablation import run_ablation
    from pmsp_utils.train import TrainConfig

    with pytest.raises(ValueError, match="holds no tampered image to score"):
        run_ablation("paper", [0], TrainConfig(data="synthetic", input_size=96), ["unused"], ["unused"], tmp_path, score_records=[],
                     score_part="test")
    assert not any(tmp_path.iterdir())
