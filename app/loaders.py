"""Every cached loader of the app, in one place (models via cache_resource, data via cache_data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st
import torch

from pipeline.data.discover import load_category
from pipeline.data.images import load_mask, load_rgb
from pipeline.data.samples import CategoryData
from pipeline.device import describe_device
from pipeline.evaluation.check import PhotoCheck, check_bytes
from pipeline.evaluation.verdict import VerdictScale
from pipeline.methods.base import Detector, Prediction
from pipeline.methods.runner import load_detector
from pipeline.metrics.colour_scale import heat_overlay
from pipeline.metrics.heatmap import draw_outline
from pipeline.models.backbones import build_classifier
from pipeline.pseudolabels import edits, render
from pipeline.pseudolabels import store as pl_store
from pipeline.workspace import Workspace


def _folder_stamp(root: Path) -> float:
    """Changes when files are added to or removed from the category's folders."""
    if not root.is_dir():
        return 0.0  # moved or deleted: load_category then says so with a DataError
    return max((p.stat().st_mtime for p in root.rglob("*") if p.is_dir()), default=root.stat().st_mtime)


@st.cache_data(show_spinner="Reading the image folders…", max_entries=16)
def _category(root: str, stamp: float) -> CategoryData:
    return load_category(Path(root))


def category_data(ws: Workspace, category: str) -> CategoryData:
    root = Path(ws.category(category).data_root)
    return _category(str(root), _folder_stamp(root))


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _detector(workspace: str, category: str, method: str, created_at: str) -> Detector:
    return load_detector(Workspace.open(workspace), category, method, "auto")


def detector(ws: Workspace, category: str, method: str) -> Detector | None:
    """The fitted detector, reloaded whenever the model is refitted; None when never fitted."""
    record = ws.model_record(category, method)
    if record is None:
        return None
    return _detector(str(ws.path), category, method, record.created_at)


@st.cache_data(show_spinner=False, max_entries=512)
def image(path: str) -> np.ndarray:
    return load_rgb(Path(path))


