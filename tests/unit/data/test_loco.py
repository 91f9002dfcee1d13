"""MVTec LOCO AD loader: layout checks, sorting, masks, components and bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.data.discover import find_categories, load_category
from pipeline.data.loco import is_loco_category, load_loco_category
from pipeline.data.samples import DataError

# Deliberately not in name order: the loader must sort whatever the file system returns.
SHUFFLED = ["003", "000", "002", "001"]


def _write(path: Path, seed: int = 0, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (16, 16, 3) if mode == "RGB" else (16, 16)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)


def _mask(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:8] = 255
    Image.fromarray(mask).save(path)


def make_loco(root: Path, validation: bool = True, test: bool = True) -> Path:
    for i, stem in enumerate(SHUFFLED):
        _write(root / "train" / "good" / f"{stem}.png", i)
    if validation:
        for stem in ["001", "000"]:
            _write(root / "validation" / "good" / f"{stem}.png", 10)
    if test:
        for stem in ["001", "000"]:
            _write(root / "test" / "good" / f"{stem}.png", 20)
        for stem in ["002", "000", "001"]:
            _write(root / "test" / "logical_anomalies" / f"{stem}.png", 30)
            _mask(root / "ground_truth" / "logical_anomalies" / stem / "000.png")
        _mask(root / "ground_truth" / "logical_anomalies" / "001" / "001.png")
        _write(root / "test" / "structural_anomalies" / "000.png", 40)
        _mask(root / "ground_truth" / "structural_anomalies" / "000" / "000.png")
    return root


def test_is_loco_category(tmp_path: Path) -> None:
    assert is_loco_category(make_loco(tmp_path / "cat"))
    (tmp_path / "other" / "good").mkdir(parents=True)
    assert not is_loco_category(tmp_path / "other")


def test_loads_sorted_samples_in_split_kind_order(tmp_path: Path) -> None:
    data = load_loco_category(make_loco(tmp_path / "pushpins"))
    assert data.name == "pushpins" and data.layout == "loco"
    assert [s.key for s in data.samples] == [
        "train/good/000.png",
        "train/good/001.png",
        "train/good/002.png",
        "train/good/003.png",
        "validation/good/000.png",
        "validation/good/001.png",
        "test/good/000.png",
        "test/good/001.png",
        "test/logical/000.png",
        "test/logical/001.png",
        "test/logical/002.png",
        "test/structural/000.png",
    ]
    assert data.counts() == {
        "train": {"good": 4},
        "validation": {"good": 2},
        "test": {"good": 2, "logical": 3, "structural": 1},
    }
    assert all(s.path.is_absolute() and s.path.is_file() for s in data.samples)
    assert data.bad_files == () and data.grayscale == ()


def test_masks_matched_by_stem_and_sorted(tmp_path: Path) -> None:
    root = make_loco(tmp_path / "cat")
    data = load_loco_category(root)
    by_key = {s.key: s for s in data.samples}
    gt = root.absolute() / "ground_truth"
    assert by_key["test/logical/001.png"].mask_paths == (
        gt / "logical_anomalies" / "001" / "000.png",
        gt / "logical_anomalies" / "001" / "001.png",
    )
    assert by_key["test/logical/002.png"].mask_paths == (gt / "logical_anomalies" / "002" / "000.png",)
    assert by_key["test/structural/000.png"].mask_paths == (
        gt / "structural_anomalies" / "000" / "000.png",
    )
    assert all(s.mask_paths == () for s in data.samples if s.kind == "good")


def test_component_path_when_present(tmp_path: Path) -> None:
    root = make_loco(tmp_path / "cat")
    _write(root / "components" / "train" / "good" / "001.png", 0, mode="L")
    data = load_loco_category(root)
    by_key = {s.key: s for s in data.samples}
    assert by_key["train/good/001.png"].component_path == root.absolute() / "components/train/good/001.png"
    assert by_key["train/good/000.png"].component_path is None


def test_corrupt_and_truncated_reported_and_skipped(tmp_path: Path) -> None:
    root = make_loco(tmp_path / "cat")
    (root / "train" / "good" / "004.png").write_bytes(np.random.default_rng(1).bytes(400))
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(big)
    data_bytes = big.read_bytes()
    (root / "test" / "good" / "002.png").write_bytes(data_bytes[: len(data_bytes) // 2])
    data = load_loco_category(root)
    assert [(b.path.name, b.path.parent.name) for b in data.bad_files] == [
        ("004.png", "good"),
        ("002.png", "good"),
    ]
    assert "not an image" in data.bad_files[0].reason
    assert "truncated" in data.bad_files[1].reason
    keys = {s.key for s in data.samples}
    assert "train/good/004.png" not in keys and "test/good/002.png" not in keys
    assert data.counts()["train"]["good"] == 4


def test_grayscale_flagged(tmp_path: Path) -> None:
    root = make_loco(tmp_path / "cat")
    _write(root / "train" / "good" / "009.png", 5, mode="L")
    data = load_loco_category(root)
    assert data.grayscale == (root.absolute() / "train" / "good" / "009.png",)
    assert "train/good/009.png" in {s.key for s in data.samples}


def test_unknown_test_folder_reported(tmp_path: Path) -> None:
    root = make_loco(tmp_path / "cat")
    _write(root / "test" / "scratch" / "000.png")
    data = load_loco_category(root)
    assert [b.path.name for b in data.bad_files] == ["scratch"]
    assert "unknown test folder" in data.bad_files[0].reason


def test_without_test_folder_is_fine(tmp_path: Path) -> None:
    data = load_loco_category(make_loco(tmp_path / "cat", test=False))
    assert data.select("test") == []
    assert len(data.select("train")) == 4


def test_missing_folder_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere.*does not exist"):
        load_loco_category(tmp_path / "nowhere")


def test_not_loco_error_explains_layouts(tmp_path: Path) -> None:
    _write(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match="flat is not an MVTec LOCO AD category") as info:
        load_loco_category(tmp_path / "flat")
    assert "train/good/*.png" in str(info.value) and "plain-folder mode" in str(info.value)


def test_empty_train_error_names_folder(tmp_path: Path) -> None:
    (tmp_path / "cat" / "train" / "good").mkdir(parents=True)
    (tmp_path / "cat" / "train" / "good" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"no images in .*cat/train/good \(looked for \.png, "):
        load_loco_category(tmp_path / "cat")


def test_all_unreadable_train_error(tmp_path: Path) -> None:
    (tmp_path / "cat" / "train" / "good").mkdir(parents=True)
    (tmp_path / "cat" / "train" / "good" / "x.png").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"no readable images in .*train/good.*x.png"):
        load_loco_category(tmp_path / "cat")


def test_missing_validation_error(tmp_path: Path) -> None:
    root = make_loco(tmp_path / "cat", validation=False)
    with pytest.raises(DataError, match=r"cat/validation/good is missing: .*plain-folder mode"):
        load_loco_category(root)


def test_empty_validation_error(tmp_path: Path) -> None:
    root = make_loco(tmp_path / "cat", validation=False)
    (root / "validation" / "good").mkdir(parents=True)
    with pytest.raises(DataError, match=r"validation/good has no images.*normalisation"):
        load_loco_category(root)


def test_discover_picks_loco_and_lists_categories(tmp_path: Path) -> None:
    make_loco(tmp_path / "zeta")
    make_loco(tmp_path / "alpha")
    _write(tmp_path / "plain" / "good" / "a.png")
    _write(tmp_path / "plain" / "good" / "b.png", 1)
    (tmp_path / "notes").mkdir()
    (tmp_path / ".cache" / "train" / "good").mkdir(parents=True)
    assert find_categories(tmp_path) == ["alpha", "plain", "zeta"]
    assert find_categories(tmp_path / "alpha") == []  # a category itself: caller loads it directly
    assert load_category(tmp_path / "alpha").layout == "loco"
    plain = load_category(tmp_path / "plain")
    assert plain.layout == "folder" and plain.name == "plain"


def test_discover_rejects_unknown_layout(tmp_path: Path) -> None:
    _write(tmp_path / "stuff" / "a.png")
    with pytest.raises(DataError, match=r"stuff is not a category folder.*LOCO.*plain folders"):
        load_category(tmp_path / "stuff")
    with pytest.raises(DataError, match="does not exist"):
        find_categories(tmp_path / "missing")
