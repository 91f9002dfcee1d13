"""Fixtures for the real-browser test: a Streamlit server on a free port and headless Chromium.

Chromium is the Debian package (``/usr/bin/chromium``, installed by ``.ci/run``); Playwright's own
browser download is never used, only its Python driver. Without either the tests skip and say why.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.demo import prepare_demo
from tests.conftest import tiny_synth_settings

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
"""Headless, and none of Chromium's background connections (a closed network refuses them)."""
SERVER_START_S = 120
CATEGORY, METHOD = "pin_tray", "instant"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test item, so the ``page`` fixture knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"streamlit did not answer {url}/_stcore/health in {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def sync_playwright():
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: install the Debian package (`apt-get install -y chromium`; .ci/run does)")
    module = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (`pip install -r requirements.txt`)")
    return module.sync_playwright


@pytest.fixture(scope="session")
def browser_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo as ``make run`` prepares it (``prepare_demo``: data generated, the instant detector
    fitted and evaluated, the workspace marked as the demo), on the tiny pin_tray category."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root = tmp_path_factory.mktemp("browser")
        workspace, _, fitted = prepare_demo(root, settings=tiny_synth_settings(root / "data", (CATEGORY,)), device="cpu")
    finally:
        torch.set_num_threads(threads)
    assert fitted == (CATEGORY,) and workspace.get_threshold(CATEGORY, METHOD) is not None
    return workspace.path


@pytest.fixture(scope="session")
def app_url(browser_workspace: Path, tmp_path_factory: pytest.TempPathFactory, sync_playwright) -> Iterator[str]:
    """``streamlit run streamlit_app.py -- --workspace <browser_workspace>`` on a free port, stopped afterwards."""
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "streamlit_app.py"),
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        "--", "--workspace", str(browser_workspace),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$WORKBENCH_SCREENSHOTS`` when set (``make test-browser`` sets it), else a temp folder."""
    folder = Path(os.environ["WORKBENCH_SCREENSHOTS"]) if os.environ.get("WORKBENCH_SCREENSHOTS") else tmp_path_factory.mktemp("screens")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(sync_playwright, app_url: str, tmp_path: Path, screenshot_dir: Path, request: pytest.FixtureRequest):
    """A Chromium page (fresh profile, downloads allowed); ``failure.png`` is saved when the test fails."""
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000}, accept_downloads=True,
        )
        tab = context.new_page()
        try:
            yield tab
        finally:
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:
                tab.screenshot(path=str(screenshot_dir / "failure.png"))
            context.close()
    shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)
