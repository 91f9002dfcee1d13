"""Evaluate: ROC curves per defect kind and per branch, AUROC beside the reference numbers, score
histograms, the threshold in plain words, and the one-click HTML report."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.navigation import ensure_frame
from app.state import require_category, require_workspace, select_method
from app.widgets import StreamlitProgress, pct
from pipeline.data.samples import DataError
from pipeline.evaluation.calibrate import apply_calibration, calibrate_method, calibration_applied, marked_bad_samples
from pipeline.evaluation.evaluate import evaluate_method, load_branch_scores
from pipeline.evaluation.report import (
    AUROC_KEYS,
    auroc_rows,
    branch_auroc_table,
    branch_rocs,
    kind_rocs,
    threshold_summary,
    write_report,
)
from pipeline.methods.calibrated import load_calibration
from pipeline.methods.runner import FLAGGED_SETTING, store_threshold
from pipeline.metrics.calibration import CALIBRATED, CalibrationSettings
from pipeline.metrics.reference import REFERENCE_NOTE
from pipeline.metrics.roc import RocCurve
from pipeline.metrics.subtypes import weakest_first
from pipeline.workspace import ScoreRow, Workspace

KIND_COLOURS = {"good": "#2ca02c", "logical": "#d62728", "structural": "#1f77b4", "bad": "#9467bd"}
AXES = {"xaxis_title": "false positive rate (good parts flagged)", "yaxis_title": "true positive rate (defects caught)"}


def _roc_figure(curves: dict[str, RocCurve], colours: dict[str, str], suffix: str = "") -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"}, name="chance"))
    for name, curve in curves.items():
        fig.add_trace(go.Scatter(x=curve.fpr, y=curve.tpr, mode="lines", name=f"{name}{suffix}",
                                 line={"color": colours.get(name)}))
    fig.update_layout(**AXES, height=420, margin={"t": 50}, xaxis_range=[0, 1.01], yaxis_range=[0, 1.02],
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0})
    return fig


def _histogram(kinds: list[str], scores: list[float], threshold: float | None) -> go.Figure:
    fig = go.Figure()
    for kind, colour in KIND_COLOURS.items():
        vals = [s for k, s in zip(kinds, scores) if k == kind]
        if vals:
            fig.add_trace(go.Histogram(x=vals, name=kind, opacity=0.6, nbinsx=30, marker_color=colour))
    if threshold is not None:
        fig.add_vline(x=threshold, line_dash="dash", annotation_text="threshold")
    fig.update_layout(barmode="overlay", xaxis_title="image score", yaxis_title="images", height=320, margin={"t": 30})
    return fig


def _auroc_table(ws: Workspace, method: str) -> pd.DataFrame:
    rows = [{"method": r["method"], "category": r["category"], **{k: pct(r[k]) for k in AUROC_KEYS}} for r in auroc_rows(ws, method)]
    return pd.DataFrame(rows)


def _branch_section(ws: Workspace, category: str, method: str, kinds: list[str]) -> None:
    """Per-branch ROC curves (one chart per defect kind) and AUROC, for methods that report branch scores."""
    branch_kinds, branches = load_branch_scores(ws, category, method)
    if not branches or sorted(branch_kinds) != sorted(kinds):
        return
    st.subheader("Per branch")
    st.caption("What each branch of the detector catches on its own; the final score fuses them.")
    curves = branch_rocs(branch_kinds, branches)
    for column, (kind, by_branch) in zip(st.columns(max(1, len(curves))), curves.items()):
        with column:
            st.markdown(f"**{kind} vs good**")
            st.plotly_chart(_roc_figure(by_branch, {}), key=f"branch_roc_{kind}")
    table = branch_auroc_table(branch_kinds, branches)
    st.dataframe(pd.DataFrame([{"branch": b, **{k: pct(v.get(k)) for k in AUROC_KEYS}} for b, v in table.items()]),
                 hide_index=True, key="branch_auroc_table")


def _subtype_section(ws: Workspace, category: str, method: str) -> None:
    """Image AUROC per anomaly type (synthetic data names them), weakest first, per branch too."""
    table = ((ws.model_record(category, method).metrics or {}).get("subtype_auroc")) or {}
    if not table:
        return
    st.subheader("Per anomaly type")
    st.caption("Each defect type of the synthetic data against the good test images, weakest first: "
               "a low row is a defect this detector misses, even when the kind's AUROC looks fine.")
    rows = [{"anomaly type": name, "kind": row["kind"], "images": row["n"], "AUROC": pct(row["auroc"]),
             **{branch: pct(value) for branch, value in row.get("branches", {}).items()}} for name, row in weakest_first(table)]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="subtype_auroc_table")


def _threshold_section(ws: Workspace, category: str, method: str, test_rows: list[ScoreRow]) -> None:
    val = [r.score for r in ws.scores(category, method, split="validation")]
    if not val:
        st.info("No validation scores: rebuild the detector on the Train page.")
        return
    current = (ws.get_setting(FLAGGED_SETTING, {}, category=category) or {}).get(method, 0)
    n = st.slider(f"Good validation parts the threshold may flag (of {len(val)})", 0, len(val), int(current), key="flagged_slider")
    if n != current:
        store_threshold(ws, category, method, val, flagged=n)
    summary = threshold_summary(ws, category, method, test_rows)
    if summary is None:
        return
    st.markdown(f"**Threshold {summary.value:.3f}:** {summary.sentence()}.")
    flagged, missed = st.columns(2)
    flagged.metric("Good validation parts flagged", f"{summary.flagged_good} of {summary.n_good}")
    missed.metric("Miss rate on labelled bad parts", "n/a" if summary.miss_rate is None else f"{summary.miss_rate:.0%}",
                  help="labelled bad test images scoring at or below the threshold")
    st.caption("Saved in the workspace; Inspect and `predict` use it.")


def _calibration_section(ws: Workspace, category: str, method: str) -> None:
    """Few-shot calibration: fit fusion weights on the images marked bad, compare, apply or revert."""
    st.subheader("Few-shot calibration")
    try:
        marked = marked_bad_samples(ws, category)
    except DataError as err:
        st.error(str(err))
        return
    st.caption(f"{len(marked)} image(s) marked bad (mark them on the Inspect page). With at least "
               f"{CalibrationSettings().min_marked}, the branch weights of the fused score and a threshold are fitted on "
               "them and the good validation images, checked by leave-one-out; with fewer, equal weights stay.")
    if st.button("Fit fusion weights on the marked images", key="run_calibration", disabled=not marked):
        try:
            calibrate_method(ws, category, method, progress=StreamlitProgress())
        except (FileNotFoundError, ValueError) as err:
            st.error(str(err))
    calibration = load_calibration(ws, category, method)
    if calibration is None:
        return
    st.markdown("\n".join(f"- {line.strip()}" for line in calibration.summary_lines()))
    applied = calibration_applied(ws, category, method)
    label = ("Score with the calibrated weights and threshold" if calibration.mode == CALIBRATED
             else "Use the proposed threshold (equal weights)")
    use = st.toggle(label, value=applied, key="use_calibration", disabled=calibration.threshold is None)
    if use != applied:
        apply_calibration(ws, category, method, on=use)
        st.rerun()
    _fusion_comparison(ws, category, method)


def _fusion_comparison(ws: Workspace, category: str, method: str) -> None:
    comparison = ((ws.model_record(category, method).metrics or {}).get("fusion_comparison"))
    if not comparison:
        st.caption("Re-evaluate to compare both fusions on the test images that were not marked.")
        return
    rows = [{"fusion": name, **{k: pct(comparison[name].get(k)) for k in AUROC_KEYS}} for name in ("equal", "calibrated")]
    st.markdown(f"**Image AUROC (%) of both fusions** on the test images not used for calibration "
                f"({comparison['n_marked']} marked image(s) left out; scoring now: {comparison['active']} weights)")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="fusion_comparison")


def _report_bytes(ws: Workspace, category: str, method: str) -> Callable[[], bytes]:
    """Deferred: built when the button is clicked; a copy is kept in the workspace's reports/ folder."""

    def build() -> bytes:
        path = write_report(Workspace.open(ws.path), category, method)
        return path.read_bytes()

    return build


