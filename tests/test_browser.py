"""The course as a person uses it: JupyterLab in a real (headless) Chromium, notebooks run, explorers moved.

JupyterLab starts on 127.0.0.1 with a token, in a temporary folder that holds
copies of notebooks 01, 02 and 05 (JupyterLab autosaves what it opens; the
committed notebooks are never touched), with its own HOME for Chromium and the
server. Each notebook is run with "Run All Cells" in smoke mode; then its explorer's
first control is moved, and the test asserts that the explorer's picture changed
and that the browser console logged no widget error.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package
(``make test`` installs them, and JupyterLab with the test extras). Outside CI a missing browser skips this module;
in CI (``CI`` set) it fails, so a broken set-up cannot pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a real browser and JupyterLab: make test-fast skips it

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("01_error_level_analysis.ipynb", "02_forgery_datasets.ipynb", "05_evaluation.ipynb")
CHROMIUM, DRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")


def _missing() -> str | None:
    import importlib.util

    for module, words in (("selenium", "the selenium package"), ("jupyterlab", "JupyterLab")):
        if importlib.util.find_spec(module) is None:
            return words
    if not CHROMIUM or not DRIVER:
        return "Debian's chromium and chromium-driver"
    return None


if _missing():
    if os.environ.get("CI"):
        pytest.fail(f"the browser test needs {_missing()} (make test installs them); in CI it must run", pytrace=False)
    pytest.skip(f"the browser test needs {_missing()}: apt-get install chromium chromium-driver; pip install selenium",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

TOKEN = "pmsp-browser-test"
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on screen (others may stay open in hidden tabs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 over copies of the notebooks; yields its base URL."""
    folder = tmp_path_factory.mktemp("lab")
    home = folder / "home"
    home.mkdir()
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / name, folder / name)
    port = _free_port()
    environment = {**os.environ, "HOME": str(home), "PMSP_SMOKE": "1", "PMSP_PROGRESS": "0", "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
                   "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={TOKEN}",
               f"--ServerApp.root_dir={folder}", "--ServerApp.open_browser=False", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail(f"JupyterLab did not start: {(folder / 'server.log').read_text()[-2000:]}")
    yield url, folder, home
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(lab):
    _, folder, home = lab
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000",
                     f"--user-data-dir={home / 'chromium'}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _prompts(driver) -> list[str]:
    # textContent, not .text: JupyterLab does not lay out cells that are off screen.
    return driver.execute_script(f"return Array.from(document.querySelectorAll('{PANEL} .jp-CodeCell .jp-InputPrompt')).map(p => p.textContent.trim())")


def _run_all(driver, timeout: float) -> None:
    """Run every cell from the Run menu, then wait until no prompt shows [*] and every one has a number."""
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    deadline = time.time() + 120
    while True:  # JupyterLab re-renders the notebook while it loads: a found element can go stale before the click
        try:
            WebDriverWait(driver, 10).until(ready.element_to_be_clickable((By.CSS_SELECTOR, f"{PANEL} .jp-Cell"))).click()
            break
        except Exception:  # noqa: BLE001  (stale or not yet clickable)
            if time.time() > deadline:
                raise
            time.sleep(1.0)
    for _ in range(5):  # the Run menu, as a person would; JupyterLab can still be settling, so try again
        try:
            driver.find_element(By.XPATH, "//div[contains(@class,'lm-MenuBar-itemLabel') and text()='Run']").click()
            WebDriverWait(driver, 10).until(ready.element_to_be_clickable(
                (By.XPATH, "//div[contains(@class,'lm-Menu-itemLabel') and text()='Run All Cells']"))).click()
        except Exception:  # noqa: BLE001  (menu not ready yet)
            driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
            time.sleep(1.0)
            continue
        time.sleep(2.0)
        if any(prompt == "[*]:" or prompt.strip("[]:").isdigit() for prompt in _prompts(driver)):
            break
    deadline = time.time() + timeout
    while time.time() < deadline:
        prompts = _prompts(driver)
        if prompts and all(prompt not in ("[*]:", "[ ]:", "[]:") and prompt.strip("[]:").isdigit() for prompt in prompts):
            return
        time.sleep(1.0)
    raise AssertionError(f"cells did not all run within {timeout:.0f} s: {_prompts(driver)}")


def _explorer_picture(driver) -> str | None:
    return driver.execute_script(
        f"const images = Array.from(document.querySelectorAll('{PANEL} .jupyter-widgets .jupyter-widgets-output-area img, {PANEL} .widget-output img'));"
        "return images.length ? images[images.length - 1].getAttribute('src') : null;")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab_and_its_explorer_responds(lab, browser, name):
    url, _, _ = lab
    browser.get(f"{url}/lab/tree/{name}?reset&token={TOKEN}")  # reset: a fresh workspace with this notebook alone
    deadline = time.time() + 120
    while not browser.find_elements(By.CSS_SELECTOR, f"{PANEL} .jp-Cell") and time.time() < deadline:
        time.sleep(0.5)
    browser.get_log("browser")  # start the console record from here
    try:
        _run_all(browser, timeout=600)
    except Exception:
        browser.save_screenshot(str(lab[1] / f"{name}.png"))  # what the page showed, for the failure report
        print(f"screenshot: {lab[1] / f'{name}.png'}")
        raise
    deadline = time.time() + 60
    while _explorer_picture(browser) is None and time.time() < deadline:
        time.sleep(0.5)
    before = _explorer_picture(browser)
    assert before, f"{name}: no explorer picture after running"
    selects = browser.find_elements(By.CSS_SELECTOR, f"{PANEL} .jupyter-widgets select")
    assert selects, f"{name}: no explorer control"
    control = Select(selects[0])
    options = [option.get_attribute("value") for option in control.options]
    current = control.first_selected_option.get_attribute("value")
    browser.execute_script("arguments[0].scrollIntoView()", selects[0])
    control.select_by_value(next(option for option in options if option != current) if len(options) > 1 else current)
    if len(options) == 1:  # one image only: move the first slider instead
        slider = browser.find_element(By.CSS_SELECTOR, f"{PANEL} .jupyter-widgets .noUi-handle, {PANEL} .jupyter-widgets .ui-slider-handle")
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(browser).drag_and_drop_by_offset(slider, 40, 0).perform()
    deadline = time.time() + 120
    while _explorer_picture(browser) == before and time.time() < deadline:
        time.sleep(0.5)
    assert _explorer_picture(browser) != before, f"{name}: the explorer's picture did not change"
    problems = [entry["message"] for entry in browser.get_log("browser")
                if entry["level"] in ("SEVERE", "WARNING") and "widget" in entry["message"].lower()]
    assert not problems, f"{name}: widget errors in the console: {problems[:3]}"
