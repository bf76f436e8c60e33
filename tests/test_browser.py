"""The notebooks as users meet them: JupyterLab in headless Chromium, every cell run through the UI.

Starts ``jupyter lab`` on 127.0.0.1 (random token, free port) over a temporary copy of notebooks
01 and 02, opens each in Debian's Chromium driven by Playwright, runs all cells from the Run menu, waits
for the kernel to go idle, and checks the page and the notebook JupyterLab saved. Screenshots go to the
test's temporary folder, and also to ``$FMNIST_SCREENSHOT_DIR`` when set (how assets/ is refreshed).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import nbformat
import pytest
from chromium import CHROMIUM, CHROMIUM_FLAGS, NO_CHROMIUM, screenshot

from fmnist_utils.params import project_root

pytestmark = pytest.mark.browser
FIGURES = {"01_data_exploration.ipynb": 9, "02_model_build.ipynb": 9}

if CHROMIUM is None:
    pytest.skip(NO_CHROMIUM, allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kernel_path(root: Path) -> Path:
    """A JUPYTER_PATH folder whose ``python3`` kernel is this interpreter, not a ``python`` found on PATH."""
    spec = root / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        )
    )
    return root / "jupyter"


def _api(url: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(
        f"{url}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a temporary copy of the notebooks; always shut down afterwards."""
    root = tmp_path_factory.mktemp("lab")
    use_full = bool(os.environ.get("FMNIST_DATA_DIR"))
    for name in FIGURES:  # what a learner edits, in the one cell where they edit it
        nb = nbformat.read(project_root() / "notebooks" / name, as_version=4)
        [params] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        lines = []
        for line in params.source.splitlines():
            if line.startswith("data_source") and not use_full:
                line = 'data_source = "sample"   # no full data on this machine'
            if line.startswith("embedding_points"):  # the figures are checked, not their detail
                line = "embedding_points = 300"
            lines.append(line)
        params.source = "\n".join(lines)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, root / name)
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    apputils = root / "settings" / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)
    (apputils / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "FMNIST_PROGRESS")}
    env["FMNIST_RUNS_DIR"] = str(root / "out")  # where a learner's runs go, here a temporary folder
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(_kernel_path(root)), env.get("JUPYTER_PATH")]))
    log = open(root / "jupyter.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={root / 'settings'}",
            f"--LabApp.workspaces_dir={root / 'workspaces'}",  # a fresh layout: no panels restored from earlier
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--ServerApp.allow_root=True",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                _api(url, token, "/api/status")
                break
            except OSError as error:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"jupyter lab did not start: {(root / 'jupyter.log').read_text()[-2000:]}"
                    ) from error
                time.sleep(0.5)
        yield {"url": url, "token": token, "root": root}
    finally:
        try:
            for kernel in _api(url, token, "/api/kernels") or []:
                _api(url, token, f"/api/kernels/{kernel['id']}", method="DELETE")
        except OSError:
            pass
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
ALL_PROMPTS_DONE = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return false;
  if (panel.innerText.includes('Traceback (most recent call last)')) return true;  // failed: stop waiting
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""
PROMPTS = """() => [...document.querySelectorAll(
  '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent)"""


ANY_CELL_STARTED = """() => [...document.querySelectorAll(
  '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt')]
  .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""
STALL_S = 20  # no cell running or queued, some never run, kernel idle: the run was cancelled


def _dismiss_dialogs(page) -> list[str]:
    """Close any modal dialog (e.g. a slow kernel start under load), returning what each said."""
    seen = []
    while page.locator(".jp-Dialog").count():
        if len(seen) == 5:
            pytest.fail(f"JupyterLab dialogs keep coming back: {seen}")
        dialog = page.locator(".jp-Dialog").first
        seen.append(dialog.inner_text()[:500])
        buttons = dialog.locator(".jp-Dialog-button.jp-mod-accept, .jp-Dialog-button")
        if buttons.count():
            buttons.first.click()
        else:
            page.keyboard.press("Escape")
        page.wait_for_timeout(500)
    if seen:
        print(f"dismissed JupyterLab dialogs: {seen}")
    return seen


def _kernel(lab: dict, notebook: str) -> dict:
    """The server's view of the notebook's kernel: id, execution_state, connections (empty if none yet)."""
    sessions = _api(lab["url"], lab["token"], "/api/sessions")
    return next((s["kernel"] for s in sessions if s["path"].endswith(notebook) and s.get("kernel")), {})


def _wait_for_kernel(page, lab: dict, notebook: str) -> None:
    """Wait until the server has the notebook's kernel idle with the page connected to it."""
    deadline = time.monotonic() + 90
    while not ((k := _kernel(lab, notebook)).get("execution_state") == "idle" and k.get("connections")):
        if time.monotonic() > deadline:
            pytest.fail(f"the kernel of {notebook} is not ready after 90 s: {k}\n{_log_tail(lab)}")
        page.wait_for_timeout(500)


def _log_tail(lab: dict, chars: int = 3000) -> str:
    """The end of the JupyterLab server's log (kernel deaths and restarts, the kernel's own stderr)."""
    return "jupyter.log ends:\n" + (lab["root"] / "jupyter.log").read_text()[-chars:]


