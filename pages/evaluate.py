"""Evaluate: ROC curves per defect kind, AUROC beside the reference numbers, the threshold in plain words."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.state import require_category, require_workspace, select_method
from app.widgets import StreamlitProgress, pct
from pipeline.evaluation.evaluate import evaluate_method
from pipeline.evaluation.reference import REFERENCE_AUROC, REFERENCE_NOTE
from pipeline.evaluation.roc import roc_curve
from pipeline.evaluation.threshold import summarize_threshold
from pipeline.methods.runner import FLAGGED_SETTING, store_threshold
from pipeline.workspace import Workspace

KIND_COLOURS = {"logical": "#d62728", "structural": "#1f77b4", "bad": "#9467bd"}


def _roc_figure(kinds: list[str], scores: list[float]) -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"}, name="chance"))
    for kind, colour in KIND_COLOURS.items():
        idx = [i for i, k in enumerate(kinds) if k in ("good", kind)]
        labels = [int(kinds[i] == kind) for i in idx]
        if 0 < sum(labels) < len(labels):
            curve = roc_curve(labels, [scores[i] for i in idx])
            fig.add_trace(go.Scatter(x=curve.fpr, y=curve.tpr, mode="lines", name=f"{kind} vs good", line={"color": colour}))
    fig.update_layout(xaxis_title="false positive rate (good parts flagged)", yaxis_title="true positive rate (defects caught)",
                      height=420, margin={"t": 30}, legend={"orientation": "h"})
    return fig


def _histogram(kinds: list[str], scores: list[float], threshold: float | None) -> go.Figure:
    fig = go.Figure()
    for kind in ("good", "logical", "structural", "bad"):
        vals = [s for k, s in zip(kinds, scores) if k == kind]
        if vals:
            fig.add_trace(go.Histogram(x=vals, name=kind, opacity=0.6, nbinsx=30, marker_color=KIND_COLOURS.get(kind, "#2ca02c")))
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", annotation_text="threshold")
    fig.update_layout(barmode="overlay", xaxis_title="image score", yaxis_title="images", height=320, margin={"t": 30})
    return fig


def _auroc_table(ws: Workspace, method: str) -> pd.DataFrame:
    rows = []
    for record in ws.categories():
        model = ws.model_record(record.name, method)
        auroc = (model.metrics or {}).get("auroc") if model else None
        if auroc:
            rows.append({"method": f"{method} (ours)", "category": record.name,
                         **{k: pct(auroc.get(k)) for k in ("logical", "structural", "mean")}})
    for name, ref in REFERENCE_AUROC.items():
        rows.append({"method": name, "category": "MVTec LOCO (published)", **{k: f"{v:.1f}" for k, v in ref.items()}})
    return pd.DataFrame(rows)


def _threshold_section(ws: Workspace, category: str, method: str, test_kinds: list[str], test_scores: list[float]) -> None:
    val = [r.score for r in ws.scores(category, method, split="validation")]
    if not val:
        st.info("No validation scores: rebuild the detector on the Train page.")
        return
    current = (ws.get_setting(FLAGGED_SETTING, {}, category=category) or {}).get(method, 0)
    n = st.slider(f"Good validation parts the threshold may flag (of {len(val)})", 0, len(val), int(current), key="flagged_slider")
    if n != current:
        store_threshold(ws, category, method, val, flagged=n)
    threshold = ws.get_threshold(category, method)
    bad = [s for k, s in zip(test_kinds, test_scores) if k != "good"]
    summary = summarize_threshold(threshold, val, bad)
    st.markdown(f"**Threshold {threshold:.3f}:** {summary.sentence()}.")
    st.caption("Saved in the workspace; Inspect and `predict` use it.")


def evaluate_page() -> None:
    st.title("Evaluate")
    ws = require_workspace()
    category = require_category(ws, key="evaluate_category")
    method = select_method(key="evaluate_method")
    if ws.model_record(category, method) is None:
        st.info(f"No {method} model for **{category}** yet. Build it on the Train page first.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        return
    rows = ws.scores(category, method, split="test")
    if st.button("Evaluate on the test images" if not rows else "Re-evaluate", key="run_evaluation", type="primary" if not rows else "secondary"):
        progress = StreamlitProgress()
        try:
            evaluate_method(ws, category, method, progress=progress)
        except (FileNotFoundError, ValueError) as err:
            st.error(str(err))
        finally:
            progress.done()
        rows = ws.scores(category, method, split="test")
    if not rows:
        st.info("Not evaluated yet: click the button above to score the test images.")
        return
    kinds, scores = [r.kind for r in rows], [r.score for r in rows]
    left, right = st.columns(2)
    with left:
        st.subheader("ROC curves per defect kind")
        st.plotly_chart(_roc_figure(kinds, scores), key="roc_chart")
    with right:
        st.subheader("Image AUROC (%)")
        st.dataframe(_auroc_table(ws, method), hide_index=True, key="auroc_table")
        st.caption(REFERENCE_NOTE)
    st.subheader("Threshold")
    _threshold_section(ws, category, method, kinds, scores)
    st.plotly_chart(_histogram(kinds, scores, ws.get_threshold(category, method)), key="score_histogram")


evaluate_page()
