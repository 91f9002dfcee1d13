"""Workspace & data page: open/create a workspace, demo data, imports, bad-file report, image grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.workspace import Workspace
from tests.conftest import TINY_DEMO

PAGE = "pages/workspace_data.py"
OPEN_BUTTON = "FormSubmitter:open_workspace-Open workspace"
CHECK_BUTTON = "FormSubmitter:import_data-Check folder"
IMPORT_BUTTON = "import_button"


def _category_table(at):
    tables = [df.value for df in at.dataframe if "category" in df.value.columns]
    assert len(tables) == 1
    return tables[0]


def _check(app, at, folder: Path, **fields):
    """Type the folder (and ``layout`` / ``name``), press "Check folder": the plan, nothing written."""
    at.text_input("import_folder").input(str(folder))
    if "layout" in fields:
        at.selectbox("import_layout").set_value(fields["layout"])
    if "name" in fields:
        at.text_input("import_name").input(fields["name"])
    at.button(CHECK_BUTTON).click()
    return app.run(at)


def _import(app, at, folder: Path, **fields):
    at = _check(app, at, folder, **fields)
    at.button(IMPORT_BUTTON).click()
    return app.run(at)


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_without_a_workspace_only_the_open_form_shows(app, tmp_path):
    at = app.open(tmp_path / "not_yet")
    assert [i.value for i in at.info] == ["Open or create a workspace to start."]
    assert [b.key for b in at.button] == [OPEN_BUTTON]
    assert at.text_input[0].value == str(tmp_path / "not_yet")
    assert not at.dataframe


def test_form_creates_and_opens_a_workspace(app, tmp_path):
    target = tmp_path / "new_ws"
    at = app.open(tmp_path / "elsewhere")
    at.text_input[0].input(str(target))
    assert at.checkbox[0].value is True  # "Create it if it does not exist"
    at.button(OPEN_BUTTON).click()
    app.run(at)
    assert at.session_state["workspace_path"] == str(target)
    assert Workspace.open(target, create=False).categories() == []
    assert [c.value for c in at.sidebar.caption] == [f"Workspace: `{target}`"]
    assert "No data yet" in at.info[-1].value
    assert {b.key for b in at.button} == {OPEN_BUTTON, "demo_button", CHECK_BUTTON, "FormSubmitter:upload_data-Check upload"}


def test_form_refuses_a_missing_folder_when_not_creating(app, tmp_path):
    start, target = tmp_path / "start", tmp_path / "missing"
    Workspace.create(start)
    at = app.open(start)
    at.text_input[0].input(str(target))
    at.checkbox[0].uncheck()
    at.button(OPEN_BUTTON).click()
    app.run(at)
    assert len(at.error) == 1 and "does not exist" in at.error[0].value
    assert at.session_state["workspace_path"] == str(start)
    assert not target.exists()


def test_demo_button_generates_and_lists_the_demo(app, tmp_path):
    ws_path = tmp_path / "ws"
    Workspace.create(ws_path)
    at = app.open(ws_path)
    at.session_state["demo_settings"] = TINY_DEMO
    at.button("demo_button").click()
    app.run(at)
    assert [s.value for s in at.success] == [f"Demo data generated pin_tray in `{ws_path / 'demo_data'}`."]
    assert [c.name for c in Workspace.open(ws_path).categories()] == ["pin_tray"]

    row = _category_table(at).set_index("category").loc["pin_tray"]
    assert row["layout"] == "loco"
    assert {k: int(row[k]) for k in ("train/good", "validation/good", "test/good", "test/logical", "test/structural")} == {
        "train/good": 8, "validation/good": 4, "test/good": 4, "test/logical": 3, "test/structural": 4,
    }
    assert int(row["unreadable"]) == 0 and int(row["grayscale"]) == 0
    assert "All files readable, all in colour." in [c.value for c in at.caption]

    # The image grid shows the first split/kind group, every image of it.
    group = at.selectbox("grid_group")
    assert group.options == ["test / good", "test / logical", "test / structural", "train / good", "validation / good"]
    assert tuple(group.value) == ("test", "good")
    shown = at.get("image")
    assert len(shown) == int(row[f"{group.value[0]}/{group.value[1]}"])
    assert f"{len(shown)} images in {group.value[0]}/{group.value[1]}" in [c.value for c in at.caption]
    group.set_value(("train", "good"))
    app.run(at)
    assert len(at.get("image")) == 8
    assert "8 images in train/good" in [c.value for c in at.caption]

    # A second click generates nothing new and keeps the one category.
    at.button("demo_button").click()
    app.run(at)
    assert [s.value for s in at.success] == [f"Demo data already present in `{ws_path / 'demo_data'}`."]
    assert len(_category_table(at)) == 1


def test_import_one_loco_category(app, tmp_path, tiny_synth):
    ws_path = tmp_path / "ws"
    Workspace.create(ws_path)
    at = _import(app, app.open(ws_path), tiny_synth / "pin_tray")
    assert [s.value for s in at.success] == ["Imported `pin_tray`: 30 images, 0 unreadable."]
    [record] = Workspace.open(ws_path).categories()
    assert (record.name, record.layout, Path(record.data_root)) == ("pin_tray", "loco", tiny_synth / "pin_tray")
    row = _category_table(at).set_index("category").loc["pin_tray"]
    assert (int(row["train/good"]), int(row["test/structural"])) == (10, 6)


def test_import_a_folder_of_loco_categories(app, tmp_path, tiny_synth):
    ws_path = tmp_path / "ws"
    Workspace.create(ws_path)
    at = _import(app, app.open(ws_path), tiny_synth)
    assert len(at.success) == 2 and not at.error
    assert [c.name for c in Workspace.open(ws_path).categories()] == ["bottle", "pin_tray"]
    assert sorted(_category_table(at)["category"]) == ["bottle", "pin_tray"]
    assert at.selectbox("data_category").options == ["bottle", "pin_tray"]


@pytest.mark.parametrize("case", ["missing", "empty", "mislaid"])
def test_import_of_an_unusable_folder_shows_an_error(app, tmp_path, case):
    ws_path = tmp_path / "ws"
    Workspace.create(ws_path)
    folder = tmp_path / "data"
    if case == "empty":
        folder.mkdir()
    elif case == "mislaid":  # images straight in the folder, no good/ or train/good/
        for i in range(3):
            _write_png(folder / f"img_{i}.png", np.full((16, 16, 3), 40 * i, np.uint8))
    at = _check(app, app.open(ws_path), folder)
    assert len(at.error) == 1
    assert IMPORT_BUTTON not in [b.key for b in at.button]
    expected = "does not exist" if case == "missing" else "is not a category folder"
    assert expected in at.error[0].value
    assert not at.success
    assert Workspace.open(ws_path).categories() == []
    assert "No data yet" in at.info[-1].value


def test_unreadable_and_grayscale_files_are_reported(app, tmp_path):
    ws_path = tmp_path / "ws"
    Workspace.create(ws_path)
    good = tmp_path / "parts" / "good"
    rng = np.random.default_rng(0)
    for i in range(5):
        _write_png(good / f"part_{i}.png", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    _write_png(good / "gray_part.png", rng.integers(0, 255, (32, 32), dtype=np.uint8))
    (good / "broken.png").write_bytes(b"this is not a png")

    at = _import(app, app.open(ws_path), tmp_path / "parts")
    assert [s.value for s in at.success] == ["Imported `parts`: 6 images, 1 unreadable."]
    row = _category_table(at).set_index("category").loc["parts"]
    assert (row["layout"], int(row["unreadable"]), int(row["grayscale"])) == ("folder", 1, 1)

    warnings = [w.value for w in at.warning]
    assert len(warnings) == 2
    assert warnings[0].startswith("1 file(s) could not be read")
    assert warnings[1].startswith("1 grayscale image(s) were converted to RGB")
    bad = [df.value for df in at.dataframe if "reason" in df.value.columns]
    assert len(bad) == 1
    assert [Path(p).name for p in bad[0]["file"]] == ["broken.png"]
    assert "not an image" in bad[0]["reason"][0]
    assert "gray_part.png" in [c.value for c in at.caption]


def test_a_mask_set_shows_its_plan_and_the_button_converts_it(app, tmp_path):
    ws_path = tmp_path / "ws"
    Workspace.create(ws_path)
    root = tmp_path / "plates"
    rng = np.random.default_rng(1)
    for i in range(4):
        _write_png(root / "images" / f"good_{i}.png", rng.integers(0, 255, (16, 24, 3), dtype=np.uint8))
    _write_png(root / "masks" / "good_0.png", np.zeros((16, 24), np.uint8))  # empty mask: good
    _write_png(root / "images" / "dent.png", rng.integers(0, 255, (16, 24, 3), dtype=np.uint8))
    mask = np.zeros((16, 24), np.uint8)
    mask[4:9, 3:12] = 7
    _write_png(root / "masks" / "dent.png", mask)
    (root / "images" / "broken.png").write_bytes(b"half a file")

    at = _check(app, app.open(ws_path), root, name="steel")
    [summary] = [c.value for c in at.code]
    assert summary.startswith(f"steel: image + mask folders in {root}")
    assert "4 good, 1 defective, 1 skipped, 0 grayscale" in summary and "broken.png" in summary
    assert Workspace.open(ws_path).categories() == [] and not (ws_path / "data").exists()  # nothing written yet

    at.button(IMPORT_BUTTON).click()
    app.run(at)
    assert [s.value for s in at.success] == ["Imported `steel`: 5 images, 1 unreadable."]
    app.run(at)
    assert not at.code and IMPORT_BUTTON not in [b.key for b in at.button]  # the plan is spent
    [record] = Workspace.open(ws_path).categories()
    assert (record.name, record.layout, Path(record.data_root)) == ("steel", "loco", ws_path / "data" / "steel")
    row = _category_table(at).set_index("category").loc["steel"]
    assert int(row["test/structural"]) == 1 and int(row["unreadable"]) == 0
    gt = np.asarray(Image.open(ws_path / "data" / "steel" / "ground_truth" / "structural_anomalies" / "dent" / "000.png"))
    np.testing.assert_array_equal(gt, (mask > 0).astype(np.uint8) * 255)


def test_a_yolo_set_chosen_by_layout(app, tmp_path):
    ws_path = tmp_path / "ws"
    Workspace.create(ws_path)
    root = tmp_path / "kolektor" / "Datasets"
    rng = np.random.default_rng(2)
    for i in range(4):
        _write_png(root / "images" / "train" / f"{i:03d}.png", rng.integers(0, 255, (20, 10), dtype=np.uint8))
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "000.txt").write_text("0 0.2 0.2 0.8 0.2 0.8 0.8\n")
    (root / "labels" / "train" / "001.txt").write_text("")

    at = _import(app, app.open(ws_path), root, layout="yolo")
    assert [s.value for s in at.success] == ["Imported `kolektor`: 4 images, 0 unreadable."]
    row = _category_table(at).set_index("category").loc["kolektor"]
    assert (int(row["test/structural"]), int(row["grayscale"])) == (1, 4)
