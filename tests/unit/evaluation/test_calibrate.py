"""Few-shot calibration in a workspace, through the real runner, evaluation and CLI, on a test-only
two-branch method whose branch z-scores are read off the image colour: ``a`` (red) is noise,
``b`` (green) separates bad from good, so calibrated weights must beat the equal-weight sum."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.__main__ import main
from pipeline.evaluation.calibrate import apply_calibration, calibrate_method
from pipeline.evaluation.evaluate import evaluate_method
from pipeline.evaluation.report import report_html
from pipeline.methods import METHODS
from pipeline.methods.base import FitContext, MethodSpec, Prediction
from pipeline.methods.calibrated import EQUAL_SCORE, CalibratedDetector, fusion_mode, load_calibration
from pipeline.methods.runner import fit_method, load_detector
from pipeline.metrics.calibration import CALIBRATED, EQUAL
from pipeline.workspace import Workspace
from pipeline.workspace.files import atomic_write_json

CATEGORY, METHOD = "parts", "twobranch"


class ColourDetector:
    method = METHOD

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        out = []
        for im in images:
            z_a, z_b = (float(im[..., 0].mean()) - 128) / 20, (float(im[..., 1].mean()) - 50) / 20
            out.append(Prediction(score=z_a + z_b, anomaly_map=np.zeros((8, 8), np.float32),
                                  branch_scores={"a": z_a, "b": z_b, "z_a": z_a, "z_b": z_b}))
        return out


def _fit(ctx: FitContext) -> dict[str, str]:
    atomic_write_json(ctx.out_dir / "model.json", {"ok": True})
    return {"model": "model.json"}


TWO_BRANCH = MethodSpec(METHOD, "two branches", "test only", _fit, lambda folder, device: ColourDetector())


def _write(folder: Path, n: int, rng: np.random.Generator, bad: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        red, green = rng.integers(0, 256), rng.integers(130, 220) if bad else rng.integers(0, 100)
        Image.fromarray(np.full((16, 16, 3), (red, green, 0), np.uint8)).save(folder / f"{i:03d}.png")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setitem(METHODS, METHOD, TWO_BRANCH)
    rng = np.random.default_rng(0)
    root = tmp_path / "data" / CATEGORY
    _write(root / "train" / "good", 4, rng, bad=False)
    _write(root / "validation" / "good", 12, rng, bad=False)
    _write(root / "test" / "good", 12, rng, bad=False)
    _write(root / "test" / "logical_anomalies", 6, rng, bad=True)
    _write(root / "test" / "structural_anomalies", 6, rng, bad=True)
    ws = Workspace.create(tmp_path / "ws")
    ws.add_category(CATEGORY, root, "loco")
    fit_method(ws, CATEGORY, METHOD, device="cpu")
    evaluate_method(ws, CATEGORY, METHOD, device="cpu")
    return ws


def _mark(ws: Workspace, n: int) -> list[str]:
    keys = [f"test/logical/{i:03d}.png" for i in range(3)] + [f"test/structural/{i:03d}.png" for i in range(3)]
    for key in keys[:n]:
        ws.set_image_label(CATEGORY, key, "bad")
    return keys[:n]


def _z(ws: Workspace, key: str) -> dict[str, float]:
    path = Path(ws.category(CATEGORY).data_root) / key.replace("logical/", "logical_anomalies/").replace(
        "structural/", "structural_anomalies/")
    return {k[2:]: v for k, v in ColourDetector().predict([np.asarray(Image.open(path))])[0].branch_scores.items()
            if k.startswith("z_")}


def test_two_marked_images_keep_equal_weights(workspace):
    _mark(workspace, 2)
    cal = calibrate_method(workspace, CATEGORY, METHOD, device="cpu")
    assert cal.mode == EQUAL and cal.weights == (1.0, 1.0) and cal.threshold is None
    with pytest.raises(ValueError, match="mark at least 3"):
        apply_calibration(workspace, CATEGORY, METHOD, on=True)
    assert not isinstance(load_detector(workspace, CATEGORY, METHOD, "cpu"), CalibratedDetector)


def test_calibrate_apply_evaluate_revert(workspace):
    marked = _mark(workspace, 5)
    equal_val = {r.image_key: r.score for r in workspace.scores(CATEGORY, METHOD, "validation")}
    cal = calibrate_method(workspace, CATEGORY, METHOD, device="cpu")
    assert cal.mode == CALIBRATED and cal.branches == ("a", "b")
    assert cal.weights[1] > 1.5 > cal.weights[0]
    assert set(cal.used_keys) == set(marked)

    threshold = apply_calibration(workspace, CATEGORY, METHOD, on=True)
    assert threshold == cal.threshold == workspace.get_threshold(CATEGORY, METHOD)
    assert fusion_mode(workspace, CATEGORY, METHOD) == CALIBRATED
    for row in workspace.scores(CATEGORY, METHOD, "validation"):  # re-fused from the kept z-scores
        assert row.score == pytest.approx(cal.score(_z(workspace, row.image_key)))
    detector = load_detector(workspace, CATEGORY, METHOD, "cpu")
    pred = detector.predict([np.full((16, 16, 3), (200, 40, 0), np.uint8)])[0]
    assert pred.score == pytest.approx(cal.score({"a": 3.6, "b": -0.5}))
    assert pred.branch_scores[EQUAL_SCORE] == pytest.approx(3.1)

    result = evaluate_method(workspace, CATEGORY, METHOD, device="cpu")
    assert set(result.excluded) == set(marked)
    assert result.n == {"good": 12, "logical": 3, "structural": 4}
    comparison = result.fusion_comparison
    assert comparison["active"] == CALIBRATED
    assert comparison["calibrated"]["mean"] == 1.0 > comparison["equal"]["mean"]
    assert result.auroc == comparison["calibrated"]  # the active fusion is the method's score
    html = report_html(workspace, CATEGORY, METHOD)
    assert "fused with <b>calibrated</b> weights" in html and "5 parts marked bad" in html
    assert "equal weights " + f"{100 * comparison['equal']['mean']:.1f} %" in html

    apply_calibration(workspace, CATEGORY, METHOD, on=False)
    assert fusion_mode(workspace, CATEGORY, METHOD) == EQUAL
    again = {r.image_key: r.score for r in workspace.scores(CATEGORY, METHOD, "validation")}
    assert again == pytest.approx(equal_val)


def test_refit_drops_the_calibration(workspace):
    _mark(workspace, 5)
    calibrate_method(workspace, CATEGORY, METHOD, device="cpu")
    apply_calibration(workspace, CATEGORY, METHOD, on=True)
    fit_method(workspace, CATEGORY, METHOD, device="cpu")
    assert load_calibration(workspace, CATEGORY, METHOD) is None
    assert fusion_mode(workspace, CATEGORY, METHOD) == EQUAL


def test_cli_label_calibrate_and_predict_with_verdict_margin(workspace, tmp_path, capsys):
    ws = str(workspace.path)
    keys = [f"test/logical/{i:03d}.png" for i in range(3)] + ["test/structural/000.png"]
    assert main(["label", "--workspace", ws, "--category", CATEGORY, "--as", "bad", *keys]) == 0
    assert "4 image(s) marked bad" in capsys.readouterr().out
    assert main(["label", "--workspace", ws, "--category", CATEGORY, "--as", "bad", "nope.png"]) == 2
    assert "not images of category" in capsys.readouterr().err
    assert main(["calibrate", "--workspace", ws, "--category", CATEGORY, "--method", METHOD, "--device", "cpu",
                 "--apply"]) == 0
    out = capsys.readouterr().out
    assert "fusion: calibrated weights" in out and "weight b:" in out and "applied" in out
    image = Path(workspace.category(CATEGORY).data_root) / "test" / "good" / "000.png"
    assert main(["predict", "--workspace", ws, "--category", CATEGORY, "--method", METHOD, "--device", "cpu",
                 "--out", str(tmp_path / "pred"), str(image)]) == 0
    [row] = [json.loads(line) for line in (tmp_path / "pred" / "scores.jsonl").read_text().splitlines()]
    val = np.array([r.score for r in workspace.scores(CATEGORY, METHOD, "validation")])
    low, high = np.percentile(val, [20, 80])
    spread = val[(val >= low) & (val <= high)].std()  # the good scores' trimmed spread
    assert row["verdict"] == "good" and row["margin"] < 0
    assert row["margin"] == pytest.approx((row["score"] - row["threshold"]) / spread)
    assert isinstance(row["borderline"], bool)
    assert EQUAL_SCORE in row["branch_scores"]
