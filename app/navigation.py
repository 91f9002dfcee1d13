"""Page registry in workflow order (SPEC §8) and the app frame around every page.

Why every page ends with ``ensure_frame()``: the pages live in ``pages/`` next to the entry point,
and until ``st.navigation`` has run once in the server process Streamlit treats that folder as a
v1 multipage app. A first visit straight to a page's URL (``/inspect`` after a restart) then runs
the page file alone, under a sidebar of file names. ``ensure_frame`` notices that and runs the
entry point instead, which registers the sectioned navigation (for the whole process from then
on) and runs the page inside the frame.
"""

from __future__ import annotations

import threading
from pathlib import Path

import streamlit as st

from app.state import sidebar_workspace_status

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"

PAGES = {
    "Prepare": [
        ("workspace_data.py", "Workspace & data", ":material/folder_open:"),
        ("tags.py", "Tags", ":material/sell:"),
        ("masks.py", "Masks", ":material/layers:"),
        ("clusters.py", "Clusters", ":material/bubble_chart:"),
    ],
    "Train": [("train.py", "Train", ":material/model_training:")],
    "Review": [
        ("inspect.py", "Inspect", ":material/image_search:"),
        ("evaluate.py", "Evaluate", ":material/monitoring:"),
    ],
}


def build_pages() -> dict[str, list[st.Page]]:
    """``st.Page`` objects by section; the first page is the default."""
    return {
        section: [
            st.Page(PAGES_DIR / file, title=title, icon=icon, default=(section == "Prepare" and i == 0))
            for i, (file, title, icon) in enumerate(entries)
        ]
        for section, entries in PAGES.items()
    }


_RUN = threading.local()
"""Per script thread: whether the page now running was started by ``run`` (inside the frame)."""


def run() -> None:
    """The entry point: page config, the sectioned navigation, the workspace status, then the page."""
    st.set_page_config(page_title="Inspection workbench", page_icon=":material/precision_manufacturing:", layout="wide")
    page = st.navigation(build_pages())
    sidebar_workspace_status()
    _RUN.framed = True
    try:
        page.run()
    finally:
        _RUN.framed = False


def ensure_frame() -> None:
    """Call before a page draws anything: a page Streamlit ran on its own (see the module
    docstring) is run again inside the frame, and this run of it stops here."""
    if getattr(_RUN, "framed", False):
        return
    run()
    st.stop()
