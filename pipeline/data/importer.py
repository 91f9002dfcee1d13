"""Import a data folder into a workspace: detect its layout, plan, then register or convert.

The command line and the Workspace & data page both call ``plan_imports`` (reads, writes
nothing, so a person sees what was found first) and then ``import_into_workspace``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from pipeline.data.discover import LAYOUTS_HELP, category_root, find_categories, load_category
from pipeline.data.import_plan import CONVERTED_LAYOUTS, IN_PLACE_LAYOUTS, ImportPlan, converted_plan, in_place_plan
from pipeline.data.import_scan import scan_source
from pipeline.data.import_write import write_loco_category
from pipeline.data.loco import is_loco_category
from pipeline.data.pairs import LABELS_FOLDER, MASKS_FOLDER, has_annotated_images
from pipeline.data.samples import DataError
from pipeline.workspace import Workspace
from pipeline.workspace.db import check_name
from pipeline.workspace.records import CategoryRecord

IMPORT_LAYOUTS = ("auto",) + IN_PLACE_LAYOUTS + CONVERTED_LAYOUTS
"""Choices of ``--layout`` and of the page's layout box; ``auto`` detects it."""

WORKSPACE_DATA_FOLDER = "data"
"""Converted sets are written to ``<workspace>/data/<category>`` (LOCO layout)."""

_GENERIC_ROOTS = frozenset({"data", "dataset", "datasets"})
"""Root names that say nothing (KolektorSDD's ``Datasets``): the parent names the category."""


@dataclass(frozen=True)
class ImportPlans:
    """What importing one data folder will do.

    Attributes:
        layout: the layout used (detected, or the one asked for).
        plans: one plan per category that can be imported.
        errors: one sentence per category that cannot be (in-place layouts, where a folder of
            categories may hold a broken one beside good ones).
    """

    layout: str
    plans: tuple[ImportPlan, ...]
    errors: tuple[str, ...] = ()


def _annotation_folder(layout: str) -> str:
    return MASKS_FOLDER if layout == "masks" else LABELS_FOLDER


def _in_place_layout(root: Path) -> str | None:
    if is_loco_category(root):
        return "loco"
    if (root / "good").is_dir():
        return "folder"
    names = find_categories(root)
    if names:
        return "loco" if is_loco_category(root / names[0]) else "folder"
    return None


def detect_layout(root: Path) -> str:
    """The layout of ``root`` (one of ``IMPORT_LAYOUTS`` but ``auto``); ``DataError`` if none fits."""
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    found = _in_place_layout(root)
    if found is not None:
        return found
    converted = [layout for layout in CONVERTED_LAYOUTS if has_annotated_images(root, _annotation_folder(layout))]
    if len(converted) > 1:
        raise DataError(f"{root} has both masks/ and labels/ beside its images: choose the layout (masks or yolo)")
    if converted:
        return converted[0]
    raise DataError(f"{root} is not a category folder. {LAYOUTS_HELP}")


def default_category_name(root: Path) -> str:
    """The folder's name, or its parent's when the folder is called ``Datasets`` or similar."""
    root = Path(root).expanduser().absolute()
    return root.parent.name if root.name.lower() in _GENERIC_ROOTS else root.name


def _plan_in_place(data: Path, layout: str, names: Sequence[str]) -> ImportPlans:
    plans: list[ImportPlan] = []
    errors: list[str] = []
    for name in names or find_categories(data) or [data.name]:
        try:
            root = category_root(data, name).resolve()
            plans.append(in_place_plan(name, root, load_category(root)))
        except DataError as err:  # collected: the other categories of the folder still import
            errors.append(str(err))
    return ImportPlans(layout, tuple(plans), tuple(errors))


def plan_converted(data: Path, layout: str, name: str | None = None) -> ImportPlan:
    """Read an image + mask (``"masks"``) or YOLO (``"yolo"``) set into a plan; writes nothing."""
    data = Path(data).expanduser().absolute()
    folder = _annotation_folder(layout)
    if not has_annotated_images(data, folder):
        raise DataError(f"{data} has no images/ folder with a {folder}/ folder beside it, as the {layout} layout "
                        f"needs. {LAYOUTS_HELP}")
    return converted_plan(name or default_category_name(data), data, layout, scan_source(data, layout))


def plan_imports(
    data: Path, layout: str = "auto", category: str | None = None, categories: Sequence[str] = ()
) -> ImportPlans:
    """Plan the import of ``data``; nothing is written.

    ``category`` names a converted set (default: the folder name) or picks one category of an
    in-place folder; ``categories`` picks several of an in-place folder.
    """
    data = Path(data).expanduser().absolute()
    if layout not in IMPORT_LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; choose one of {', '.join(IMPORT_LAYOUTS)}")
    if not data.is_dir():
        raise DataError(f"data folder {data} does not exist")
    layout = detect_layout(data) if layout == "auto" else layout
    names = list(categories) + ([category] if category else [])
    if layout in IN_PLACE_LAYOUTS:
        return _plan_in_place(data, layout, names)
    if len(names) > 1:
        raise DataError(f"a {layout} set becomes one category; give one name, got {', '.join(names)}")
    return ImportPlans(layout, (plan_converted(data, layout, names[0] if names else None),))


def import_into_workspace(workspace: Workspace, plan: ImportPlan) -> CategoryRecord:
    """Register a planned category: in place, or converted to ``<workspace>/data/<name>`` first."""
    if plan.in_place:
        return workspace.add_category(plan.name, plan.source, plan.layout)
    check_name(plan.name, "category name")  # before writing: the name becomes a folder name
    target = write_loco_category(plan, workspace.path / WORKSPACE_DATA_FOLDER / plan.name)
    return workspace.add_category(plan.name, target, "loco")
