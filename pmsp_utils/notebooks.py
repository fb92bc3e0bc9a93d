"""Execute the tutorial notebooks headlessly: the suite's main job (``pmsp notebooks``).

Each notebook runs in its own folder with a fresh kernel; the executed copy goes
to ``<out>/notebooks/`` and every PNG figure it drew to ``<out>/figures/<notebook>/``.
"""

from __future__ import annotations

import base64
import os
import threading
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .environment import build_dir, repo_root
from .safe_write import write_bytes_atomic, write_text_atomic


@dataclass(frozen=True)
class NotebookRun:
    """What one executed notebook produced."""

    source: Path
    executed: Path
    figures: tuple[Path, ...]
    seconds: float
    error: str | None = None  # why it failed (``run_notebooks(keep_going=True)``); None when it ran to the end


def find_notebooks(folder: Path | None = None, pattern: str = "[0-9][0-9]_*.ipynb") -> list[Path]:
    """The numbered notebooks of the suite, in order."""
    if folder is None:
        root = repo_root()
        if root is None:
            raise FileNotFoundError(
                "No notebooks/ folder next to this package (it is installed, not checked out). "
                "Pass the folder explicitly: pmsp notebooks --notebooks PATH"
            )
        folder = root / "notebooks"
    notebooks = sorted(Path(folder).glob(pattern))
    if not notebooks:
        raise FileNotFoundError(f"No notebooks matching {pattern!r} in {folder}.")
    return notebooks


def _figures(notebook) -> dict[str, bytes]:
    """Every PNG output of an executed notebook, by the name it gets in its figures folder (``cellNN_K.png``)."""
    pictures = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        count = 0
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                count += 1
                pictures[f"cell{index:02d}_{count}.png"] = base64.b64decode(data["image/png"])
    return pictures


#: The names :func:`extract_figures` gives; another file in a figures folder is never touched.
FIGURE_NAME = re.compile(r"^cell\d{2,}_\d+\.png$")


def extract_figures(notebook, folder: Path) -> list[Path]:
    """Write every PNG output of an executed notebook to ``folder``; returns the paths.

    The folder keeps a ledger (:class:`~pmsp_utils.localize_outputs.Ledger`): a figure is replaced only where pmsp
    wrote it and it is unchanged (:func:`_check_figures` refused the run before any kernel started otherwise), and the
    figures an earlier run wrote that this run did not draw (a cell removed, a plot fewer) are removed, so the folder
    shows this run's figures only."""
    from .localize_outputs import Ledger

    folder.mkdir(parents=True, exist_ok=True)
    ledger, pictures = Ledger(folder), _figures(notebook)
    ledger.claim(*pictures)
    written = [write_bytes_atomic(folder / name, data) for name, data in pictures.items()]
    ledger.record(*written)
    stale = [name for name in ledger.entries() if name not in pictures and FIGURE_NAME.match(name)]
    for name in stale:
        if ledger.owns(name):
            (folder / name).unlink(missing_ok=True)
    ledger.forget(*(name for name in stale if not (folder / name).exists()))
    return written


def _read_notebook(source: Path):
    """The notebook at ``source``; cells without an id (written by an older tool) are given one here, instead of
    nbformat's two-line MissingIDFieldWarning on the console."""
    import uuid
    import warnings

    import nbformat
    from nbformat.warnings import MissingIDFieldWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingIDFieldWarning)
        notebook = nbformat.read(source, as_version=4)
    if (notebook.nbformat, notebook.nbformat_minor) >= (4, 5):
        for cell in notebook.cells:
            if not cell.get("id"):
                cell["id"] = uuid.uuid4().hex[:8]
    return notebook