def _run_all_cells(page) -> None:
    """Run → Run All Cells, once the command is enabled; retried if execution does not start."""
    for _ in range(3):
        _dismiss_dialogs(page)
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        item = page.wait_for_selector(
            "li.lm-Menu-item[data-command='runmenu:run-all']:not(.lm-mod-disabled)", timeout=60_000
        )
        item.click()
        try:
            page.wait_for_function(ANY_CELL_STARTED, timeout=30_000, polling=500)
            return
        except sync_api.TimeoutError:
            page.keyboard.press("Escape")
    pytest.fail("Run All Cells did not start any cell in three attempts")


def _wait_for_all_cells(page, lab: dict, notebook: str) -> None:
    """Wait until every code cell has run (or one failed). A run that JupyterLab cancelled part-way
    (cells left unrun, none queued, kernel idle: a kernel restart or a dropped connection) is reported
    as a warning with the server log, and Run All is clicked once more; a second cancel fails."""
    deadline = time.monotonic() + int(os.environ.get("FMNIST_BROWSER_TIMEOUT_S", "420"))
    stalled_since, retried = None, False
    while not page.evaluate(ALL_PROMPTS_DONE):
        prompts = page.evaluate(PROMPTS)
        cancelled = (
            not any("*" in p for p in prompts) and _kernel(lab, notebook).get("execution_state") == "idle"
        )
        stalled_since = (stalled_since or time.monotonic()) if cancelled else None
        if stalled_since and time.monotonic() - stalled_since > STALL_S:
            report = f"Run All stopped with cells unrun: {prompts}; dialogs: {_dismiss_dialogs(page)}\n{_log_tail(lab)}"
            if retried:
                pytest.fail(report)
            warnings.warn(f"{notebook}: {report}\nclicking Run All once more", stacklevel=1)
            retried, stalled_since = True, None
            _wait_for_kernel(page, lab, notebook)
            _run_all_cells(page)
        if time.monotonic() > deadline:
            shot = lab["root"] / f"timeout_{notebook}.png"
            page.screenshot(path=str(shot))
            pytest.fail(f"cells still pending: {page.evaluate(PROMPTS)}; see {shot}\n{_log_tail(lab)}")
        page.wait_for_timeout(1000)


def _wait_for_save(page, path: Path, unsaved: int) -> None:
    """Wait until JupyterLab has written the notebook back (a newer file than ``unsaved``, its modification
    time before saving) with every code cell run: saving is asynchronous."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if path.stat().st_mtime_ns != unsaved:
                cells = nbformat.read(path, as_version=4).cells
                if all(c.execution_count for c in cells if c.cell_type == "code"):
                    return
        except (OSError, ValueError):  # caught mid-write
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{path.name} was not saved with its outputs within 60 s")
        page.wait_for_timeout(200)


@pytest.mark.parametrize("notebook", list(FIGURES))
def test_notebook_runs_in_jupyterlab(lab, notebook, tmp_path):
    kernel = _api(lab["url"], lab["token"], "/api/kernelspecs")["kernelspecs"]["python3"]["spec"]
    assert kernel["argv"][0] == sys.executable, "the notebooks run on the interpreter that has fmnist_utils"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # A workspace of its own, reset: nothing restored from the other notebook's session.
            workspace = notebook.removesuffix(".ipynb")
            page.goto(f"{lab['url']}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={lab['token']}")
            page.wait_for_selector(f"{PANEL} .jp-CodeCell", timeout=90_000)
            page.wait_for_selector(
                f"{PANEL} .jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000
            )
            _wait_for_kernel(page, lab, notebook)
            assert page.locator(".jp-NotebookPanel").count() == 1
            _run_all_cells(page)
            _wait_for_all_cells(page, lab, notebook)
            _wait_for_kernel(page, lab, notebook)  # outputs flushed

            tracebacks = page.locator(
                f"{PANEL} .jp-OutputArea-output", has_text="Traceback (most recent call last)"
            )
            assert tracebacks.count() == 0, tracebacks.first.inner_text()[:2000]
            images = page.locator(f"{PANEL} .jp-OutputArea-output img")
            assert images.count() == FIGURES[notebook]
            first_code = page.locator(f"{PANEL} .jp-CodeCell").first
            assert first_code.is_visible() and "# Parameters" in first_code.inner_text()

            unsaved = (lab["root"] / notebook).stat().st_mtime_ns
            page.keyboard.press("Control+s")
            _wait_for_save(page, lab["root"] / notebook, unsaved)
            page.keyboard.press("Control+b")  # hide the file browser: the screenshot shows the notebook alone
            images.nth(min(1, images.count() - 1)).scroll_into_view_if_needed()  # show a rendered figure
            screenshot(page, tmp_path / f"jupyterlab_{notebook.removesuffix('.ipynb')}.png")
        finally:
            browser.close()

    saved = nbformat.read(lab["root"] / notebook, as_version=4)  # what JupyterLab wrote back
    code = [c for c in saved.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(c.execution_count for c in code), "every code cell ran"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == FIGURES[notebook]
