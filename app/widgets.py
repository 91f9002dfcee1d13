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


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"