def strip_widget_state(notebook) -> None:
    """Drop saved widget state, which bloats files and goes stale (see STYLE.md), and the widget views that would point
    to it: outputs keep their static picture and label (see ``widgets.display_with_picture``), so a saved notebook shows
    the first view instead of "model not found" or a raw ``VBox(...)`` line."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = output.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                data.pop("application/vnd.jupyter.widget-view+json")
                if set(data) == {"text/plain"} and data["text/plain"].startswith(("VBox(", "HBox(", "IntProgress(", "FloatProgress(")):
                    data["text/plain"] = "(an interactive widget: run the notebook to use it)"


#: TensorFlow's C++ start-up lines (absl logging, before Python can silence it): noise in a course.
_NATIVE_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                         r"|[IWEF]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] .*)$")


def strip_native_logs(notebook) -> None:
    """Remove TensorFlow's native start-up log lines from stderr outputs (empty outputs go too)."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines = [line for line in output["text"].splitlines(keepends=True) if not _NATIVE_LOG.match(line.rstrip("\n"))]
                if not "".join(lines).strip():
                    continue
                output["text"] = "".join(lines)
            kept.append(output)
        cell["outputs"] = kept


class NotebookError(ValueError):
    """A notebook's cell failed or ran past the timeout: one line naming the notebook, the cell and the error."""


ANSI_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _cell_error(source: Path, error: Exception, running: dict, timeout: int, smoke: bool | None = None) -> Exception:
    """``error`` from nbclient as one plain line (no colour codes), or ``error`` itself when it is not a cell's."""
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    if running["timed_out"] is not None or isinstance(error, CellTimeoutError):
        cell = running["timed_out"] if running["timed_out"] is not None else running["cell"]
        return NotebookError(f"{source.name}: cell {cell} ran past --timeout {timeout} s and was stopped; raise --timeout"
                             + (" (it ran in smoke mode already)." if smoke else ", or run the notebook in smoke mode (--smoke)."))
    if isinstance(error, CellExecutionError):
        what = ANSI_ESCAPES.sub("", f"{error.ename}: {error.evalue}").strip()
        return NotebookError(f"{source.name}: cell {running['cell']} failed with {what} (open the notebook and run that cell "
                             "to see the traceback).")
    return error


