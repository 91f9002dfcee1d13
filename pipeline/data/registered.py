"""Categories registered in a workspace: adding one after checking its data loads, and loading it back."""

from __future__ import annotations

from pathlib import Path

from pipeline.data.discover import category_root, load_category
from pipeline.data.samples import CategoryData
from pipeline.workspace import Workspace


def register_category(workspace: Workspace, data: Path, category: str) -> None:
    """Add (or refresh) a category in the workspace after checking its data loads."""
    root = category_root(data, category).resolve()
    loaded = load_category(root)
    workspace.add_category(category, root, loaded.layout)


def load_workspace_category(workspace: Workspace, category: str) -> CategoryData:
    """The category's data as registered in the workspace."""
    record = workspace.category(category)
    return load_category(Path(record.data_root))
