"""Inspect: one image at a time, worst first: the image beside its final heat map, every branch's map
on demand, score and verdict at the current threshold with how sure it is (borderline verdicts
marked, and listed alone for a human review), the sentences saying what deviates, and the user's
own label for the image (few-shot calibration). "Images from: new photos" checks photos the model
has not seen, uploaded or taken with the camera (``app.check_photo``), with the same numbers as
``python -m pipeline predict``.

Every map is drawn at the image's own resolution; predictions and pictures are cached per model
version (``app.loaders``), so moving through the list redraws only images not seen yet.
"""

from __future__ import annotations

import streamlit as st

from app import loaders
from app import prediction_view as view
from app.check_photo import check_photos
from app.navigation import ensure_frame
from app.state import require_category, require_workspace, select_method
from pipeline.data.samples import DataError, Sample
from pipeline.evaluation.verdict import BORDERLINE_SETTING, Verdict, borderline_within, verdict_scale
from pipeline.methods import get_method
from pipeline.methods.base import BranchMap, Prediction
from pipeline.metrics.colour_scale import workspace_display_range
from pipeline.workspace import IMAGE_LABELS, Workspace

PICK_KEY = "inspect_pick"
SPLITS_SHOWN = ("test", "validation", "train")
# The "Images from" choice that checks photos the model has not seen (app.check_photo); a comment, not a
# docstring: Streamlit would draw a bare string on the page.
NEW_PHOTOS = "new photos"


def _branch_maps(method: str) -> dict[str, BranchMap]:
    """How each branch map a method's predictions may carry is shown, in display order (its spec's)."""
    return {branch.name: branch for branch in get_method(method).branch_maps}


# --- the list ------------------------------------------------------------------------------

def _ordered_samples(ws: Workspace, category: str, method: str, split: str) -> tuple[list[Sample], dict[str, float]]:
    """Samples of a split, worst first by stored score; unscored ones after, in file order."""
    data = loaders.category_data(ws, category)
    samples = data.select(split)
    scores = {row.image_key: row.score for row in ws.scores(category, method, split=split)}
    samples.sort(key=lambda s: (s.key not in scores, -scores.get(s.key, 0.0), s.key))
    return samples, scores


def _step(delta: int, n: int) -> None:
    st.session_state[PICK_KEY] = min(max(st.session_state.get(PICK_KEY, 0) + delta, 0), n - 1)


def _navigation(samples: list[Sample], scores: dict[str, float], verdicts: dict[str, Verdict]) -> Sample:
    n = len(samples)
    if st.session_state.get(PICK_KEY, 0) >= n:
        st.session_state[PICK_KEY] = 0

    def label(i: int) -> str:
        s = samples[i]
        score = f"{scores[s.key]:.3f}" if s.key in scores else "not scored"
        flag = "⚠ " if s.key in verdicts and verdicts[s.key].borderline else ""
        return f"{flag}#{i + 1} · {s.kind} · {s.path.name} · {score}"

    prev_col, pick_col, next_col = st.columns([1, 6, 1], vertical_alignment="bottom")
    prev_col.button("◀ Previous", key="prev_image", on_click=_step, args=(-1, n), shortcut="Left",
                    help="Previous image in the list (← key)")
    next_col.button("Next ▶", key="next_image", on_click=_step, args=(1, n), shortcut="Right",
                    help="Next image in the list (→ key)")
    picked = pick_col.selectbox("Image (worst first)", range(n), format_func=label, key=PICK_KEY,
                                help="Type to search by name; ← and → move through the list")
    return samples[picked]


# --- one image -----------------------------------------------------------------------------

def _judge_all(ws: Workspace, category: str, method: str, scores: dict[str, float]) -> dict[str, Verdict]:
    """Each scored image's verdict with its margin; empty without a threshold or validation scores."""
    scale = verdict_scale(ws, category, method)
    verdicts = {key: scale.judge(score) for key, score in scores.items()}
    return {key: verdict for key, verdict in verdicts.items() if verdict is not None}


def _borderline_band(ws: Workspace, category: str, method: str) -> None:
    current = borderline_within(ws, category, method)
    band = st.number_input(
        "Borderline band (± spreads of the good scores)", 0.0, 5.0, current, 0.1, key="borderline_band",
        help="A verdict closer than this to the threshold is marked borderline for a human look; one spread is "
             "the robust standard deviation of the good validation scores")
    if band != current:
        choices = dict(ws.get_setting(BORDERLINE_SETTING, {}, category=category) or {})
        choices[method] = float(band)
        ws.set_setting(BORDERLINE_SETTING, choices, category=category)


def _image_label(ws: Workspace, category: str, sample: Sample) -> None:
    current = ws.image_labels(category).get(sample.key)
    options = ["unlabelled", *IMAGE_LABELS]
    picked = st.segmented_control(
        "Your label for this image", options, default=current or "unlabelled", key=f"label_{sample.key}",
        help="Images you mark bad (or logical/structural) feed the few-shot calibration on the Evaluate page "
             "and become anomaly keys of the instant detector at its next fit; they are left out of evaluation.")
    picked = picked or "unlabelled"
    if picked != (current or "unlabelled"):
        ws.set_image_label(category, sample.key, None if picked == "unlabelled" else picked)