def execute_notebook(source: Path, executed: Path, *, timeout: int = 1800, smoke: bool | None = None):
    """Run one notebook top to bottom in its own folder and save the executed copy.

    The kernel gets this process's environment with the notebook settings on top; this process's own environment is
    left alone, so several notebooks can run at once (:func:`run_notebooks` with ``jobs``)."""
    import tempfile

    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    try:
        notebook = _read_notebook(source)
    except Exception as error:  # not JSON, not a notebook, unreadable: nbformat raises several kinds
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        try:
            import json

            values = json.loads(source.read_text())
            if not isinstance(values, dict) or not isinstance(values.get("cells"), list):
                reason = "JSON, but no notebook: it has no list of cells"
        except (OSError, ValueError):
            pass
        raise NotebookError(f"{source}: not a notebook that can be read ({reason}); restore it (git checkout) or remove it "
                            "from the folder.") from None
    if executed == source and not os.stat(source).st_mode & 0o222:  # --in-place over a file its owner made read-only
        raise NotebookError(f"{source}: read-only, so --in-place does not write over it; make it writable (chmod u+w) or run "
                            "without --in-place.")
    environment = {**os.environ, "PMSP_PROGRESS": "0"}  # a progress bar saved in a notebook would read 0% forever
    if smoke is not None:
        environment["PMSP_SMOKE"] = "1" if smoke else "0"
    with tempfile.TemporaryDirectory(prefix="pmsp-kernel-") as sockets:
        # IPC (Unix sockets in a private folder) instead of TCP: a local kernel needs no network, and the kernel
        # then has no reason to warn that TCP traffic is unencrypted.
        manager = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "kernel"))
        # nbclient does not enforce its own timeout with a kernel manager it was handed (0.11: a 30 s cell ran to the
        # end under timeout=2), so a watchdog here interrupts a cell that runs past ``timeout``.
        running: dict = {"cell": None, "since": None, "timed_out": None}

        def started(cell, cell_index, **_):
            running.update(cell=cell_index, since=time.monotonic())

        def finished(cell, cell_index, **_):
            running.update(since=None)

        client = NotebookClient(
            notebook,
            km=manager,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(source.parent)}},
            store_widget_state=True,  # False breaks Output widgets in nbclient; stripped below
            on_cell_execute=started,
            on_cell_executed=finished,  # on_cell_complete fires when the request is sent, not when the cell is done
        )
        stop = threading.Event()

        def watch():
            while not stop.wait(0.25):
                since = running["since"]
                if since is not None and time.monotonic() - since > timeout and manager.has_kernel:
                    running.update(timed_out=running["cell"], since=None)
                    manager.interrupt_kernel()

        watchdog = threading.Thread(target=watch, name="pmsp-notebook-timeout", daemon=True)
        watchdog.start()
        try:
            client.execute(env=environment)  # passed on to the kernel's start
        except Exception as error:
            raise _cell_error(source, error, running, timeout, smoke) from None
        finally:
            stop.set()
            if manager.has_kernel:  # the client does not shut down a kernel it was handed
                manager.shutdown_kernel()
    strip_widget_state(notebook)
    strip_native_logs(notebook)
    notebook.metadata["pmsp"] = {"executed_with": shipped_artifacts(), "data": data_identity()}
    text = nbformat.writes(notebook)
    try:
        executed.parent.mkdir(parents=True, exist_ok=True)
        mode = os.stat(executed).st_mode & 0o777 if executed.exists() else None
        write_text_atomic(executed, text if text.endswith("\n") else text + "\n")  # whole or not at all, laid out as nbformat.write does
        if mode is not None:
            os.chmod(executed, mode)  # the file written over keeps its permissions
    except OSError as error:
        raise NotebookError(f"{executed}: the executed notebook cannot be written ({error.strerror or error}); check that its "
                            "folder can be written to, or choose another --out.") from None
    return notebook


# --- the drift guard: what a committed notebook was executed with ---------------------------------


