"""Workspace store: everything written comes back identical from a new Workspace object."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.workspace import CategoryRecord, ScoreRow, Workspace, WorkspaceError


def _fill(ws: Workspace, data_root: Path) -> int:
    """Write one of everything; returns the id of a finished job."""
    ws.add_category("pushpins", data_root / "pushpins", "loco")
    ws.add_category("boxes", data_root / "boxes", "folder")
    ws.set_setting("theme", {"dark": True, "zoom": [1, 2.5]})
    ws.set_setting("flagged", {"instant": 3}, category="pushpins")
    ws.set_threshold("pushpins", "instant", 0.4375, note="2 of 40 good validation images flagged")
    ws.set_image_label("pushpins", "test/logical_anomalies/000", "logical")
    ws.set_image_label("pushpins", "train/good/001", "good")
    ws.set_tag("pushpins", "pin", "keep")
    ws.set_tag("pushpins", "tray", "background")
    map_file = ws.method_dir("pushpins", "instant") / "maps" / "000.npy"
    ws.record_model("pushpins", "instant", {"bank": "instant_bank.safetensors", "maps": str(map_file.parent)},
                    settings={"profile": "quick"}, metrics={"seconds_fit": 1.5})
    ws.update_model_metrics("pushpins", "instant", {"auroc": 0.9})
    ws.save_scores("pushpins", "instant", [
        ScoreRow("validation/good/000", "validation", "good", 0.1),
        ScoreRow("test/logical_anomalies/000", "test", "logical", 2.0, ws.relative(map_file)),
        ScoreRow("test/good/000", "test", "good", 0.3),
    ])
    job = ws.start_job("fit", "pushpins", "instant", {"profile": "quick"}, pid=None)
    ws.update_job(job, stage="bank", step=3, total=10, message="features", metrics={"loss": 0.5})
    ws.finish_job(job, "done", "fitted in 2 s")
    return job


def _state(ws: Workspace, job: int) -> dict:
    return {
        "categories": ws.categories(),
        "settings": (ws.get_setting("theme"), ws.get_setting("flagged", category="pushpins")),
        "threshold": ws.get_threshold("pushpins", "instant"),
        "labels": ws.image_labels("pushpins"),
        "tags": ws.tags("pushpins"),
        "model": ws.model_record("pushpins", "instant"),
        "scores": ws.scores("pushpins", "instant"),
        "jobs": ws.jobs(),
        "job": ws.job(job),
    }


def test_reopen_restores_everything(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    job = _fill(ws, tmp_path / "data")
    before = _state(ws, job)
    again = Workspace.open(tmp_path / "ws")
    assert again is not ws and _state(again, job) == before
    # and the values themselves are what was written
    assert before["settings"] == ({"dark": True, "zoom": [1, 2.5]}, {"instant": 3})
    assert before["threshold"] == 0.4375
    assert before["labels"] == {"test/logical_anomalies/000": "logical", "train/good/001": "good"}
    assert before["tags"] == {"pin": "keep", "tray": "background"}
    model = before["model"]
    assert model.files == {"bank": "instant_bank.safetensors", "maps": "categories/pushpins/instant/maps"}
    assert model.metrics == {"seconds_fit": 1.5, "auroc": 0.9} and model.settings == {"profile": "quick"}
    assert [r.image_key for r in before["scores"]] == [
        "test/logical_anomalies/000", "test/good/000", "validation/good/000"]
    assert before["scores"][0].map_file == "categories/pushpins/instant/maps/000.npy"
    record = before["job"]
    assert (record.status, record.stage, record.step, record.total) == ("done", "bank", 3, 10)
    assert (record.message, record.metrics, record.params) == ("fitted in 2 s", {"loss": 0.5}, {"profile": "quick"})


def test_categories_upsert_sorted_and_unknown(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    first = ws.add_category("zeta", tmp_path / "z", "loco")
    ws.add_category("alpha", tmp_path / "a", "folder")
    moved = ws.add_category("zeta", tmp_path / "z2", "folder")
    assert isinstance(first, CategoryRecord) and first.data_root == (tmp_path / "z").absolute()
    assert moved.added_at == first.added_at and moved.data_root == tmp_path / "z2" and moved.layout == "folder"
    assert [c.name for c in ws.categories()] == ["alpha", "zeta"]
    assert ws.category("zeta") == moved
    with pytest.raises(WorkspaceError, match="unknown category 'nope'.*alpha, zeta"):
        ws.category("nope")
    with pytest.raises(WorkspaceError, match="layout"):
        ws.add_category("x", tmp_path, "mvtec")
    with pytest.raises(WorkspaceError, match="category name"):
        ws.add_category("../evil", tmp_path, "loco")


def test_remove_category_clears_its_records_and_folder(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    _fill(ws, tmp_path / "data")
    folder = ws.category_dir("pushpins")
    ws.remove_category("pushpins")
    assert [c.name for c in ws.categories()] == ["boxes"]
    assert ws.image_labels("pushpins") == {} and ws.tags("pushpins") == {}
    assert ws.model_record("pushpins", "instant") is None and ws.scores("pushpins", "instant") == []
    assert ws.get_threshold("pushpins", "instant") is None
    assert ws.get_setting("flagged", category="pushpins") is None and ws.get_setting("theme") is not None
    assert not folder.exists() and len(ws.jobs()) == 1  # job history is kept
    ws.remove_category("pushpins")  # unknown: no-op


def test_folders_and_relative_paths(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    folder = ws.method_dir("pushpins", "instant")
    assert folder == ws.path / "categories" / "pushpins" / "instant" and folder.is_dir()
    assert ws.relative(folder / "m.png") == "categories/pushpins/instant/m.png"
    assert ws.resolve("categories/pushpins/instant/m.png") == folder / "m.png"
    with pytest.raises(WorkspaceError, match="not inside the workspace"):
        ws.relative(tmp_path / "elsewhere.png")
    for escaping in ("../outside.png", str(tmp_path / "abs.png")):
        with pytest.raises(WorkspaceError, match="not a path inside"):
            ws.resolve(escaping)
    with pytest.raises(WorkspaceError, match="method name"):
        ws.method_dir("pushpins", "a/b")


def test_settings_scopes_defaults_and_bad_values(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    assert ws.get_setting("k", default=7) == 7
    ws.set_setting("k", "global")
    ws.set_setting("k", "local", category="c")
    ws.set_setting("k", "global 2")
    assert ws.get_setting("k") == "global 2" and ws.get_setting("k", category="c") == "local"
    assert ws.get_setting("k", default=1, category="other") == 1  # no fallback to the global one
    with pytest.raises(WorkspaceError, match="setting 'k' cannot be stored as JSON"):
        ws.set_setting("k", object())
    assert ws.get_setting("k") == "global 2"


def test_labels_tags_thresholds_validation(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ws.set_image_label("c", "img", "bad")
    ws.set_image_label("c", "img", None)
    ws.set_image_label("c", "never-labelled", None)
    assert ws.image_labels("c") == {}
    with pytest.raises(WorkspaceError, match="image label must be one of"):
        ws.set_image_label("c", "img", "ugly")
    with pytest.raises(WorkspaceError, match="tag status"):
        ws.set_tag("c", "pin", "maybe")
    assert ws.get_threshold("c", "m") is None
    with pytest.raises(WorkspaceError, match="finite"):
        ws.set_threshold("c", "m", math.nan)
    ws.set_threshold("c", "m", 1)
    ws.set_threshold("c", "m", 2.5, note="later")
    assert ws.get_threshold("c", "m") == 2.5


def test_save_scores_replaces_only_the_given_split(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ws.save_scores("c", "m", [ScoreRow("v1", "validation", "good", 0.2), ScoreRow("t1", "test", "good", 0.1)])
    ws.save_scores("c", "m", [ScoreRow("t2", "test", "structural", float("inf")), ScoreRow("t3", "test", "good", 0.5)])
    assert [r.image_key for r in ws.scores("c", "m")] == ["t2", "t3", "v1"]
    assert [r.image_key for r in ws.scores("c", "m", split="validation")] == ["v1"]
    assert ws.scores("c", "other") == []
    with pytest.raises(WorkspaceError, match="appears twice"):
        ws.save_scores("c", "m", [ScoreRow("a", "test", "good", 1.0), ScoreRow("a", "test", "good", 2.0)])
    with pytest.raises(WorkspaceError, match="score of 'a'"):
        ws.save_scores("c", "m", [ScoreRow("a", "test", "good", math.nan)])
    assert [r.image_key for r in ws.scores("c", "m", split="test")] == ["t2", "t3"]  # failed saves changed nothing


def test_models_replace_and_merge(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    assert ws.model_record("c", "m") is None
    with pytest.raises(WorkspaceError, match="no 'm' model recorded"):
        ws.update_model_metrics("c", "m", {"auroc": 1.0})
    ws.record_model("c", "m", {"w": "a.safetensors"}, {"lr": 1e-3}, {"old": 1})
    new = ws.record_model("c", "m", {"w": "b.safetensors"}, {"lr": 2e-4})
    ws.update_model_metrics("c", "m", {"auroc": 0.75})
    ws.update_model_metrics("c", "m", {"aupro": 0.5})
    record = ws.model_record("c", "m")
    assert record.files == {"w": "b.safetensors"} and record.settings == {"lr": 2e-4}
    assert record.metrics == {"auroc": 0.75, "aupro": 0.5} and record.created_at == new.created_at
