"""Session state the pages share: the open workspace and the current category/method.

The workspace itself lives in SQLite; the session only remembers which one is open.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import streamlit as st

from pipeline.methods import METHODS
from pipeline.workspace import Workspace, WorkspaceError

WORKSPACE_KEY = "workspace_path"
CATEGORY_KEY = "current_category"
METHOD_KEY = "current_method"
DEFAULT_WORKSPACE = "demo/workspace"


def default_workspace_path() -> str:
    """``-- --workspace PATH`` on the streamlit command line, else $WORKBENCH_WORKSPACE, else the demo."""
    argv = sys.argv[1:]
    if "--workspace" in argv and argv.index("--workspace") + 1 < len(argv):
        return argv[argv.index("--workspace") + 1]
    return os.environ.get("WORKBENCH_WORKSPACE", DEFAULT_WORKSPACE)


def workspace_path() -> str:
    if WORKSPACE_KEY not in st.session_state:
        st.session_state[WORKSPACE_KEY] = default_workspace_path()
    return st.session_state[WORKSPACE_KEY]


def set_workspace_path(path: str | Path) -> None:
    st.session_state[WORKSPACE_KEY] = str(path)


def current_workspace() -> Workspace | None:
    """The open workspace, or None when the remembered folder is not a workspace (yet)."""
    try:
        return Workspace.open(workspace_path(), create=False)
    except WorkspaceError:
        return None


def require_workspace() -> Workspace:
    """The open workspace; otherwise a pointer to the Workspace page and the page stops."""
    ws = current_workspace()
    if ws is None:
        st.info(f"No workspace is open (looked at `{workspace_path()}`). Create or open one first.")
        st.page_link("pages/workspace_data.py", label="Go to Workspace & data", icon=":material/folder_open:")
        st.stop()
    return ws


def require_category(ws: Workspace, key: str) -> str:
    """Category picker remembered across pages; stops the page when there is none."""
    names = [c.name for c in ws.categories()]
    if not names:
        st.info("This workspace has no data yet. Import a folder or generate the demo data.")
        st.page_link("pages/workspace_data.py", label="Go to Workspace & data", icon=":material/folder_open:")
        st.stop()
    current = st.session_state.get(CATEGORY_KEY)
    choice = st.selectbox("Category", names, index=names.index(current) if current in names else 0, key=key)
    st.session_state[CATEGORY_KEY] = choice
    return choice


def select_method(key: str) -> str:
    """Method picker remembered across pages."""
    names = list(METHODS)
    current = st.session_state.get(METHOD_KEY)
    choice = st.selectbox(
        "Method", names, index=names.index(current) if current in names else 0, key=key,
        format_func=lambda n: METHODS[n].title,
    )
    st.session_state[METHOD_KEY] = choice
    return choice


def sidebar_workspace_status() -> None:
    ws = current_workspace()
    label = f"Workspace: `{workspace_path()}`" if ws else f"No workspace open (`{workspace_path()}`)"
    st.sidebar.caption(label)
