"""Data-parallel training (pmsp train --devices N): one batch split across two virtual CPU devices under JAX."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

pytest.importorskip("jax", reason="the virtual-device check runs on JAX")

from processes import reports_of, start_python  # noqa: E402

STEP = textwrap.dedent('''
    import json, os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    os.environ["KERAS_BACKEND"] = "jax"
    import numpy as np, keras
    from pmsp_utils.network import build_pmsp
    from pmsp_utils.train import make_loss, use_devices
    devices, out = int(sys.argv[1]), sys.argv[2]
    with use_devices(devices):
        keras.utils.set_random_seed(0)
        model = build_pmsp(96, output_stride=16, streams="rgb", weights=None, dropout=0.0, verbose=False)  # one stream: half the compile
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss=make_loss("bce+dice"))
        before = [np.asarray(w) for w in model.trainable_weights]
        rng = np.random.default_rng(0)
        x = {"rgb": rng.integers(0, 255, (4, 96, 96, 3)).astype(np.uint8)}
        y = (rng.random((4, 96, 96, 1)) < 0.2).astype(np.float32)
        loss = float(model.train_on_batch(x, y))
        sharded = type(keras.distribution.distribution()).__name__  # inside the block: it is restored after it
    np.savez(out, *[np.asarray(w) - b for w, b in zip(model.trainable_weights, before)])
    print(json.dumps({"loss": loss, "devices": len(keras.distribution.list_devices()),
                      "sharded": sharded}))
''')


@pytest.mark.slow
def test_two_devices_take_the_step_of_one(tmp_path):
    one, two = reports_of([start_python(["-c", STEP, devices, tmp_path / f"{name}.npz"]) for devices, name in ((1, "one"), (2, "two"))],
                          timeout=300)  # both at once
    assert two["devices"] == 2 and two["sharded"] == "DataParallel" and one["sharded"] == "NoneType"
    assert abs(one["loss"] - two["loss"]) < 1e-5 * abs(one["loss"])  # the same forward pass on the whole batch
    steps_one, steps_two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    total = sum(float(np.sum(steps_one[k] ** 2)) for k in steps_one.files) ** 0.5
    difference = sum(float(np.sum((steps_one[k] - steps_two[k]) ** 2)) for k in steps_one.files) ** 0.5
    # The whole update agrees to within 2% (measured: about 1%, in float64 too; the cause is not yet pinned down).
    assert difference < 0.02 * total, (difference, total)


def test_devices_must_divide_the_batch_and_exist():
    from pmsp_utils.train import TrainConfig

    with pytest.raises(ValueError, match="batch_size 4 must divide evenly across 3 devices"):
        TrainConfig(batch_size=4, devices=3).check()
