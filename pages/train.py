"""Train: build a detector for a category. Today: the instant detector, run in this session."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from app.state import require_category, require_workspace, select_method
from app.widgets import StreamlitProgress
from pipeline.device import DeviceError, describe_device, resolve_device
from pipeline.evaluation.evaluate import evaluate_method
from pipeline.methods import METHODS
from pipeline.methods.runner import fit_method
from pipeline.models.weights import MissingWeightsError


def _device_choice() -> str:
    cuda = torch.cuda.is_available()
    options = ["auto", "cpu"] + (["cuda"] if cuda else [])
    choice = st.selectbox("Device", options, key="train_device")
    try:
        st.caption(f"Runs on {describe_device(resolve_device(choice))}." + ("" if cuda else " No CUDA GPU found."))
    except DeviceError as err:
        st.error(str(err))
    return choice


def _fit(ws, category: str, method: str, profile: str, device: str, seed: int) -> None:
    progress = StreamlitProgress()
    try:
        summary = fit_method(ws, category, method, profile=profile, device=device, seed=seed, progress=progress)
        st.session_state["last_fit"] = (
            f"Built {METHODS[method].title} for **{category}** from {summary.n_train} good images in "
            f"{summary.seconds:.1f} s. The threshold flags {summary.flagged} of {summary.n_validation} "
            "good validation images."
        )
    except (MissingWeightsError, DeviceError, FileNotFoundError, ValueError) as err:
        st.error(str(err))
    finally:
        progress.done()


def _evaluate(ws, category: str, method: str, device: str) -> None:
    progress = StreamlitProgress()
    try:
        result = evaluate_method(ws, category, method, device=device, progress=progress)
        st.session_state["last_fit"] = f"Evaluated **{category}** on {sum(result.n.values())} test images."
    except (FileNotFoundError, ValueError) as err:
        st.error(str(err))
    finally:
        progress.done()


def _model_table(ws, category: str) -> None:
    rows = []
    for name in METHODS:
        record = ws.model_record(category, name)
        if record is None:
            continue
        metrics = record.metrics or {}
        auroc = metrics.get("auroc") or {}
        rows.append({
            "method": name, "built": record.created_at, "profile": record.settings.get("profile"),
            "fit seconds": round(metrics.get("seconds_fit", 0.0), 1),
            "AUROC logical": auroc.get("logical"), "AUROC structural": auroc.get("structural"),
        })
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="model_table")


def train_page() -> None:
    st.title("Train")
    ws = require_workspace()
    category = require_category(ws, key="train_category")
    method = select_method(key="train_method")
    st.caption(METHODS[method].summary)
    cols = st.columns(3)
    with cols[0]:
        profile = st.selectbox("Profile", ["quick", "paper"], key="train_profile", help="quick: CPU-friendly; paper: thesis settings")
    with cols[1]:
        device = _device_choice()
    with cols[2]:
        seed = int(st.number_input("Seed", 0, 2**31 - 1, 0, key="train_seed"))
    left, right = st.columns(2)
    if left.button("Build detector", type="primary", key="fit_button"):
        _fit(ws, category, method, profile, device, seed)
    if right.button("Evaluate on the test images", key="evaluate_button", disabled=ws.model_record(category, method) is None):
        _evaluate(ws, category, method, device)
    if "last_fit" in st.session_state:
        st.success(st.session_state["last_fit"])
    _model_table(ws, category)
    st.info(
        "Background training jobs (segmentation network and the attention LGST of AeCSAD) with live loss "
        "curves, cancel and resume arrive with the AeCSAD issues. The instant detector needs no training."
    )
    st.page_link("pages/inspect.py", label="Next: inspect heat maps", icon=":material/arrow_forward:")


train_page()
