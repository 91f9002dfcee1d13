"""Evaluate page: ROC curves (per kind, per branch), the AUROC table beside the reference rows, the
threshold slider, the report button; the same numbers as the CLI's ``evaluate``."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.widgets import pct
from pipeline.__main__ import main
from pipeline.evaluation.calibrate import calibration_applied
from pipeline.evaluation.evaluate import save_branch_scores
from pipeline.methods.calibrated import load_calibration
from pipeline.methods.runner import FLAGGED_SETTING
from pipeline.metrics.auroc import image_auroc_by_kind
from pipeline.metrics.reference import REFERENCE_AUROC
from pipeline.metrics.threshold import threshold_for_flagged
from pipeline.workspace import Workspace

PAGE = "pages/evaluate.py"


def _chart(at, key: str) -> dict:
    [chart] = [c for c in at.get("plotly_chart") if c.key == key]
    return json.loads(chart.proto.spec)


def _values(encoded) -> list[float]:
    """A plotly trace array: a plain list, or numpy's typed-array form ``{"dtype", "bdata"}``."""
    if isinstance(encoded, dict):
        return np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=encoded["dtype"]).tolist()
    return list(encoded)


def test_auroc_table_and_roc_chart(app, page_workspaces):
    at = app.open(page_workspaces["evaluated"], PAGE)
    auroc = Workspace.open(page_workspaces["evaluated"]).model_record("pin_tray", "instant").metrics["auroc"]

    df = at.dataframe[0].value
    assert list(df.columns) == ["method", "category", "logical", "structural", "mean"]
    ours = df[df["method"] == "instant (ours)"]
    assert list(ours["category"]) == ["pin_tray"]
    assert [ours.iloc[0][k] for k in ("logical", "structural", "mean")] == [f"{100 * auroc[k]:.1f}" for k in ("logical", "structural", "mean")]
    reference = df[df["category"] == "MVTec LOCO (published)"]
    assert list(reference["method"]) == list(REFERENCE_AUROC)
    assert reference.set_index("method").loc["AeCSAD (thesis)", "mean"] == f"{REFERENCE_AUROC['AeCSAD (thesis)']['mean']:.1f}"

    roc = _chart(at, "roc_chart")
    names = [trace["name"] for trace in roc["data"]]
    assert names == ["chance", "logical vs good", "structural vs good"]
    for trace in roc["data"][1:]:
        x, y = _values(trace["x"]), _values(trace["y"])
        assert (x[0], y[0], x[-1], y[-1]) == (0, 0, 1, 1)
        assert x == sorted(x) and y == sorted(y)  # a ROC curve never turns back
    histogram = _chart(at, "score_histogram")
    assert sorted(t["name"] for t in histogram["data"]) == ["good", "logical", "structural"]
    assert at.button("run_evaluation").label == "Re-evaluate"


def test_flagged_slider_saves_the_threshold(app, workspace_copy, tmp_path):
    ws_path = workspace_copy("evaluated")
    ws = Workspace.open(ws_path)
    val = [r.score for r in ws.scores("pin_tray", "instant", split="validation")]
    at = app.open(ws_path, PAGE)
    slider = at.slider("flagged_slider")
    assert (slider.min, slider.max) == (0, len(val)) == (0, 4)
    before = ws.get_threshold("pin_tray", "instant")
    assert slider.value == ws.get_setting(FLAGGED_SETTING, category="pin_tray")["instant"]
    target = 3 if slider.value != 3 else 1

    slider.set_value(target)
    app.run(at)
    after = ws.get_threshold("pin_tray", "instant")
    assert after != before
    assert after == pytest.approx(threshold_for_flagged(val, target))
    assert ws.get_setting(FLAGGED_SETTING, category="pin_tray")["instant"] == target
    assert sum(v > after for v in val) == target
    assert any(m.value.startswith(f"**Threshold {after:.3f}:**") for m in at.markdown)

    # A fresh session finds the saved choice, and Inspect uses the new threshold.
    again = app.open(ws_path, PAGE)
    assert again.slider("flagged_slider").value == target
    inspect = app.open(ws_path, "pages/inspect.py")
    assert {m.label: m.value for m in inspect.metric}["Threshold"] == f"{after:.3f}"
    # ... and so does `predict`.
    image = Path(ws.category("pin_tray").data_root) / "test" / "good" / "000.png"
    assert main(["predict", "--workspace", str(ws_path), "--category", "pin_tray", "--method", "instant", "--device", "cpu",
                 str(image), "--out", str(tmp_path / "pred")]) == 0
    [line] = (tmp_path / "pred" / "scores.jsonl").read_text().splitlines()
    assert json.loads(line)["threshold"] == pytest.approx(after)


