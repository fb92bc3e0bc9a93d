"""The ablation runner on a tiny grid: rows and columns, resume, clear errors; the comparison words."""

from __future__ import annotations

import pytest

from pmsp_utils.ablation import GRIDS, RESULT_COLUMNS, VARIANTS, compare, read_results, summarise, variant_names


def test_variant_names_and_grids():
    assert variant_names("attention") == ["attention-none", "attention-blocks", "paper"]
    assert variant_names("paper, fusion-concat") == ["paper", "fusion-concat"]
    assert set(GRIDS["all"]) == set(VARIANTS)
    with pytest.raises(ValueError, match="unknown ablation variant 'attention-everywhere'; variants: paper, attention-none"):
        variant_names(["paper", "attention-everywhere"])


def test_every_variant_is_a_setting_build_pmsp_accepts():
    from pmsp_utils.ablation import variant_settings
    from pmsp_utils.architecture import ModelSettings

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
    assert "paper 0.520 ± 0.020 beats fusion-concat 0.410" in compare(rows, "paper", "fusion-concat")
    assert "within each other's spread" in compare(rows, "paper", "streams-rgb")
    assert "not both measured" in compare(rows, "paper", "decoder-f3")


keras = pytest.importorskip("keras", reason="training the grid needs Keras")


def test_tiny_grid_writes_rows_and_resumes(tmp_path, cache_folder):
    from pmsp_utils.ablation import run_ablation
    from pmsp_utils.data.synthetic import SyntheticConfig, SyntheticForgerySet
    from pmsp_utils.train import TrainConfig

    dataset = SyntheticForgerySet(8, seed=5, config=SyntheticConfig(size=192, splicing=0.6, copy_move=0.4)).write(tmp_path / "s", show_progress=False)
    tampered = [record for record in dataset if record.is_tampered]
    config = TrainConfig(data="synthetic", input_size=192, batch_size=2, epochs=1, weights=None, workers=1, streams="rgb")
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


def test_ablate_command_refuses_a_bad_variant(tmp_path, capsys):
    from pmsp_utils.cli import main

    assert main(["ablate", "--grid", "paper,nonsense", "--out", str(tmp_path)]) == 2
    assert "unknown ablation variant 'nonsense'" in capsys.readouterr().err
