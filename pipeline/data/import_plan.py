"""What an import will do, worked out before anything is written, and its summary in words.

LOCO and plain-folder sets are registered where they are, so their plan is just what loading
them found. Image + mask and YOLO sets are converted into the LOCO layout; their plan names
every file and its split, so the write step only copies and draws.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipeline.data.folders import FolderSplit, split_good
from pipeline.data.import_scan import FoundImage, SourceScan
from pipeline.data.samples import KINDS, SPLITS, BadFile, CategoryData, DataError
from pipeline.data.yolo import Polygon

IN_PLACE_LAYOUTS = ("loco", "folder")
"""Layouts the project reads directly: registered in place, never copied."""

CONVERTED_LAYOUTS = ("masks", "yolo")
"""Layouts converted into a LOCO category folder on import."""

LAYOUT_NAMES = {
    "loco": "MVTec LOCO AD folders",
    "folder": "plain good/ + bad/ folders",
    "masks": "image + mask folders",
    "yolo": "YOLO segmentation labels",
}
"""Each layout in words, for summaries."""


@dataclass(frozen=True)
class PlannedImage:
    """One image of a converted set: where it comes from and where it goes.

    Attributes:
        source: the source image file (copied byte for byte).
        name: its file name in the category, unique across splits (stem is the ground-truth folder).
        split: ``"train"``, ``"validation"`` or ``"test"``.
        kind: ``"good"`` or ``"structural"``.
        width: width in pixels (YOLO polygons are drawn at this size).
        height: height in pixels.
        mask: source mask to binarise into the ground truth (image + mask layout).
        polygons: polygons to rasterise into the ground truth (YOLO layout).
    """

    source: Path
    name: str
    split: str
    kind: str
    width: int
    height: int
    mask: Path | None = None
    polygons: tuple[Polygon, ...] = ()


@dataclass(frozen=True)
class ImportPlan:
    """One category an import will register, and what was found reading it.

    Attributes:
        name: category name in the workspace.
        source: the folder read.
        layout: one of ``IN_PLACE_LAYOUTS`` or ``CONVERTED_LAYOUTS``.
        counts: ``(split, kind, n)`` for every split/kind present, in workflow order.
        bad_files: files skipped, with the reason.
        grayscale: usable single-channel images (flagged: colour cues are lost).
        sizes: distinct ``(width, height)`` of the images (converted layouts only).
        images: every image with its target name and split (converted layouts only).
    """

    name: str
    source: Path
    layout: str
    counts: tuple[tuple[str, str, int], ...]
    bad_files: tuple[BadFile, ...] = ()
    grayscale: tuple[Path, ...] = ()
    sizes: tuple[tuple[int, int], ...] = ()
    images: tuple[PlannedImage, ...] = ()

    @property
    def in_place(self) -> bool:
        return self.layout in IN_PLACE_LAYOUTS

    @property
    def n_good(self) -> int:
        return sum(n for _, kind, n in self.counts if kind == "good")

    @property
    def n_defective(self) -> int:
        return sum(n for _, kind, n in self.counts if kind != "good")

    def summary(self) -> str:
        """A few lines for a person: what was found, where it goes, every skipped file."""
        lines = [
            f"{self.name}: {LAYOUT_NAMES[self.layout]} in {self.source}",
            f"  {self.n_good} good, {self.n_defective} defective, {len(self.bad_files)} skipped, "
            f"{len(self.grayscale)} grayscale",
            "  " + ", ".join(f"{split}/{kind} {n}" for split, kind, n in self.counts),
        ]
        if self.sizes:
            lines.append(f"  image sizes: {describe_sizes(self.sizes)}")
        if self.in_place:
            lines.append("  registered in place (the files stay where they are)")
        else:
            lines.append("  copied into MVTec LOCO layout; good images split by a hash of their name")
        lines.extend(f"  skipped {bad.path}: {bad.reason}" for bad in self.bad_files)
        return "\n".join(lines)


def describe_sizes(sizes: tuple[tuple[int, int], ...]) -> str:
    """``"500x1240"`` or ``"3 different, 500x1240 to 512x1270"`` (mixed sizes are accepted)."""
    labels = [f"{w}x{h}" for w, h in sizes]
    if len(labels) == 1:
        return labels[0]
    return f"{len(labels)} different, {labels[0]} to {labels[-1]}"


def _ordered_counts(pairs: Counter) -> tuple[tuple[str, str, int], ...]:
    return tuple((s, k, pairs[(s, k)]) for s in SPLITS for k in KINDS if pairs[(s, k)])


def in_place_plan(name: str, root: Path, data: CategoryData) -> ImportPlan:
    """The plan of a LOCO or plain-folder category: registered as ``root``, as loaded."""
    pairs = Counter((s.split, s.kind) for s in data.samples)
    return ImportPlan(name, root, data.layout, _ordered_counts(pairs), data.bad_files, data.grayscale)


def unique_names(found: tuple[FoundImage, ...]) -> list[str]:
    """Target file names: the source name, prefixed by its split folder when the stem repeats.

    Stems must be unique in a LOCO category (ground truth sits in a folder named by the stem);
    MPDD and KolektorSDD exports number each split from zero, so ``000.jpg`` appears twice.
    """
    repeats = Counter(f.source.stem for f in found)
    used: set[str] = set()
    names: list[str] = []
    for item in found:
        stem = item.source.stem
        if repeats[stem] > 1 and item.source_split:
            stem = f"{item.source_split}_{stem}"
        base, number = stem, 2
        while stem in used:  # the same stem twice in one folder (a.png and a.jpg)
            stem, number = f"{base}_{number}", number + 1
        used.add(stem)
        names.append(stem + item.source.suffix)
    return names


def _planned(item: FoundImage, name: str, split: str) -> PlannedImage:
    kind = "structural" if item.defective else "good"
    return PlannedImage(item.source, name, split, kind, item.width, item.height, item.mask, item.polygons)


def _check_enough(root: Path, layout: str, scan: SourceScan, n_good: int) -> None:
    """The LOCO loader needs good images in train and validation: refuse before writing."""
    if not scan.found:
        detail = ""
        if scan.bad_files:
            first = scan.bad_files[0]
            detail = f" (all {len(scan.bad_files)} files skipped, e.g. {first.path.name}: {first.reason})"
        raise DataError(f"no usable images in {root} read as {LAYOUT_NAMES[layout]}{detail}")
    if n_good < 2:
        marker = "mask" if layout == "masks" else "label file"
        raise DataError(
            f"only {n_good} good image(s) in {root} (an empty or missing {marker} marks a good image): "
            "at least two are needed, one to train on and one for validation"
        )


def converted_plan(
    name: str, root: Path, layout: str, scan: SourceScan, split: FolderSplit = FolderSplit()
) -> ImportPlan:
    """The plan of an image + mask or YOLO set: defects to test, good images split by hash."""
    names = unique_names(scan.found)
    good = {Path(n): item for n, item in zip(names, scan.found) if not item.defective}
    defects = [(n, item) for n, item in zip(names, scan.found) if item.defective]
    _check_enough(root, layout, scan, len(good))
    groups = split_good(list(good), split, with_test=bool(defects))
    images = [_planned(good[p], p.name, key) for key in SPLITS for p in groups[key]]
    images += [_planned(item, n, "test") for n, item in sorted(defects, key=lambda d: d[0])]
    counts = _ordered_counts(Counter((i.split, i.kind) for i in images))
    return ImportPlan(
        name=name,
        source=root,
        layout=layout,
        counts=counts,
        bad_files=scan.bad_files,
        grayscale=tuple(f.source for f in scan.found if f.grayscale),
        sizes=tuple(sorted({(f.width, f.height) for f in scan.found})),
        images=tuple(images),
    )
