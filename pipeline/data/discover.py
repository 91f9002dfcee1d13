"""Pick the right loader for a folder, and list the categories under a data root."""

from __future__ import annotations

from pathlib import Path

from pipeline.data.folders import load_folder_category
from pipeline.data.loco import is_loco_category, load_loco_category
from pipeline.data.samples import CategoryData, DataError

LAYOUTS_HELP = (
    "Accepted layouts: (1) MVTec LOCO AD: <category>/train/good/*.png, "
    "<category>/validation/good/*.png, optional <category>/test/{good,logical_anomalies,"
    "structural_anomalies}/*.png and <category>/ground_truth/...; (2) plain folders: "
    "<category>/good/*.png with an optional <category>/bad/ (images, or logical/ and "
    "structural/ sub-folders); validation images are then split from the good ones; "
    "(3) image + mask folders: <root>/images/* with <root>/masks/* of the same names, "
    "optionally in split folders (<root>/<split>/images or <root>/images/<split>), an empty or "
    "missing mask meaning a good image; (4) YOLO segmentation labels: <root>/images/[<split>/]* "
    "with <root>/labels/[<split>/]*.txt, an empty or missing label file meaning a good image."
)
"""Every accepted layout in one sentence, appended to errors about unrecognised folders."""


def _is_folder_category(root: Path) -> bool:
    return (root / "good").is_dir()


def is_category(root: Path) -> bool:
    """``root`` is a category in either accepted layout."""
    root = Path(root)
    return is_loco_category(root) or _is_folder_category(root)


def load_category(root: Path) -> CategoryData:
    """Load ``root`` as a LOCO category, else as ``root/good`` (+ ``root/bad``); else ``DataError``."""
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise DataError(f"category folder {root} does not exist")
    if is_loco_category(root):
        return load_loco_category(root)
    if _is_folder_category(root):
        bad_dir = root / "bad"
        return load_folder_category(
            root / "good", bad_dir if bad_dir.is_dir() else None, name=root.name
        )
    raise DataError(f"{root} is not a category folder. {LAYOUTS_HELP}")


def category_root(data: Path, category: str) -> Path:
    """The folder of ``category`` under ``data`` (or ``data`` itself when it is that category)."""
    if not data.is_dir():
        raise DataError(f"data folder {data} does not exist")
    candidate = data / category
    if candidate.is_dir():
        return candidate
    if data.name == category:
        return data
    found = find_categories(data)
    raise DataError(f"no category {category!r} in {data}; found: {', '.join(found) or 'none'}")


def find_categories(data_root: Path) -> list[str]:
    """Sorted names of the sub-folders of ``data_root`` that are categories.

    Returns ``[]`` when ``data_root`` is itself a category: the caller then loads it directly.
    """
    data_root = Path(data_root).expanduser().absolute()
    if not data_root.is_dir():
        raise DataError(f"data folder {data_root} does not exist")
    if is_category(data_root):
        return []
    return sorted(
        sub.name
        for sub in data_root.iterdir()
        if sub.is_dir() and not sub.name.startswith(".") and is_category(sub)
    )
