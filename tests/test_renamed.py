"""Names that explain themselves: the renamed modules, and their old names kept working (with a warning) for one release.

``pmsp_utils.model`` (the network's layers) is ``pmsp_utils.network`` (its ``network`` and ``weights`` modules are
``build`` and ``imagenet``), beside ``pmsp_utils.models`` (where a model comes from) and ``pmsp_utils/weights/`` (the
shipped files); ``pmsp_utils.config`` (the environment) is ``pmsp_utils.environment``, beside ``TrainConfig``;
``pmsp_utils.localizer`` (files in, PNGs and tables out) is ``pmsp_utils.batch_files``, beside ``pipeline.localize``.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pmsp_utils._renamed import RENAMED


@pytest.mark.slow
def test_each_old_name_warns_and_is_the_new_module():
    """In a fresh interpreter, so that nothing imported earlier hides a warning: each old top name warns once, and
    every old name, submodules included, is the new module itself."""
    code = """
import importlib, json, warnings
from pmsp_utils._renamed import RENAMED
report = {}
for old, new in sorted(RENAMED.items()):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    report[old] = {"same": module is importlib.import_module(new), "warnings": [str(w.message) for w in caught if w.category is FutureWarning]}
print(json.dumps(report))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report) == set(RENAMED)
    for old, facts in report.items():
        assert facts["same"], old
    for old in ("pmsp_utils.config", "pmsp_utils.localizer", "pmsp_utils.model"):
        assert report[old]["warnings"] == [f"{old} is now {RENAMED[old]}; the old name will be removed in the next release."]


def test_old_names_keep_their_attributes():
    with pytest.warns(FutureWarning):
        sys.modules.pop("pmsp_utils.config", None)
        config = importlib.import_module("pmsp_utils.config")
    from pmsp_utils.environment import cache_dir

    assert config.cache_dir is cache_dir


def test_nothing_of_ours_uses_an_old_name():
    root = Path(__file__).resolve().parents[1]
    old = re.compile(r"pmsp_utils\.(config|localizer|model)\b(?!s)|from \.(config|localizer|model)\b(?!s)|from \.\.(config|localizer|model)\b(?!s)")
    offenders = []
    for path in [*root.glob("pmsp_utils/**/*.py"), *root.glob("tests/*.py"), *root.glob("scripts/*.py"), *root.glob("benchmarks/*.py"),
                 *root.glob("notebooks/*.ipynb")]:  # the README names the old names once, to say they are old
        shims = (root / "pmsp_utils" / "__init__.py", root / "pmsp_utils" / "_renamed.py", root / "pmsp_utils" / "config.py",
                 root / "pmsp_utils" / "localizer.py", root / "pmsp_utils" / "model" / "__init__.py", Path(__file__).resolve())
        if path.resolve() in shims:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if old.search(line):
                offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()[:80]}")
    assert not offenders, offenders


def test_models_is_the_one_room_that_loads_weights():
    """Weights are read into a network only in pmsp_utils.models (shipped files, run folders, .keras archives,
    checkpoints): no other module calls Keras' loaders or fills a network from a shipped file."""
    root = Path(__file__).resolve().parents[1]
    loading = re.compile(r"keras\.models\.load_model\(|\.load_weights\(|_assign_shipped\(")
    allowed = {"pmsp_utils/models.py", "pmsp_utils/network/imagenet.py"}  # imagenet: the backbone's published weights
    offenders = [f"{path.relative_to(root)}:{number}" for path in sorted(root.glob("pmsp_utils/**/*.py"))
                 if str(path.relative_to(root)) not in allowed
                 for number, line in enumerate(path.read_text().splitlines(), 1) if loading.search(line.split("#")[0])
                 and "model.load_weights(run_dir / \"best.weights.h5\")" not in line]  # training restores its own best epoch
    assert not offenders, f"weights loaded outside pmsp_utils.models: {offenders}"
