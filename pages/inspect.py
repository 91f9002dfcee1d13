"""Inspect: one image at a time, worst first: heat map, score and verdict at the current threshold."""

from __future__ import annotations

import streamlit as st

from app import loaders
from app.state import require_category, require_workspace, select_method
from pipeline.data.images import load_mask
from pipeline.data.samples import DataError, Sample
from pipeline.evaluation.heatmap import colorize, draw_outline, overlay
from pipeline.models.preprocess import resize_map
from pipeline.workspace import Workspace

PICK_KEY = "inspect_pick"


def _ordered_samples(ws: Workspace, category: str, method: str, split: str) -> tuple[list[Sample], dict[str, float]]:
    """Samples of a split, worst first by stored score; unscored ones after, in file order."""
    data = loaders.category_data(ws, category)
    samples = data.select(split)
    scores = {row.image_key: row.score for row in ws.scores(category, method, split=split)}
    samples.sort(key=lambda s: (s.key not in scores, -scores.get(s.key, 0.0), s.key))
    return samples, scores


def _step(delta: int, n: int) -> None:
    st.session_state[PICK_KEY] = min(max(st.session_state.get(PICK_KEY, 0) + delta, 0), n - 1)


def _navigation(samples: list[Sample], scores: dict[str, float]) -> Sample:
    n = len(samples)
    if st.session_state.get(PICK_KEY, 0) >= n:
        st.session_state[PICK_KEY] = 0

    def label(i: int) -> str:
        s = samples[i]
        score = f"{scores[s.key]:.3f}" if s.key in scores else "not scored"
        return f"#{i + 1} · {s.kind} · {s.path.name} · {score}"

    prev_col, pick_col, next_col = st.columns([1, 6, 1], vertical_alignment="bottom")
    prev_col.button("◀ Previous", key="prev_image", on_click=_step, args=(-1, n))
    next_col.button("Next ▶", key="next_image", on_click=_step, args=(1, n))
    picked = pick_col.selectbox("Image (worst first)", range(n), format_func=label, key=PICK_KEY)
    return samples[picked]


def _show(ws: Workspace, category: str, method: str, sample: Sample) -> None:
    result = loaders.prediction(ws, category, method, sample.path)
    if result is None:
        return
    score, amap, explanations = result
    rgb = loaders.image(str(sample.path))
    record = ws.model_record(category, method)
    low, high = (record.metrics or {}).get("display_range", [float(amap.min()), float(amap.max())])
    threshold = ws.get_threshold(category, method)
    c1, c2, c3 = st.columns(3)
    c1.metric("Score", f"{score:.3f}")
    c2.metric("Threshold", "not set" if threshold is None else f"{threshold:.3f}")
    verdict = "—" if threshold is None else ("ANOMALOUS" if score > threshold else "good")
    c3.metric("Verdict", verdict, help=f"Ground truth: {sample.kind}")
    opacity = st.slider("Heat-map opacity", 0.0, 1.0, 0.5, 0.05, key="opacity")
    show_gt = st.toggle("Show the ground-truth outline", value=bool(sample.mask_paths), key="show_gt", disabled=not sample.mask_paths)
    shown = rgb
    if show_gt and sample.mask_paths:
        shown = draw_outline(rgb, load_mask(sample.mask_paths, rgb.shape[:2]))
    left, right = st.columns(2)
    left.image(shown, caption=f"{sample.key} ({rgb.shape[1]}×{rgb.shape[0]} px)")
    right.image(overlay(shown, amap, low, high, opacity), caption="Final anomaly map over the image")
    if explanations:
        st.markdown("**What deviates from the good parts** (most unusual first):\n"
                    + "\n".join(f"- {sentence}" for sentence in explanations[:5]))
    with st.expander("Heat map alone"):
        st.image(colorize(resize_map(amap, rgb.shape[:2]), low, high), caption="dark = like the good parts, bright = unlike")


def inspect_page() -> None:
    st.title("Inspect")
    ws = require_workspace()
    category = require_category(ws, key="inspect_category")
    method = select_method(key="inspect_method")
    if ws.model_record(category, method) is None:
        st.info(f"No {method} model for **{category}** yet. Build it on the Train page (seconds for the instant detector).")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        return
    split = st.radio("Images from", ["test", "validation", "train"], horizontal=True, key="inspect_split")
    try:
        samples, scores = _ordered_samples(ws, category, method, split)
    except DataError as err:
        st.error(str(err))
        return
    if not samples:
        st.info(f"No {split} images in this category.")
        return
    if not scores:
        st.caption("Not evaluated yet: the list is in file order. Evaluate on the Train page to sort it worst first.")
    _show(ws, category, method, _navigation(samples, scores))
    st.page_link("pages/evaluate.py", label="Next: ROC curves, AUROC and the threshold", icon=":material/arrow_forward:")


inspect_page()