def _report_section(ws: Workspace, category: str, method: str) -> None:
    st.subheader("Report")
    st.download_button(
        "Download the HTML report", _report_bytes(ws, category, method), file_name=f"{category}_{method}_report.html",
        mime="text/html", key="download_report", icon=":material/download:", on_click="ignore",
    )
    st.caption(f"One self-contained file (opens offline): data counts, AUROC table, ROC curves, threshold and the "
               f"worst images with heat maps. A copy is kept in `reports/` of the workspace. Command line: "
               f"`python -m pipeline report --workspace {ws.path} --category {category} --method {method} --out report.html`")


def _run_evaluation(ws: Workspace, category: str, method: str) -> None:
    progress = StreamlitProgress()
    try:
        evaluate_method(ws, category, method, progress=progress)
    except (FileNotFoundError, ValueError) as err:
        st.error(str(err))
    finally:
        progress.done()


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
        _run_evaluation(ws, category, method)
        rows = ws.scores(category, method, split="test")
    if not rows:
        st.info("Not evaluated yet: click the button above to score the test images.")
        return
    kinds, scores = [r.kind for r in rows], [r.score for r in rows]
    left, right = st.columns(2)
    with left:
        st.subheader("ROC curves per defect kind")
        st.plotly_chart(_roc_figure(kind_rocs(kinds, scores), KIND_COLOURS, " vs good"), key="roc_chart")
    with right:
        st.subheader("Image AUROC (%)")
        st.dataframe(_auroc_table(ws, method), hide_index=True, key="auroc_table")
        st.caption(REFERENCE_NOTE)
    _branch_section(ws, category, method, kinds)
    _subtype_section(ws, category, method)
    st.subheader("Threshold")
    _threshold_section(ws, category, method, rows)
    st.plotly_chart(_histogram(kinds, scores, ws.get_threshold(category, method)), key="score_histogram")
    _calibration_section(ws, category, method)
    _report_section(ws, category, method)


ensure_frame()
evaluate_page()
