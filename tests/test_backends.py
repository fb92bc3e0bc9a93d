"""The network on two Keras backends, each in a fresh process: TensorFlow against JAX in every `make test`, PyTorch
against TensorFlow in `make test-torch`. A file of its own, collected early, so that the longest check of the suite
starts first and the other test process works beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from processes import reports_of, start_python


def start_backend(backend: str, work: Path, mode: str):
    return start_python([Path(__file__).with_name("backend_check.py"), work, mode], KERAS_BACKEND=backend, JAX_PLATFORMS="cpu")


@pytest.mark.slow
def test_tensorflow_and_jax_agree(tmp_path):
    pytest.importorskip("jax", reason="the JAX backend check needs jax: pip install -e '.[test]'")
    # Both at once: TensorFlow initialises and saves the weights (JAX, importing meanwhile, waits for them), both check them.
    processes = [start_backend("tensorflow", tmp_path, "weights+check"), start_backend("jax", tmp_path, "check")]
    tensorflow, jax = reports_of(processes)
    assert (tensorflow["saved"], jax["saved"]) == (3, 0)
    assert (tensorflow["backend"], jax["backend"]) == ("tensorflow", "jax")
    assert set(tensorflow["variants"]) == set(jax["variants"]) == {"os32", "os16_f3", "os8"}
    for report in (tensorflow, jax):
        for name, variant in report["variants"].items():
            assert variant["shape"] == [2, 192, 192, 1], (report["backend"], name)
            if report["backend"] == "tensorflow" or name == "os16_f3":  # JAX compiles the step of pmsp train's network only
                assert np.isfinite(variant["loss"]) and variant["changed"], (report["backend"], name)
            assert variant["spread"] > 1e-3, "outputs must vary for the comparison to mean something"
            streams = 1 if name == "os8" else 2  # backend_check.VARIANTS: stride 8 reads the RGB stream only
            assert variant["folded"] >= 27 * streams and variant["predicted_spread"] > 1e-3, (report["backend"], name)  # 27 a MobileNet
            assert variant["folded_error"] < 5e-5, (report["backend"], name, variant["folded_error"])
        assert report["ensemble_error"] < 1e-5, (report["backend"], report["ensemble_error"])  # the pair: the mean of its members' views
    for name in tensorflow["variants"]:
        np.testing.assert_allclose(np.load(tmp_path / f"jax_{name}.npy"), np.load(tmp_path / f"tensorflow_{name}.npy"), atol=2e-4, err_msg=name)


@pytest.mark.slow
def test_pytorch_trains_a_step_and_its_saved_model_runs_on_tensorflow(tmp_path):
    """Keras 3 on PyTorch (Colab ships torch beside TensorFlow): one training step with the package's loss, the model
    saved as .keras, loaded on TensorFlow with the same maps; the LiteRT export, which needs TensorFlow, says so in one
    line. Needs torch: `make test-torch` installs it and runs this (it is too large a download for every `make test`)."""
    pytest.importorskip("torch", reason="the PyTorch backend check needs torch: make test-torch")
    torch_report, = reports_of([start_python([Path(__file__).with_name("torch_check.py"), tmp_path, "train"], KERAS_BACKEND="torch")])
    tensorflow_report, = reports_of([start_python([Path(__file__).with_name("torch_check.py"), tmp_path, "load"],
                                                  KERAS_BACKEND="tensorflow")])
    assert (torch_report["backend"], tensorflow_report["backend"]) == ("torch", "tensorflow")
    assert np.isfinite(torch_report["loss"]) and torch_report["changed"] and torch_report["spread"] > 1e-3
    if "litert" in torch_report:
        assert "made through TensorFlow, and Keras runs on torch" in torch_report["litert"]
    np.testing.assert_allclose(np.load(tmp_path / "tensorflow.npy"), np.load(tmp_path / "torch.npy"), atol=1e-4)
