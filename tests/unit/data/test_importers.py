"""Image + mask and YOLO importers: plan (nothing written), LOCO write, atomicity, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.__main__ import main
from pipeline.data import import_write
from pipeline.data.importer import detect_layout, import_into_workspace, plan_imports
from pipeline.data.loco import load_loco_category
from pipeline.data.samples import DataError
from pipeline.workspace import Workspace


def _image(path: Path, seed: int = 0, size: tuple[int, int] = (20, 8), gray: bool = False) -> None:
    """A random image of ``size`` (width, height); the suffix picks the format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0]) if gray else (size[1], size[0], 3)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)).save(path)


def _mask(path: Path, region: tuple[slice, slice] | None, size: tuple[int, int] = (20, 8), value: int = 1) -> np.ndarray:
    """A mask PNG (any non-zero value is defect) with ``region`` set; returns the expected 0/255 mask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[1], size[0]), np.uint8)
    if region is not None:
        array[region] = value
    Image.fromarray(array).save(path)
    return (array > 0).astype(np.uint8) * 255


def _gt(category: Path, stem: str) -> np.ndarray:
    return np.asarray(Image.open(category / "ground_truth" / "structural_anomalies" / stem / "000.png"))


def _only_plan(root: Path, **kwargs):
    found = plan_imports(root, **kwargs)
    assert not found.errors
    [plan] = found.plans
    return plan


@pytest.fixture
def mask_set(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """images/ + masks/: g1 empty mask, g2 no mask, g3 + g4 empty, d1.jpg with a PNG mask of value 1."""
    root = tmp_path / "plates"
    for i, stem in enumerate(("g1", "g2", "g3", "g4")):
        _image(root / "images" / f"{stem}.png", seed=i)
    for stem in ("g1", "g3", "g4"):
        _mask(root / "masks" / f"{stem}.png", None)
    _image(root / "images" / "d1.jpg", seed=9)
    expected = _mask(root / "masks" / "d1.png", (slice(1, 4), slice(2, 9)))
    return root, expected


def test_mask_pairs_plan_then_write(mask_set, tmp_path):
    root, expected = mask_set
    assert detect_layout(root) == "masks"
    plan = _only_plan(root)
    assert (plan.name, plan.layout, plan.n_good, plan.n_defective) == ("plates", "masks", 4, 1)
    assert not (tmp_path / "out").exists() and not plan.bad_files  # planning writes nothing
    assert "4 good, 1 defective, 0 skipped, 0 grayscale" in plan.summary()

    target = import_write.write_loco_category(plan, tmp_path / "out" / "plates")
    data = load_loco_category(target)
    [defect] = data.select("test", "structural")
    assert defect.path.name == "d1.jpg"
    assert defect.path.read_bytes() == (root / "images" / "d1.jpg").read_bytes()  # copied, not re-encoded
    np.testing.assert_array_equal(_gt(target, "d1"), expected)
    goods = sorted(s.path.name for s in data.samples if s.kind == "good")
    assert goods == ["g1.png", "g2.png", "g3.png", "g4.png"]
    assert data.select("train") and data.select("validation") and data.select("test", "good")
    assert [p.name for p in tmp_path.joinpath("out").iterdir()] == ["plates"]  # no temporary folder left


def test_split_folders_with_repeated_names_are_prefixed(tmp_path):
    root = tmp_path / "metal_plate"
    for split in ("train", "val"):
        for i in range(3):
            _image(root / split / "images" / f"{i:03d}.png", seed=i)
        _mask(root / split / "masks" / "000.png", (slice(0, 2), slice(0, 2)))
    _image(root / "test" / "images" / "009.png", seed=7)  # no masks/ folder there: good
    (root / "eda").mkdir()  # a folder without images/ is not a split
    plan = _only_plan(root)
    names = sorted(i.name for i in plan.images)
    assert names == ["009.png", "train_000.png", "train_001.png", "train_002.png",
                     "val_000.png", "val_001.png", "val_002.png"]
    assert {i.name for i in plan.images if i.kind == "structural"} == {"train_000.png", "val_000.png"}
    assert all(i.split == "test" for i in plan.images if i.kind == "structural")
    assert plan.counts[-1] == ("test", "structural", 2)


def test_yolo_polygons_rasterised_empty_and_missing_labels_are_good(tmp_path):
    root = tmp_path / "Datasets"
    for i in range(4):
        _image(root / "images" / "train" / f"{i:03d}.jpg", seed=i)
    labels = root / "labels" / "train"
    labels.mkdir(parents=True)
    # x * 20 and y * 8 land on whole pixels: 5..15 by 2..6, outline included; a second line adds a corner.
    (labels / "000.txt").write_text("0 0.25 0.25 0.75 0.25 0.75 0.75 0.25 0.75\n1 0 0 0.1 0 0 0.125\n")
    (labels / "001.txt").write_text("")
    (labels / "002.txt").write_text("\n  \n")
    # 003.jpg has no label file at all.
    assert detect_layout(root) == "yolo"
    plan = _only_plan(root)
    assert plan.name == tmp_path.name  # "Datasets" names nothing: the parent does
    assert (plan.n_good, plan.n_defective) == (3, 1)

    target = import_write.write_loco_category(plan, tmp_path / "out" / "ksdd")
    expected = np.zeros((8, 20), np.uint8)
    expected[2:7, 5:16] = 255
    expected[0, 0:3] = expected[1, 0] = 255  # triangle (0,0) (2,0) (0,1)
    np.testing.assert_array_equal(_gt(target, "000"), expected)
    assert [s.path.name for s in load_loco_category(target).select("test", "structural")] == ["000.jpg"]


def test_bad_yolo_lines_and_unpaired_labels_are_listed(tmp_path):
    root = tmp_path / "set"
    for i in range(5):
        _image(root / "images" / f"{i}.png", seed=i)
    labels = root / "labels"
    labels.mkdir()
    (labels / "0.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # a detection box
    (labels / "1.txt").write_text("0 10 10 200 10 200 300\n")  # pixels, not fractions
    (labels / "9.txt").write_text("0 0.1 0.1 0.2 0.1 0.2 0.2\n")  # no 9.png
    plan = _only_plan(root, layout="yolo")
    reasons = {b.path.name: b.reason for b in plan.bad_files}
    assert "box" in reasons["0.txt"] and "0.png skipped" in reasons["0.txt"]
    assert "outside [0, 1]" in reasons["1.txt"]
    assert "no image of the same name" in reasons["9.txt"]
    assert sorted(i.name for i in plan.images) == ["2.png", "3.png", "4.png"]


def test_grayscale_corrupt_and_bad_masks_are_reported(tmp_path):
    root = tmp_path / "parts"
    for i in range(3):
        _image(root / "images" / f"good_{i}.png", seed=i)
    _image(root / "images" / "gray.png", seed=5, gray=True)
    (root / "images" / "broken.png").write_bytes(b"not a png at all")
    _image(root / "images" / "small_mask.png", seed=6)
    _mask(root / "masks" / "small_mask.png", (slice(0, 1), slice(0, 1)), size=(10, 4))
    _image(root / "images" / "bad_mask.png", seed=7)
    (root / "masks" / "bad_mask.png").write_bytes(b"")
    _mask(root / "masks" / "orphan_mask.png", None)
    plan = _only_plan(root)
    reasons = {b.path.name: b.reason for b in plan.bad_files}
    assert set(reasons) == {"broken.png", "small_mask.png", "bad_mask.png", "orphan_mask.png"}
    assert "not an image" in reasons["broken.png"]
    assert "10x4 px but small_mask.png is 20x8 px" in reasons["small_mask.png"]
    assert "unreadable" in reasons["bad_mask.png"] and "image skipped" in reasons["bad_mask.png"]
    assert [p.name for p in plan.grayscale] == ["gray.png"]
    assert sorted(i.name for i in plan.images) == ["good_0.png", "good_1.png", "good_2.png", "gray.png"]
    assert "skipped" in plan.summary() and "broken.png" in plan.summary()

    target = import_write.write_loco_category(plan, tmp_path / "out" / "parts")
    data = load_loco_category(target)
    assert [p.name for p in data.grayscale] == ["gray.png"] and not data.bad_files
    assert "test" not in data.counts()  # no defects: no test-good either


def test_mixed_sizes_are_accepted(tmp_path):
    root = tmp_path / "mixed"
    _image(root / "images" / "a.png", size=(20, 8))
    _image(root / "images" / "b.png", size=(16, 12))
    _image(root / "images" / "c.png", size=(16, 12))
    _image(root / "images" / "d.png", size=(16, 12))
    _mask(root / "masks" / "d.png", (slice(0, 3), slice(0, 3)), size=(16, 12))
    plan = _only_plan(root)
    assert plan.sizes == ((16, 12), (20, 8))
    assert "2 different" in plan.summary()


def test_too_few_good_images_and_unknown_folders_are_clear_errors(tmp_path):
    root = tmp_path / "defects_only"
    for i in range(2):
        _image(root / "images" / f"{i}.png", seed=i)
        _mask(root / "masks" / f"{i}.png", (slice(0, 2), slice(0, 2)))
    with pytest.raises(DataError, match="only 0 good image"):
        plan_imports(root)
    (tmp_path / "loose").mkdir()
    _image(tmp_path / "loose" / "x.png")
    with pytest.raises(DataError, match=r"is not a category folder.*image \+ mask folders.*YOLO segmentation labels"):
        plan_imports(tmp_path / "loose")


def test_a_failed_write_leaves_nothing(mask_set, tmp_path, monkeypatch):
    root, _ = mask_set
    plan = _only_plan(root)
    ws = Workspace.create(tmp_path / "ws")

    def broken(item):
        raise OSError("disk full")

    monkeypatch.setattr(import_write, "ground_truth", broken)
    with pytest.raises(OSError, match="disk full"):
        import_into_workspace(ws, plan)
    assert list((tmp_path / "ws" / "data").iterdir()) == []
    assert ws.categories() == []

    # A failed re-import keeps the earlier copy as it was.
    monkeypatch.undo()
    target = import_into_workspace(ws, plan).data_root
    before = sorted(p.relative_to(target) for p in target.rglob("*"))
    monkeypatch.setattr(import_write, "ground_truth", broken)
    with pytest.raises(OSError):
        import_into_workspace(ws, plan)
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before
    assert [p.name for p in (tmp_path / "ws" / "data").iterdir()] == ["plates"]


def test_a_file_gone_since_the_check_is_a_clear_error_and_writes_nothing(mask_set, tmp_path):
    root, _ = mask_set
    plan = _only_plan(root)
    (root / "images" / "g4.png").unlink()
    with pytest.raises(DataError, match="g4.png is gone since the folder was checked"):
        import_write.write_loco_category(plan, tmp_path / "out" / "plates")
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_prints_the_plan_then_registers_the_converted_copy(mask_set, tmp_path, capsys):
    root, expected = mask_set
    ws = tmp_path / "ws"
    assert main(["import", "--workspace", str(ws), "--data", str(root), "--category", "steel"]) == 0
    out = capsys.readouterr().out
    assert out.index("steel: image + mask folders in") < out.index("4 good, 1 defective") < out.index("registered steel")
    [record] = Workspace.open(ws).categories()
    assert (record.name, record.layout, record.data_root) == ("steel", "loco", ws / "data" / "steel")
    np.testing.assert_array_equal(_gt(record.data_root, "d1"), expected)


def test_cli_keeps_plain_folders_in_place(tmp_path, capsys):
    for i in range(3):
        _image(tmp_path / "parts" / "good" / f"{i}.png", seed=i)
    ws = tmp_path / "ws"
    assert main(["import", "--workspace", str(ws), "--data", str(tmp_path / "parts")]) == 0
    out = capsys.readouterr().out
    assert "parts: plain good/ + bad/ folders" in out and out.rstrip().endswith("registered parts")
    [record] = Workspace.open(ws).categories()
    assert (record.layout, record.data_root) == ("folder", (tmp_path / "parts").resolve())
    assert not (ws / "data").exists()


def test_cli_layout_option_and_errors(mask_set, tmp_path, capsys):
    root, _ = mask_set
    assert main(["import", "--workspace", str(tmp_path / "ws"), "--data", str(root), "--layout", "yolo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no images/ folder with a labels/ folder beside it" in err
    assert "Accepted layouts:" in err and "\n" not in err.rstrip()
    assert not (tmp_path / "ws").exists()  # planning failed: nothing created
