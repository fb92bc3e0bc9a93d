"""Notebook 06's sentences that state a run's outcome, checked against the values its committed outputs print, and the
figures it quotes from benchmarks/RESULTS.md and RESULTS_ARCHIVE.md held equal to those files.

Sentences checked here (the others that state an outcome are written by the notebook's code from the values: the
power of three seeds, the shipped localizers under JPEG 90, the bottom line of section 12, the synthetic start):

Section 5, "What the verdicts say":
- "No attention, attention inside the blocks and attention after F3–F5 are within each other's spread on both metrics."
- "The seeds of one placement differ more (...) than the placements differ on average."
- "Attention inside every block costs the most training time."
- "ADD against CONCAT: contradicted on per-image F1, ranges overlap on AUC. Every CONCAT seed scored above every ADD seed."
- "ELA only beats both streams on both metrics, every seed; the ranges of RGB only and both streams overlap."
- "stride 16 beats stride 32 on both metrics, every seed"; "The F3 decoder's range overlaps stride 32's here."
Section 8:
- "the RGB-only network barely moves"; "Quality 90 hurts more than quality 50"; "The two-stream network follows its ELA
  stream down instead of falling back on RGB"; "Halving the image size hurts the ELA-based networks the same way".
- "The `casia1` pair ... still loses a large part of its F1 at quality 90; the default `casia1-forged` ... loses less."
- "The stride-16 network is the most robust two-stream network of this study."
Section 9:
- "Stride 16 gives the highest per-image F1 per CPU-hour of the three outputs."
- "At 384, padded and without the decoder, stride 16 lost to the 576 stride-32 run on both parts."
- "At 576 with the decoder it was ahead of stride 32 or level on every figure of both parts, while CONCAT fusion was ahead
  on validation and behind on test; paired image by image on validation, neither interval excludes zero."
Section 11 (the full-scale runs): "Stride 16 was ahead of stride 32 there too"; "CONCAT against ADD went both ways".
Section 12: "at this scale its claims, if true, are small against the seed-to-seed spread" (where the paper's choice is
ahead, by less than one seed sd).
Summary: "no claim of the paper is confirmed: its verdicts are ranges overlap or contradicted (CONCAT above ADD on
per-image F1, ELA only above both streams on both metrics). The only claim confirmed is beyond the paper: stride 16 over
stride 32, on both metrics."; "three seeds confirm reliably only differences of a few seed standard deviations".
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from course_text import cells, markdown, planted, printed

from pmsp_utils.ablation import VARIANTS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "06_ablations.ipynb"
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def table(notebook: Path, marker: str) -> dict[str, list[float]]:
    """The rows of the committed text table whose output holds ``marker``: {variant: its numbers, left to right across
    the blocks pandas wraps a wide table into}."""
    for cell in cells(notebook):
        for output in cell.get("outputs", []):
            text = "".join(output.get("data", {}).get("text/plain", ""))
            if marker in text:
                rows: dict[str, list[float]] = {}
                for line in text.splitlines():
                    words = line.split()
                    if words and words[0] in VARIANTS:
                        rows.setdefault(words[0], []).extend(float(n) for n in NUMBER.findall(line[len(words[0]):]))
                return rows
    raise LookupError(f"{notebook.name} shows no table with {marker!r}; re-execute it")


def ranges(notebook: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """Section 4's seed ranges: {variant: {"f1": (lowest, highest), "auc": (...)}}, and the training minutes."""
    rows = table(notebook, "per-image F1 range")
    # seeds, F1 mean, sd, lowest, highest, pooled F1 mean, sd, AUC mean, sd, lowest, highest, parameters, multiply-adds, minutes
    assert all(len(values) == 14 for values in rows.values()), rows
    return {name: {"f1": (v[3], v[4]), "f1_mean": v[1], "auc": (v[9], v[10]), "minutes": v[13]} for name, v in rows.items()}


