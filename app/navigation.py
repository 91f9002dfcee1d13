"""Page registry in workflow order (SPEC §8) and the app frame around every page."""

from __future__ import annotations

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


def run() -> None:
    st.set_page_config(page_title="Inspection workbench", page_icon=":material/precision_manufacturing:", layout="wide")
    page = st.navigation(build_pages())
    sidebar_workspace_status()
    page.run()
