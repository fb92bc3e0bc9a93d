"""pmsp compare: two evaluations paired image by image, with a bootstrap interval."""

import csv

import numpy as np
import pytest

from pmsp_utils.cli import main
from pmsp_utils.compare import Scores, compare, read_scores

COLUMNS = ["dataset", "method", "image", "kind", "tampered_fraction", "f1@0.5", "auc", "best_f1"]


def write_table(folder, rows, columns=COLUMNS):
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "per_image.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return folder


def rows(method, scores, kinds=None):
    return [{"dataset": "casia1", "method": method, "image": f"image{i}", "kind": (kinds or ["splicing"] * len(scores))[i],
             "tampered_fraction": 0.1, "f1@0.5": "" if score is None else f"{score:.4f}", "auc": 0.9, "best_f1": 0.8}
            for i, score in enumerate(scores)]


def scores(values, kinds=None, name="x"):
    return Scores(name, {f"i{k}": v for k, v in enumerate(values)}, {f"i{k}": (kinds or [""] * len(values))[k] for k in range(len(values))})


def test_a_clear_gain_on_every_image_is_called_better_and_the_difference_is_exact():
    random = np.random.default_rng(3)
    first = random.uniform(0.2, 0.6, 40)
    result = compare(scores(first), scores(first + 0.1))
    row = result.rows[0]
    assert row["images"] == 40 and row["difference"] == pytest.approx(0.1)
    assert row["low"] == pytest.approx(0.1) and row["high"] == pytest.approx(0.1)  # every resample gives the same gain
    assert result.verdict == "B better" and row["b_wins"] == 40
    assert compare(scores(first + 0.1), scores(first)).verdict == "A better"


def test_noise_of_either_sign_is_within_noise_and_the_interval_holds_the_mean():
    random = np.random.default_rng(0)
    first = random.uniform(0, 1, 52)
    second = first + random.normal(0, 0.2, 52)
    second += first.mean() - second.mean() + 0.005  # the same mean, give or take 0.005
    row = compare(scores(first), scores(second)).rows[0]
    assert row["low"] < row["difference"] < row["high"] and row["low"] < 0 < row["high"]
    assert row["verdict"] == "within noise"


def test_kinds_get_their_own_rows_and_missed_shares_count_f1_under_a_tenth():
    kinds = ["copy-move", "copy-move", "splicing", "splicing"]
    result = compare(scores([0.05, 0.5, 0.6, 0.09], kinds), scores([0.3, 0.5, 0.6, 0.7], kinds))
    groups = {row["group"]: row for row in result.rows}
    assert list(groups) == ["all tampered", "copy-move", "splicing"]
    assert groups["all tampered"]["a_missed"] == 0.5 and groups["all tampered"]["b_missed"] == 0.0
    assert groups["copy-move"]["images"] == 2 and groups["copy-move"]["difference"] == pytest.approx(0.125)


def test_only_images_scored_by_both_are_paired():
    a = Scores("a", {"x": 0.2, "y": 0.4}, {})
    b = Scores("b", {"y": 0.6, "z": 0.9}, {})
    result = compare(a, b)
    assert result.rows[0]["images"] == 1 and result.only_a == 1 and result.only_b == 1
    with pytest.raises(ValueError, match="share no scored image"):
        compare(Scores("a", {"x": 0.2}, {}), Scores("b", {"z": 0.2}, {}))


def test_read_scores_takes_the_first_method_skips_authentic_images_and_reads_kinds_from_casia_names(tmp_path):
    table = rows("PMSP (run)", [0.5, None, 0.7]) + rows("ela", [0.1, None, 0.2])
    folder = write_table(tmp_path / "eval", table)
    read = read_scores(folder)
    assert read.f1 == {"image0": 0.5, "image2": 0.7} and "PMSP (run)" in read.source
    assert read_scores(folder / "per_image.csv", "ela").f1 == {"image0": 0.1, "image2": 0.2}
    with pytest.raises(ValueError, match=r"no method 'noi1'; it holds 'PMSP \(run\)', 'ela'"):
        read_scores(folder, "noi1")
    old = [{"method": "m", "image": name, "f1@0.5": "0.3"} for name in ("Sp_D_NRN_A_ani0097_ani0082_0427", "Sp_S_CND_A_pla0016_pla0016_0196")]
    older = write_table(tmp_path / "old", old, ["method", "image", "f1@0.5"])  # written before the kind column
    assert read_scores(older).kinds == {old[0]["image"]: "splicing", old[1]["image"]: "copy-move"}