def test_evaluation_button_scores_the_test_images(app, workspace_copy):
    ws_path = workspace_copy("fitted")
    at = app.open(ws_path, PAGE)
    assert "Not evaluated yet" in at.info[0].value
    assert not at.get("plotly_chart") and not at.dataframe
    assert at.button("run_evaluation").label == "Evaluate on the test images"

    at.button("run_evaluation").click()
    app.run(at)
    ws = Workspace.open(ws_path)
    assert len(ws.scores("pin_tray", "instant", split="test")) == 16
    assert ws.model_record("pin_tray", "instant").metrics["auroc"]["mean"] is not None
    assert not at.info
    assert [c.key for c in at.get("plotly_chart")] == ["roc_chart", "score_histogram"]
    assert "instant (ours)" in list(at.dataframe[0].value["method"])


def test_page_matches_the_cli_evaluate_numbers(app, workspace_copy, tiny_synth, tmp_path):
    """The page's AUROC row and ROC curves are those `python -m pipeline evaluate` writes for the same workspace."""
    ws_path = workspace_copy("fitted")
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--data", str(tiny_synth), "--category", "pin_tray", "--workspace", str(ws_path),
                 "--method", "instant", "--device", "cpu", "--out", str(out)]) == 0
    cli = json.loads(out.read_text())
    at = app.open(ws_path, PAGE)

    df = at.dataframe[0].value
    ours = df[df["method"] == "instant (ours)"].iloc[0]
    assert [ours[k] for k in ("logical", "structural", "mean")] == [f"{100 * cli['auroc'][k]:.1f}" for k in ("logical", "structural", "mean")]
    traces = {t["name"]: t for t in _chart(at, "roc_chart")["data"]}
    for kind in ("logical", "structural"):
        trace = traces[f"{kind} vs good"]
        assert _values(trace["x"]) == pytest.approx(cli["roc"][kind]["fpr"])
        assert _values(trace["y"]) == pytest.approx(cli["roc"][kind]["tpr"])
    ws = Workspace.open(ws_path)
    bad = [r.score for r in ws.scores("pin_tray", "instant", split="test") if r.kind != "good"]
    assert cli["n"]["logical"] + cli["n"]["structural"] == len(bad)
    metrics = {m.label: m.value for m in at.metric}
    missed = sum(s <= ws.get_threshold("pin_tray", "instant") for s in bad)
    assert metrics["Miss rate on labelled bad parts"] == f"{missed / len(bad):.0%}"
    assert metrics["Good validation parts flagged"].endswith("of 4")


def test_per_branch_roc_curves_and_table(app, workspace_copy):
    """A method with branch scores gets one ROC chart per defect kind (a curve per branch) and a branch AUROC table."""
    ws_path = workspace_copy("evaluated")
    ws = Workspace.open(ws_path)
    rows = ws.scores("pin_tray", "instant", split="test")
    rng = np.random.default_rng(0)
    branch = [{"histogram_global": r.score, "lgst_local": float(rng.normal()), "z_histogram_global": r.score / 2} for r in rows]
    save_branch_scores(ws.method_dir("pin_tray", "instant"), rows, branch)
    at = app.open(ws_path, PAGE)

    keys = [c.key for c in at.get("plotly_chart")]
    assert keys == ["roc_chart", "branch_roc_logical", "branch_roc_structural", "score_histogram"]
    for kind in ("logical", "structural"):
        names = [t["name"] for t in _chart(at, f"branch_roc_{kind}")["data"]]
        assert names == ["chance", "histogram_global", "lgst_local"]  # z-scores rank like their raw score: left out
    table = [d for d in at.dataframe if "branch" in d.value.columns][0].value
    assert list(table["branch"]) == ["histogram_global", "lgst_local"]
    expected = image_auroc_by_kind([r.kind for r in rows], [r.score for r in rows])
    assert table.iloc[0]["mean"] == f"{100 * expected['mean']:.1f}"


