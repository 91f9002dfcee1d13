"""End to end in a real browser: headless Chromium opens the app and walks Workspace → Inspect →
Evaluate, downloads the report, and saves a screenshot of each step (``screenshot_dir``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.workspace import Workspace

pytestmark = pytest.mark.browser
TIMEOUT_MS = 180_000
"""Generous: the first Inspect run loads the backbone on a busy 2-core machine."""


def _nav(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=TIMEOUT_MS)


def _idle(page) -> None:
    """Wait until the script run has finished (Streamlit shows its status widget while running)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')?.innerText.match(/Running|Stop/)",
        timeout=TIMEOUT_MS,
    )
    page.wait_for_timeout(500)


def _shot(page, folder: Path, name: str, height: int = 1000) -> Path:
    page.set_viewport_size({"width": 1400, "height": height})
    page.wait_for_timeout(400)
    path = folder / name
    page.screenshot(path=str(path))
    return path


def test_workspace_inspect_evaluate_in_chromium(page, app_url, browser_workspace, screenshot_dir):
    ws = Workspace.open(browser_workspace)
    page.set_default_timeout(TIMEOUT_MS)

    page.goto(app_url)
    page.get_by_role("heading", name="Workspace & data").wait_for()
    page.get_by_role("heading", name="Categories").wait_for()
    # The demo as `make run` prepares it: marked, with a fitted model (no Train click in this test).
    page.get_by_text("This is the demo workspace").wait_for()
    page.locator('[data-testid="stImage"] img').first.wait_for()
    _idle(page)
    shots = [_shot(page, screenshot_dir, "1_workspace.png")]
    assert page.locator('[data-testid="stImage"] img').count() >= 6  # the image grid
    page.get_by_text(re.compile(r"^\d+ images in test/good$")).wait_for()
    assert str(browser_workspace) in page.get_by_test_id("stSidebarUserContent").inner_text()

    page.get_by_test_id("stPageLink").get_by_text("Next: inspect the heat maps").click()  # the page's own hint
    page.get_by_role("heading", name="Inspect", exact=True).wait_for()
    page.get_by_text("Final anomaly map over the image").wait_for()
    _idle(page)
    metrics = page.get_by_test_id("stMetricValue").all_inner_texts()
    threshold = ws.get_threshold("pin_tray", "instant")
    assert f"{threshold:.3f}" in metrics and ("ANOMALOUS" in metrics or "good" in metrics)
    worst = ws.scores("pin_tray", "instant", split="test")[0]
    assert f"{worst.score:.3f}" in metrics  # worst first
    shots.append(_shot(page, screenshot_dir, "2_inspect.png", height=1200))

    _nav(page, "Evaluate")
    page.get_by_text("Image AUROC (%)").wait_for()
    page.locator(".js-plotly-plot").nth(1).wait_for()
    _idle(page)
    traces = page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map(p => p.data.map(t => t.name))")
    assert traces[0] == ["chance", "logical vs good", "structural vs good"]
    assert sorted(traces[1]) == ["good", "logical", "structural"]
    auroc = ws.model_record("pin_tray", "instant").metrics["auroc"]
    assert page.get_by_text(re.compile(r"good validation parts would be flagged")).count() >= 1
    shots.append(_shot(page, screenshot_dir, "3_evaluate.png", height=1700))

    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.get_by_role("button", name="Download the HTML report").click()
    report = screenshot_dir / "report.html"
    download.value.save_as(str(report))
    text = report.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S).group(1))
    assert data["category"] == "pin_tray" and data["method"] == "instant"
    assert data["auroc"]["mean"] == pytest.approx(auroc["mean"])
    page.goto(report.resolve().as_uri())
    page.get_by_role("heading", name="Inspection report: pin_tray").wait_for()
    assert page.locator("svg polyline.roc").count() == 2
    assert page.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(screenshot_dir / "4_report.png"), full_page=True)
    shots.append(screenshot_dir / "4_report.png")
    assert all(p.stat().st_size > 10_000 for p in shots), shots
    print(f"screenshots: {screenshot_dir}")
