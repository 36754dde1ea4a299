"""The notebooks as students see them: JupyterLab in headless Chromium (``pytest -m browser``, ``make test-browser``).

JupyterLab runs from this environment on a free 127.0.0.1 port, with a token, over a temporary copy of
``solutions/04`` and ``notebooks/04`` (``data/`` linked), in fast mode (``COURSE_FAST=1`` in the server's
environment, inherited by its kernels) and with real widgets (no ``COURSE_HEADLESS``). Playwright drives Debian's
``chromium`` (never a downloaded browser). Screenshots go to ``build/browser/``. Without chromium or playwright the
tests are skipped, except where ``COURSE_REQUIRE_BROWSER=1`` (``.ci/run`` sets it): there they fail.
"""
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "build" / "browser"
NOTEBOOK = "04_cam_gradcam.ipynb"
RUN_ALL_TIMEOUT_S = 400
CORRECT = "return gradients.flatten(2).mean(2)"
WRONG = {"sum instead of mean": "return gradients.flatten(2).sum(2)",
         "mean over the channels": "return gradients.mean(1)"}
MODEL_NOT_FOUND = "model not found"


def require(what: str) -> None:
    message = f"{what}: the browser tests need it (see README, 'Browser tests')"
    if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    require("Debian's chromium (apt-get install chromium) is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a copy of the 04 notebooks; yields its base URL, token and root folder."""
    root = tmp_path_factory.mktemp("lab")
    for folder in ("solutions", "notebooks"):
        (root / folder).mkdir()
        shutil.copyfile(REPO / folder / NOTEBOOK, root / folder / NOTEBOOK)
    (REPO / "data").mkdir(exist_ok=True)
    (root / "data").symlink_to(REPO / "data")
    settings = {  # no news pop-up; every cell in the page (not only those scrolled to), so the DOM shows all
        "apputils-extension/notification": '{"fetchNews": "false", "checkForUpdates": false}',
        "notebook-extension/tracker": '{"windowingMode": "none"}'}
    for name, text in settings.items():
        path = root / ".settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURSE_")}
    env.update(COURSE_FAST="1", JUPYTERLAB_SETTINGS_DIR=str(root / ".settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / ".workspaces"), JUPYTER_RUNTIME_DIR=str(root / ".runtime"))
    env.pop("MPLBACKEND", None)
    log = open(root / "jupyter.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(root / 'jupyter.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token, root
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser, lab, request):
    base, token, _ = lab
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(f"{base}/lab/workspaces/{request.node.name[:40]}?reset&token={token}")  # a fresh, empty layout
    pg.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=120_000)
    pg.evaluate("() => window.jupyterapp.restored.then(() => true)")
    pg.wait_for_function("() => window.jupyterapp.commands.hasCommand('docmanager:open')")
    yield pg
    shot(pg, f"{request.node.name}_end")
    context.close()


def shot(pg, name: str, element=None):
    """A screenshot (of ``element``, else the window) as build/browser/<name>.png, a CI artefact."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    (element or pg).screenshot(path=str(SHOTS / f"{name}.png"))


# -- driving JupyterLab ----------------------------------------------------------------------------------------
def command(pg, name: str, args: dict | None = None):
    return pg.evaluate("([name, args]) => window.jupyterapp.commands.execute(name, args)", [name, args or {}])


def open_notebook(pg, path: str):
    command(pg, "docmanager:open", {"path": path})
    pg.wait_for_function("""(path) => {
        const w = window.jupyterapp.shell.currentWidget;
        return w && w.context && w.context.path === path && w.sessionContext.session
            && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle';
    }""", arg=path, timeout=120_000)
    pg.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")


def wait_idle(pg, timeout_s: float = RUN_ALL_TIMEOUT_S):
    """Until no cell of the current notebook is queued or running and its kernel is idle."""
    pg.wait_for_function("""() => {
        const w = window.jupyterapp.shell.currentWidget;
        const busy = [...w.node.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'));
        return !busy && w.sessionContext.session.kernel.status === 'idle';
    }""", timeout=timeout_s * 1000, polling=500)


def run_all(pg):
    command(pg, "notebook:run-all-cells")
    pg.wait_for_timeout(500)
    wait_idle(pg)


def cells(pg):
    return pg.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")


def sources(pg) -> list[str]:
    """The source of every cell of the current notebook ('' for markdown cells)."""
    return pg.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
        .map(c => c.model.type === 'code' ? c.model.sharedModel.getSource() : '')""")


def cell_index(pg, needle: str) -> int:
    """Index of the first code cell whose source contains ``needle``."""
    return next(k for k, s in enumerate(sources(pg)) if needle in s)


def output_text(pg, index: int) -> str:
    """What cell ``index`` shows below it (the text a student reads)."""
    area = cells(pg).nth(index).locator(".jp-OutputArea")
    area.scroll_into_view_if_needed()
    return area.inner_text().strip()


def error_outputs(pg) -> list[str]:
    """Tracebacks and anything else written to stderr in the current notebook (JupyterLab shows both as stderr)."""
    return pg.locator(".jp-NotebookPanel:not(.lm-mod-hidden) :is([data-mime-type='application/vnd.jupyter.stderr'],"
                      " [data-mime-type='application/vnd.jupyter.error'])").all_text_contents()


def image_fingerprint(pg, img) -> str:
    """The pixels of an ``<img>`` as a data URL (its ``src`` is a fresh blob URL on every update)."""
    return img.evaluate("""(img) => {
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        c.getContext('2d').drawImage(img, 0, 0);
        return c.toDataURL();
    }""")


def wait_for_new_image(pg, img, before: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if img.evaluate("(img) => img.complete && img.naturalWidth > 0"):
            now = image_fingerprint(pg, img)
            if now != before:
                return now
        pg.wait_for_timeout(200)
    raise AssertionError("the explorer's image did not change")


# -- the tests -------------------------------------------------------------------------------------------------
def test_solution_runs_all_with_every_figure_and_a_live_explorer(page):
    open_notebook(page, f"solutions/{NOTEBOOK}")
    run_all(page)
    shot(page, "solution04_run_all")
    assert error_outputs(page) == []
    plotting = [k for k, source in enumerate(sources(page)) if re.search(r"\bplot_\w+\(", source)]
    assert len(plotting) >= 6
    for k in plotting:
        figure = cells(page).nth(k).locator(".jp-RenderedImage img")
        assert figure.count() == 1, f"cell {k} shows {figure.count()} figures:\n{sources(page)[k]}"
        assert figure.evaluate("(img) => img.complete && img.naturalWidth > 100"), f"cell {k}: figure not drawn"
    if "HMT parts skipped" not in output_text(page, cell_index(page, "tiles = hmt(")):
        tiles = cells(page).nth(cell_index(page, "explore(hmt_model")).locator(".widget-image")
        assert tiles.evaluate("(img) => img.complete && img.naturalWidth > 100"), "the HMT explorer shows no map"

    explorer = cells(page).nth(cell_index(page, "explore(model, x, y")).locator(".widget-vbox").first
    explorer.scroll_into_view_if_needed()
    img = explorer.locator(".widget-image")
    img.wait_for()
    picture = image_fingerprint(page, img)
    status = explorer.locator(".widget-label").last
    status.evaluate("""(el) => {
        window.__statusSeen = [];
        new MutationObserver(() => window.__statusSeen.push(el.textContent))
            .observe(el, {childList: true, characterData: true, subtree: true});
    }""")

    def control(label: str):
        return explorer.locator(".widget-dropdown, .widget-slider").filter(has_text=label).first

    layer = control("layer").locator("select")
    assert layer.is_disabled(), "saliency has no layer, the layer control must be disabled"
    control("method").locator("select").select_option("integrated_gradients")
    picture = wait_for_new_image(page, img, picture)
    assert any("computing integrated_gradients" in text for text in page.evaluate("window.__statusSeen")), \
        "a method at work must say so"
    control("method").locator("select").select_option("gradcam")
    picture = wait_for_new_image(page, img, picture)
    assert layer.is_enabled()
    layer.select_option("features.0")
    picture = wait_for_new_image(page, img, picture)
    control("target").locator("select").select_option(label="7")
    picture = wait_for_new_image(page, img, picture)
    control("sample").locator(".noUi-handle, .ui-slider-handle, [role=slider]").first.focus()
    page.keyboard.press("ArrowRight")
    wait_for_new_image(page, img, picture)
    shot(page, "solution04_explorer", explorer)
    assert error_outputs(page) == []


def replace_exercise_body(pg, index: int, line: str):
    """Put the cursor on the exercise's last line, select it (not its indentation) and type ``line``."""
    editor = cells(pg).nth(index).locator(".cm-content")
    editor.click()
    pg.keyboard.press("Control+End")
    pg.keyboard.press("Shift+Home")
    pg.keyboard.type(line)
    assert editor.inner_text().rstrip().endswith("    " + line), editor.inner_text()


def run_cells(pg, *indices: int):
    for k in indices:
        pg.evaluate("(k) => { window.jupyterapp.shell.currentWidget.content.activeCellIndex = k; }", k)
        command(pg, "notebook:run-cell")
        pg.wait_for_timeout(300)
        wait_idle(pg, 120)


def test_student_copy_self_check_fails_until_the_answer_is_right(page):
    open_notebook(page, f"notebooks/{NOTEBOOK}")
    run_all(page)
    assert error_outputs(page) == [], "Run All must not stop at an unfinished exercise"
    exercise, check = cell_index(page, "def gradcam_weights"), cell_index(page, 'check_exercise("gradcam_weights"')
    verdict = output_text(page, check)
    assert "FAIL" in verdict and "not done yet" in verdict, verdict

    replace_exercise_body(page, exercise, CORRECT)
    run_cells(page, exercise, check)
    verdict = output_text(page, check)
    assert verdict.startswith("PASS"), verdict
    shot(page, "student04_pass")

    for mistake, line in WRONG.items():
        replace_exercise_body(page, exercise, line)
        run_cells(page, exercise, check)
        verdict = output_text(page, check)
        assert verdict.startswith("FAIL") and "not done yet" not in verdict, f"{mistake}: {verdict}"
        hint = verdict.split(":", 1)[1].strip()
        assert len(hint) > 20, f"{mistake}: the FAIL says nothing useful: {verdict}"
    shot(page, "student04_fail")
    assert error_outputs(page) == []


PROGRESS_CELL = """\
import torch
from course_utils.explainers import get
from course_utils.models import load_pretrained
model = load_pretrained("mnist1d", device="cpu")
x = torch.randn(64, 1, 40, generator=torch.Generator().manual_seed(0))
maps = get("integrated_gradients")(model, n_steps=64, internal_batch_size=64).attribute(x)  # a tqdm bar"""
EXPLORER_CELL = """\
from course_utils.widgets import explore
explore(model, x[:3], methods=["saliency", "gradcam"]);"""


def test_progress_bars_are_widgets_that_leave_no_broken_output_after_save_and_reopen(page, lab):
    """A kit progress bar (tqdm.auto) shows as a widget while it runs and, closed when done, leaves nothing that
    breaks after the notebook is saved and reopened with a new kernel. The explorer, a live widget, does show
    "model not found" then (hence the notebooks' note to re-run it): that proves the check can see the error."""
    root = lab[2]
    name = "progress_and_reopen.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROGRESS_CELL),
                                         nbformat.v4.new_code_cell(EXPLORER_CELL)],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nbformat.write(nb, root / name)
    open_notebook(page, name)
    page.evaluate("""() => {
        window.__progressSeen = false;
        const area = window.jupyterapp.shell.currentWidget.content.widgets[0].node;
        new MutationObserver(() => {
            if (area.querySelector('.widget-hprogress, .progress-bar')) window.__progressSeen = true;
        }).observe(area, {childList: true, subtree: true});
    }""")
    run_all(page)
    assert page.evaluate("window.__progressSeen"), "the progress bar did not render as a widget"
    assert error_outputs(page) == []
    assert cells(page).nth(1).locator(".widget-image").count() == 1
    command(page, "docmanager:save")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    command(page, "application:close-all")
    page.wait_for_timeout(1000)

    open_notebook(page, name)
    page.wait_for_function(
        "() => document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)').innerText.includes('model not found')",
        timeout=60_000)
    shot(page, "progress_and_explorer_after_reopen")
    assert MODEL_NOT_FOUND not in output_text(page, 0), output_text(page, 0)
    assert MODEL_NOT_FOUND in output_text(page, 1)
