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


def duration(seconds: float | None) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``; ``"unknown"`` for None."""
    if seconds is None:
        return "unknown"
    total = max(0, int(round(float(seconds))))
    if total < 60:
        return f"{total} s"
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    return f"{total // 3600} h {total % 3600 // 60:02d} min"
