"""Typed containers for a category's images: what the loaders return and every stage reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import UserError

SPLITS = ("train", "validation", "test")
"""Dataset splits in workflow order."""

KINDS = ("good", "logical", "structural", "bad")
"""Image kinds. ``bad`` is a defective image of unknown kind (plain-folder mode)."""

LOCO_KIND_FOLDERS = {
    "good": "good",
    "logical": "logical_anomalies",
    "structural": "structural_anomalies",
}
"""MVTec LOCO AD folder name of each kind."""


class DataError(UserError, ValueError):
    """A dataset folder that cannot be used; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Sample:
    """One image of a category.

    Attributes:
        path: absolute path of the image file.
        split: one of ``SPLITS``.
        kind: one of ``KINDS``.
        mask_paths: ground-truth defect masks (0/255 PNG, same size as the image), sorted;
            empty for good images and for bad images without masks.
        component_path: true component-class map (8-bit PNG, 0 = background) when the data
            came from the synthetic generator, else ``None``.
    """

    path: Path
    split: str
    kind: str
    mask_paths: tuple[Path, ...] = ()
    component_path: Path | None = None

    @property
    def is_anomalous(self) -> bool:
        return self.kind != "good"

    @property
    def key(self) -> str:
        """Stable id inside the category: ``<split>/<kind>/<file name>``."""
        return f"{self.split}/{self.kind}/{self.path.name}"


@dataclass(frozen=True)
class BadFile:
    """A file that was skipped, with the reason in plain words."""

    path: Path
    reason: str


@dataclass(frozen=True)
class CategoryData:
    """Every usable image of one category, sorted by split, kind and file name.

    Attributes:
        name: category name (folder name in LOCO mode).
        root: the category folder (LOCO mode) or the good-image folder (folder mode).
        layout: ``"loco"`` or ``"folder"``.
        samples: usable images, sorted.
        grayscale: images that were single-channel on disk; they are converted to RGB and
            usable, but flagged because colour cues are lost.
        bad_files: files that could not be read and were skipped.
    """

    name: str
    root: Path
    layout: str
    samples: tuple[Sample, ...]
    grayscale: tuple[Path, ...] = ()
    bad_files: tuple[BadFile, ...] = field(default=())

    def select(self, split: str, kind: str | None = None) -> list[Sample]:
        """Samples of one split, optionally of one kind, in sorted order."""
        return [s for s in self.samples if s.split == split and (kind is None or s.kind == kind)]

    def counts(self) -> dict[str, dict[str, int]]:
        """``{split: {kind: n}}`` for every split/kind present."""
        out: dict[str, dict[str, int]] = {}
        for s in self.samples:
            out.setdefault(s.split, {}).setdefault(s.kind, 0)
            out[s.split][s.kind] += 1
        return out
