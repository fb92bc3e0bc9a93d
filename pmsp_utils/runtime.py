"""A light runtime for inference: the folded network exported once to LiteRT, run without TensorFlow or Keras.

Explained in 05_evaluation. Importing TensorFlow and Keras takes about 5-8 s on
2 cores, building the network and loading its weights a few more: far longer
than the map of one photo. So the first time a model localizes with the
``ai-edge-litert`` package installed, the batch-norm-folded Keras model is
exported as a LiteRT flatbuffer into ``PMSP_CACHE_DIR/lite`` (keyed by the
model's weights, its settings and the input size), with its settings beside it.
Every later ``pmsp localize`` loads that file in milliseconds and never imports
TensorFlow; ``pmsp prepare`` (which ``make run`` calls) exports it ahead of time, so
that even the first photo a user tries starts in about a second. The maps agree
with Keras' within 1e-4 (tests/test_runtime.py), and on 2 cores LiteRT's XNNPACK
kernels are also faster per image (``benchmarks/bench_localize.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

from .model_settings import ModelSettings
from .data.verify import sha256
from .environment import native_stderr

RUNTIMES = ("auto", "keras", "litert")
VERSION = "lite-1"


def litert_available() -> bool:
    """Whether the LiteRT interpreter (``pip install ai-edge-litert``) can be imported."""
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


def model_identity(spec: str | Path, input_size: int | None = None) -> str:
    """A digest of what a model's maps depend on: its weight files' bytes (a shipped name's, a run's best or final
    weights, a ``.keras`` file), its card or config, and the input size."""
    from . import pretrained

    digest = hashlib.blake2b(digest_size=12)
    digest.update(f"{VERSION}|{spec}|{input_size}".encode())
    spec_text, path = str(spec), Path(spec)
    if spec_text in pretrained.available():
        card = pretrained.WEIGHTS_DIR / f"{spec_text}.json"
        files = [card] + [pretrained.WEIGHTS_DIR / name for name in pretrained.weight_files(spec_text, json.loads(card.read_text()))]
    elif path.is_dir():
        files = [candidate for candidate in (path / "model.keras", path / "best.weights.h5", path / "config.json") if candidate.is_file()]
    elif path.is_file():
        files = [path]
    else:
        from .models import unknown_model

        raise unknown_model(spec_text)
    for file in files:
        digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def lite_path(spec: str | Path, input_size: int | None = None) -> Path:
    """Where the exported copy of ``spec`` lives (``PMSP_CACHE_DIR/lite/<identity>.tflite``)."""
    from .environment import cache_dir

    return cache_dir() / "lite" / f"{model_identity(spec, input_size)}.tflite"


class LiteModel:
    """An exported network behind the interface ``pipeline.localize`` uses: ``predict_on_batch`` and input names."""

    def __init__(self, path: str | Path, settings: ModelSettings, *, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        try:
            self.interpreter = Interpreter(str(self.path), num_threads=threads or os.cpu_count() or 1)
            self.runner = self.interpreter.get_signature_runner()
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"{self.path}: not a usable LiteRT model ({error}); delete it and it is exported again.") from None
        self.pmsp_input_names = sorted(self.runner.get_input_details())
        self.pmsp_settings = settings
        self._ran = False

    def predict_on_batch(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """(B, S, S, 1) float32 maps; the exported graph takes one image at a time."""
        count = len(next(iter(inputs.values())))
        maps = []
        for index in range(count):
            batch = {name: np.ascontiguousarray(inputs[name][index : index + 1], dtype=np.float32) for name in self.pmsp_input_names}
            if not self._ran:
                with native_stderr():  # the first run prints "INFO: Created TensorFlow Lite XNNPACK delegate" from C++
                    outputs = self.runner(**batch)
                self._ran = True
            else:
                outputs = self.runner(**batch)
            maps.append(next(iter(outputs.values())))
        return np.concatenate(maps)


def export_lite(loaded, path: str | Path) -> Path:
    """Write ``loaded`` (a :class:`~pmsp_utils.models.LoadedModel`, ideally folded) as a LiteRT file at ``path``, with
    its settings in ``path.json``; both appear at once (written under temporary names, then renamed)."""
    from .safe_write import save_atomic, write_text_atomic

    path = Path(path)
    try:
        flatbuffer = _frozen_flatbuffer(loaded.model)
    except Exception:  # noqa: BLE001 - TensorFlow's internals moved: Keras' own (slower) export still works
        import tempfile

        with tempfile.TemporaryDirectory(dir=path.parent) as folder:
            exported = Path(folder) / "model.tflite"
            loaded.model.export(str(exported), format="litert", verbose=False)
            flatbuffer = exported.read_bytes()
    # the settings first, the model last: a reader finds the model only once both are whole (_load_lite needs both);
    # the settings file records the model's hash and its own, so a copy changed since is known (_load_lite checks both)
    facts = {"settings": loaded.settings.to_dict(), "label": loaded.label, "sha256": hashlib.sha256(flatbuffer).hexdigest()}
    write_text_atomic(path.with_name(path.name + ".json"), json.dumps({**facts, "check": _check_of(facts)}, indent=2))
    return save_atomic(path, lambda temporary: Path(temporary).write_bytes(flatbuffer), suffix=".tflite")


def _check_of(facts: dict) -> str:
    return hashlib.sha256(json.dumps({key: facts[key] for key in ("settings", "label", "sha256")}, sort_keys=True).encode()).hexdigest()


def _verified_facts(path: Path) -> dict | None:
    """The settings file of the cached copy at ``path`` when the copy is exactly what pmsp exported (the model's hash
    and the settings' own check both hold); else None, after removing both files with one note (the cache is pmsp's
    own: the next use exports the copy again). A settings file that is not JSON is an error naming it."""
    described = path.with_name(path.name + ".json")
    try:
        facts = json.loads(described.read_text())
        if not isinstance(facts, dict) or "settings" not in facts:
            raise ValueError("it holds no model settings")
    except (ValueError, OSError) as error:
        raise ValueError(f"{described}: the cached LiteRT copy's settings file is damaged ({error}); delete it and its "
                         f"{path.name} (pmsp prepare, or the next pmsp localize, exports them again).") from None
    if "sha256" not in facts:
        why = "it was exported by an earlier version, which recorded no hash"
    elif facts.get("check") != _check_of(facts):
        why = "its settings file was edited"
    elif sha256(path) != facts["sha256"]:
        why = "the model file's bytes differ from what was exported"
    else:
        return facts
    _discard(path)
    print(f"note: {path}: the cached LiteRT copy is not what pmsp exported ({why}); it was removed and is exported again.",
          file=sys.stderr)
    return None


def _frozen_flatbuffer(model) -> bytes:
    """The LiteRT flatbuffer of a Keras model, converted from its traced graph with the weights frozen to constants.

    Keras' ``model.export(format="litert")`` writes a SavedModel to a temporary folder and converts that: 7-11 s for
    the shipped network on 2 cores, 4-5 s of it in the SavedModel. Freezing the traced function and converting it
    directly skips the folder (about 4.6 s in all) and gives the same flatbuffer's maps, bit for bit
    (tests/test_runtime.py compares both). It leans on TensorFlow's ``convert_variables_to_constants_v2``, which its
    converter itself uses; should that move, :func:`export_lite` falls back to Keras' export.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    specs = {tensor.name: tf.TensorSpec(tensor.shape, tensor.dtype, name=tensor.name) for tensor in model.inputs}
    traced = tf.function(lambda inputs: {"output_0": model(inputs, training=False)}).get_concrete_function(specs)
    frozen = convert_variables_to_constants_v2(traced)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], tf.Module())  # a trackable: signatures kept
    return converter.convert()


