"""Plain-folder mode: a folder of good images, optionally a folder of bad ones.

The good images are split into train / validation / test-good by a hash of (seed, file name)
rather than by shuffling the list: adding or removing an image then never moves any other
image between splits, so a model trained yesterday is still evaluated on unseen images today.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.data.images import FolderScan, no_images_reason, scan_folder
from pipeline.data.samples import BadFile, CategoryData, DataError, Sample
from pipeline.errors import SettingsError

BAD_KIND_FOLDERS = {"logical": "logical", "structural": "structural"}
"""Sub-folders of the bad folder that give their images a defect kind instead of ``bad``."""


@dataclass(frozen=True)
class FolderSplit:
    """How good images are divided in plain-folder mode.

    Attributes:
        validation_fraction: share of good images used for validation (at least one image
            whenever there are two or more good images).
        test_fraction: share of good images held out as test-good; only used when a bad
            folder is given (otherwise there is no test set and these images train).
        seed: changes which images land in which split.
    """

    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0

    def __post_init__(self) -> None:
        for label, value in (("validation", self.validation_fraction), ("test", self.test_fraction)):
            if not 0.0 <= value < 1.0:
                raise SettingsError(f"{label}_fraction must be in [0, 1), got {value}")
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise SettingsError("validation_fraction + test_fraction must leave images for training")


def _unit_hash(seed: int, file_name: str) -> float:
    """Deterministic value in [0, 1) per (seed, name), independent of the other files."""
    digest = hashlib.sha256(f"{seed}\0{file_name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _move_lowest(source: list[tuple[float, Path]], target: list[tuple[float, Path]]) -> None:
    """Move the lowest-hash image (the one closest to the lower splits' band) to ``target``."""
    item = min(source)
    source.remove(item)
    target.append(item)


def split_good(paths: list[Path], split: FolderSplit, with_test: bool) -> dict[str, list[Path]]:
    """Assign good images to ``train`` / ``validation`` / ``test`` (lists sorted by name).

    Hash bands: [0, v) validation, [v, v + t) test (only ``with_test``), the rest train. Small
    sets are then patched so train is never empty, validation has an image when there are two,
    and test-good has one when there are three and a bad folder.
    """
    test_fraction = split.test_fraction if with_test else 0.0
    groups: dict[str, list[tuple[float, Path]]] = {"train": [], "validation": [], "test": []}
    for path in paths:
        u = _unit_hash(split.seed, path.name)
        if u < split.validation_fraction:
            groups["validation"].append((u, path))
        elif u < split.validation_fraction + test_fraction:
            groups["test"].append((u, path))
        else:
            groups["train"].append((u, path))
    train, validation, test = groups["train"], groups["validation"], groups["test"]
    if not train:
        item = max(validation + test)
        (validation if item in validation else test).remove(item)
        train.append(item)
    if len(paths) >= 2 and not validation:
        _move_lowest(train if len(train) > 1 else test, validation)
    if with_test and len(paths) >= 3 and not test:
        _move_lowest(train if len(train) > 1 else validation, test)
    return {key: sorted((p for _, p in group), key=lambda p: p.name) for key, group in groups.items()}


def _bad_samples(bad_dir: Path) -> tuple[list[Sample], list[Path], list[BadFile]]:
    """Test samples from the bad folder: its own images as ``bad``, kind sub-folders by kind."""
    scans: list[tuple[str, FolderScan]] = [("bad", scan_folder(bad_dir))]
    for kind, folder in BAD_KIND_FOLDERS.items():
        if (bad_dir / folder).is_dir():
            scans.append((kind, scan_folder(bad_dir / folder)))
    samples: list[Sample] = []
    grayscale: list[Path] = []
    bad: list[BadFile] = []
    # KINDS order puts logical and structural before bad; keep the category sorted that way.
    for kind, scan in sorted(scans, key=lambda ks: ("logical", "structural", "bad").index(ks[0])):
        samples.extend(Sample(path, "test", kind) for path in scan.readable)
        grayscale.extend(scan.grayscale)
        bad.extend(scan.bad)
    if not any(scan.files for _, scan in scans):
        raise DataError(f"{no_images_reason(scans[0][1])} nor in its logical/ or structural/ sub-folders")
    return samples, grayscale, bad


def _default_name(good_dir: Path) -> str:
    # <category>/good is the documented layout; naming the category "good" would be useless.
    return good_dir.parent.name if good_dir.name.lower() == "good" else good_dir.name


def load_folder_category(
    good_dir: Path,
    bad_dir: Path | None = None,
    name: str | None = None,
    split: FolderSplit = FolderSplit(),
) -> CategoryData:
    """Read a plain folder of good images (and optionally one of bad images) as a category."""
    good_dir = Path(good_dir).expanduser().absolute()
    if not good_dir.is_dir():
        raise DataError(f"good-image folder {good_dir} does not exist")
    good = scan_folder(good_dir)
    if not good.readable:
        raise DataError(no_images_reason(good))
    if len(good.readable) < 2:
        raise DataError(
            f"only one readable image in {good_dir}: plain-folder mode needs at least two good "
            "images (one to train on, one for validation)"
        )
    bad_samples: list[Sample] = []
    bad_gray: list[Path] = []
    bad_files: list[BadFile] = list(good.bad)
    if bad_dir is not None:
        bad_dir = Path(bad_dir).expanduser().absolute()
        if not bad_dir.is_dir():
            raise DataError(f"bad-image folder {bad_dir} does not exist")
        bad_samples, bad_gray, more_bad = _bad_samples(bad_dir)
        bad_files.extend(more_bad)
    groups = split_good(list(good.readable), split, with_test=bad_dir is not None)
    samples = [Sample(p, key, "good") for key in ("train", "validation", "test") for p in groups[key]]
    gray_set = set(good.grayscale)
    grayscale = [s.path for s in samples if s.path in gray_set] + bad_gray
    return CategoryData(
        name=name or _default_name(good_dir),
        root=good_dir,
        layout="folder",
        samples=tuple(samples + bad_samples),
        grayscale=tuple(grayscale),
        bad_files=tuple(bad_files),
    )
