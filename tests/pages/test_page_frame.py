"""The frame around every page: navigation to each page and the workspace shown in the sidebar."""

from __future__ import annotations

import pytest

from app.navigation import PAGES
from pipeline.workspace import Workspace


ALL_PAGES = [(f"pages/{file}", title) for entries in PAGES.values() for file, title, _ in entries]
NEEDS_A_CATEGORY = [page for page, _ in ALL_PAGES if page != "pages/workspace_data.py"]


def test_default_page_is_workspace_and_data(app, page_workspaces):
    at = app.open(page_workspaces["evaluated"])
    assert [t.value for t in at.title] == ["Workspace & data"]


@pytest.mark.parametrize(("page", "title"), ALL_PAGES)
def test_every_page_runs_inside_the_frame(app, page_workspaces, page, title):
    ws = page_workspaces["evaluated"]
    at = app.open(ws, page)
    assert [t.value for t in at.title] == [title]
    # streamlit_app.py ran (not the page file alone): the sidebar names the open workspace.
    assert [c.value for c in at.sidebar.caption] == [f"Workspace: `{ws}`"]


def test_workspace_from_environment(app, page_workspaces, monkeypatch):
    ws = page_workspaces["evaluated"]
    monkeypatch.setenv("WORKBENCH_WORKSPACE", str(ws))
    at = app.open(None)
    assert at.session_state["workspace_path"] == str(ws)
    assert [c.value for c in at.sidebar.caption] == [f"Workspace: `{ws}`"]
    # The env workspace really is the one read: its category is listed.
    assert at.selectbox("data_category").options == ["pin_tray"]


def test_pages_needing_a_workspace_point_to_workspace_page(app, tmp_path):
    missing = tmp_path / "nowhere"
    for page in NEEDS_A_CATEGORY:
        at = app.open(missing, page)
        assert [c.value for c in at.sidebar.caption] == [f"No workspace open (`{missing}`)"]
        assert len(at.info) == 1 and "No workspace is open" in at.info[0].value
        assert not at.button and not at.selectbox
    assert not missing.exists()  # looking is not creating


def test_pages_needing_a_category_point_to_workspace_page(app, tmp_path):
    ws_path = tmp_path / "empty"
    Workspace.create(ws_path)
    for page in NEEDS_A_CATEGORY:
        at = app.open(ws_path, page)
        assert [i.value for i in at.info] == ["This workspace has no data yet. Import a folder or generate the demo data."]
        assert [link.proto.label for link in at.get("page_link")] == ["Go to Workspace & data"]
        assert not at.button and not at.selectbox and not at.error