def above(first: tuple[float, float], second: tuple[float, float]) -> bool:
    return first[0] > second[1]


def overlap(first: tuple[float, float], second: tuple[float, float]) -> bool:
    return not above(first, second) and not above(second, first)


def check_verdict_sentences(notebook: Path) -> None:
    text = markdown(notebook)
    seeds = ranges(notebook)
    placements = ("attention-none", "attention-blocks", "paper")
    assert "within each other's spread on both metrics" in text
    for index, first in enumerate(placements):
        for second in placements[index + 1:]:
            assert overlap(seeds[first]["f1"], seeds[second]["f1"]) and overlap(seeds[first]["auc"], seeds[second]["auc"])
    assert "than the placements differ on average" in text
    blocks = seeds["attention-blocks"]["f1"]
    mean_gap = max(seeds[a]["f1_mean"] for a in placements) - min(seeds[a]["f1_mean"] for a in placements)
    assert blocks[1] - blocks[0] > mean_gap
    assert "Attention inside every block costs the most training time" in text
    assert max(seeds, key=lambda name: seeds[name]["minutes"]) == "attention-blocks"
    assert "contradicted on per-image F1, ranges overlap on AUC.** Every CONCAT seed scored above every ADD seed" in text
    assert above(seeds["fusion-concat"]["f1"], seeds["paper"]["f1"]) and overlap(seeds["fusion-concat"]["auc"], seeds["paper"]["auc"])
    assert "ELA only beats both streams** on both metrics, every seed; the ranges of RGB only and both streams overlap" in text
    assert above(seeds["streams-ela"]["f1"], seeds["paper"]["f1"]) and above(seeds["streams-ela"]["auc"], seeds["paper"]["auc"])
    assert overlap(seeds["streams-rgb"]["f1"], seeds["paper"]["f1"]) and overlap(seeds["streams-rgb"]["auc"], seeds["paper"]["auc"])
    assert "stride 16 beats stride 32** on both metrics, every seed" in text
    assert above(seeds["stride16"]["f1"], seeds["paper"]["f1"]) and above(seeds["stride16"]["auc"], seeds["paper"]["auc"])
    assert "The F3 decoder's range overlaps stride 32's here" in text
    assert overlap(seeds["decoder-f3"]["f1"], seeds["paper"]["f1"]) and overlap(seeds["decoder-f3"]["auc"], seeds["paper"]["auc"])


def check_the_bottom_line(notebook: Path) -> None:
    text = markdown(notebook)
    claims, verdicts, confirmed, contradicted, overlapping = printed(notebook, "the paper's")
    assert (claims, verdicts) == (5, 10) and confirmed + contradicted + overlapping == verdicts
    assert "**no claim of the paper is confirmed**: its verdicts are *ranges overlap* or *contradicted*" in text
    assert confirmed == 0
    assert "The only claim *confirmed* is beyond the paper: stride 16 over stride 32, on both metrics" in text
    claims, verdicts, confirmed, _, _ = printed(notebook, "beyond the paper,")
    seeds = ranges(notebook)
    assert confirmed == 2 and above(seeds["stride16"]["f1"], seeds["paper"]["f1"]) and above(seeds["stride16"]["auc"], seeds["paper"]["auc"])
    assert "three seeds confirm reliably only differences of a few seed standard deviations" in text
    one, two, three = printed(notebook, "a true difference of one seed sd is confirmed")
    assert one < 50 and three >= 80
    assert "its claims, if true, are small against the seed-to-seed spread" in text
    gaps = printed(notebook, "the paper's claims, its choice minus the other, per-image F1 mean in seed sds:")
    assert len(gaps) == 5 and max(gaps) < 1