def _load_lite(spec: str | Path, *, input_size: int | None = None):
    """The exported copy of ``spec`` as a :class:`~pmsp_utils.models.LoadedModel`, or None when there is none yet
    (or LiteRT is not installed). Never imports TensorFlow or Keras."""
    if not litert_available():
        return None
    path = lite_path(spec, input_size)
    if not _whole(path):
        return None
    from .models import LoadedModel

    facts = _verified_facts(path)
    if facts is None:
        return None
    settings = ModelSettings.from_dict(facts["settings"], source=str(path.with_name(path.name + ".json")))
    return LoadedModel(LiteModel(path, settings), settings, None, facts.get("label", str(spec)) + " (LiteRT)")


def _whole(path: Path) -> bool:
    """Whether an exported copy and its settings are both there (export_lite writes the settings first)."""
    return path.is_file() and path.with_name(path.name + ".json").is_file()


def prepare_lite(spec: str | Path, *, input_size: int | None = None, loaded=None, echo=print) -> Path | None:
    """Export ``spec``'s LiteRT copy now unless it is already in the cache; its path, or None without LiteRT.
    ``echo`` is called (with the first-use message) only when it exports.

    ``pmsp prepare`` (and ``make run`` after the notebooks) calls it so that even the first ``pmsp localize`` starts
    without TensorFlow. ``loaded``: the folded Keras model when the caller already has it (else it is loaded here)."""
    if not litert_available():
        return None
    path = lite_path(spec, input_size)
    if _whole(path) and _verified_facts(path) is not None:
        return path
    if loaded is None:
        from .environment import keras_environment
        from .models import load_model

        keras_environment()
        loaded = load_model(spec, input_size=input_size, inference=True)
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":  # the converter traces the network with TensorFlow: a JAX or PyTorch model cannot be
        raise ValueError(f"the LiteRT copy is made through TensorFlow, and Keras runs on {backend} here; run "
                         "`KERAS_BACKEND=tensorflow pmsp prepare` once (the copy then serves every later run), or use "
                         "--runtime keras")
    echo(f"first use of {loaded.label}: exporting a LiteRT copy for fast start-up to {path.parent} (once; pmsp prepare does it ahead of time)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        export_lite(loaded, path)
    except OSError as error:
        _discard(path)
        raise CacheNotWritable(_unwritable(path.parent, error)) from None
    except Exception as error:  # noqa: BLE001 - the converter's own failures: no copy is kept, Keras still runs
        _discard(path)
        raise ValueError(f"{loaded.label}: its LiteRT export failed ({type(error).__name__}: {str(error)[:200]}); nothing was "
                         "cached, and --runtime keras runs it.") from None
    try:  # a copy that converts but cannot run (a graph LiteRT cannot prepare) is removed, never kept to fail every rerun
        _smoke_run(path, loaded.settings)
    except Exception as error:  # noqa: BLE001 - the interpreter raises RuntimeError, ValueError ... for such a graph
        _discard(path)
        raise ValueError(f"{loaded.label}: its LiteRT copy does not run ({type(error).__name__}: {str(error)[:200]}); it was "
                         "removed from the cache, and --runtime keras runs the model.") from None
    return path


class CacheNotWritable(OSError):
    """The cache folder cannot take the exported copy (read-only, not a folder, full); the message says what to set."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "the cache cannot be written"


def _unwritable(folder: Path, error: OSError) -> str:
    from .environment import unwritable_cache

    return unwritable_cache(folder.parent, error.strerror or str(error))


def _discard(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".json")):
        try:
            leftover.unlink(missing_ok=True)
        except OSError:
            pass


def _smoke_run(path: Path, settings: ModelSettings) -> None:
    """One zero image through a freshly exported copy: the interpreter prepares every operation on its first run."""
    model = LiteModel(path, settings, threads=1)
    size = settings.input_size
    model.predict_on_batch({name: np.zeros((1, size, size, 3), np.float32) for name in model.pmsp_input_names})


def load_for_inference(spec: str | Path, *, runtime: str = "auto", input_size: int | None = None, echo=print):
    """A model ready to localize: LiteRT's exported copy where there is one (exported now, once, when LiteRT is
    installed and ``runtime`` allows it), else the folded Keras model. ``runtime``: auto, keras or litert."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES} (--runtime, or PMSP_RUNTIME), got {runtime!r}.")
    if runtime == "litert" and not litert_available():
        raise ValueError("--runtime litert needs the LiteRT interpreter: pip install ai-edge-litert (or use --runtime keras).")
    if runtime != "keras":
        loaded = _load_lite(spec, input_size=input_size)
        if loaded is not None:
            return loaded
    from .environment import keras_environment
    from .models import load_model

    keras_environment()
    loaded = load_model(spec, input_size=input_size, inference=True)
    if runtime == "keras" or not litert_available():
        return loaded
    try:
        prepare_lite(spec, input_size=input_size, loaded=loaded, echo=echo)
    except (CacheNotWritable, ValueError) as error:  # the Keras model is already here: run it, and say why it is slower
        if runtime == "litert":
            raise
        print(f"note: {error}; running the Keras model instead (slower to start).", file=sys.stderr)
        return loaded
    return _load_lite(spec, input_size=input_size) or loaded