def _branch_toggles(pred: Prediction, method: str) -> list[str]:
    branches = _branch_maps(method)
    names = [name for name in branches if name in pred.branch_maps]
    if not names:
        return []
    st.markdown("**Branch maps**")
    cols = st.columns(len(names))
    return [name for col, name in zip(cols, names)
            if col.toggle(branches[name].label, key=f"branch_{name}", help=branches[name].meaning)]


def _segmentation_legend(ws: Workspace, category: str, method: str) -> str:
    names = loaders.class_names(ws, category, method)
    return ", ".join(f"{k} = {v}" for k, v in sorted(names.items()) if k > 0)


def _branch_pictures(ws: Workspace, category: str, method: str, sample: Sample, shown: list[str],
                     opacity: float, show_gt: bool) -> None:
    n_classes = len(loaders.class_names(ws, category, method)) if "segmentation" in shown else 0
    branches = _branch_maps(method)
    for start in range(0, len(shown), 2):
        for col, name in zip(st.columns(2), shown[start:start + 2]):
            branch = branches[name]
            picture = loaders.map_picture(ws, category, method, sample.path, name, branch.value_range, opacity,
                                          _mask_paths(sample), show_gt, n_classes)
            caption = f"{branch.label}: {branch.meaning}"
            if name == "segmentation" and (legend := _segmentation_legend(ws, category, method)):
                caption += f" ({legend})"
            col.image(picture, caption=caption)


def _mask_paths(sample: Sample) -> tuple[str, ...]:
    return tuple(str(p) for p in sample.mask_paths)


def _show(ws: Workspace, category: str, method: str, sample: Sample) -> None:
    pred = loaders.full_prediction(ws, category, method, sample.path)
    if pred is None:
        return
    rgb = loaders.image(str(sample.path))
    display = workspace_display_range(ws, category, method,
                                      fallback=(float(pred.anomaly_map.min()), float(pred.anomaly_map.max())))
    view.verdict_metrics(verdict_scale(ws, category, method), pred.score, note=f"Ground truth: {sample.kind}.")
    _image_label(ws, category, sample)
    controls = st.columns(3)
    opacity = controls[0].slider("Heat-map opacity", 0.0, 1.0, 0.5, 0.05, key="opacity")
    show_above = controls[2].toggle("Outline what is above the threshold", value=True, key="show_above",
                                    help="Green: where the final map exceeds the threshold's level (the red tick)")
    show_gt = controls[1].toggle("Show the ground-truth outline", value=bool(sample.mask_paths), key="show_gt",
                                 disabled=not sample.mask_paths,
                                 help=None if sample.mask_paths else "This image has no ground-truth mask")
    masks = _mask_paths(sample)
    shown = _branch_toggles(pred, method)
    view.image_and_map(loaders.base_picture(str(sample.path), masks, show_gt),
                       loaders.map_picture(ws, category, method, sample.path, "final", display, opacity, masks,
                                           show_gt, above=show_above),
                       f"{sample.key} ({rgb.shape[1]}×{rgb.shape[0]} px)", display, show_above)
    _branch_pictures(ws, category, method, sample, shown, opacity, show_gt)
    view.explanations(pred)
    view.branch_scores(pred)
    view.heat_map_alone(pred, rgb.shape[:2], display)


def _workspace_images(ws: Workspace, category: str, method: str, split: str) -> None:
    """The split's images worst first, the borderline filter, and the picked image in full."""
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
    verdicts = _judge_all(ws, category, method, scores)
    review, band = st.columns([1, 2], vertical_alignment="bottom")
    with band:
        _borderline_band(ws, category, method)
    n_borderline = sum(v.borderline for v in verdicts.values())
    if review.toggle(f"Only borderline verdicts ({n_borderline})", key="only_borderline", disabled=not n_borderline):
        samples = [s for s in samples if s.key in verdicts and verdicts[s.key].borderline]
    _show(ws, category, method, _navigation(samples, scores, verdicts))


def inspect_page() -> None:
    st.title("Inspect")
    ws = require_workspace()
    category = require_category(ws, key="inspect_category")
    method = select_method(key="inspect_method")
    record = ws.model_record(category, method)
    if record is None:
        st.info(f"No {method} model for **{category}** yet. Build it on the Train page (seconds for the instant detector).")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        return
    settings = record.settings or {}
    st.caption(f"Model built {record.created_at} (profile {settings.get('profile')}, device {settings.get('device')}, "
               f"seed {settings.get('seed')}).")
    split = st.radio("Images from", [*SPLITS_SHOWN, NEW_PHOTOS], horizontal=True, key="inspect_split",
                     help=f"'{NEW_PHOTOS}': upload photos (or take one) and check them with this model")
    if split == NEW_PHOTOS:
        check_photos(ws, category, method)
    else:
        _workspace_images(ws, category, method, split)
    st.page_link("pages/evaluate.py", label="Next: ROC curves, AUROC and the threshold", icon=":material/arrow_forward:")


ensure_frame()
inspect_page()
