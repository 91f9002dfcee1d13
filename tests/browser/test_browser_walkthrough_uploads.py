"""In a real browser: upload a small zip of photos as a new category, then check one new photo
against the fitted model on Inspect and read its verdict (issue 22's first minutes).

Runs after ``test_browser_walkthrough.py`` (file order), on the same server and workspace.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from pipeline.workspace import Workspace
from tests.browser.test_browser_walkthrough import TIMEOUT_MS, _idle, _nav, _shot

pytestmark = pytest.mark.browser
UPLOADED = "line_photos"


def _zip_of_a_category(source: Path, out: Path) -> Path:
    """``source`` (a LOCO category) as the zip a QA engineer would drop: one top folder, a few images."""
    with zipfile.ZipFile(out, "w") as archive:
        for split in ("train/good", "validation/good", "test/good", "test/structural_anomalies"):
            for path in sorted((source / split).glob("*.png"))[:4]:
                archive.write(path, f"{UPLOADED}/{split}/{path.name}")
    return out


def _uploader(page, label: str):
    """The ``<input type=file>`` of the Streamlit uploader labelled ``label``."""
    return page.get_by_test_id("stFileUploader").filter(has_text=label).locator("input[type=file]")


def test_upload_a_zip_then_check_a_photo_in_chromium(page, app_url, browser_workspace, tiny_synth, tmp_path,
                                                     screenshot_dir):
    ws = Workspace.open(browser_workspace)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(app_url)
    page.get_by_role("heading", name="Workspace & data").wait_for()
    _idle(page)

    archive = _zip_of_a_category(tiny_synth / "pin_tray", tmp_path / f"{UPLOADED}.zip")
    _uploader(page, "Upload images (zip or files)").set_input_files(str(archive))
    page.get_by_text(f"{UPLOADED}.zip").wait_for()
    page.get_by_role("button", name="Check upload").click()
    _idle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text(re.compile(rf"Imported {UPLOADED}: \d+ images")).wait_for()
    _idle(page)
    assert UPLOADED in {c.name for c in ws.categories()}
    assert (ws.path / "uploads" / UPLOADED).is_dir()  # stored inside the workspace
    _shot(page, screenshot_dir, "5_upload.png")

    _nav(page, "Inspect")
    _idle(page)
    page.get_by_test_id("stRadio").filter(has_text="Images from").get_by_text("new photos").click()
    _idle(page)
    photo = sorted((tiny_synth / "pin_tray" / "test" / "structural_anomalies").glob("*.png"))[0]
    _uploader(page, "Check new photos").set_input_files(str(photo))
    verdict = page.get_by_text(re.compile(rf"^Verdict for {re.escape(photo.name)}: "))
    verdict.wait_for()
    _idle(page)
    page.get_by_text("Final anomaly map over the image").first.wait_for()
    text = verdict.inner_text()
    assert re.search(r": (ANOMALOUS|good)", text), text
    _shot(page, screenshot_dir, "6_check_photo.png", height=1400)
    print(json.dumps({"verdict": text}))
