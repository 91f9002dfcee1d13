"""``train-seg`` on a tiny pseudo-labelled category: per-epoch lines, checkpoint, resume, clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from pipeline.__main__ import main
from pipeline.commands import register_category
from pipeline.data.synth import SynthSettings, generate
from pipeline.methods.segmentation.checkpoint import load_checkpoint
from pipeline.pseudolabels.run import run_pseudo_labels
from pipeline.pseudolabels.settings import PseudoLabelSettings
from pipeline.segmentation_commands import FOLDER
from pipeline.workspace import Workspace

CATEGORY = "pin_tray"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A workspace whose pin_tray has pseudo-labels (6 images, 96 px, fast features)."""
    root = tmp_path_factory.mktemp("train_seg")
    generate(SynthSettings(out=root / "data", categories=(CATEGORY,), n_train=6, n_validation=2, n_test_good=2,
                           n_logical=2, n_structural=2, size=96))
    ws = Workspace.create(root / "ws")
    register_category(ws, root / "data", CATEGORY)
    defaults = PseudoLabelSettings()
    fast = dataclasses.replace(defaults, features=dataclasses.replace(defaults.features, variants=False, crop_size=32))
    run_pseudo_labels(ws, CATEGORY, fast, detector="none", segmenter="classic", device="cpu")
    return root / "ws"


def _train_seg(ws: Path, *extra: object) -> int:
    return main(["train-seg", "--workspace", str(ws), "--category", CATEGORY, "--device", "cpu",
                 *[str(e) for e in extra]])


def test_train_seg_prints_each_epoch_and_resumes(workspace, capsys):
    assert _train_seg(workspace, "--epochs", "2", "--restart") == 0
    printed = capsys.readouterr().out
    assert "epoch 1/2" in printed and "epoch 2/2" in printed and "held-out mIoU" in printed
    checkpoint = Workspace.open(workspace).category_dir(CATEGORY) / FOLDER / "segmentation.safetensors"
    assert load_checkpoint(checkpoint).epochs_done == 2

    # Same settings, more epochs wanted: those are other settings, so it starts over...
    assert _train_seg(workspace, "--epochs", "3") == 0
    assert "epoch 1/3" in capsys.readouterr().out
    # ...while a rerun of a finished run has nothing left to do.
    assert _train_seg(workspace, "--epochs", "3") == 0
    printed = capsys.readouterr().out
    assert "epoch 1/3" not in printed and "resumed after epoch 3 of 3" in printed


def test_train_seg_without_pseudo_labels_says_what_to_run(tmp_path, capsys):
    ws = Workspace.create(tmp_path / "ws")
    data = tmp_path / "data"
    generate(SynthSettings(out=data, categories=(CATEGORY,), n_train=2, n_validation=1, n_test_good=1,
                           n_logical=1, n_structural=1, size=48))
    register_category(ws, data, CATEGORY)
    assert _train_seg(tmp_path / "ws", "--epochs", "1") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no pseudo-labels yet" in err and "pseudo-labels" in err


def test_train_seg_on_an_unknown_category_exits_2(workspace, capsys):
    assert main(["train-seg", "--workspace", str(workspace), "--category", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
