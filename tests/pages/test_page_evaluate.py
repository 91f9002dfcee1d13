"""Evaluate page: ROC curves, the AUROC table beside the reference rows, the threshold slider."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from pipeline.evaluation.reference import REFERENCE_AUROC
from pipeline.evaluation.threshold import threshold_for_flagged
from pipeline.methods.runner import FLAGGED_SETTING
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

    [table] = at.dataframe
    df = table.value
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


def test_flagged_slider_saves_the_threshold(app, workspace_copy):
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
