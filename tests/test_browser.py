"""A student's view in a real browser: JupyterLab on copies of the release notebooks,
driven in Debian's Chromium by Playwright (#22).

(a) conv_1x1: type the answer into the TODO cell, Run All Cells, see the checker's ✔ line.
(b) upsampling_fcn: the widget notebook that fits CI's budget. It runs from the top to the
    explorer widget (the upsample answer typed in) with no error output, and
    the widget's text changes when its kernel slider moves. The rest of the notebook
    trains two FCNs; network_visualization and style_transfer end with their widgets,
    after the pretrained network and the style-transfer runs, too slow for CI: left out.
(c) the demo run's feedback page for the conv_1x1 reference renders with its score, and its
    formula as MathML (no MathJax offline).

Screenshots go to $COURSE_SCREENSHOTS (default build/screenshots/) for a person to look at.
Without chromium or playwright the tests fail in CI (CI set) and skip elsewhere.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("COURSE_SCREENSHOTS") or REPO / "build" / "screenshots")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
RUN_TIMEOUT_S = 180        # one notebook run; a hang fails instead of eating CI
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"   # the notebook in the front tab


def _need(what):
    msg = f"browser test needs {what} (python3 course.py setup installs it, as root on Debian)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def _cells(folder, quiz):
    return json.loads((folder / quiz / f"{quiz}.ipynb").read_text())["cells"]


def _find(cells, text):
    """Index of the first cell whose source contains `text` (cells move as the notebooks
    are edited, so the test finds them by what they say, not by number)."""
    return next(i for i, c in enumerate(cells) if text in "".join(c["source"]))


def _answer(quiz, release_cell):
    """The reference answer for a release answer cell: the solution cell with its grade_id,
    without the solution markers."""
    grade_id = release_cell["metadata"]["nbgrader"]["grade_id"]
    cell = next(c for c in _cells(REPO / "solutions", quiz)
                if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    return "\n".join(line for line in "".join(cell["source"]).splitlines()
                     if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)


def _code(cells, stop=None):
    return [i for i, c in enumerate(cells[:stop]) if c["cell_type"] == "code"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a temp folder holding copies of the release notebooks: (url, token, root)."""
    if not Path(CHROMIUM).exists():
        _need("Debian's chromium (/usr/bin/chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _need("the playwright package (requirements.txt)")
    root = tmp_path_factory.mktemp("lab")
    for quiz in ("conv_1x1", "upsampling_fcn"):
        (root / quiz).mkdir()
        shutil.copy(REPO / "notebooks" / quiz / f"{quiz}.ipynb", root / quiz)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = os.urandom(12).hex()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_ENABLE_ONEDNN_OPTS="0",
               JUPYTER_CONFIG_DIR=str(root / ".jupyter-config"),
               JUPYTERLAB_SETTINGS_DIR=str(root / ".lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / ".lab-workspaces"))
    # Every cell in the page (no windowing), so the test can find and read any of them.
    settings = root / ".lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    settings = root / ".lab-settings" / "@jupyterlab" / "apputils-extension"   # no news toast
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    log = open(root / "jupyter.log", "w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.news_url=None", "--allow-root"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not start:\n" + (root / "jupyter.log").read_text())
                time.sleep(0.5)
        yield url, token, root
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("the playwright package (requirements.txt)")
    if not Path(CHROMIUM).exists():
        _need("Debian's chromium (/usr/bin/chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser test screenshots: {SHOTS}")
    args = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args, timeout=60_000)
        yield b
        b.close()


@pytest.fixture
def page(lab, browser, request):
    """A fresh browser tab on the lab; afterwards a screenshot of how the test left it
    (<test>_end.png, the one to look at when it fails) and its kernels shut down."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    pg.screenshot(path=str(SHOTS / f"{request.node.name}_end.png"))
    context.close()
    url, token, _ = lab
    for kernel in json.loads(urllib.request.urlopen(f"{url}/api/kernels?token={token}", timeout=10).read()):
        urllib.request.urlopen(urllib.request.Request(
            f"{url}/api/kernels/{kernel['id']}?token={token}", method="DELETE"), timeout=30).read()


def _open(page, lab, path):
    url, token, _ = lab
    page.goto(f"{url}/lab/tree/{path}?reset&token={token}")      # reset: no tabs from the last test
    page.locator(f"{NOTEBOOK} .jp-Cell").first.wait_for()
    # Wait for the kernel: the toolbar's status reads Idle once it is up.
    page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for(timeout=60_000)


def _cell(page, index):
    return page.locator(f"{NOTEBOOK} .jp-Cell").nth(index)


def _type_into(page, index, text):
    """Click into code cell `index`, select its text and type `text` in its place."""
    editor = _cell(page, index).locator(".cm-content")
    editor.scroll_into_view_if_needed()
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)
    assert "NotImplementedError" not in editor.inner_text()


def _run_menu(page, item):
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


_STATE = """(nb) => {
    const cells = [...document.querySelectorAll(nb + ' .jp-Cell')];
    const busy = document.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]') === null;
    return {busy, prompts: cells.map(c => ((c.querySelector('.jp-InputArea-prompt') || {}).textContent || '').trim()),
            error: document.querySelector(nb + ' .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]') !== null};
}"""


def _wait_run(page, lab, cells):
    """Wait until code cells `cells` all show an execution count, or an error shows (the
    caller's assertion on _errors says which). Fails with the cells' prompts and the server
    log if the run stalls (kernel idle, cells left unrun: a dead kernel) or takes too long."""
    deadline, idle_since = time.monotonic() + RUN_TIMEOUT_S, None
    while True:
        state = page.evaluate(_STATE, NOTEBOOK)
        done = [i for i in cells if re.fullmatch(r"\[\d+\]:", state["prompts"][i])]
        if state["error"] or len(done) == len(cells):
            return
        running = state["busy"] or any("*" in p for p in state["prompts"])
        idle_since = None if running else idle_since or time.monotonic()
        stalled = idle_since is not None and time.monotonic() - idle_since > 15
        if stalled or time.monotonic() > deadline:
            log = (lab[2] / "jupyter.log").read_text()[-3000:]
            pytest.fail(f"notebook run {'stalled' if stalled else 'timed out'}: code cells {cells}, "
                        f"prompts {state['prompts']}\njupyter log:\n{log}")
        time.sleep(1)


def _errors(page):
    return page.locator(f'{NOTEBOOK} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]') \
        .all_inner_texts()


def test_student_answers_conv_1x1_and_sees_the_check_pass(lab, page):
    cells = _cells(lab[2], "conv_1x1")
    todos = [i for i, c in enumerate(cells) if "raise NotImplementedError()" in "".join(c["source"])]
    checker = _find(cells, "checks.check_conv_1x1(conv_1x1)")
    assert todos and checker > todos[0]
    _open(page, lab, "conv_1x1/conv_1x1.ipynb")
    for todo in todos:
        _type_into(page, todo, _answer("conv_1x1", cells[todo]))
    _run_menu(page, "Run All Cells")
    _wait_run(page, lab, _code(cells))
    assert _errors(page) == []
    check = _cell(page, checker).locator(".jp-OutputArea")
    check.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "conv_1x1_checked.png"))
    assert "✔" in check.inner_text(), check.inner_text()


def test_upsampling_fcn_widget_reacts_to_its_slider(lab, page):
    cells = _cells(lab[2], "upsampling_fcn")
    todo = _find(cells, "def upsample(")
    explorer = next(i for i, c in enumerate(cells)        # the cell that shows the widget
                    if "".join(c["source"]).strip().startswith("explore_output_shapes("))
    assert todo < explorer
    _open(page, lab, "upsampling_fcn/upsampling_fcn.ipynb")
    _type_into(page, todo, _answer("upsampling_fcn", cells[todo]))
    page.keyboard.press("Escape")                # command mode; j selects the next cell, down
    for _ in range(explorer + 1 - todo):         # to the one after the explorer
        page.keyboard.press("j")
    _run_menu(page, "Run All Above Selected Cell")
    _wait_run(page, lab, _code(cells, explorer + 1))
    assert _errors(page) == []
    widget = _cell(page, explorer).locator(".widget-vbox").first
    widget.wait_for()
    label = widget.locator(".widget-html")
    before = label.inner_text()
    assert "Conv2DTranspose" in before, before
    widget.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "upsampling_fcn_widget_before.png"))
    handle = widget.locator(".widget-slider", has_text="kernel").locator(".noUi-handle")
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("([el, old]) => el.innerText !== old", arg=[label.element_handle(), before])
    after = label.inner_text()
    page.screenshot(path=str(SHOTS / "upsampling_fcn_widget_after.png"))
    kernel = int(re.search(r"kernel (\d+)", before).group(1))
    assert f"kernel {kernel + 1}," in after and after != before, (before, after)


def test_feedback_page_renders_its_score(demo_run, browser):
    """The demo run's feedback for the reference conv_1x1 (demo_run is graded once per
    session and shared with the other tests, so this page costs CI nothing more)."""
    results, work = demo_run
    result = next(r for r in results if (r.student, r.assignment) == ("reference", "conv_1x1"))
    assert result.score == result.max_score > 0, result
    (html,) = (work / "feedback" / "reference" / "conv_1x1").glob("*.html")
    pg = browser.new_page()
    try:
        pg.goto(html.as_uri())
        text = pg.locator("body").inner_text()
        formula = pg.locator("div.course-math math").first     # the lesson's formula, offline
        formula.scroll_into_view_if_needed()
        box = formula.bounding_box()
        pg.screenshot(path=str(SHOTS / "conv_1x1_feedback_formula.png"))
        pg.screenshot(path=str(SHOTS / "conv_1x1_feedback.png"), full_page=True)
    finally:
        pg.close()
    assert "conv_1x1" in text, text[:500]
    assert box and box["height"] > 10 and box["width"] > 100, box    # MathML laid out by the browser
    assert "\\sum" not in text, "TeX left for MathJax, which an offline page cannot load"
    assert f"Score: {result.score:.1f} / {result.max_score:.1f}" in text, text[:500]
