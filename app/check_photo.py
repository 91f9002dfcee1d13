"""Inspect's "Check new photos": upload photos (or take one with the camera) and read, for the
selected model, the verdict at the saved threshold with its margin, the heat map over the photo,
the sentences and the branch table: the numbers ``python -m pipeline predict`` gives for the same
file (both go through ``pipeline.evaluation.check``). A checked photo can be kept in the workspace
with a label (``check.keep_checked``: beside the category's records, never in its data folder).
"""

from __future__ import annotations

import hashlib

import streamlit as st

from app import loaders
from app import prediction_view as view
from pipeline.data.images import IMAGE_SUFFIXES, ImageReadError
from pipeline.evaluation.check import PhotoCheck, checked_dir, checked_file_name, checked_key, keep_checked
from pipeline.evaluation.verdict import VerdictScale, verdict_scale
from pipeline.metrics.colour_scale import heat_overlay, workspace_display_range
from pipeline.workspace import IMAGE_LABELS, Workspace

UPLOADER_LABEL = "Check new photos"
"""The uploader's label (browser tests find it by this text)."""
NO_VERDICT = "not set (no threshold)"


def verdict_text(check: PhotoCheck) -> str:
    """The stable line a photo's result starts with: ``Verdict for x.png: ANOMALOUS``."""
    return f"Verdict for {check.name}: {NO_VERDICT if check.verdict is None else check.verdict.label}"


def _photos() -> list[tuple[str, bytes]]:
    """(name, bytes) of every uploaded photo, then the camera shot when the camera is on."""
    uploads = st.file_uploader(
        UPLOADER_LABEL, type=sorted(s.lstrip(".") for s in IMAGE_SUFFIXES), accept_multiple_files=True,
        key="check_uploads", help="Photos the model has not seen: each gets the verdict at the saved threshold, "
                                  "its heat map and the sentences, as `python -m pipeline predict` would give")
    photos = [(upload.name, upload.getvalue()) for upload in uploads or []]
    if st.toggle("Take a photo with the camera", key="check_camera_on"):
        shot = st.camera_input("Photo to check", key="check_camera")
        if shot is not None:
            photos.append((shot.name or "camera.jpg", shot.getvalue()))
    return photos


def _keep(ws: Workspace, category: str, check: PhotoCheck, data: bytes, key: str) -> None:
    """Label the photo and add it to the workspace (a button, so nothing is written by accident)."""
    path = checked_dir(ws, category) / checked_file_name(check.name, data)
    current = ws.image_labels(category).get(checked_key(path))
    kept = path.is_file()
    label_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
    label = label_col.segmented_control(
        "Label for this photo", ["unlabelled", *IMAGE_LABELS], default=current or "unlabelled", key=f"keep_label_{key}",
        help="Kept photos are stored under the category's 'checked' folder of the workspace with your label; "
             "the category's data folder (and so its evaluation) is left as it is")
    if button_col.button("Update in the workspace" if kept else "Add to the workspace", key=f"keep_{key}"):
        path = keep_checked(ws, category, check, data, None if label in (None, "unlabelled") else label)
        st.success(f"Kept as {ws.relative(path)} ({label or 'unlabelled'}).")
    elif kept:
        st.caption(f"In the workspace as {ws.relative(path)} ({current or 'unlabelled'}).")


def _show(ws: Workspace, category: str, method: str, name: str, data: bytes, scale: VerdictScale,
          opacity: float, above: bool) -> None:
    """One photo's result, or the one error saying why it cannot be checked."""
    try:
        check = loaders.photo_check(ws, category, method, data, name, scale)
    except ImageReadError as err:
        st.error(f"Cannot check this photo: {err}")
        return
    if check is None:
        return
    key = hashlib.sha256(data).hexdigest()[:12]
    pred = check.prediction
    display = workspace_display_range(ws, category, method,
                                      fallback=(float(pred.anomaly_map.min()), float(pred.anomaly_map.max())))
    st.markdown(f"#### {verdict_text(check)}")
    view.verdict_metrics(scale, check.score, note=f"A new photo ({name}).")
    view.image_and_map(check.rgb, heat_overlay(check.rgb, pred.anomaly_map, *display, opacity, above, check.boxes),
                       f"{name} ({check.rgb.shape[1]}×{check.rgb.shape[0]} px)", display, above)
    view.explanations(pred)
    view.branch_scores(pred, key=f"branch_scores_{key}")
    _keep(ws, category, check, data, key)


def check_photos(ws: Workspace, category: str, method: str) -> None:
    """The uploader (and camera) and a result per photo."""
    photos = _photos()
    if not photos:
        st.caption("Upload photos (PNG, JPEG, BMP or TIFF) or take one with the camera to check them with the "
                   f"**{method}** model of **{category}**.")
        return
    controls = st.columns(2)
    opacity = controls[0].slider("Heat-map opacity", 0.0, 1.0, 0.5, 0.05, key="check_opacity")
    above = controls[1].toggle("Outline what is above the threshold", value=True, key="check_above",
                               help="Green: where the final map exceeds the threshold's level (the red tick)")
    scale = verdict_scale(ws, category, method)
    for name, data in photos:
        st.divider()
        _show(ws, category, method, name, data, scale, opacity, above)
