"""Every cached loader of the app, in one place (models via cache_resource, data via cache_data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from pipeline.data.discover import load_category
from pipeline.data.images import load_rgb
from pipeline.data.samples import CategoryData
from pipeline.methods.base import Detector
from pipeline.methods.runner import load_detector
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
def _prediction(workspace: str, category: str, method: str, created_at: str, path: str) -> tuple[float, np.ndarray]:
    det = _detector(workspace, category, method, created_at)
    pred = det.predict([image(path)])[0]
    return pred.score, pred.anomaly_map


def prediction(ws: Workspace, category: str, method: str, path: Path) -> tuple[float, np.ndarray] | None:
    """(score, anomaly map) of one image, cached per model version; None when never fitted."""
    record = ws.model_record(category, method)
    if record is None:
        return None
    return _prediction(str(ws.path), category, method, record.created_at, str(path))
