"""The explorer as its users see it: JupyterLab started headless on 127.0.0.1, a small notebook showing an
``InpaintExplorer`` run in headless Chromium (the ``playwright`` package driving Debian's ``/usr/bin/chromium``;
playwright's own browser download is never used). It checks that the image appears, that choosing another
method changes the completed image, and that one brush stroke painted with the mouse becomes the mask.

Skipped, with the reason, where ``/usr/bin/chromium`` or ``playwright`` is missing (``.ci/run`` installs
Debian's chromium). Everything is time-bound (about a minute here, two at most); the screenshot is written to
the runs folder (``INPAINT_RUNS``, default ``runs/``) and its path printed.
"""
from __future__ import annotations

import io
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"Debian's chromium is not installed ({CHROMIUM} is missing): apt-get install chromium "
                "(.ci/run does it as root)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed: "
                               "pip install playwright (the dev extra)")
pytest.importorskip("anywidget", reason="the explorer's brush needs anywidget (the notebooks extra)")
pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (the notebooks extra)")

from inpaint_utils import config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZE, DISPLAY = 96, 192                 # image pixels, screen pixels of each view (the brush scales by 2)
BRUSH = max(1, SIZE // 16)              # the explorer's default brush width
SERVER_START_S, RENDER_S, STEP_S = 60, 90, 30
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

NOTEBOOK_CELL = f"""\
import torch
from skimage import data as samples
from inpaint_utils import widgets

image = torch.from_numpy(samples.astronaut().copy()).permute(2, 0, 1).float().div(255)   # (3, 512, 512)
explorer = widgets.InpaintExplorer(image, size={SIZE}, display_width={DISPLAY})
explorer
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_notebook(folder: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(NOTEBOOK_CELL)]
    path = folder / "explorer.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on 127.0.0.1 (free port, a token, a fresh config) serving ``tmp_path / "lab"``;
    yields ``(base_url, token, root)``; the server and its kernels are stopped whatever happens."""
    root, home = tmp_path / "lab", tmp_path / "jupyter"
    root.mkdir()
    (home / "config").mkdir(parents=True)
    # no news feed, update check or extension index (nothing outside 127.0.0.1 is asked), no browser of
    # its own
    (home / "config" / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"open_browser": False},
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                   "extension_manager": "readonly"},
    }))
    # and the news question answered "never" (its toast would cover the page)
    notification = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           # the kernel imports this checkout's inpaint_utils, whatever is installed
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    log = (tmp_path / "jupyterlab.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--port-retries=0", "--allow-root", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        deadline = started + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode} before it answered:\n"
                            f"{(tmp_path / 'jupyterlab.log').read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer on {base} within {SERVER_START_S} s:\n"
                            f"{(tmp_path / 'jupyterlab.log').read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        print(f"JupyterLab answered on {base} after {time.monotonic() - started:.1f} s")
        yield base, token, root
    finally:
        _stop(server)
        log.close()


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it shuts its kernels down), then SIGKILL to what is left."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(server.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    server.wait(timeout=5)


def _run_the_cell(page) -> None:
    """Run the notebook's one cell once its kernel is idle; a run asked for while the kernel was still
    connecting can be dropped, so it is asked again until the prompt shows ``[*]`` or a number."""
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=RENDER_S * 1000)
    editor = page.locator(".jp-Notebook .jp-Cell .cm-content").first
    for _ in range(3):
        editor.click()
        page.keyboard.press("Control+Enter")                               # run in place, no new cell
        try:
            page.wait_for_function("() => /\\[(\\*|\\d+)\\]/.test("
                                   "document.querySelector('.jp-Cell .jp-InputPrompt').textContent)", timeout=10_000)
            return
        except sync_api.TimeoutError:
            continue
    pytest.fail("JupyterLab did not start running the cell after three tries")


