"""Generates synthetic LOCO-layout categories: settings, the image plan, per-image seeds."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.samples import LOCO_KIND_FOLDERS, SPLITS
from pipeline.data.synth import bottle, cable_connector, fastener_kit, pin_tray, textured_plate
from pipeline.data.synth.spec import CategorySpec
from pipeline.data.synth.writer import (
    COMPONENTS_DIR,
    GROUND_TRUTH_DIR,
    image_relpath,
    staged_folder,
    write_info,
    write_sample,
)
from pipeline.errors import SettingsError
from pipeline.progress import ProgressFn, no_progress

CATEGORIES: dict[str, CategorySpec] = {
    "pin_tray": pin_tray.SPEC,
    "cable_connector": cable_connector.SPEC,
    "fastener_kit": fastener_kit.SPEC,
    "bottle": bottle.SPEC,
    "textured_plate": textured_plate.SPEC,
}
"""Every synthetic category by name."""

DEFAULT_CATEGORIES: tuple[str, ...] = ("pin_tray", "cable_connector", "fastener_kit", "bottle")
"""What ``SynthSettings`` writes when no categories are named: the demo's set. Both demos (``python
-m pipeline demo`` and the app's demo button) use it, so a category added later (``textured_plate``)
is opt-in and does not lengthen the demo; ``python -m pipeline synth`` still writes every category."""

_KIND_CODES = {"good": 0, "logical": 1, "structural": 2}
"""Stable numbers for seeding; never reorder (it would change every generated image)."""

MIN_SIZE = 32


@dataclass(frozen=True)
class SynthSettings:
    """What to generate.

    Attributes:
        out: output folder; each category goes to ``out/<category>``.
        categories: category names; ``DEFAULT_CATEGORIES`` (not all of ``CATEGORIES``) by default.
        seed: base seed; the same settings always give byte-identical files.
        n_train: good training images.
        n_validation: good validation images.
        n_test_good: good test images.
        n_logical: logical-anomaly test images (subtypes cycle in a fixed order); a category without
            logical subtypes (``textured_plate``) gets none, whatever this says.
        n_structural: structural-anomaly test images (subtypes cycle in a fixed order).
        size: side of the square images in pixels.
    """

    out: Path
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    seed: int = 0
    n_train: int = 60
    n_validation: int = 20
    n_test_good: int = 20
    n_logical: int = 20
    n_structural: int = 20
    size: int = 256

    def __post_init__(self) -> None:
        # Frozen, so normalise through object.__setattr__: callers may pass a str and a list.
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "categories", tuple(self.categories))
        for name in self.categories:
            category_spec(name)
        counts = (self.n_train, self.n_validation, self.n_test_good, self.n_logical, self.n_structural)
        if min(counts) < 0 or self.seed < 0:
            raise SettingsError("image counts and the seed must not be negative")
        if self.size < MIN_SIZE:
            raise SettingsError(f"size must be at least {MIN_SIZE} px, got {self.size}")


@dataclass(frozen=True)
class ImageJob:
    """One image to generate: where it goes and which anomaly subtype it shows (``None`` = good)."""

    split: str
    kind: str
    index: int
    anomaly: str | None


def category_spec(name: str) -> CategorySpec:
    """The category called ``name``; a ``SettingsError`` lists the valid names otherwise."""
    if name not in CATEGORIES:
        raise SettingsError(f"unknown synthetic category {name!r}; valid names: {', '.join(CATEGORIES)}")
    return CATEGORIES[name]


def plan(spec: CategorySpec, settings: SynthSettings) -> list[ImageJob]:
    """Every image of a category in writing order; anomaly subtypes cycle so each is balanced.

    An anomaly kind the category has no subtypes of gets no images (a surface has no logical
    anomalies): an empty folder is a valid LOCO layout, a good image filed as an anomaly is not.
    """
    groups = (("train", "good", settings.n_train), ("validation", "good", settings.n_validation),
              ("test", "good", settings.n_test_good), ("test", "logical", settings.n_logical),
              ("test", "structural", settings.n_structural))
    jobs = []
    for split, kind, n in groups:
        subtypes = spec.anomaly_kinds(kind)
        n = n if kind == "good" or subtypes else 0
        jobs += [ImageJob(split, kind, i, subtypes[i % len(subtypes)] if subtypes else None) for i in range(n)]
    return jobs


def image_rng(seed: int, category: str, job: ImageJob) -> np.random.Generator:
    """An independent stream per image: no image depends on how many others are generated."""
    # crc32, not hash(): Python randomises str hashes per process.
    entropy = [seed, zlib.crc32(category.encode()), SPLITS.index(job.split), _KIND_CODES[job.kind], job.index]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _info(spec: CategorySpec, settings: SynthSettings, jobs: list[ImageJob]) -> dict:
    return {
        "category": spec.name,
        "seed": settings.seed,
        "size": settings.size,
        "classes": {str(k): v for k, v in spec.classes.items()},
        "rules": list(spec.rules),
        "logical_anomalies": list(spec.logical),
        "structural_anomalies": list(spec.structural),
        "images": {image_relpath(j.split, j.kind, j.index): j.anomaly for j in jobs if j.anomaly},
    }


def _make_folders(root: Path) -> None:
    """All LOCO folders exist even when a count is zero, so loaders see a complete layout."""
    for split, kind in (("train", "good"), ("validation", "good"), ("test", "good"),
                        ("test", "logical"), ("test", "structural")):
        for base in (root, root / COMPONENTS_DIR):
            (base / split / LOCO_KIND_FOLDERS[kind]).mkdir(parents=True, exist_ok=True)
    for kind in ("logical", "structural"):
        (root / GROUND_TRUTH_DIR / LOCO_KIND_FOLDERS[kind]).mkdir(parents=True, exist_ok=True)


def generate_category(name: str, settings: SynthSettings, progress: ProgressFn = no_progress) -> Path:
    """Write one category to ``settings.out/<name>`` (replacing it only once complete)."""
    spec = category_spec(name)
    jobs = plan(spec, settings)
    stage = f"synth:{name}"
    with staged_folder(settings.out / name) as tmp:
        _make_folders(tmp)
        for done, job in enumerate(jobs, start=1):
            rendered = spec.render(image_rng(settings.seed, name, job), settings.size, job.anomaly)
            write_sample(tmp, job.split, job.kind, job.index, rendered)
            progress(stage, done, len(jobs))
        write_info(tmp, _info(spec, settings, jobs))
    return settings.out / name


def generate(settings: SynthSettings, progress: ProgressFn = no_progress) -> list[Path]:
    """Write every category of ``settings``; returns the category folders in order."""
    for name in settings.categories:
        category_spec(name)
    return [generate_category(name, settings, progress) for name in settings.categories]