def check_robustness_sentences(notebook: Path) -> None:
    text = markdown(notebook)
    robust = table(notebook, "resized ×0.5")  # clean, JPEG 90, JPEG 70, JPEG 50, resized x0.5
    assert "while the RGB-only network barely moves" in text
    clean, jpeg90, _, jpeg50, resized = robust["streams-rgb"]
    assert clean - jpeg90 < min(0.01, 0.1 * clean)
    assert all(values[0] - values[1] > 5 * (clean - jpeg90) for name, values in robust.items() if name != "streams-rgb")
    assert "Quality 90 hurts more than quality 50" in text
    assert all(values[1] < values[3] for name, values in robust.items() if name != "streams-rgb")
    assert "The two-stream network follows its ELA stream down instead of falling back on RGB" in text
    assert robust["paper"][1] < robust["streams-rgb"][1]
    assert "Halving the image size hurts the ELA-based networks the same way" in text
    assert all(robust[name][4] < 0.5 * robust[name][0] for name in ("paper", "streams-ela"))
    assert "The stride-16 network is the most robust two-stream network of this study" in text
    two_stream = {name: values for name, values in robust.items() if not name.startswith("streams-")}
    assert max(two_stream, key=lambda name: two_stream[name][1]) == "stride16"
    assert "still loses a large part of its F1 at quality 90 (above); the default `casia1-forged`" in text and "loses less." in text
    forged, pair = printed(notebook, "casia1-forged (the default):"), printed(notebook, "casia1 (the pair):")
    # clean F1 / AUC / missed%, then "after JPEG 90" and its three figures
    assert pair[4] / pair[0] < 0.8 and forged[4] / forged[0] > pair[4] / pair[0]


def check_full_scale_sentences(notebook: Path) -> None:
    text = markdown(notebook)
    output = table(notebook, "F1 per CPU-hour")  # per-image F1, pooled AUC, training minutes, multiply-adds, F1 per CPU-hour
    assert "Stride 16 gives the highest per-image F1 per CPU-hour of the three outputs" in text
    assert max(output, key=lambda name: output[name][4]) == "stride16"
    assert "At 384, padded and without the decoder, stride 16 lost to the 576 stride-32 run on both parts" in text
    at_576, at_384 = printed(notebook, "stride 32 at 576, F3 decoder:"), printed(notebook, "stride 16 at 384, padded, no decoder:")
    assert at_384[-2] < at_576[-2] and at_384[-1] < at_576[-1]  # validation, test
    assert "it was ahead of stride 32 or level on every figure of both parts" in text
    add, stride16, concat = (printed(notebook, label) for label in ("stride 32, ADD:", "stride 16:", "CONCAT:"))
    for part in (0, 4):  # validation, test: F1, AUC, missed %, copy-moves missed %
        assert stride16[part] > add[part] and stride16[part + 1] >= add[part + 1]
        assert stride16[part + 2] <= add[part + 2] and stride16[part + 3] <= add[part + 3]
    assert ("CONCAT fusion was ahead on validation per-image F1 and behind on the test part's (its AUC was behind on both "
            "parts, its missed share better on both)") in text
    assert concat[0] > add[0] and concat[4] < add[4]  # per-image F1: validation ahead, test behind
    assert concat[1] < add[1] and concat[5] < add[5]  # AUC behind on both parts
    assert concat[2] < add[2] and concat[6] < add[6]  # missed share better (lower) on both parts
    assert "neither interval excludes zero" in text
    stride_mean, stride_low, stride_high, concat_mean, concat_low, concat_high = printed(
        notebook, "paired on the 52 validation images against stride 32, mean difference (90% interval): stride 16")[:6]
    assert stride_low < 0 < stride_high and concat_low < 0 < concat_high
    assert "Stride 16 was ahead of stride 32 there too" in text and "CONCAT against ADD went both ways" in text


CHECKS = (check_verdict_sentences, check_the_bottom_line, check_robustness_sentences, check_full_scale_sentences)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_06_sentences_agree_with_the_committed_outputs(check):
    check(NOTEBOOK)


