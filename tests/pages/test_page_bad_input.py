"""Bad input on the pages gives a clear message, never a traceback (SPEC §10)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.methods.runner import fit_method
from pipeline.pseudolabels import store
from pipeline.workspace import Workspace

OPEN_BUTTON = "FormSubmitter:open_workspace-Open workspace"
IMPORT_BUTTON = "FormSubmitter:import_data-Check folder"  # the import form checks first, then offers Import


@pytest.fixture
def moved_data_workspace(tmp_path, page_workspaces, tiny_synth) -> Path:
    """A fitted and evaluated workspace whose data folder has since been moved away."""
    data = tmp_path / "data" / "pin_tray"
    shutil.copytree(tiny_synth / "pin_tray", data)
    ws_path = tmp_path / "ws"
    shutil.copytree(page_workspaces["evaluated"], ws_path)
    Workspace.open(ws_path).add_category("pin_tray", data, "loco")
    shutil.move(data, tmp_path / "moved")
    return ws_path


def test_workspace_page_with_a_moved_data_folder(app, moved_data_workspace, tmp_path):
    at = app.open(moved_data_workspace)
    missing = str(tmp_path / "data" / "pin_tray")
    [table] = at.dataframe
    row = table.value.set_index("category").loc["pin_tray"]
    assert "does not exist" in row["problem"] and missing in row["problem"]
    assert any("does not exist" in e.value for e in at.error)
    assert not at.get("image")


@pytest.mark.parametrize("page", ["pages/inspect.py", "pages/train.py", "pages/evaluate.py"])
def test_other_pages_with_a_moved_data_folder(app, moved_data_workspace, page):
    at = app.open(moved_data_workspace, page)
    if page == "pages/inspect.py":
        assert any("does not exist" in e.value for e in at.error)
        assert not at.get("image")
    else:  # these read stored records and scores only until a button is pressed
        assert not at.error
    button = {"pages/inspect.py": None, "pages/train.py": "fit_button", "pages/evaluate.py": "run_evaluation"}[page]
    if button:
        at.button(button).click()
        app.run(at)
        assert any("does not exist" in e.value for e in at.error)


def test_evaluating_a_category_without_test_images(app, tmp_path):
    good = tmp_path / "parts" / "good"
    good.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good / f"p{i}.png")
    ws = Workspace.create(tmp_path / "ws")
    ws.add_category("parts", tmp_path / "parts", "folder")
    fit_method(ws, "parts", "instant", device="cpu")
    at = app.open(ws.path, "pages/evaluate.py")
    at.button("run_evaluation").click()
    app.run(at)
    assert len(at.error) == 1 and "no test images" in at.error[0].value


@pytest.mark.parametrize("text", ["", "   "])
def test_blank_workspace_folder_is_refused(app, tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)  # a blank path must not turn into the server's working folder
    start = tmp_path / "start"
    Workspace.create(start)
    at = app.open(start)
    at.text_input[0].input(text)
    at.button(OPEN_BUTTON).click()
    app.run(at)
    assert len(at.error) == 1
    assert at.session_state["workspace_path"] == str(start)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["start"]


@pytest.mark.parametrize("text", ["", "   "])
def test_blank_import_folder_is_refused(app, tmp_path, tiny_synth, monkeypatch, text):
    monkeypatch.chdir(tiny_synth)  # the working folder holds categories: a blank path must not import them
    ws_path = tmp_path / "ws"
    Workspace.create(ws_path)
    at = app.open(ws_path)
    at.text_input("import_folder").input(text)
    at.button(IMPORT_BUTTON).click()
    app.run(at)
    assert len(at.error) == 1 and not at.success
    assert Workspace.open(ws_path).categories() == []


@pytest.fixture
def moved_pl_workspace(tmp_path, pl_copy) -> Path:
    """A workspace with built pseudo-labels whose data folder has since been moved away."""
    ws_path = pl_copy("built")
    ws = Workspace.open(ws_path)
    old_root = Path(ws.category("pin_tray").data_root)
    data = tmp_path / "data" / "pin_tray"
    shutil.copytree(old_root, data)
    ws.add_category("pin_tray", data, "loco")
    run = store.read_json(ws, "pin_tray", "run.json")  # the last build read its images from the copy
    run["images"] = {key: str(data / Path(path).relative_to(old_root)) for key, path in run["images"].items()}
    store.write_json(ws, "pin_tray", "run.json", run)
    shutil.move(data, tmp_path / "moved")
    return ws_path


def test_pseudo_label_pages_with_a_moved_data_folder(app, moved_pl_workspace):
    masks = app.open(moved_pl_workspace, "pages/masks.py")
    assert any("does not exist" in e.value for e in masks.error)
    assert not masks.get("image")
    clusters = app.open(moved_pl_workspace, "pages/clusters.py")
    assert len(clusters.error) == 1 and "training image(s) of the last build are gone" in clusters.error[0].value
    assert not clusters.get("image")
    tags = app.open(moved_pl_workspace, "pages/tags.py")
    assert not tags.error  # the table needs no images; asking the taggers does
    tags.button("suggest_tags").click()
    app.run(tags)
    assert len(tags.error) == 1 and "does not exist" in tags.error[0].value