def test_anomaly_types_table_weakest_first(app, page_workspaces, tiny_synth):
    """Synthetic data names each defect's type: one row per type, weakest first, the numbers `evaluate` stored."""
    at = app.open(page_workspaces["evaluated"], PAGE)
    stored = Workspace.open(page_workspaces["evaluated"]).model_record("pin_tray", "instant").metrics["subtype_auroc"]
    info = json.loads((tiny_synth / "pin_tray" / "synth_info.json").read_text())
    assert set(stored) == {v for k, v in info["images"].items() if k.startswith("test/")}
    [table] = [d.value for d in at.dataframe if "anomaly type" in d.value.columns]
    assert set(table["anomaly type"]) == set(stored)
    assert list(table["images"]) == [stored[name]["n"] for name in table["anomaly type"]]
    assert list(table["AUROC"]) == [pct(stored[name]["auroc"]) for name in table["anomaly type"]]
    values = [stored[name]["auroc"] for name in table["anomaly type"]]
    assert values == sorted(values)


def test_report_button_offers_the_html_report(app, page_workspaces):
    at = app.open(page_workspaces["evaluated"], PAGE)
    [button] = at.get("download_button")
    assert button.proto.label == "Download the HTML report"
    assert button.proto.deferred_file_id  # built on click (tested in a real browser and in tests/unit/evaluation)


def test_workspace_page_points_to_review_once_fitted(app, page_workspaces):
    labels = lambda at: [link.proto.label for link in at.get("page_link")]  # noqa: E731
    assert labels(app.open(page_workspaces["data"])) == ["Next: build a detector on the Train page"]
    assert labels(app.open(page_workspaces["fitted"]))[:2] == [
        "Next: inspect the heat maps, worst first", "Or: ROC curves, AUROC, threshold and the HTML report on Evaluate"]


# --- few-shot calibration (issue 8) --------------------------------------------------------

def test_calibration_needs_a_multi_branch_method(app, workspace_copy):
    ws_path = workspace_copy("evaluated")
    Workspace.open(ws_path).set_image_label("pin_tray", "test/logical/000.png", "bad")
    at = app.open(ws_path, PAGE)
    assert "1 image(s) marked bad" in " ".join(c.value for c in at.caption)
    at.button("run_calibration").click()
    app.run(at)
    assert any("gives one score" in e.value for e in at.error)


def test_calibrate_on_marked_images_apply_and_compare(app, aecsad_workspace, tmp_path):
    ws_path = tmp_path / "ws"
    shutil.copytree(aecsad_workspace, ws_path)
    ws = Workspace.open(ws_path)
    bad = [r.image_key for r in ws.scores("pin_tray", "aecsad", split="test") if r.kind != "good"]
    for key in bad[:3]:
        ws.set_image_label("pin_tray", key, "bad")
    at = app.open(ws_path, PAGE)
    at.selectbox("evaluate_method").set_value("aecsad")
    app.run(at)
    assert not at.button("run_calibration").disabled
    at.button("run_calibration").click()
    app.run(at)
    calibration = load_calibration(Workspace.open(ws_path), "pin_tray", "aecsad")
    assert calibration is not None and calibration.n_bad == 3 and set(calibration.used_keys) == set(bad[:3])
    text = " ".join(m.value for m in at.markdown)
    assert f"fusion: {calibration.mode} weights" in text and "weight lgst:" in text and "proposed threshold" in text

    at.toggle("use_calibration").set_value(True)
    app.run(at)
    ws = Workspace.open(ws_path)
    assert calibration_applied(ws, "pin_tray", "aecsad")
    assert ws.get_threshold("pin_tray", "aecsad") == calibration.threshold
    at.button("run_evaluation").click()
    app.run(at)
    [table] = [df for df in at.dataframe if "fusion" in df.value.columns]
    assert list(table.value["fusion"]) == ["equal", "calibrated"]
    comparison = Workspace.open(ws_path).model_record("pin_tray", "aecsad").metrics["fusion_comparison"]
    assert comparison["n_marked"] == 3
    assert table.value.iloc[0]["mean"] == pct(comparison["equal"]["mean"])

    at.toggle("use_calibration").set_value(False)
    app.run(at)
    assert not calibration_applied(Workspace.open(ws_path), "pin_tray", "aecsad")
