"""Plain-folder mode: hash split, bad kinds, errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.data.folders import FolderSplit, load_folder_category, split_good
from pipeline.data.samples import DataError


def _write(path: Path, seed: int = 0, gray: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (16, 16) if gray else (16, 16, 3)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)).save(path)


def _goods(folder: Path, count: int) -> list[str]:
    names = [f"img_{i:03d}.png" for i in range(count)]
    for i, name in enumerate(random.Random(0).sample(names, len(names))):  # shuffled creation
        _write(folder / name, i)
    return names


def _assignment(data) -> dict[str, str]:
    return {s.path.name: s.split for s in data.samples if s.kind == "good"}


def test_split_covers_all_sorted_and_reproducible(tmp_path: Path) -> None:
    names = _goods(tmp_path / "cat" / "good", 40)
    first = load_folder_category(tmp_path / "cat" / "good")
    second = load_folder_category(tmp_path / "cat" / "good")
    assert first == second
    assert first.name == "cat" and first.layout == "folder"
    assert sorted(_assignment(first)) == names
    counts = first.counts()
    assert set(counts) == {"train", "validation"}  # no bad folder: no test split
    assert counts["validation"]["good"] >= 1
    for split in ("train", "validation"):
        split_names = [s.path.name for s in first.select(split)]
        assert split_names == sorted(split_names)


def test_split_stable_when_file_added(tmp_path: Path) -> None:
    good = tmp_path / "good"
    _goods(good, 30)
    before = _assignment(load_folder_category(good, split=FolderSplit(seed=3)))
    _write(good / "zz_new.png", 99)
    after = _assignment(load_folder_category(good, split=FolderSplit(seed=3)))
    assert {name: after[name] for name in before} == before
    assert "zz_new.png" in after


def test_seed_changes_split(tmp_path: Path) -> None:
    good = tmp_path / "good"
    _goods(good, 30)
    a = _assignment(load_folder_category(good, split=FolderSplit(seed=0)))
    b = _assignment(load_folder_category(good, split=FolderSplit(seed=1)))
    assert a != b


def test_fractions_roughly_respected_with_bad_folder() -> None:
    paths = [Path(f"/x/{i:04d}.png") for i in range(2000)]
    groups = split_good(paths, FolderSplit(validation_fraction=0.2, test_fraction=0.1), with_test=True)
    assert sum(len(g) for g in groups.values()) == 2000
    assert 0.17 < len(groups["validation"]) / 2000 < 0.23
    assert 0.07 < len(groups["test"]) / 2000 < 0.13
    no_test = split_good(paths, FolderSplit(validation_fraction=0.2, test_fraction=0.1), with_test=False)
    assert no_test["test"] == [] and no_test["validation"] == groups["validation"]


@pytest.mark.parametrize("count", [2, 3, 4])
def test_small_sets_get_train_validation_and_test(count: int) -> None:
    paths = [Path(f"/x/{i}.png") for i in range(count)]
    for seed in range(20):
        groups = split_good(paths, FolderSplit(seed=seed), with_test=True)
        assert len(groups["train"]) >= 1 and len(groups["validation"]) >= 1
        if count >= 3:
            assert len(groups["test"]) >= 1
        assert sorted(sum(groups.values(), [])) == sorted(paths)


def test_bad_folder_plain_images_are_kind_bad(tmp_path: Path) -> None:
    _goods(tmp_path / "good", 20)
    _write(tmp_path / "bad" / "b2.png", 1)
    _write(tmp_path / "bad" / "b1.png", 2)
    data = load_folder_category(tmp_path / "good", tmp_path / "bad", name="parts")
    assert data.name == "parts"
    bad = data.select("test", "bad")
    assert [s.path.name for s in bad] == ["b1.png", "b2.png"]
    assert all(s.is_anomalous and s.mask_paths == () for s in bad)
    assert data.counts()["test"]["good"] >= 1
    assert [s.split for s in data.samples] == sorted(
        (s.split for s in data.samples), key=["train", "validation", "test"].index
    )


def test_bad_subfolders_give_kinds(tmp_path: Path) -> None:
    _goods(tmp_path / "good", 10)
    _write(tmp_path / "bad" / "structural" / "s1.png", 1)
    _write(tmp_path / "bad" / "logical" / "l2.png", 2)
    _write(tmp_path / "bad" / "logical" / "l1.png", 3)
    data = load_folder_category(tmp_path / "good", tmp_path / "bad")
    assert [s.key for s in data.select("test") if s.kind != "good"] == [
        "test/logical/l1.png",
        "test/logical/l2.png",
        "test/structural/s1.png",
    ]


def test_bad_and_gray_files_reported(tmp_path: Path) -> None:
    _goods(tmp_path / "good", 6)
    (tmp_path / "good" / "broken.png").write_bytes(np.random.default_rng(0).bytes(300))
    _write(tmp_path / "good" / "gray.png", 7, gray=True)
    _write(tmp_path / "bad" / "x.png", 8, gray=True)
    data = load_folder_category(tmp_path / "good", tmp_path / "bad")
    assert [b.path.name for b in data.bad_files] == ["broken.png"]
    assert "broken.png" not in {s.path.name for s in data.samples}
    assert sorted(p.name for p in data.grayscale) == ["gray.png", "x.png"]


def test_empty_good_folder_error(tmp_path: Path) -> None:
    (tmp_path / "good").mkdir()
    with pytest.raises(DataError, match=r"no images in .*good \(looked for"):
        load_folder_category(tmp_path / "good")


def test_single_good_image_error(tmp_path: Path) -> None:
    _write(tmp_path / "good" / "only.png")
    with pytest.raises(DataError, match="at least two good images"):
        load_folder_category(tmp_path / "good")


def test_missing_and_empty_bad_folder_errors(tmp_path: Path) -> None:
    _goods(tmp_path / "good", 4)
    with pytest.raises(DataError, match="nobad.*does not exist"):
        load_folder_category(tmp_path / "good", tmp_path / "nobad")
    (tmp_path / "bad").mkdir()
    with pytest.raises(DataError, match=r"no images in .*bad"):
        load_folder_category(tmp_path / "good", tmp_path / "bad")


def test_invalid_fractions() -> None:
    with pytest.raises(ValueError):
        FolderSplit(validation_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ValueError):
        FolderSplit(validation_fraction=-0.1)