@pytest.mark.parametrize(("check", "old", "new"), [
    (check_the_bottom_line, "10 verdicts: 0 confirmed, 3 contradicted", "10 verdicts: 1 confirmed, 2 contradicted"),
    (check_verdict_sentences, "0.193–0.273", "0.170–0.273"),  # one CONCAT seed below the best ADD seed
    (check_robustness_sentences, "streams-rgb       0.146    0.142", "streams-rgb       0.146    0.102"),
    (check_full_scale_sentences, "CONCAT: validation 0.617", "CONCAT: validation 0.607"),
], ids=["no claim confirmed", "every CONCAT seed above", "RGB barely moves", "CONCAT both ways"])
def test_06_a_planted_contradiction_is_caught(tmp_path, check, old, new):
    with pytest.raises(AssertionError):
        check(planted(NOTEBOOK, tmp_path, old, new, every=True))


# --- the figures 06 quotes from benchmarks/ are the files' rows now -------------------------------------------------


def _rows(file: str) -> dict[str, dict[str, str]]:
    """Every table row of benchmarks/<file> by its first cell: {first cell: {column title: cell}} (bold marks dropped)."""
    rows, table_lines = {}, []
    for line in (ROOT / "benchmarks" / file).read_text().splitlines() + [""]:
        if line.startswith("|"):
            table_lines.append([cell.strip().replace("**", "") for cell in line.strip().strip("|").split("|")])
            continue
        for row in table_lines[2:]:
            rows.setdefault(row[0], dict(zip(table_lines[0], row)))
        table_lines = []
    return rows


def _shown(notebook: Path) -> str:
    return "\n".join("".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/markdown", ""))
                     for cell in cells(notebook) for output in cell.get("outputs", []))


def test_06_quotes_the_current_rows_of_results():
    shown, results, archive = _shown(NOTEBOOK), _rows("RESULTS.md"), _rows("RESULTS_ARCHIVE.md")
    clean, jpeg90 = results["test, clean (52; read afterwards)"], results["test, JPEG 90"]
    for model, column in (("casia1-forged (the default)", "casia1-forged"), ("casia1 (the pair)", "pair (casia1)")):
        assert f"{model}: clean {clean[column]}, after JPEG 90 {jpeg90[column]}" in shown, model
    for name, row in (("stride 32, ADD", "shipped casia1 (stride 32, ADD; previous session)"), ("stride 16", "output stride 16"),
                      ("CONCAT", "CONCAT fusion")):
        cells_of = archive[row]
        assert (f"{name}: validation {cells_of['validation: F1 / AUC / missed (copy-move)']}, "
                f"test {cells_of['test: F1 / AUC / missed (copy-move)']}") in shown, name
    for name, row in (("stride 32 at 576, F3 decoder", "576, resize, F3 decoder, stride 32"),
                      ("stride 16 at 384, padded, no decoder", "384, pad, output stride 16")):
        validation = float(NUMBER.search(archive[row]["best validation per-image F1 (input size)"]).group(0))
        test = float(archive[row]["test (52): per-image F1@0.5"])
        assert f"{name}: validation {validation:.3f}, test {test:.3f}" in shown, name
    for name, row in (("from ImageNet (the study's paper variant)", "from ImageNet (the shipped study)"),
                      ("from the synthetic weights", "from the shipped `synthetic` weights (`--init-from synthetic`)")):
        cells_of = archive[row]
        assert (f"{name}: per-image F1 {cells_of['per-image F1@0.5 mean ± sd (range)']}, "
                f"pooled AUC {cells_of['pooled AUC mean ± sd (range)']}") in shown, name


def test_06_reads_results_from_code_not_from_typed_text():
    """The RESULTS figures appear in 06 only as outputs: no Markdown cell types them."""
    text = markdown(NOTEBOOK)
    for figure in ("0.639", "0.473", "0.578", "0.525", "0.570", "0.614", "0.374", "0.856"):
        assert not re.search(rf"(?<![\d.]){re.escape(figure)}(?!\d)", text), figure
    assert json.loads(NOTEBOOK.read_text())["cells"][-1]["source"][0].startswith("## References")
