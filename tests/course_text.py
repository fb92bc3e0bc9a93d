"""What the course's prose states, read from a notebook file: the numbers typed in its Markdown, the numbers its own
code and outputs show, and its run-time statements. Used by tests/test_course_text.py.

The rule a typed number obeys: a student can see it made where they read it. So a decimal, a percentage or a
result-stating integer typed in a Markdown cell must be a number the same notebook's code or text outputs show,
equal to it once rounded to the places typed (0.59 is made by 0.5922 or 0.59; 6% by 6.1%, 0.061 or 6). Shipped files
(cards, RESULTS.md) are no source: a notebook that quotes one prints it from a code cell that reads the file. The
paper's own numbers are the exception: its tables as transcribed in the package and the settings its text states.
"""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from pathlib import Path

#: Decimals (0.59, 12.4), percentages (6%, 0.2%) and integers of two digits or more, word-bounded: not inside a name
#: (`f1_at_05`), a version (3.15.1), a path, a range's other end written with a hyphen (0.5-1) or a product (384×384).
TYPED = re.compile(r"(?<![\w.\-/×^])(\d+(?:\.\d+)?%?)(?![\w%×^]|\.\d|,\d| ?[×x]\s?\d)")

#: Numbers shown by code and outputs: any number, with the % sign if it has one.
SHOWN = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(%?)(?![\w]|\.\d)")

#: Words after which an integer names a part, not a result ("section 8", "notebook 05", "Table II", "question 7").
REFERENCE = re.compile(r"(?:[Ss]ections?|[Nn]otebooks?|Tables?|Figures?|[Cc]ells?|[Qq]uestions?|[Ee]xercises?|[Ss]tep|"
                       r"[Pp]art|[Cc]hapter|§|et al\.,?|[Ss]eed|[Ee]poch|[Ll]ine|[Rr]ow|#)\s*$")

#: A section number: "section 3.1", "sections 3.2 and 3.3", "(4.2)" after the paper's name.
SECTION = re.compile(r"(?:[Ss]ections?\s*|[Ss]ections? \d+\.\d+ (?:and|to|,) |§\s*)$")

#: The method's fixed sizes and scales, which the prose names as settings rather than results: input sides, the 8-bit
#: range and the 8x8 JPEG grid.
METHOD_CONSTANTS = {"8", "16", "32", "64", "96", "192", "255", "256", "384", "576"}

#: Numbers the paper's text states (sections 4.1-4.2): its 90/5/5 split, batch 4, up to 50 epochs, Adam 1e-4 and the
#: pyramid's bins. Its tables are read from pmsp_utils.evaluate.paper_tables().
PAPER_TEXT = {"90%", "5%", "50", "0.0001"}

#: Run-time phrases and the seconds they state: (low, high) bounds a measured time must fall in before the 50% margin.
DURATIONS = {
    "a few seconds": (1, 15), "seconds": (1, 30), "under a minute": (0, 60), "about a minute": (60, 60),
    "a minute or two": (60, 120), "about two minutes": (120, 120), "two minutes": (120, 120),
    "about three minutes": (180, 180), "three minutes": (180, 180), "about four minutes": (240, 240),
    "about five minutes": (300, 300), "about six minutes": (360, 360),
}
RUN_TIME = re.compile(r"\*\*Run time\*\*:\s*([^.;]*?)(?: on a| with|[.;])")
WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}


def cells(notebook: Path) -> list[dict]:
    return json.loads(Path(notebook).read_text())["cells"]


def prose(source: str) -> str:
    """A Markdown cell's text without inline code, link targets and LaTeX (names, paths and formulas, not claims)."""
    source = re.sub(r"`[^`]*`", " ", source)
    source = re.sub(r"\]\([^)]*\)", "]", source)
    return re.sub(r"\$[^$]*\$", " ", source)


def typed_numbers(notebook: Path) -> list[tuple[int, str]]:
    """(cell index, number as typed) for the numbers the Markdown states, references section aside."""
    found = []
    for index, cell in enumerate(cells(notebook)):
        source = "".join(cell["source"])
        if cell["cell_type"] != "markdown" or source.startswith("## References"):
            continue
        text = prose(source)
        for match in TYPED.finditer(text):
            number = match.group(1)
            before = text[max(0, match.start() - 24):match.start()]
            if SECTION.search(before):  # the paper's "section 3.1", "sections 3.2 and 3.3"
                continue
            if re.fullmatch(r"\d+", number):  # an integer: a result only if it is not a year, a reference or a list item
                line_start = text.rfind("\n", 0, match.start()) + 1
                if (len(number) < 2 or 1900 <= int(number) <= 2099 or REFERENCE.search(before)
                        or number in METHOD_CONSTANTS or text[line_start:match.start()].strip() in {"", "-", "*"}
                        and text[match.end():match.end() + 1] == "."):
                    continue
            found.append((index, number))
    return found


def shown_text(notebook: Path) -> str:
    """The text of a notebook's code cells and of their text outputs (figures' pixels aside)."""
    parts = []
    for cell in cells(notebook):
        if cell["cell_type"] != "code":
            continue
        parts.append("".join(cell["source"]))
        for output in cell.get("outputs", []):
            parts.append("".join(output.get("text", "")))
            parts += ["".join(value) if isinstance(value, list) else str(value)
                      for key, value in output.get("data", {}).items() if key.startswith("text/")]
    return "\n".join(parts)


