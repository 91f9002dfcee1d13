"""Workspace & data page, upload box: a zip from the browser is checked, imported and stored in the workspace.

Streamlit's ``AppTest`` drives ``st.file_uploader`` (``set_value`` with name, bytes, type), so
the real widget is used; the unpacking rules themselves are tested in tests/unit/test_uploads.py.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from app.uploads import IMPORT_UPLOAD_KEY, PENDING_UPLOAD_KEY, UPLOAD_KEY, UPLOAD_LABEL
from pipeline.workspace import Workspace

CHECK_UPLOAD = "FormSubmitter:upload_data-Check upload"


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _check(app, at, files):
    uploader = at.file_uploader(key=UPLOAD_KEY)
    assert uploader.label == UPLOAD_LABEL and uploader.accept_multiple_files
    uploader.set_value(files)
    at.button(CHECK_UPLOAD).click()
    return app.run(at)


def test_a_zip_is_checked_then_imported_into_the_workspace(app, tmp_path):
    ws_path = tmp_path / "ws"
    Workspace.create(ws_path)
    files = {f"parts/good/{i}.png": _png(i) for i in range(4)}
    files.update({"parts/bad/b.png": _png(9), "parts/good/cut.png": b"\x89PNG"})
    at = _check(app, app.open(ws_path), ("line3.zip", _zip(files), "application/zip"))
    [summary] = [c.value for c in at.code]
    assert summary.startswith("parts: plain good/ + bad/ folders in line3.zip")
    assert "4 good, 1 defective, 1 skipped" in summary and "skipped line3.zip/good/cut.png" in summary
    assert Workspace.open(ws_path).categories() == [] and not (ws_path / "uploads").exists()  # nothing registered yet

    at.button(IMPORT_UPLOAD_KEY).click()
    app.run(at)
    target = ws_path / "uploads" / "parts"
    assert [s.value for s in at.success] == [f"Imported `parts`: 5 images, 1 unreadable; stored in `{target}`."]
    [record] = Workspace.open(ws_path).categories()
    assert (record.name, record.layout, Path(record.data_root)) == ("parts", "folder", target)
    assert PENDING_UPLOAD_KEY not in at.session_state
    assert [p.name for p in ws_path.iterdir() if p.name.startswith(".upload-")] == []


def test_a_bad_upload_shows_one_error_and_changes_nothing(app, tmp_path):
    ws_path = tmp_path / "ws"
    Workspace.create(ws_path)
    before = sorted(p.name for p in ws_path.iterdir())
    at = _check(app, app.open(ws_path), ("photos.zip", b"not really a zip", "application/zip"))
    [error] = [e.value for e in at.error]
    assert error.startswith("photos.zip is not a zip archive (another file renamed, or cut off while uploading)")
    assert not at.code and IMPORT_UPLOAD_KEY not in [b.key for b in at.button]
    assert sorted(p.name for p in ws_path.iterdir()) == before and Workspace.open(ws_path).categories() == []
