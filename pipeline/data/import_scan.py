"""Read an image + mask or YOLO label set: which images are usable, good or defective, and why not.

Nothing is written here. Every image is decoded once (a truncated JPEG must be caught now, not
in the middle of a training run) and every mask decoded to see whether it marks anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.data.images import ImageInfo, ImageReadError, list_image_files, mask_plane, probe_image
from pipeline.data.pairs import (
    LABELS_FOLDER,
    MASKS_FOLDER,
    AnnotatedFolder,
    find_annotated_folders,
    label_index,
    mask_index,
)
from pipeline.data.samples import BadFile
from pipeline.data.yolo import LabelError, Polygon, read_yolo_label


@dataclass(frozen=True)
class FoundImage:
    """A readable source image and its annotation, before it is named and split.

    Attributes:
        source: the image file.
        source_split: the split folder it came from (``""`` at the top level).
        width: width in pixels.
        height: height in pixels.
        grayscale: the file is single-channel (still usable, flagged).
        mask: mask file marking a defect (image + mask layout), else ``None``.
        polygons: defect polygons (YOLO layout), else ``()``.
    """

    source: Path
    source_split: str
    width: int
    height: int
    grayscale: bool
    mask: Path | None = None
    polygons: tuple[Polygon, ...] = ()

    @property
    def defective(self) -> bool:
        """An empty or missing mask / label file means a good image."""
        return self.mask is not None or bool(self.polygons)


@dataclass(frozen=True)
class SourceScan:
    """Everything found in one source set.

    Attributes:
        found: usable images, in folder order then by name.
        bad_files: skipped files with the reason (unreadable images, masks, labels; orphans).
    """

    found: tuple[FoundImage, ...]
    bad_files: tuple[BadFile, ...]


def _found(info: ImageInfo, split: str, **annotation) -> FoundImage:
    return FoundImage(info.path, split, info.width, info.height, info.is_grayscale, **annotation)


def _with_mask(info: ImageInfo, split: str, mask: Path | None) -> FoundImage | BadFile:
    """The image with its mask binarised (> 0); a mask of another size cannot be trusted."""
    if mask is None:
        return _found(info, split)
    try:
        plane = mask_plane(mask)
    except ImageReadError as err:
        return BadFile(mask, f"mask of {info.path.name} unreadable ({err.reason}); image skipped")
    if plane.shape != (info.height, info.width):
        return BadFile(
            mask, f"mask is {plane.shape[1]}x{plane.shape[0]} px but {info.path.name} is "
            f"{info.width}x{info.height} px; image skipped"
        )
    return _found(info, split, mask=mask if plane.any() else None)


def _with_label(info: ImageInfo, split: str, label: Path | None) -> FoundImage | BadFile:
    if label is None:
        return _found(info, split)
    try:
        polygons = read_yolo_label(label)
    except LabelError as err:
        return BadFile(label, f"{err.reason}; image {info.path.name} skipped")
    return _found(info, split, polygons=polygons)


def _scan_folder(folder: AnnotatedFolder, layout: str) -> tuple[list[FoundImage], list[BadFile]]:
    index = mask_index(folder.annotations) if layout == "masks" else label_index(folder.annotations)
    found: list[FoundImage] = []
    bad: list[BadFile] = []
    used: set[Path] = set()
    for image in list_image_files(folder.images):
        annotation = index.get(image.stem)
        if annotation is not None:
            used.add(annotation)
        try:
            info = probe_image(image)
        except ImageReadError as err:
            bad.append(BadFile(image, err.reason))
            continue
        pair = _with_mask if layout == "masks" else _with_label
        result = pair(info, folder.split, annotation)
        (bad if isinstance(result, BadFile) else found).append(result)
    # Annotations nobody claimed are listed: a renamed image would otherwise lose its defect silently.
    what = "mask" if layout == "masks" else "label file"
    unclaimed = sorted(set(index.values()) - used)
    bad.extend(BadFile(p, f"{what} with no image of the same name; skipped") for p in unclaimed)
    return found, bad


def scan_source(root: Path, layout: str) -> SourceScan:
    """Probe every image, mask or label of an image + mask (``"masks"``) or YOLO (``"yolo"``) set."""
    annotation_name = MASKS_FOLDER if layout == "masks" else LABELS_FOLDER
    found: list[FoundImage] = []
    bad: list[BadFile] = []
    for folder in find_annotated_folders(Path(root), annotation_name):
        more_found, more_bad = _scan_folder(folder, layout)
        found.extend(more_found)
        bad.extend(more_bad)
    return SourceScan(tuple(found), tuple(bad))