@st.cache_data(show_spinner=False, max_entries=2048)
def thumbnail(path: str, side: int = 160) -> np.ndarray:
    rgb = load_rgb(Path(path))
    step = max(1, max(rgb.shape[:2]) // side)
    return np.ascontiguousarray(rgb[::step, ::step])


@st.cache_data(show_spinner="Scoring the image…", max_entries=320)
def _full_prediction(workspace: str, category: str, method: str, created_at: str, path: str) -> Prediction:
    """One image's whole prediction (score, map, branch maps and scores, sentences), per model version."""
    return _detector(workspace, category, method, created_at).predict([image(path)])[0]


def full_prediction(ws: Workspace, category: str, method: str, path: Path) -> Prediction | None:
    """The cached ``Prediction`` of one image; None when the method was never fitted."""
    record = ws.model_record(category, method)
    if record is None:
        return None
    return _full_prediction(str(ws.path), category, method, record.created_at, str(path))


def prediction(ws: Workspace, category: str, method: str, path: Path) -> tuple[float, np.ndarray, tuple[str, ...]] | None:
    """(score, anomaly map, explanations) of one image, cached per model version; None when never fitted."""
    pred = full_prediction(ws, category, method, path)
    return None if pred is None else (pred.score, pred.anomaly_map, pred.explanations)


def class_names(ws: Workspace, category: str, method: str) -> dict[int, str]:
    """Part-class names of a method's segmentation branch (histogram, AeCSAD, CSAD); {} for others."""
    det = detector(ws, category, method)
    names = getattr(det, "class_names", None) or getattr(getattr(det, "hist", None), "class_names", None)
    return dict(names or {})


# --- Inspect pictures ------------------------------------------------------------------------
# Drawn at the image's own resolution and cached per (model version, image, settings), so moving
# through the list or the opacity slider back and forth redraws nothing already seen.

@st.cache_data(show_spinner=False, max_entries=64)
def _mask(mask_paths: tuple[str, ...], shape: tuple[int, int]) -> np.ndarray:
    return load_mask([Path(p) for p in mask_paths], shape)


@st.cache_data(show_spinner=False, max_entries=64)
def base_picture(path: str, mask_paths: tuple[str, ...], outline: bool) -> np.ndarray:
    """The image, with the ground-truth outline drawn when asked and a mask exists."""
    rgb = image(path)
    return draw_outline(rgb, _mask(mask_paths, rgb.shape[:2])) if outline and mask_paths else rgb


@st.cache_data(show_spinner=False, max_entries=256)
def _map_picture(workspace: str, category: str, method: str, created_at: str, path: str, branch: str,
                 value_range: tuple[float, float] | None, opacity: float, mask_paths: tuple[str, ...],
                 outline: bool, n_classes: int, above: bool) -> np.ndarray:
    pred = _full_prediction(workspace, category, method, created_at, path)
    values = pred.anomaly_map if branch == "final" else pred.branch_maps[branch]
    base = base_picture(path, mask_paths, outline)
    if branch == "segmentation":
        return label_overlay(base, values, n_classes, opacity)
    low, high = value_range if value_range is not None else (float(values.min()), float(values.max()))
    boxes = tuple(r.box for r in pred.regions) if branch == "final" else ()
    return heat_overlay(base, values, low, high, opacity, above, boxes)


def map_picture(ws: Workspace, category: str, method: str, path: Path, branch: str,
                value_range: tuple[float, float] | None, opacity: float, mask_paths: tuple[str, ...] = (),
                outline: bool = False, n_classes: int = 0, above: bool = False) -> np.ndarray | None:
    """The final map (``branch="final"``) or one branch map over the image at its own resolution.

    Heat maps are coloured over ``value_range`` (None: this map's own min..max); the segmentation
    branch is drawn as coloured part classes. ``above``: the regions above the threshold's level
    of ``value_range`` outlined (``colour_scale``). None when the method was never fitted.
    """
    record = ws.model_record(category, method)
    if record is None:
        return None
    return _map_picture(str(ws.path), category, method, record.created_at, str(path), branch,
                        value_range, float(opacity), tuple(mask_paths), bool(outline), int(n_classes), bool(above))


@st.cache_data(show_spinner="Checking the photo…", max_entries=32)
def _photo_check(workspace: str, category: str, method: str, created_at: str, data: bytes, name: str,
                 threshold: float | None, spread: float | None, within: float) -> PhotoCheck:
    detector = _detector(workspace, category, method, created_at)
    return check_bytes(detector, data, name, VerdictScale(threshold, spread, within))


def photo_check(ws: Workspace, category: str, method: str, data: bytes, name: str,
                scale: VerdictScale) -> PhotoCheck | None:
    """A new photo checked by the fitted model (``pipeline.evaluation.check``), cached per model
    version, photo and verdict scale so other widgets rerun without scoring it again; None when the
    method was never fitted. Raises ``ImageReadError`` for a file that is no usable image."""
    record = ws.model_record(category, method)
    if record is None:
        return None
    return _photo_check(str(ws.path), category, method, record.created_at, data, name,
                        scale.threshold, scale.spread, scale.within)


def label_overlay(image_rgb: np.ndarray, labels: np.ndarray, n_classes: int, opacity: float) -> np.ndarray:
    """Part classes (a label map at any size, as ints or floats) coloured over the image; background kept."""
    full = render.resize_nearest(np.rint(labels).astype(np.int64).clip(0), image_rgb.shape[:2])
    colours = render.palette(max(n_classes, int(full.max(initial=0))))[full].astype(np.float32)
    out = image_rgb.astype(np.float32)
    where = full > 0
    out[where] = (1 - opacity) * out[where] + opacity * colours[where]
    return np.round(out).astype(np.uint8)


# --- Train -----------------------------------------------------------------------------------

@st.cache_resource(show_spinner=False)
def cuda_devices() -> tuple[str, ...]:
    """``describe_device`` of every CUDA device torch can use (empty without CUDA), asked once."""
    if not torch.cuda.is_available():
        return ()
    return tuple(describe_device(f"cuda:{i}") for i in range(torch.cuda.device_count()))


# --- pseudo-labels (Tags, Masks, Clusters) ---------------------------------------------------
# Keyed by the workspace path plus a version string of what the picture is drawn from, so an
# edit (new components, a rejection, a cluster edit) shows at once and unchanged ones stay cached.

@st.cache_resource(show_spinner="Loading the ImageNet classifier…", max_entries=2)
def classifier(device: str) -> torch.nn.Module:
    """The embedded EfficientNet-Lite0 classifier the ImageNet tagger asks."""
    return build_classifier(device=device)


@st.cache_data(show_spinner=False, max_entries=256)
def component_overlay(workspace: str, category: str, image_key: str, path: str, version: str,
                      rejected: tuple[int, ...]) -> np.ndarray | None:
    """The image with its effective components coloured and numbered (None: no components)."""
    components = edits.effective_components(Workspace.open(workspace), category, image_key)
    if components is None:
        return None
    return render.component_overlay(image(path), components.instances, set(rejected))


@st.cache_data(show_spinner=False, max_entries=4096)
def component_thumbnail(workspace: str, category: str, image_key: str, path: str, version: str,
                        component_id: int) -> np.ndarray | None:
    """A crop around one component (None when edits left it without pixels)."""
    components = edits.effective_components(Workspace.open(workspace), category, image_key)
    mask = None if components is None else components.instances == component_id
    if mask is None or not mask.any():
        return None
    return render.component_thumbnail(image(path), mask)


@st.cache_data(show_spinner=False, max_entries=64)
def label_map_pictures(workspace: str, category: str, image_key: str, path: str, stamp: float,
                       n_clusters: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(image coloured by cluster, the label map alone); ``stamp`` = the map file's mtime."""
    label_map = pl_store.load_label_map(Workspace.open(workspace), category, image_key)
    if label_map is None:
        return None
    return (render.label_map_overlay(image(path), label_map, n_clusters),
            render.label_map_colours(label_map, n_clusters))
