"""Every cached loader of the app, in one place (models via cache_resource, data via cache_data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st
import torch

from pipeline.data.discover import load_category
from pipeline.data.images import load_rgb
from pipeline.data.samples import CategoryData
from pipeline.methods.base import Detector
from pipeline.methods.runner import load_detector
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


@st.cache_data(show_spinner="Scoring the image…", max_entries=256)
def _prediction(workspace: str, category: str, method: str, created_at: str, path: str) -> tuple[float, np.ndarray, tuple[str, ...]]:
    det = _detector(workspace, category, method, created_at)
    pred = det.predict([image(path)])[0]
    return pred.score, pred.anomaly_map, pred.explanations


def prediction(ws: Workspace, category: str, method: str, path: Path) -> tuple[float, np.ndarray, tuple[str, ...]] | None:
    """(score, anomaly map, explanations) of one image, cached per model version; None when never fitted."""
    record = ws.model_record(category, method)
    if record is None:
        return None
    return _prediction(str(ws.path), category, method, record.created_at, str(path))


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