def _pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def _src_changed(page, selector: str, before: str) -> None:
    page.wait_for_function("([sel, old]) => { const e = document.querySelector(sel); "
                           "return e && e.src && e.src !== old && e.complete && e.naturalWidth > 0; }",
                           arg=[selector, before], timeout=STEP_S * 1000)


def test_explorer_in_jupyterlab_in_headless_chromium(jupyterlab, tmp_path):
    base, token, root = jupyterlab
    _write_notebook(root)
    started = time.monotonic()
    shot = config.runs_dir() / "browser" / "explorer.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1100})
        try:
            page = context.new_page()
            page.set_default_timeout(STEP_S * 1000)
            page.goto(f"{base}/lab/tree/explorer.ipynb?token={token}", timeout=RENDER_S * 1000)
            _run_the_cell(page)

            # the image appears: the original and the completed view are decoded PNGs of SIZE x SIZE
            page.wait_for_function("() => { const e = document.querySelector('img.inpaint-fill'); "
                                   "return e && e.complete && e.naturalWidth > 0; }", timeout=RENDER_S * 1000)
            sizes = page.eval_on_selector("img.inpaint-original", "e => [e.naturalWidth, e.naturalHeight]")
            assert sizes == [SIZE, SIZE]
            fill = page.locator("img.inpaint-fill")
            assert fill.bounding_box()["width"] == pytest.approx(DISPLAY, abs=1)

            # another method changes the completed image
            method = page.locator(".inpaint-method select")
            first = method.input_value()
            other = next(v for v in method.locator("option").all_inner_texts() if v != first)
            before_src, before_png = fill.get_attribute("src"), fill.screenshot()
            method.select_option(other)
            _src_changed(page, "img.inpaint-fill", before_src)
            after_png = fill.screenshot()
            change = np.abs(_pixels(after_png) - _pixels(before_png)).mean()
            assert change > 0.5, f"the completed image hardly changed from {first!r} to {other!r} ({change:.3f})"

            # one brush stroke painted with the mouse becomes the mask
            page.locator(".inpaint-mask-mode button", has_text="paint").click()
            page.wait_for_function("() => document.querySelector('.inpaint-message').textContent"
                                   ".includes('nothing painted yet')")
            canvas = page.locator("canvas.inpaint-brush-canvas")
            canvas.wait_for(state="visible")
            box = canvas.bounding_box()
            masked = page.locator("img.inpaint-masked")
            masked_src, masked_png = masked.get_attribute("src"), masked.screenshot()
            y = box["y"] + box["height"] / 2
            x0, x1 = box["x"] + box["width"] * 0.25, box["x"] + box["width"] * 0.75
            page.mouse.move(x0, y)
            page.mouse.down()
            page.mouse.move(x1, y, steps=12)
            page.mouse.up()
            page.wait_for_function("() => / px\\)/.test(document.querySelector('.inpaint-message').textContent)")
            _src_changed(page, "img.inpaint-masked", masked_src)
            message = page.locator(".inpaint-message").inner_text()
            hole = int(re.search(r"\((\d+) px\)", message).group(1))
            # half the image wide in image pixels, whatever the screen scale: length x width + the round caps
            expected = SIZE / 2 * BRUSH + np.pi * (BRUSH / 2) ** 2
            assert 0.7 * expected < hole < 1.4 * expected, f"{hole} px painted, expected about {expected:.0f}: {message}"
            assert np.abs(_pixels(masked.screenshot()) - _pixels(masked_png)).mean() > 0.5
            page.locator(".inpaint-explorer").screenshot(path=str(shot))
        except Exception:
            page.screenshot(path=str(shot.with_name("explorer-failed.png")))          # what the page showed
            print(f"browser test failed; the page: {shot.with_name('explorer-failed.png')}")
            raise
        finally:
            context.close()
    print(f"browser test: {time.monotonic() - started:.1f} s in Chromium; screenshot {shot}")
    assert shot.stat().st_size > 0
