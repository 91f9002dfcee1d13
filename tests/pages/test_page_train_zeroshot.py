"""Train page with the zero-shot CLIP method: listed with its title and summary, its object word
saved per category, and missing CLIP weights shown as advice (start disabled), never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.methods import METHODS
from pipeline.methods.zeroshot.method import prompt_word
from pipeline.workspace import Workspace

PAGE = "pages/train.py"
CATEGORY = "pin_tray"


@pytest.fixture
def fresh_workspace(tiny_synth: Path, tmp_path: Path) -> Path:
    ws = Workspace.create(tmp_path / "ws")
    ws.add_category(CATEGORY, tiny_synth / CATEGORY, "loco")
    return ws.path


def test_zeroshot_without_clip_weights_shows_the_advice_and_disables_start(app, fresh_workspace, isolated_weights):
    at = app.open(fresh_workspace, PAGE)
    picker = at.selectbox("train_method")
    assert METHODS["zeroshot"].title in picker.options
    assert not at.button("fit_button").disabled
    picker.set_value("zeroshot")
    app.run(at)
    assert any(c.value == METHODS["zeroshot"].summary for c in at.caption)
    [warning] = [w.value for w in at.warning if "zero-shot" in w.value]
    assert warning.startswith("The zero-shot method cannot run here.")
    assert "WORKBENCH_CLIP_WEIGHTS" in warning and "open_clip_vit_b_16.safetensors" in warning
    assert at.button("fit_button").disabled
    assert not at.error


def test_the_object_word_is_saved_for_the_category(app, fresh_workspace, isolated_weights):
    at = app.open(fresh_workspace, PAGE)
    at.selectbox("train_method").set_value("zeroshot")
    app.run(at)
    word = at.text_input(f"zeroshot_object_{CATEGORY}")
    assert word.value == "pin tray"  # the category name until the user types another word
    word.set_value("tray with pins")
    app.run(at)
    assert prompt_word(Workspace.open(fresh_workspace), CATEGORY) == "tray with pins"
    reopened = app.open(fresh_workspace, PAGE)
    reopened.selectbox("train_method").set_value("zeroshot")
    app.run(reopened)
    assert reopened.text_input(f"zeroshot_object_{CATEGORY}").value == "tray with pins"