def test_cli_prints_the_table_and_verdict_and_names_a_bad_file_in_one_line(tmp_path, capsys):
    kinds = ["splicing", "copy-move"] * 10
    a = write_table(tmp_path / "a", rows("A", [0.3] * 20, kinds))
    b = write_table(tmp_path / "b", rows("B", [0.6] * 20, kinds))
    assert main(["compare", str(a), str(b), "--confidence", "0.95"]) == 0
    out = capsys.readouterr().out
    assert "95% interval" in out and "copy-move" in out and out.strip().endswith("verdict (all tampered images): B better")
    (tmp_path / "bad.csv").write_text("name,score\nx,1\n")
    assert main(["compare", str(a), str(tmp_path / "bad.csv")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "bad.csv: not a per-image table" in error
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2
    assert "missing: no such file; give an output folder" in capsys.readouterr().err


def test_scores_of_an_evaluation_in_memory_match_its_per_image_table(tmp_path):
    from pmsp_utils.evaluate import Evaluation, write_tables
    from pmsp_utils.metrics import PixelMetrics

    metrics = {"PMSP": PixelMetrics(0.5), "ELA": PixelMetrics(0.5)}
    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 1
    for index, shift in enumerate((0, 3, 8)):
        metrics["PMSP"].update(np.roll(mask, shift, axis=1).astype(float), mask, name=f"Sp_S_CND_A_pla{index:04d}_pla{index:04d}_0196")
        metrics["ELA"].update(np.full((20, 20), 0.6), mask, name=f"Sp_S_CND_A_pla{index:04d}_pla{index:04d}_0196")
    kinds = {f"Sp_S_CND_A_pla{index:04d}_pla{index:04d}_0196": "copy-move" for index in range(3)}
    evaluation = Evaluation("casia1", "3 images", 0.5, metrics, [], kinds)
    write_tables([evaluation], tmp_path)
    in_memory, on_disk = Scores.of(evaluation, "PMSP"), read_scores(tmp_path)
    assert in_memory.f1 == pytest.approx(on_disk.f1, abs=1e-4) and in_memory.kinds == on_disk.kinds
    assert in_memory.f1["Sp_S_CND_A_pla0000_pla0000_0196"] == 1.0 and set(in_memory.kinds.values()) == {"copy-move"}
    result = compare(Scores.of(evaluation, "ELA"), in_memory, resamples=500)
    assert result.draws.shape == (500,) and [row["group"] for row in result.rows] == ["all tampered", "copy-move"]
    with pytest.raises(KeyError, match="no method 'NOI1'"):
        Scores.of(evaluation, "NOI1")


@pytest.mark.parametrize("cell, message", [("nan", r"an F1 must lie in \[0, 1\], found nan"), ("1.5", r"found 1.5"),
                                           ("-0.2", r"found -0.2"), ("abc", r"line 3, column f1@0.5: 'abc' is not a number")])
def test_a_damaged_per_image_table_is_refused_naming_the_line(tmp_path, cell, message):
    from pmsp_utils.compare import read_scores

    (tmp_path / "per_image.csv").write_text(f"method,image,f1@0.5\nnet,a.jpg,0.5\nnet,b.jpg,{cell}\n")
    with pytest.raises(ValueError, match=message):
        read_scores(tmp_path)


def test_an_image_listed_twice_and_a_header_only_table_are_named(tmp_path):
    from pmsp_utils.compare import read_scores

    (tmp_path / "per_image.csv").write_text("method,image,f1@0.5\nnet,a.jpg,0.5\nnet,a.jpg,0.7\n")
    with pytest.raises(ValueError, match=r"'a.jpg' is listed twice for 'net' with different F1 \(0.5 and 0.7\)"):
        read_scores(tmp_path)
    (tmp_path / "per_image.csv").write_text("method,image,f1@0.5\n")
    with pytest.raises(ValueError, match="has its columns but no rows"):
        read_scores(tmp_path)


@pytest.mark.parametrize("cell, message", [("net,b.jpg", r"line 3: 3 columns in the header but not in this row"),
                                           ("net,b.jpg,0.5,extra", r"line 3: 3 columns in the header but not in this row"),
                                           ("net,b.jpg,\u0660.\u0665", r"line 3, column f1@0.5: '\u0660.\u0665' is not a number")])
def test_a_row_cut_short_or_another_script_s_digits_are_refused_not_read_as_an_authentic_image_or_0_5(tmp_path, cell, message):
    """A half-written last row was taken for an authentic image (no F1) and left out without a word; Arabic-Indic digits
    were read as 0.5 by float(). Both are named with their line."""
    from pmsp_utils.compare import read_scores

    (tmp_path / "per_image.csv").write_text(f"method,image,f1@0.5\nnet,a.jpg,0.5\n{cell}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_scores(tmp_path)


def test_a_byte_order_mark_is_read_and_a_table_not_in_utf8_is_named(tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark, which sat on the first column's name ("not a per-image
    table"); a UTF-16 or Latin-1 table gave a bare codec error naming no file."""
    from pmsp_utils.compare import read_scores

    text = "method,image,f1@0.5\nnet,a.jpg,0.5\n"
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_scores(tmp_path / "bom.csv").f1 == {"a.jpg": 0.5}
    (tmp_path / "wide.csv").write_text(text, encoding="utf-16")
    with pytest.raises(ValueError, match=r"wide\.csv: not UTF-8 text .*; save it as UTF-8"):
        read_scores(tmp_path / "wide.csv")


def test_f1_taken_at_two_thresholds_is_not_compared(tmp_path):
    """F1 at 0.5 against F1 at 0.3 was paired without a word and gave "B better" from the threshold alone."""
    from pmsp_utils.compare import compare, read_scores

    rows = "".join(f"net,i{k},{0.2 if k % 2 else 0.3}\n" for k in range(12))
    (tmp_path / "a.csv").write_text("method,image,f1@0.5\n" + rows)
    (tmp_path / "b.csv").write_text("method,image,f1@0.3\n" + rows)
    a, b = read_scores(tmp_path / "a.csv"), read_scores(tmp_path / "b.csv")
    assert (a.threshold, b.threshold) == (0.5, 0.3)
    with pytest.raises(ValueError, match=r"a\.csv \(net\) holds F1 at threshold 0.5, .*b\.csv \(net\) at 0.3: .* one --threshold"):
        compare(a, b)
    assert compare(a, read_scores(tmp_path / "a.csv")).verdict == "within noise"


def test_too_few_images_give_no_interval_and_no_verdict(tmp_path, capsys):
    from pmsp_utils.compare import MIN_IMAGES, format_comparison

    a = write_table(tmp_path / "a", rows("A", [0.3, 0.4], ["splicing", "copy-move"]))
    b = write_table(tmp_path / "b", rows("B", [0.306, 0.5], ["splicing", "copy-move"]))
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "better" not in out and "+0.006 .. +0.006" not in out  # a one-image group had a zero-width interval
    assert out.strip().endswith(f"verdict (all tampered images): none (too few images: 2; at least {MIN_IMAGES} are needed "
                                "for an interval)")
    assert "splicing: too few images: 1; at least 10 are needed for an interval; no verdict" in out
    kinds = ["splicing"] * MIN_IMAGES + ["copy-move"] * (MIN_IMAGES - 1)  # the floor itself gets its interval
    random = np.random.default_rng(1)
    first = random.uniform(0.2, 0.6, len(kinds))
    result = compare(scores(first, kinds), scores(first + 0.1, kinds))
    groups = {row["group"]: row for row in result.rows}
    assert result.verdict == groups["splicing"]["verdict"] == "B better"
    assert groups["copy-move"]["verdict"] == "too few images" and np.isnan(groups["copy-move"]["low"])
    assert "copy-move: too few images: 9" in format_comparison(result)


def test_a_reader_that_goes_away_does_not_turn_a_finished_comparison_into_an_error(tmp_path):
    """``pmsp compare A B | head -1`` ended in "error: [Errno 32] Broken pipe" with exit code 2 (2 of 3 tries): the
    command now drops what nobody reads and exits as it would have."""
    import subprocess
    import sys

    rows = "".join(f"net,i{k},{0.1 * (k % 7)}\n" for k in range(12))
    (tmp_path / "a.csv").write_text("method,image,f1@0.5\n" + rows)
    process = subprocess.Popen([sys.executable, "-m", "pmsp_utils.cli", "compare", str(tmp_path / "a.csv"), str(tmp_path / "a.csv")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before the first line is written
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0 and b"Broken pipe" not in err, err


def test_joined_tables_an_unreadable_threshold_and_a_huge_field_are_refused_naming_the_file(tmp_path):
    """Two per-image tables joined with `cat` gave a verdict (the second header was taken for another method); a column
    f1@0.3x skipped the threshold check; a 200,000-character cell gave csv's "field larger than field limit" as an
    unexpected error naming no file."""
    from pmsp_utils.compare import read_scores

    rows = "".join(f"net,i{k},0.5\n" for k in range(3))
    (tmp_path / "joined.csv").write_text("method,image,f1@0.5\n" + rows + "method,image,f1@0.5\n" + rows)
    with pytest.raises(ValueError, match=r"joined\.csv, line 5: the header again"):
        read_scores(tmp_path / "joined.csv")
    (tmp_path / "odd.csv").write_text("method,image,f1@0.3x\n" + rows)
    with pytest.raises(ValueError, match=r"odd\.csv: its column f1@0.3x names no threshold"):
        read_scores(tmp_path / "odd.csv")
    (tmp_path / "huge.csv").write_text("method,image,f1@0.5\nnet," + "x" * 200_000 + ",0.5\n")
    with pytest.raises(ValueError, match=r"huge\.csv: not a table that can be read as CSV"):
        read_scores(tmp_path / "huge.csv")


def test_two_datasets_are_not_paired_by_name_and_the_network_is_the_default_method(tmp_path, capsys):
    """The third hostile pass: two evaluations of different datasets whose images share names (0.jpg ... 11.jpg) were
    paired and called "B better"; one table holding one name under two datasets merged them; a table sorted by method
    compared a baseline, not the network its --help promises."""
    clean = rows("PMSP (x)", [0.3 + 0.01 * (i % 3) for i in range(12)])
    holiday = [{**row, "dataset": "folder", "f1@0.5": "0.8000"} for row in clean]
    a, b = write_table(tmp_path / "a", clean), write_table(tmp_path / "b", holiday)
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "in the dataset 'casia1'" in err and "'folder'" in err and "compare evaluations of one dataset" in err
    both = write_table(tmp_path / "both", clean + holiday)
    with pytest.raises(ValueError, match="listed under two datasets"):
        read_scores(both)
    baseline = [{**row, "method": "CFA1", "f1@0.5": "0.1000"} for row in clean]
    ordered = write_table(tmp_path / "ordered", baseline + clean)  # sorted by method: the baseline first
    assert read_scores(ordered).source.endswith("(PMSP (x))") and read_scores(ordered, "CFA1").f1["image0"] == 0.1
    assert read_scores(write_table(tmp_path / "only", baseline)).source.endswith("(CFA1)")  # no network: the first method


def test_two_tables_that_disagree_on_an_images_kind_are_refused():
    """The fourth hostile pass: where A called an image a splicing and B a copy-move, A's kind was taken without a word."""
    a = Scores("a", {f"i{k}": 0.5 for k in range(12)}, {f"i{k}": "splicing" for k in range(12)})
    b = Scores("b", {f"i{k}": 0.6 for k in range(12)}, {**{f"i{k}": "splicing" for k in range(12)}, "i3": "copy-move"})
    with pytest.raises(ValueError, match="a calls 'i3' a splicing, b a copy-move"):
        compare(a, b)
    assert compare(a, Scores("c", b.f1, {})).rows[0]["images"] == 12  # a table without kinds takes the other's


def test_the_bootstrap_draws_in_bounded_blocks_and_gives_the_same_means(monkeypatch):
    """Drawn whole, 10 000 resamples of 150 000 images took 23 GB (pmsp compare on a large table): the draws now come a
    block at a time, at most BOOTSTRAP_CHUNK indices, and the means are those of one whole draw."""
    import numpy as np

    from pmsp_utils import compare as comparing

    difference = np.random.default_rng(3).normal(0, 0.2, 301)
    whole = np.random.default_rng(0)
    expected = difference[whole.integers(0, 301, size=(997, 301))].mean(axis=1)

    sizes = []

    class Recording:
        def __init__(self, generator):
            self.generator = generator

        def integers(self, low, high, size):
            sizes.append(int(np.prod(size)))
            return self.generator.integers(low, high, size=size)

    monkeypatch.setattr(comparing, "BOOTSTRAP_CHUNK", 5000)
    means = comparing.bootstrap_means(difference, 997, Recording(np.random.default_rng(0)))
    np.testing.assert_array_equal(means, expected)
    assert max(sizes) <= 5000 and len(sizes) > 1
