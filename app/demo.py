"""The demo workspace's banner on the first page: what the demo is and where to go next."""

from __future__ import annotations

import streamlit as st

from pipeline.demo import DEMO_METHOD, is_demo
from pipeline.workspace import Workspace

NEXT_STEPS = (
    ("pages/inspect.py", "Inspect", ":material/image_search:"),
    ("pages/evaluate.py", "Evaluate", ":material/monitoring:"),
    ("pages/tags.py", "Tags", ":material/sell:"),
    ("pages/masks.py", "Masks", ":material/layers:"),
    ("pages/clusters.py", "Clusters", ":material/bubble_chart:"),
    ("pages/train.py", "Train AeCSAD", ":material/model_training:"),
)
"""Page links under the banner, in the order a newcomer should follow them."""


def _fitted(ws: Workspace) -> list[str]:
    return [c.name for c in ws.categories() if ws.model_record(c.name, DEMO_METHOD) is not None]


def demo_banner(ws: Workspace | None) -> None:
    """One info box on the demo workspace (``python -m pipeline demo`` marks it); nothing elsewhere."""
    if ws is None or not is_demo(ws):
        return
    fitted = _fitted(ws)
    model = (f"the {DEMO_METHOD} detector is already fitted and evaluated on {', '.join(fitted)}" if fitted
             else f"no detector is fitted yet: fit the {DEMO_METHOD} detector on the Train page (seconds)")
    with st.container(border=True, key="demo_banner"):
        st.info(f"**This is the demo workspace**: synthetic parts with known rules and both defect kinds "
                f"(logical: a missing, extra or misplaced part; structural: cracks, scratches, stains); {model}. "
                "Start on Inspect (heat maps, worst image first), then Evaluate (ROC curves); then teach the "
                "parts (Tags → Masks → Clusters) and train AeCSAD on the Train page.", icon=":material/school:")
        for column, (page, label, icon) in zip(st.columns(len(NEXT_STEPS)), NEXT_STEPS):
            column.page_link(page, label=label, icon=icon)
