"""Categories registered in a workspace: adding one after checking its data loads, loading it back,
and naming its images."""

from __future__ import annotations

from pathlib import Path

from pipeline.data.discover import category_root, load_category
from pipeline.data.samples import CategoryData
from pipeline.errors import SettingsError
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


def resolve_image_keys(ws: Workspace, category: str, images: list[str]) -> list[str]:
    """Image keys (``split/kind/file``) for keys or file paths of the category's images."""
    samples = load_workspace_category(ws, category).samples
    by_key = {s.key: s.key for s in samples}
    by_path = {Path(s.path).resolve(): s.key for s in samples}
    keys, unknown = [], []
    for image in images:
        key = by_key.get(image) or by_path.get(Path(image).resolve())
        (keys if key else unknown).append(key or image)
    if unknown:
        raise SettingsError(f"not images of category {category!r}: {', '.join(unknown)} "
                            "(give a key such as test/logical/000.png or the image's path)")
    return keys