def shown_values(text: str) -> list[tuple[Decimal, bool]]:
    return [(Decimal(number), bool(percent)) for number, percent in SHOWN.findall(text)]


def _places(number: Decimal) -> int:
    return max(0, -number.as_tuple().exponent)


def made_by(typed: str, shown: list[tuple[Decimal, bool]]) -> bool:
    """Whether a typed number is one of the shown values rounded to the places typed (a percentage may be shown as a
    fraction). A shown value with fewer places than typed only matches if it is equal."""
    percent = typed.endswith("%")
    value = Decimal(typed.rstrip("%"))
    places = _places(value)
    step = Decimal(1).scaleb(-places)
    for number, number_is_percent in shown:
        for candidate in [number] + ([number * 100] if percent and not number_is_percent else []):
            if candidate == value:
                return True
            if _places(candidate) < places:
                continue
            if any(candidate.quantize(step, rounding=rounding) == value for rounding in (ROUND_HALF_UP, ROUND_HALF_EVEN)):
                return True
    return False


def paper_numbers() -> set[str]:
    from pmsp_utils.evaluate import paper_tables

    text = json.dumps(paper_tables())
    return set(re.findall(r"\d+(?:\.\d+)?", text)) | {f"{float(number):g}" for number in re.findall(r"\d*\.\d+", text)}


def orphans(notebook: Path) -> list[str]:
    """The typed numbers nothing in the notebook makes: 'cell N: number'."""
    shown = shown_values(shown_text(notebook))
    paper = paper_numbers()
    missing = []
    for index, number in typed_numbers(notebook):
        bare = number.rstrip("%")
        if number in PAPER_TEXT or bare in paper or (bare.startswith(".") and "0" + bare in paper):
            continue
        if not made_by(number, shown):
            missing.append(f"cell {index}: {number}")
    return missing


def stated_run_time(notebook: Path) -> tuple[str, tuple[float, float]] | None:
    """The header's '**Run time**: ...' phrase and the seconds it states, or None if the header states none."""
    header = "".join(cells(notebook)[0]["source"])
    match = RUN_TIME.search(header)
    if match is None:
        return None
    phrase = match.group(1).strip().lower()
    for words, bounds in sorted(DURATIONS.items(), key=lambda item: -len(item[0])):
        if words in phrase:
            return phrase, bounds
    number = re.search(r"(?:about|under|at most) (\w+) minutes?", phrase)
    if number:
        minutes = WORDS.get(number.group(1)) or float(number.group(1))
        return phrase, ((0 if "under" in phrase or "at most" in phrase else minutes * 60), minutes * 60)
    raise ValueError(f"{Path(notebook).name}: the run time {phrase!r} is not a phrase this test can read; add it to DURATIONS")


def measured_run_time(notebook: Path) -> float:
    """Seconds from the first cell's start to the last cell's reply, from the timings nbclient records in the file."""
    from datetime import datetime

    starts, ends = [], []
    for cell in cells(notebook):
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            starts.append(datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00")))
            ends.append(datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00")))
    if not starts:
        raise ValueError(f"{Path(notebook).name} records no cell timings; execute it with pmsp notebooks --in-place")
    return (max(ends) - min(starts)).total_seconds()


def run_time_agrees(stated: tuple[float, float], measured: float, margin: float = 0.5) -> bool:
    """A measured time agrees with a stated (low, high) if it is within 50% of the range."""
    low, high = stated
    return low * (1 - margin) <= measured <= high * (1 + margin)


def printed(notebook: Path, label: str) -> list[float]:
    """The numbers on the first text-output line of the notebook that starts with ``label`` (after spaces), in order:
    how a claim check reads a value the notebook prints, e.g. ``printed(nb, "inside the mask:")``."""
    for cell in cells(notebook):
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", "")) or "".join(output.get("data", {}).get("text/plain", ""))
            for line in text.splitlines():
                if line.strip().startswith(label):
                    return [float(number) for number in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", line.strip()[len(label):])]
    raise LookupError(f"{Path(notebook).name} prints no line starting with {label!r}; re-execute it or fix the label")


def markdown(notebook: Path) -> str:
    """All the Markdown of a notebook, as one text (what the sentence checks look for)."""
    return "\n".join("".join(cell["source"]) for cell in cells(notebook) if cell["cell_type"] == "markdown")


def planted(notebook: Path, folder: Path, old: str, new: str, *, regex: bool = False, every: bool = False) -> Path:
    """A copy of ``notebook`` in ``folder`` with a printed value changed: ``old`` (a regular expression if ``regex``, whose
    groups ``new`` may name) replaced by ``new``, at its first place or at ``every`` one; how a sentence check is shown
    failing on a planted contradiction."""
    text = Path(notebook).read_text()
    changed, count = re.subn(old if regex else re.escape(old), new if regex else (lambda match: new), text, count=0 if every else 1)
    assert count >= 1, old
    json.loads(changed)  # still a notebook
    copy = Path(folder) / Path(notebook).name
    copy.write_text(changed)
    return copy
