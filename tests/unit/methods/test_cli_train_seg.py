"""``train-seg`` on a tiny pseudo-labelled category: per-epoch lines, checkpoint, resume, clear errors."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pipeline.__main__ import main
from pipeline.data.registered import register_category
from pipeline.data.synth import SynthSettings, generate
from pipeline.methods.segmentation.checkpoint import load_checkpoint
from pipeline.pseudolabels.run import run_pseudo_labels
from pipeline.pseudolabels.settings import PseudoLabelSettings
from pipeline.methods.segmentation.standalone import FOLDER
from pipeline.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATEGORY = "pin_tray"


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
    # --resume is the default spelled out; --restart trains again from epoch 1.
    assert _train_seg(workspace, "--epochs", "3", "--resume") == 0
    assert "resumed after epoch 3 of 3" in capsys.readouterr().out
    assert _train_seg(workspace, "--epochs", "3", "--restart") == 0
    assert "epoch 1/3" in capsys.readouterr().out


def test_train_seg_without_pseudo_labels_says_what_to_run(tmp_path, capsys):
    ws = Workspace.create(tmp_path / "ws")
    data = tmp_path / "data"
    generate(SynthSettings(out=data, categories=(CATEGORY,), n_train=2, n_validation=1, n_test_good=1,
                           n_logical=1, n_structural=1, size=48))
    register_category(ws, data, CATEGORY)
    assert _train_seg(tmp_path / "ws", "--epochs", "1") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no pseudo-labels yet" in err and "pseudo-labels" in err


def test_confidence_weighting_flag_is_saved_and_printed(workspace, capsys):
    from pipeline.pseudolabels.confidence import weighting_enabled

    checkpoint = Workspace.open(workspace).category_dir(CATEGORY) / FOLDER / "segmentation.safetensors"
    try:
        assert _train_seg(workspace, "--epochs", "1", "--confidence-weighting") == 0
        printed = capsys.readouterr().out
        assert "confidence weighting: on; confidence of the 6 images:" in printed and "epoch 1/1" in printed
        assert load_checkpoint(checkpoint).settings.confidence_weighting
        assert _train_seg(workspace, "--epochs", "1") == 0  # the saved setting holds: nothing left to train
        assert "confidence weighting: on" in capsys.readouterr().out
    finally:
        assert _train_seg(workspace, "--epochs", "1", "--no-confidence-weighting") == 0
    assert "confidence weighting: off (hard D_L/D_U split)" in capsys.readouterr().out
    assert not weighting_enabled(Workspace.open(workspace), CATEGORY)
    assert not load_checkpoint(checkpoint).settings.confidence_weighting


def test_train_seg_on_an_unknown_category_exits_2(workspace, capsys):
    assert main(["train-seg", "--workspace", str(workspace), "--category", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_train_seg_killed_for_real_resumes_at_the_next_epoch(workspace, capsys):
    """SIGKILL the CLI in a subprocess once a checkpoint exists; the rerun starts after it."""
    checkpoint = Workspace.open(workspace).category_dir(CATEGORY) / FOLDER / "segmentation.safetensors"
    command = [sys.executable, "-m", "pipeline", "train-seg", "--workspace", str(workspace), "--category", CATEGORY,
               "--device", "cpu", "--epochs", "8", "--restart"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    checkpoint.unlink(missing_ok=True)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if checkpoint.is_file() and load_checkpoint(checkpoint).epochs_done >= 2:
                break
            time.sleep(0.2)
        assert process.poll() is None, "training finished (or failed) before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    done = load_checkpoint(checkpoint).epochs_done  # the write is atomic: a whole checkpoint or the last one
    assert 2 <= done < 8
    assert _train_seg(workspace, "--epochs", "8") == 0
    printed = capsys.readouterr().out
    assert f"epoch {done + 1}/8" in printed and f"epoch {done}/8" not in printed
    assert f"resumed after epoch {done} of 8" in printed and load_checkpoint(checkpoint).epochs_done == 8
