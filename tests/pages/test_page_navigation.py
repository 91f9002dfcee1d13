"""Every page, reached first by its own URL on a fresh server, shows the workbench's sectioned
navigation and the workspace status, not Streamlit's sidebar of file names."""

from __future__ import annotations

import ast

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from app.navigation import PAGES, PAGES_DIR
from tests.pages.conftest import APP, TIMEOUT

STREAMLIT_V1_PAGES = script_runner._mpa_v1
"""Streamlit's own runner for a ``pages/`` folder, before the page tests' fixture replaces it."""


def test_every_page_file_asks_for_the_frame_before_drawing():
    for file in PAGES_DIR.glob("*.py"):
        calls = [node.value.func.id for node in ast.parse(file.read_text()).body
                 if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)]
        assert calls[:1] == ["ensure_frame"] and len(calls) == 2, file.name
    assert list(PAGES) == ["Prepare", "Train", "Review"]


@pytest.mark.parametrize(("page", "title"), [("pages/inspect.py", "Inspect"), ("pages/train.py", "Train")])
def test_a_page_reached_first_by_its_url_runs_inside_the_frame(page, title, page_workspaces, monkeypatch):
    """A fresh server with a ``pages/`` folder runs the page file alone (Streamlit's v1 multipage
    mode) until ``st.navigation`` has run: the page must bring the frame itself."""
    monkeypatch.setattr(script_runner, "_mpa_v1", STREAMLIT_V1_PAGES)
    monkeypatch.setattr(PagesManager, "uses_pages_directory", True)
    ws = page_workspaces["evaluated"]
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["workspace_path"] = str(ws)
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    assert [t.value for t in at.title] == [title]  # drawn once, inside the frame
    assert [c.value for c in at.sidebar.caption] == [f"Workspace: `{ws}`"]
    assert PagesManager.uses_pages_directory is False  # the sectioned navigation now holds for the process
