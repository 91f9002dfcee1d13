"""Widgets several pages share."""

from __future__ import annotations

import streamlit as st


class StreamlitProgress:
    """``ProgressFn`` drawing one progress bar with the stage name."""

    def __init__(self) -> None:
        self._bar = st.progress(0.0, text="Starting…")

    def __call__(self, stage: str, done: int, total: int) -> None:
        fraction = min(1.0, done / total) if total else 0.0
        self._bar.progress(fraction, text=f"{stage}: {done}/{total}")

    def done(self) -> None:
        self._bar.empty()


def not_built_yet(what: str, issue_text: str) -> None:
    """The plain statement a page shows before its issue is built, with links to what works."""
    st.info(f"**{what} is not built yet.** {issue_text}")
    st.markdown("What works today:")
    st.page_link("pages/workspace_data.py", label="Workspace & data: open a workspace, import or generate data", icon=":material/folder_open:")
    st.page_link("pages/train.py", label="Train: build the instant detector (no training needed)", icon=":material/model_training:")
    st.page_link("pages/inspect.py", label="Inspect: heat maps, scores and verdicts", icon=":material/image_search:")
    st.page_link("pages/evaluate.py", label="Evaluate: ROC curves, AUROC and the threshold", icon=":material/monitoring:")


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"
