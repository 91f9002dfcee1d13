"""Checking a photo (issue 22): the same score, verdict and margin as ``predict``, any image mode
decoded like a file on disk, one clear ``UserError`` for what is no image, and kept photos stored
beside the category's records with their label."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.__main__ import main
from pipeline.data.images import ImageReadError
from pipeline.errors import UserError
from pipeline.evaluation.check import check_bytes, checked_photos, keep_checked
from pipeline.evaluation.verdict import VerdictScale, verdict_scale
from pipeline.methods.base import Prediction
from pipeline.methods.runner import load_detector
from pipeline.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATEGORY = "bottle"
SCALE = VerdictScale(threshold=0.5, spread=0.25)


class _Stub:
    """A detector that scores every image by its mean brightness; counts its calls."""

    method = "stub"

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        self.calls += 1
        return [Prediction(score=float(im.mean()) / 255, anomaly_map=np.zeros((4, 4), np.float32),
                           branch_scores={"a": 1.0}, explanations=("why",)) for im in images]


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def fitted(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("check") / "ws"
    assert main(["fit", "--data", str(tiny_synth), "--category", CATEGORY, "--workspace", str(ws),
                 "--method", "instant", "--device", "cpu"]) == 0
    return ws


def test_same_score_verdict_and_margin_as_predict(tiny_synth, fitted, tmp_path):
    images = [tiny_synth / CATEGORY / "test" / kind / "000.png" for kind in ("good", "structural_anomalies")]
    out = tmp_path / "pred"
    assert main(["predict", "--workspace", str(fitted), "--category", CATEGORY, "--method", "instant",
                 *map(str, images), "--out", str(out), "--device", "cpu"]) == 0
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    ws = Workspace.open(fitted)
    detector, scale = load_detector(ws, CATEGORY, "instant", "cpu"), verdict_scale(ws, CATEGORY, "instant")
    for path, row in zip(images, rows):
        check = check_bytes(detector, path.read_bytes(), path.name, scale)
        assert check.score == pytest.approx(row["score"], abs=1e-6)
        assert check.threshold == row["threshold"] and check.verdict is not None
        assert check.margin == pytest.approx(row["margin"], abs=1e-6)
        assert check.row()["verdict"] == row["verdict"] and check.verdict.borderline == row["borderline"]
    assert {row["verdict"] for row in rows} == {"good", "anomalous"}


def test_grayscale_and_rgba_photos_are_checked_as_rgb():
    gray = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (8, 1))
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    detector = _Stub()
    from_gray = check_bytes(detector, _png(gray, "L"), "gray.png", SCALE)
    from_rgba = check_bytes(detector, _png(np.dstack([rgb, np.full_like(gray, 7)]), "RGBA"), "rgba.png", SCALE)
    assert from_gray.rgb.shape == (8, 16, 3) and np.array_equal(from_gray.rgb, rgb)
    assert np.array_equal(from_rgba.rgb, rgb) and from_rgba.score == from_gray.score
    assert from_gray.verdict is not None and from_gray.row()["explanations"] == ["why"]


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("broken.png", None, "truncated"),
    ("notes.txt", b"a text file, not a photo\n", "not an image"),
    ("empty.png", b"", "empty file"),
])
def test_what_is_no_image_is_one_clear_user_error(name, data, reason):
    if data is None:  # a PNG cut short, as a half-finished upload leaves it
        data = _png(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))[:-300]
    detector = _Stub()
    with pytest.raises(UserError, match=reason) as caught:
        check_bytes(detector, data, name, SCALE)
    assert isinstance(caught.value, ImageReadError) and str(caught.value).startswith(f"{name}: ")
    assert detector.calls == 0


def test_a_photo_over_the_size_limit_is_refused():
    with pytest.raises(ImageReadError, match="too large"):
        check_bytes(_Stub(), _png(np.zeros((32, 32, 3), np.uint8)), "big.png", SCALE, max_bytes=10)


def test_a_kept_photo_is_stored_once_with_its_label(tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    data = _png(np.full((8, 8, 3), 200, np.uint8))
    check = check_bytes(_Stub(), data, "line 3/shot.png", SCALE)
    path = keep_checked(ws, "pins", check, data, "bad")
    assert path.parent == ws.path / "categories" / "pins" / "checked" and path.read_bytes() == data
    assert path.name.startswith("shot-") and path.suffix == ".png"
    assert ws.image_labels("pins") == {f"checked/{path.name}": "bad"}
    assert keep_checked(ws, "pins", check, data, None) == path  # the same photo again: same file, label removed
    assert checked_photos(ws, "pins") == [path] and ws.image_labels("pins") == {}