def shipped_artifacts(package: Path | None = None) -> dict[str, str]:
    """{path inside the package: SHA-256} of every shipped model (weights, card, history), study and recipe: what a
    notebook's outputs and text describe. Recorded in each executed notebook's metadata (``pmsp.executed_with``)."""
    import hashlib

    package = Path(package) if package is not None else Path(__file__).resolve().parent
    files = [path for folder in ("weights", "results") if (package / folder).is_dir() for path in sorted((package / folder).rglob("*"))
             if path.is_file()] + [path for path in (package / "recipes.toml",) if path.is_file()]
    return {path.relative_to(package).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def data_identity() -> dict:
    """Which data the notebooks found: for each real source under ``PMSP_DATA_DIR``, its dataset card's identity (a
    ``pmsp data download`` copy) or the count of its files (a copy made by hand); ``{}`` on the embedded data only."""
    from .environment import dataset_folder, smoke_mode
    from .data.download import card_identity

    found = {}
    for source in ("casia1", "casia2"):
        try:
            folder = dataset_folder(source)
        except (OSError, ValueError):
            folder = None
        if folder is not None:
            identity = card_identity(folder)
            found[source] = identity or {"copy": "made by hand (no DATASET.json)", "files": sum(1 for path in folder.rglob("*") if path.is_file())}
    return {"smoke": smoke_mode(), "sources": found}


def drift(notebook_path: Path, package: Path | None = None) -> list[str]:
    """What has changed since ``notebook_path`` was executed: one line per shipped file added, removed or changed
    (empty when its outputs still describe what ships)."""
    import json

    recorded = json.loads(Path(notebook_path).read_text()).get("metadata", {}).get("pmsp", {}).get("executed_with")
    if recorded is None:
        return ["it records nothing it was executed with (executed before the drift guard, or by hand)"]
    current = shipped_artifacts(package)
    lines = [f"{name} changed" for name in sorted(set(recorded) & set(current)) if recorded[name] != current[name]]
    lines += [f"{name} is new" for name in sorted(set(current) - set(recorded))]
    lines += [f"{name} was removed" for name in sorted(set(recorded) - set(current))]
    return lines


def recorded_seconds(notebook_path: Path) -> float:
    """Seconds the notebook's cells took when its saved outputs were made (nbclient's per-cell timing), 0 if none."""
    import json
    from datetime import datetime

    total = 0.0
    try:
        cells = json.loads(Path(notebook_path).read_text()).get("cells", [])
    except (OSError, ValueError, AttributeError):  # not a notebook: said when it is run
        return 0.0
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        timing = cell.get("metadata", {}).get("execution", {})
        try:
            start, end = (datetime.fromisoformat(timing[key].replace("Z", "+00:00")) for key in ("iopub.execute_input", "shell.execute_reply"))
        except (KeyError, ValueError, AttributeError):
            continue
        total += max((end - start).total_seconds(), 0.0)
    return total


def _owns_copy(ledger, path: Path) -> bool:
    """Whether the executed copy at ``path`` may be replaced: absent, or pmsp wrote it (the ledger lists it unchanged,
    or, for copies written before the ledger, it carries the stamp :func:`execute_notebook` writes into every copy)."""
    if ledger.owns(path.name):
        return True
    if path.is_symlink() or not path.is_file() or (path.parent / ledger.NAME).exists():
        return False  # a folder with a ledger: only what it lists
    return _stamped(path)


def _stamped(path: Path) -> bool:
    """Whether the notebook at ``path`` carries the stamp :func:`execute_notebook` writes into every copy it saves."""
    import json

    try:
        return "executed_with" in json.loads(path.read_text(encoding="utf-8"))["metadata"]["pmsp"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _check_copies(notebooks: list[Path], out: Path, in_place: bool):
    """Before any kernel starts: the executed copies ``<out>/notebooks/<name>`` are each one notebook's, none is a
    source, and none replaces a file pmsp did not write. Returns the copies' :class:`~pmsp_utils.localize_outputs.Ledger`
    (None with ``in_place``, where each copy is its source). Raises :class:`NotebookError` naming the file."""
    if in_place:
        return None
    from .localize_outputs import Ledger

    folder = out / "notebooks"
    ledger = Ledger(folder)
    sources = set(notebooks)
    by_name: dict[str, Path] = {}
    for source in notebooks:
        if source.name in by_name:
            raise NotebookError(f"two notebooks named {source.name} ({by_name[source.name]} and {source}): their executed copies "
                                f"would be one file, {folder / source.name}; run them into different --out folders.")
        by_name[source.name] = source
        target = folder / source.name
        if target.resolve() in sources:
            raise NotebookError(f"--out {out}: the executed copy of {source.name} would be written over the notebook {target.resolve()}; "
                                "use --in-place to mean that, or choose another --out.")
        if target.exists() or target.is_symlink():
            if not _owns_copy(ledger, target):
                raise NotebookError(f"{target}: already there, and pmsp did not write it (or it was changed since); it is never "
                                    "replaced. Move it, or choose another --out.")
    return ledger


def _check_figures(notebooks: list[Path], out: Path, copies) -> None:
    """Before any kernel starts: no figure a run may write (``<out>/figures/<notebook>/cellNN_K.png``) replaces a file
    pmsp did not write. A folder's ledger says which it wrote; a folder from before the ledger counts as pmsp's where
    the notebook's executed copy is (``copies``: the ledger of ``<out>/notebooks``; None with ``--in-place``, where the
    executed copy is the notebook itself, which an earlier run stamped)."""
    from .localize_outputs import Ledger

    def executed_by_pmsp(source: Path) -> bool:
        if copies is None:
            return _stamped(source)
        copy = out / "notebooks" / source.name
        return copy.is_file() and _owns_copy(copies, copy)

    for source in notebooks:
        folder = out / "figures" / source.stem
        if not folder.is_dir() and not folder.is_symlink():
            if folder.exists():
                raise NotebookError(f"{folder}: a file where pmsp puts {source.name}'s figures; it is never replaced. Move it, or "
                                    "choose another --out.")
            continue
        if folder.is_symlink():
            raise NotebookError(f"{folder}: a link where pmsp puts {source.name}'s figures; pmsp writes figures only into its "
                                "own folder. Remove the link, or choose another --out.")
        ledger = Ledger(folder)
        legacy = not (folder / Ledger.NAME).exists() and executed_by_pmsp(source)
        figures = sorted(path for path in folder.iterdir() if FIGURE_NAME.match(path.name))
        if legacy:
            ledger.record(*(path for path in figures if path.is_file() and not path.is_symlink()))  # adopted: pmsp's from now on
        for path in figures:
            if not ledger.owns(path.name):
                raise NotebookError(f"{path}: already there, and pmsp did not write it (or it was changed since); it is never "
                                    "replaced. Move it, or choose another --out.")


def run_notebooks(
    notebooks: list[Path] | None = None,
    out: Path | None = None,
    *,
    in_place: bool = False,
    smoke: bool | None = None,
    timeout: int = 1800,
    jobs: int = 1,
    echo=None,
    keep_going: bool = False,
) -> list[NotebookRun]:
    """Execute ``notebooks`` (default: all numbered ones) and collect executed copies and figures, in their order.

    ``in_place`` writes the executed notebook over its source (how the
    committed outputs are made); figures still go to ``out``.
    ``jobs`` notebooks run at once, each in its own kernel, the longest first (by the cell times their saved outputs
    recorded): much of a notebook's time is one busy core (imports, tracing the network), so two kernels keep two
    cores busy. Each uses its own memory (about 2 GB for the training notebooks).
    ``keep_going``: a notebook that fails (a cell's error, the timeout, a file that is not a notebook) does not stop the
    others; its run carries the one-line ``error`` and no figures. Otherwise the first failure is raised.
    """
    from concurrent.futures import ThreadPoolExecutor

    notebooks = list(dict.fromkeys(Path(source).resolve() for source in (notebooks or find_notebooks())))  # once each
    out = Path(out) if out is not None else build_dir()
    echo = echo or (lambda message: print(message, flush=True))
    ledger, written = _check_copies(notebooks, out, in_place), threading.Lock()
    _check_figures(notebooks, out, ledger)

    def run(source: Path) -> NotebookRun:
        executed = source if in_place else out / "notebooks" / source.name
        echo(f"running {source.name} ...")
        start = time.perf_counter()
        try:
            notebook = execute_notebook(source, executed, timeout=timeout, smoke=smoke)
            if ledger is not None:
                with written:  # two notebooks at once: one ledger update at a time
                    ledger.record(executed)
        except NotebookError as error:
            if not keep_going:
                raise
            echo(f"  failed after {time.perf_counter() - start:.0f} s: {source.name}")
            return NotebookRun(source, executed, (), time.perf_counter() - start, str(error))
        seconds = time.perf_counter() - start
        figures = extract_figures(notebook, out / "figures" / source.stem)
        echo(f"  done in {seconds:.0f} s: {executed} ({len(figures)} figures)")
        return NotebookRun(source, executed, tuple(figures), seconds)

    if jobs <= 1 or len(notebooks) == 1:
        return [run(source) for source in notebooks]
    longest_first = sorted(notebooks, key=recorded_seconds, reverse=True)
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # threads suffice: each notebook runs in a kernel process
        futures = {source: pool.submit(run, source) for source in longest_first}
        return [futures[source].result() for source in notebooks]
