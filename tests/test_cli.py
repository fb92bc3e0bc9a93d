"""The pmsp command line on good and bad input."""

import numpy as np
import pytest
from conftest import encode
from PIL import Image

from pmsp_utils.cli import main


def test_ela_command_writes_maps_and_reports_bad_files(photo, tmp_path, capsys):
    good = tmp_path / "good.jpg"
    good.write_bytes(encode(photo, "JPEG", quality=80))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    out = tmp_path / "out"
    assert main(["ela", str(bad), str(good), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "bad.jpg: the file is empty" in captured.err
    written = np.asarray(Image.open(out / "good_jpg_ela.png"))
    assert written.shape == photo.shape and written.max() == 255


def test_bad_quality_is_a_clear_error(photo, tmp_path, capsys):
    path = tmp_path / "a.png"
    path.write_bytes(encode(photo, "PNG"))
    assert main(["ela", str(path), "--out", str(tmp_path), "--quality", "0"]) == 2
    assert "quality must be from 1 to 100" in capsys.readouterr().err


def test_notebooks_command_on_an_empty_folder(tmp_path, capsys):
    assert main(["notebooks", "--notebooks", str(tmp_path), "--out", str(tmp_path / "b")]) == 2
    assert "No notebooks matching" in capsys.readouterr().err


# --- outputs never overwrite inputs or each other (issue 11) -------------------------------


def test_ela_outputs_of_a_jpg_and_a_png_stay_apart(photo, tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(encode(photo, "JPEG", quality=80))
    (tmp_path / "a.png").write_bytes(encode(photo, "PNG"))
    out = tmp_path / "out"
    assert main(["ela", str(tmp_path / "a.jpg"), str(tmp_path / "a.png"), "--out", str(out)]) == 0
    first, second = np.asarray(Image.open(out / "a_jpg_ela.png")), np.asarray(Image.open(out / "a_png_ela.png"))
    assert not np.array_equal(first, second)  # the JPEG has an error level, the PNG another


def test_ela_never_overwrites_an_input(photo, tmp_path, capsys):
    picture = tmp_path / "x.jpg"
    picture.write_bytes(encode(photo, "JPEG", quality=80))
    precious = tmp_path / "x_jpg_ela.png"
    precious.write_bytes(encode(photo, "PNG"))
    before = precious.read_bytes()
    assert main(["ela", str(picture), str(precious), "--out", str(tmp_path)]) == 2
    assert "x_jpg_ela.png" in capsys.readouterr().err  # refused: the folder holds an input named like the output
    assert precious.read_bytes() == before


def test_an_output_folder_holding_earlier_outputs_as_inputs_is_refused(photo, tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(encode(photo, "JPEG", quality=80))
    assert main(["ela", str(tmp_path), "--out", str(tmp_path)]) == 0  # names cannot collide: a_jpg_ela.png is new
    assert (tmp_path / "a_jpg_ela.png").exists()
    assert main(["ela", str(tmp_path), "--out", str(tmp_path)]) == 2  # now the folder holds an output among the inputs
    assert "named like this command's outputs (a_jpg_ela.png)" in capsys.readouterr().err


def test_ela_reports_each_bad_file_and_goes_on(photo, tmp_path, capsys):
    (tmp_path / "folder.jpg").mkdir()
    good = tmp_path / "good.jpg"
    good.write_bytes(encode(photo, "JPEG"))
    assert main(["ela", str(tmp_path / "folder.jpg"), str(tmp_path / "missing.jpg"), str(good), "--out", str(tmp_path / "o")]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(errors) == 2 and all(line.startswith("error: ") for line in errors)
    assert "folder.jpg: a folder with no image files" in errors[0] and "missing.jpg: no such file" in errors[1]
    assert (tmp_path / "o" / "good_jpg_ela.png").exists()


def test_unexpected_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch, tmp_path, capsys):
    import pmsp_utils.cli as cli

    def broken(args):
        raise RuntimeError("boom")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["ela"].set_defaults(handler=broken)
    assert main(["ela", "x.jpg", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == "error: RuntimeError: boom (unexpected; run again with --debug for the traceback and report it)"
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "ela", "x.jpg", "--out", str(tmp_path)])


# --- environment variables ----------------------------------------------------------------


def run_pmsp(*arguments, **environment):
    import os
    import subprocess
    import sys

    env = {key: value for key, value in {**os.environ, **environment}.items() if value is not None}
    return subprocess.run([sys.executable, "-m", "pmsp_utils.cli", *arguments], capture_output=True, text=True, env=env, timeout=300)


def test_a_malformed_smoke_switch_does_not_stop_commands_that_do_not_need_it(tmp_path, photo):
    result = run_pmsp("--version", PMSP_SMOKE="maybe")
    assert result.returncode == 0 and "pmsp" in result.stdout
    assert "PMSP_SMOKE='maybe' is not a boolean; accepted: 0, 1, false, no, off, on, true, yes" in result.stderr
    assert "Traceback" not in result.stderr
    refused = run_pmsp("notebooks", "--notebooks", str(tmp_path), CI="sometimes", PMSP_SMOKE=None)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "CI='sometimes' is not a boolean" in refused.stderr


def test_a_malformed_pixel_limit_is_named_when_an_image_is_read(tmp_path, photo):
    image = tmp_path / "a.png"
    image.write_bytes(encode(photo, "PNG"))
    assert run_pmsp("--version", PMSP_MAX_IMAGE_PIXELS="lots").returncode == 0
    result = run_pmsp("ela", str(image), "--out", str(tmp_path / "o"), PMSP_MAX_IMAGE_PIXELS="lots")
    assert result.returncode == 2 and "Traceback" not in result.stderr  # before any work
    assert "PMSP_MAX_IMAGE_PIXELS='lots' is not a pixel count" in result.stderr


def test_a_keras_backend_that_is_not_installed_is_one_line(tmp_path, photo):
    import importlib.util

    missing = next((name for name in ("torch", "jax") if importlib.util.find_spec(name) is None), None)
    if missing is None:
        pytest.skip("every Keras backend is installed here, so none can be missing")
    result = run_pmsp("localize", "a.jpg", "--out", str(tmp_path / "o"), KERAS_BACKEND=missing)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"KERAS_BACKEND='{missing}', but {missing} is not installed" in result.stderr
    unknown = run_pmsp("localize", "a.jpg", "--out", str(tmp_path / "o"), KERAS_BACKEND="theano")
    assert unknown.returncode == 2 and "KERAS_BACKEND='theano' is not a Keras backend; accepted: tensorflow, jax, torch" in unknown.stderr


def test_an_overlay_png_of_an_earlier_version_counts_as_an_output_not_an_input(photo, tmp_path):
    from pmsp_utils.localize_outputs import LOCALIZE_OUTPUTS, OutputFolderError, plan_outputs

    (tmp_path / "a.jpg").write_bytes(encode(photo, "JPEG", quality=80))
    old = tmp_path / "a_jpg_overlay.png"  # what pmsp localize wrote before the overlay became a JPEG
    old.write_bytes(encode(photo, "PNG"))
    with pytest.raises(OutputFolderError, match="a_jpg_overlay.png"):
        plan_outputs(sorted(tmp_path.iterdir()), tmp_path, LOCALIZE_OUTPUTS)
    assert plan_outputs([tmp_path / "a.jpg"], tmp_path, LOCALIZE_OUTPUTS) == {tmp_path / "a.jpg": "a_jpg"}


def test_a_policy_other_than_the_models_own_is_named_and_ci_is_read_as_a_switch(tmp_path, capsys, monkeypatch):
    """pmsp localize --policy pad on a model trained with resize says so in one line; CI=false is not CI."""
    import numpy as np
    from PIL import Image

    from pmsp_utils.cli import main
    from pmsp_utils.environment import in_ci

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    assert main(["localize", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--weights", "synthetic", "--policy", "pad"]) == 0
    err = capsys.readouterr().err
    assert "warning: --policy pad is not shipped synthetic's own policy (resize)" in err
    assert main(["localize", str(tmp_path / "a.png"), "--out", str(tmp_path / "out2"), "--weights", "synthetic"]) == 0
    assert "warning" not in capsys.readouterr().err
    for value, expected in (("false", False), ("0", False), ("true", True), ("1", True)):
        monkeypatch.setenv("CI", value)
        assert in_ci() is expected
    with pytest.raises(SystemExit):
        main(["localize", str(tmp_path / "a.png"), "--out", str(tmp_path / "out3"), "--threshold", "0"])
    assert "strictly between 0 and 1 (0 and 1 themselves excluded), got 0" in capsys.readouterr().err


@pytest.mark.parametrize("arguments", [["localize", "x.png", "--out", ""], ["localize", "x.png", "--out", "o", "--weights", ""],
                                       ["ela", "x.png", "--out", " "], ["evaluate", "--out", ""], ["train", "--run-dir", ""]])
def test_empty_names_are_refused_not_taken_for_the_current_folder(arguments, capsys):
    with pytest.raises(SystemExit):
        main(arguments)
    assert "must not be empty" in capsys.readouterr().err


def test_a_float_array_just_outside_0_1_shows_its_true_range():
    from pmsp_utils.ela import ela
    from pmsp_utils.images import ImageReadError

    with pytest.raises(ImageReadError, match=r"found \[1\.000000001, 1\.000000001\]"):
        ela(np.full((16, 16, 3), 1 + 1e-9))


def test_the_pixel_limit_applies_to_inputs_only_one_line_per_image(tmp_path, capsys, monkeypatch):
    """PMSP_MAX_IMAGE_PIXELS=100: a 1-pixel image is localized (the limit does not reach the internal resize to the
    model's input), a 30x30 one is refused in one line, and the batch goes on."""
    from PIL import Image as PillowImage

    import pmsp_utils.images as images

    monkeypatch.setattr(PillowImage, "MAX_IMAGE_PIXELS", PillowImage.MAX_IMAGE_PIXELS)  # restored after the test
    monkeypatch.setenv("PMSP_MAX_IMAGE_PIXELS", "100")
    images._apply_environment_limit()
    PillowImage.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "one.png")
    PillowImage.new("RGB", (30, 30), (10, 20, 30)).save(tmp_path / "big.png")
    assert main(["localize", str(tmp_path / "one.png"), str(tmp_path / "big.png"), "--out", str(tmp_path / "out"),
                 "--weights", "synthetic"]) == 1
    err = capsys.readouterr().err
    assert "big.png: refused as a possible decompression bomb" in err and "unexpected" not in err
    assert (tmp_path / "out" / "one_png_mask.png").exists()


def test_a_malformed_pixel_limit_is_one_error_before_any_work_and_pmsps_own_copies_are_not_limited(tmp_path, capsys, monkeypatch, recwarn):
    """PMSP_MAX_IMAGE_PIXELS past what sizes can hold gave an OverflowError "(unexpected)" and processed nothing; a word
    gave one error per image, blamed on the image. Now either is one line about the variable, before any work. Under a
    limit an input passes with a warning, ELA's own re-saved copy no longer warns again as a raw Pillow line."""
    from PIL import Image as PillowImage

    import pmsp_utils.images as images

    monkeypatch.setattr(PillowImage, "MAX_IMAGE_PIXELS", PillowImage.MAX_IMAGE_PIXELS)  # restored after the test
    monkeypatch.setattr(images, "_ENVIRONMENT_ERROR", None)
    for number in (3, 4):
        PillowImage.new("RGB", (30 * number, 30), (10 * number, 20, 30)).save(tmp_path / f"img{number}.jpg")
    inputs = [str(tmp_path / "img3.jpg"), str(tmp_path / "img4.jpg")]
    for value in ("99999999999999999999999", "abc"):
        monkeypatch.setenv("PMSP_MAX_IMAGE_PIXELS", value)
        assert main(["ela", *inputs, "--out", str(tmp_path / value)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: PMSP_MAX_IMAGE_PIXELS='{value}' is not a pixel count"), err
        assert not (tmp_path / value).exists()
    monkeypatch.setenv("PMSP_MAX_IMAGE_PIXELS", "2000")  # 2700 and 3600 pixels: over the limit (Pillow alone only warned up to 4000)
    assert main(["ela", *inputs, "--out", str(tmp_path / "limited")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") and "pixels, over the limit of 2,000)" in line for line in err), err
    assert not [warning for warning in recwarn if issubclass(warning.category, PillowImage.DecompressionBombWarning)]


def test_keras_draws_its_bar_only_where_someone_watches(monkeypatch):
    """`pmsp train > log` wrote Keras' bar into the file (escape codes, the epoch line repeated): a pipe or a file gets
    one line an epoch (verbose 2), a terminal the bar; CI and PMSP_PROGRESS=0 never get it, PMSP_PROGRESS=1 always."""
    import io

    from pmsp_utils.progress import keras_verbosity

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for name in ("CI", "PMSP_PROGRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.stderr", Terminal())
    monkeypatch.setattr("sys.stdout", io.StringIO())  # redirected to a file
    assert keras_verbosity() == 2
    monkeypatch.setattr("sys.stdout", Terminal())
    assert keras_verbosity() == 1
    monkeypatch.setenv("CI", "true")
    assert keras_verbosity() == 2
    monkeypatch.delenv("CI")
    monkeypatch.setenv("PMSP_PROGRESS", "0")
    assert keras_verbosity() == 2
    monkeypatch.setenv("PMSP_PROGRESS", "1")
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert keras_verbosity() == 1


def test_seeds_are_checked_as_options_and_missing_imagenet_weights_stop_before_any_folder(tmp_path, capsys, monkeypatch):
    """`--seed -5` said only "expected non-negative integer", and `ablate --seeds 1e20` failed after writing study.json;
    without internet, the ImageNet download failed "(unexpected)" after a half-made run folder. Now: the option named
    with its range at parse time; the weights are had, or refused in one line, before anything is written."""
    import pmsp_utils.network.imagenet as imagenet

    for arguments, option in ((["train", "--seed", "-5"], "--seed"), (["ablate", "--seeds", "99999999999999999999"], "--seeds"),
                              (["evaluate", "--seed", "-1"], "--seed"), (["ablate", "--robustness", "-1"], "--robustness")):
        with pytest.raises(SystemExit):
            main([*arguments, "--out", str(tmp_path / "x")] if arguments[0] != "train" else arguments)
        assert f"argument {option}: must be" in capsys.readouterr().err

    def offline():
        raise imagenet.WeightsUnavailableError("Could not download the ImageNet weights (no internet). Without internet, ...")

    monkeypatch.setattr(imagenet, "available_imagenet_weights", lambda: None)
    monkeypatch.setattr(imagenet, "imagenet_weights_path", offline)
    for arguments in (["train", "--data", "synthetic", "--run-dir", str(tmp_path / "run")],
                      ["ablate", "--data", "synthetic", "--out", str(tmp_path / "study")]):
        assert main(arguments) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: Could not download the ImageNet weights") and "unexpected" not in err[0], err
    assert not (tmp_path / "run").exists() and not (tmp_path / "study").exists()


def test_names_that_mean_two_things_are_said_or_refused(tmp_path, capsys, monkeypatch):
    """A ./casia1-forged folder beside the shipped name was passed over silently; `--data synthetic synthetic` scored the
    same set twice; `pmsp compare` on a FIFO said "no such file"."""
    import os

    monkeypatch.chdir(tmp_path)
    (tmp_path / "synthetic").mkdir()
    assert main(["evaluate", "--data", "synthetic", "synthetic", "--weights", "synthetic", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == "note: --weights synthetic is the shipped model; the folder ./synthetic here is not used (pass ./synthetic for it)"
    assert err[-1] == "error: --data lists synthetic more than once; each dataset is scored once, so name it once.", err
    os.mkfifo(tmp_path / "pipe.csv")
    assert main(["compare", str(tmp_path / "pipe.csv"), str(tmp_path / "pipe.csv")]) == 2
    assert "pipe.csv: not a regular file" in capsys.readouterr().err


def test_a_file_name_starting_with_a_dash_is_pointed_out_in_the_usage_error(tmp_path, capsys, monkeypatch):
    """`pmsp ela --out maps -x.jpg` said only "the following arguments are required: images"."""
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (32, 32), (10, 20, 30)).save(tmp_path / "-x.jpg")
    with pytest.raises(SystemExit):
        main(["ela", "--out", "maps", "-x.jpg"])
    assert "(-x.jpg is a file here: put file names that start with '-' after --" in capsys.readouterr().err
    assert main(["ela", "--out", "maps", "--", "-x.jpg"]) == 0 and (tmp_path / "maps" / "-x_jpg_ela.png").exists()


def test_a_name_with_control_characters_stays_on_one_line_of_output():
    """The third hostile pass: a file named with a newline split the table's line and the note about it in two; an
    escape sequence or a right-to-left override in a name would reach the terminal as such."""
    from pmsp_utils.cli import _printable

    assert _printable("new\nline\ttab\x1b[31m\u202eexe.jpg") == "new\\nline\\ttab\\x1b[31m\\u202eexe.jpg"
    assert _printable("été x\udcff.jpg") == "été x\\udcff.jpg"  # printable text stays; a byte that is not UTF-8 is escaped


def test_sigterm_stops_a_command_in_one_line_and_train_says_how_to_resume(tmp_path, capsys, monkeypatch):
    """`kill` (SIGTERM) ended `pmsp train` without a word, as if the log stopped mid-epoch. It now stops a command as
    Ctrl-C does (exit 143), and for training names the folder and --resume; the earlier handler is put back after."""
    import os
    import signal
    import time

    from pmsp_utils import cli

    def killed(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the signal's handler raises long before this ends
        return 0

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli, "_train", killed)
    assert cli.main(["train", "--run-dir", str(tmp_path / "run")]) == 143
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and said[0].startswith("error: stopped (SIGTERM); ")
    assert f"pmsp train --run-dir {tmp_path / 'run'} --resume continues from it" in said[0]
    assert signal.getsignal(signal.SIGTERM) == before
    monkeypatch.setattr(cli, "_ela", killed)
    assert cli.main(["ela", str(tmp_path), "--out", str(tmp_path / "maps")]) == 143
    assert capsys.readouterr().err.strip() == "error: stopped (SIGTERM)"


def test_an_out_name_too_long_and_an_empty_weights_are_each_one_line(tmp_path, capsys):
    """An --out whose name passes 255 bytes gave a raw "[Errno 36] File name too long" that did not say --out; an empty
    --weights was told "(. for the current folder)", advice meant for --out."""
    from pmsp_utils.cli import main

    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    assert main(["ela", str(image), "--out", str(tmp_path / ("O" * 300))]) == 2
    err = capsys.readouterr().err
    assert "--out: the folder name OOOO" in err and "is 300 bytes, longer than file systems take (255)" in err and "Errno" not in err
    with pytest.raises(SystemExit):
        main(["localize", str(image), "--out", str(tmp_path / "out"), "--weights", ""])
    err = capsys.readouterr().err
    assert "--weights: must not be empty; name a shipped model (" in err and "current folder" not in err
