"""Inspect → "Images from: new photos": upload a photo, read its verdict beside its heat map, keep it
with a label; a corrupt upload gives one error and writes nothing. ``AppTest`` drives the real
``st.file_uploader`` (Streamlit 1.67 supports it), so there is no test-only seam."""

from __future__ import annotations

import pytest

from app.check_photo import UPLOADER_LABEL
from pipeline.evaluation.check import check_bytes
from pipeline.evaluation.verdict import verdict_scale
from pipeline.methods.runner import load_detector
from pipeline.workspace import Workspace

PAGE = "pages/inspect.py"
CATEGORY = "pin_tray"


def _upload(app, at, name: str, data: bytes):
    at.radio("inspect_split").set_value("new photos")
    app.run(at)
    uploader = at.file_uploader(key="check_uploads")
    assert uploader.label == UPLOADER_LABEL
    uploader.upload(name, data, "image/png")
    return app.run(at)


def test_an_uploaded_photo_gets_the_models_verdict_and_can_be_kept(app, workspace_copy, tiny_synth):
    ws_path = workspace_copy("fitted")
    photo = tiny_synth / CATEGORY / "test" / "structural_anomalies" / "000.png"
    at = _upload(app, app.open(ws_path, PAGE), photo.name, photo.read_bytes())

    ws = Workspace.open(ws_path)
    expected = check_bytes(load_detector(ws, CATEGORY, "instant", "cpu"), photo.read_bytes(), photo.name,
                           verdict_scale(ws, CATEGORY, "instant"))
    assert any(m.value == f"#### Verdict for 000.png: {expected.verdict.label}" for m in at.markdown)
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Score"]) == pytest.approx(expected.score, abs=2e-3)
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert captions[0].startswith("000.png (") and captions[1].startswith("Final anomaly map over the image")
    assert not at.error

    at.button_group(key=next(b.key for b in at.button_group if b.key.startswith("keep_label_"))).set_value("structural")
    at.button(key=next(b.key for b in at.button if b.key.startswith("keep_"))).click()
    app.run(at)
    [kept] = (ws.path / "categories" / CATEGORY / "checked").iterdir()
    assert kept.read_bytes() == photo.read_bytes()
    assert ws.image_labels(CATEGORY) == {f"checked/{kept.name}": "structural"}
    assert any("Kept as" in s.value for s in at.success)


def test_a_corrupt_upload_shows_one_error_and_writes_nothing(app, workspace_copy, tiny_synth):
    ws_path = workspace_copy("fitted")
    at = _upload(app, app.open(ws_path, PAGE), "broken.png", b"\x89PNG\r\n\x1a\nnot really a picture")
    [error] = at.error
    assert error.value == "Cannot check this photo: broken.png: truncated or partly written file"
    assert not at.get("image") and not [b for b in at.button if b.key and b.key.startswith("keep_")]
    assert not (ws_path / "categories" / CATEGORY / "checked").exists()
    assert Workspace.open(ws_path).image_labels(CATEGORY) == {}
