"""Find image folders and their annotation folders in the layouts QA teams export.

Both converted layouts pair an image folder with an annotation folder of files named like the
images: ``images/`` + ``masks/`` (mask images) or ``images/`` + ``labels/`` (YOLO ``.txt``).
Exports put split folders at either level, so all three arrangements are read::

    <root>/images/*            + <root>/<annotations>/*
    <root>/images/<split>/*    + <root>/<annotations>/<split>/*       (YOLO / Ultralytics)
    <root>/<split>/images/*    + <root>/<split>/<annotations>/*       (MPDD data_supervised)

The source's split names only keep file names unique: good images are re-split by hash later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.data.images import list_image_files

IMAGES_FOLDER = "images"
"""Name of the image folder in both converted layouts."""

MASKS_FOLDER = "masks"
"""Annotation folder of the image + mask layout."""

LABELS_FOLDER = "labels"
"""Annotation folder of the YOLO segmentation layout."""

MASK_SUFFIX = "_mask"
"""``<stem>_mask.png`` is accepted as the mask of ``<stem>.*`` (MVTec AD's naming)."""


@dataclass(frozen=True)
class AnnotatedFolder:
    """One image folder and the folder holding its annotations.

    Attributes:
        split: source split name (``"train"``, ``"val"``, ...) or ``""`` at the top level.
        images: folder of the image files.
        annotations: folder of the masks or label files; it may be missing (every image good).
    """

    split: str
    images: Path
    annotations: Path


def _sub_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def find_annotated_folders(root: Path, annotation_name: str) -> list[AnnotatedFolder]:
    """Every image folder under ``root`` in the arrangements above, with its annotation folder."""
    root = Path(root)
    images = root / IMAGES_FOLDER
    found: list[AnnotatedFolder] = []
    if list_image_files(images):
        found.append(AnnotatedFolder("", images, root / annotation_name))
    for sub in _sub_folders(images):
        found.append(AnnotatedFolder(sub.name, sub, root / annotation_name / sub.name))
    for sub in _sub_folders(root):
        if sub.name not in (IMAGES_FOLDER, annotation_name) and (sub / IMAGES_FOLDER).is_dir():
            found.append(AnnotatedFolder(sub.name, sub / IMAGES_FOLDER, sub / annotation_name))
    return found


def has_annotated_images(root: Path, annotation_name: str) -> bool:
    """``root`` holds images with at least one annotation folder beside them (layout detection)."""
    return any(
        folder.annotations.is_dir() and list_image_files(folder.images)
        for folder in find_annotated_folders(root, annotation_name)
    )


def mask_index(folder: Path) -> dict[str, Path]:
    """Image stem -> mask file in ``folder``: ``<stem>.*`` first, then ``<stem>_mask.*``.

    A mask often has another extension than its image (PNG masks for JPEG photos); when one
    stem has several, the PNG wins because it is lossless.
    """
    masks = sorted(list_image_files(folder), key=lambda p: (p.suffix.lower() != ".png", p.name))
    index: dict[str, Path] = {}
    for path in masks:
        index.setdefault(path.stem, path)
    for path in masks:
        if path.stem.endswith(MASK_SUFFIX):
            index.setdefault(path.stem[: -len(MASK_SUFFIX)], path)
    return index


def label_index(folder: Path) -> dict[str, Path]:
    """Image stem -> YOLO label file (``<stem>.txt``) in ``folder``; missing folder -> ``{}``."""
    if not folder.is_dir():
        return {}
    return {
        p.stem: p
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.suffix.lower() == ".txt" and p.is_file() and not p.name.startswith(".")
    }
