"""Write a converted set as an MVTec LOCO category folder, all at once or not at all.

The folder is built in a hidden temporary sibling of the target and renamed into place, so a
crash, a full disk or a file that vanished since planning never leaves half a category that
the loaders would read as a smaller, wrong dataset.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.data.images import mask_plane
from pipeline.data.import_plan import ImportPlan, PlannedImage
from pipeline.data.samples import LOCO_KIND_FOLDERS, DataError
from pipeline.data.yolo import rasterise_polygons

GROUND_TRUTH_FILE = "000.png"
"""One mask per defect image, in ``ground_truth/<kind folder>/<stem>/`` as the LOCO loader reads."""

INFO_FILE = "import_info.json"
"""Where each written image came from, so a result can be traced back to the source file."""


def ground_truth(item: PlannedImage) -> np.ndarray:
    """The defect mask of ``item`` as uint8 0/255 at the image's size."""
    if item.mask is not None:
        return mask_plane(item.mask).astype(np.uint8) * 255
    return rasterise_polygons(item.polygons, item.width, item.height)


def _write_image(item: PlannedImage, folder: Path) -> str:
    """Copy one image (byte for byte: re-encoding a JPEG would change its pixels) and its mask."""
    if not item.source.is_file():
        raise DataError(f"{item.source} is gone since the folder was checked; check the folder again")
    relative = Path(item.split) / LOCO_KIND_FOLDERS[item.kind] / item.name
    (folder / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(item.source, folder / relative)
    if item.kind != "good":
        mask_dir = folder / "ground_truth" / LOCO_KIND_FOLDERS[item.kind] / Path(item.name).stem
        mask_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(ground_truth(item)).save(mask_dir / GROUND_TRUTH_FILE, format="PNG")
    return relative.as_posix()


def _build(plan: ImportPlan, folder: Path) -> None:
    folder.mkdir()
    origins = {_write_image(item, folder): str(item.source) for item in plan.images}
    info = {"source": str(plan.source), "layout": plan.layout, "images": origins}
    (folder / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _swap_into_place(staging: Path, target: Path, scratch: Path) -> None:
    """Rename ``staging`` to ``target``; an older ``target`` is moved to ``scratch`` (deleted with
    it) and put back if the rename fails, so a re-import never loses the previous copy."""
    previous = scratch / "previous"
    if target.exists() or target.is_symlink():
        target.rename(previous)
    moved = False
    try:
        staging.rename(target)
        moved = True
    finally:
        if not moved and (previous.exists() or previous.is_symlink()):
            previous.rename(target)


def write_loco_category(plan: ImportPlan, target: Path) -> Path:
    """Write a converted plan as the LOCO category folder ``target`` (replacing one there).

    Returns ``target`` as an absolute path. Raises ``ValueError`` for an in-place plan, which has
    nothing to copy.
    """
    if plan.in_place:
        raise ValueError(f"{plan.layout} sets are registered in place, not written; got {plan.name!r}")
    target = Path(target).expanduser().absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Hidden name: the category finder skips dot-folders, so a build in progress is never listed.
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", suffix=".importing", dir=target.parent) as scratch:
        staging = Path(scratch) / target.name
        _build(plan, staging)
        _swap_into_place(staging, target, Path(scratch))
    return target
