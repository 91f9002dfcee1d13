"""MVTec LOCO AD category loader.

Layout read (SPEC §3)::

    train/good/*.png  validation/good/*.png
    test/{good,logical_anomalies,structural_anomalies}/*.png
    ground_truth/{logical_anomalies,structural_anomalies}/<image stem>/*.png
    components/<same relative path as the image>        (synthetic data only)

Every file list is sorted: an unsorted glob misaligned images and labels in a public
reproduction. Unreadable files are reported in ``bad_files`` and skipped, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.images import (
    FolderScan,
    list_image_files,
    no_images_reason,
    scan_folder,
    scan_images,
    suffix_list,
)
from pipeline.data.samples import LOCO_KIND_FOLDERS, BadFile, CategoryData, DataError, Sample

_VALIDATION_HINT = (
    "the method needs good validation images for normalisation and thresholds; add some "
    "or use plain-folder mode which splits them from train"
)


def is_loco_category(root: Path) -> bool:
    """``root`` looks like a LOCO category (it has ``train/good``)."""
    return (Path(root) / "train" / "good").is_dir()


@dataclass
class _Collector:
    """Mutable accumulator used only while one category is read."""

    root: Path
    samples: list[Sample] = field(default_factory=list)
    grayscale: list[Path] = field(default_factory=list)
    bad: list[BadFile] = field(default_factory=list)

    def add(self, split: str, kind: str) -> FolderScan:
        """Scan ``<split>/<kind folder>`` and append its readable images as samples."""
        scan = scan_folder(self.root / split / LOCO_KIND_FOLDERS[kind])
        self.bad.extend(scan.bad)
        self.grayscale.extend(scan.grayscale)
        for path in scan.readable:
            masks = self._masks(path, kind) if kind != "good" else ()
            self.samples.append(Sample(path, split, kind, masks, self._component(path)))
        return scan

    def _masks(self, image: Path, kind: str) -> tuple[Path, ...]:
        gt_dir = self.root / "ground_truth" / LOCO_KIND_FOLDERS[kind] / image.stem
        readable, _, bad = scan_images(list_image_files(gt_dir))
        self.bad.extend(bad)
        return tuple(readable)

    def _component(self, image: Path) -> Path | None:
        candidate = self.root / "components" / image.relative_to(self.root)
        return candidate if candidate.is_file() else None


def _not_loco_message(root: Path) -> str:
    return (
        f"{root} is not an MVTec LOCO AD category: expected train/good/*.png and "
        "validation/good/*.png, optionally test/{good,logical_anomalies,structural_anomalies}/*.png "
        "with masks in ground_truth/<kind>/<image stem>/*.png. For a plain folder of good "
        "images (and optionally a folder of bad ones) use plain-folder mode: <category>/good "
        "and <category>/bad."
    )


def _validation_error(root: Path, scan: FolderScan) -> DataError:
    where = root / "validation" / "good"
    if not where.is_dir():
        problem = f"{where} is missing"
    elif not scan.files:
        problem = f"{where} has no images (looked for {suffix_list()})"
    else:
        problem = no_images_reason(scan)
    return DataError(f"{problem}: {_VALIDATION_HINT}")


def _unknown_test_folders(root: Path) -> list[BadFile]:
    """Test sub-folders this layout does not know, reported so data is never dropped silently."""
    test_dir = root / "test"
    if not test_dir.is_dir():
        return []
    known = set(LOCO_KIND_FOLDERS.values())
    return [
        BadFile(
            path=sub,
            reason="unknown test folder skipped; expected good, logical_anomalies or "
            "structural_anomalies",
        )
        for sub in sorted(test_dir.iterdir(), key=lambda p: p.name)
        if sub.is_dir() and not sub.name.startswith(".") and sub.name not in known
    ]


def load_loco_category(root: Path, name: str | None = None) -> CategoryData:
    """Read one LOCO-layout category; raises ``DataError`` when it cannot be used.

    A category without a ``test`` folder is fine: it simply has no test samples.
    """
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise DataError(f"category folder {root} does not exist")
    if not is_loco_category(root):
        raise DataError(_not_loco_message(root))
    collector = _Collector(root)
    train = collector.add("train", "good")
    if not train.readable:
        raise DataError(no_images_reason(train))
    validation = collector.add("validation", "good")
    if not validation.readable:
        raise _validation_error(root, validation)
    for kind in ("good", "logical", "structural"):
        collector.add("test", kind)
    collector.bad.extend(_unknown_test_folders(root))
    return CategoryData(
        name=name or root.name,
        root=root,
        layout="loco",
        samples=tuple(collector.samples),
        grayscale=tuple(collector.grayscale),
        bad_files=tuple(collector.bad),
    )
