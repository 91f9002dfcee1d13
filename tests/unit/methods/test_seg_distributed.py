"""Segmentation training as two gloo ranks under torchrun: it learns like one process, rank 0's
checkpoint loads into a fresh network, a killed run resumes, and ``torchrun -m pipeline train-seg``
prints one log.

Run as a script (``torchrun ... test_seg_distributed.py DATA OUT [KILL_AFTER]``) this file is the
worker: one rank of ``train_segmentation`` on pickled data, reporting to ``OUT/rank<r>.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.methods.segmentation.checkpoint import build_network, load_checkpoint
from pipeline.methods.segmentation.train import CHECKPOINT, HISTORY, holdout_miou, train_segmentation
from pipeline.methods.segmentation.standalone import FOLDER
from pipeline.workspace import Workspace
from tests.unit.methods.test_cli_train_seg import CATEGORY, workspace  # noqa: F401 (fixture)
from tests.unit.methods.test_seg_train import CPU, TINY, data  # noqa: F401 (fixture)
from tests.unit.test_distributed import run_two_ranks, state_digest, torchrun

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SETTINGS = dataclasses.replace(TINY, epochs=8, lr=3e-3)
"""6 training images, batch 4: 2 steps per epoch in one process, 2 steps of 2 images per rank in two."""


def _supervised(record: dict) -> float:
    return record["ce"] + record["dice"] + record["focal"]



def _run_ranks(data, folder: Path, kill_after: int | None = None) -> tuple[int, list[dict]]:
    """Train ``SETTINGS`` in two gloo processes into ``folder``; torchrun's exit code and each rank's report."""
    return run_two_ranks(Path(__file__), (data, SETTINGS), folder, kill_after)


@pytest.fixture(scope="module")
def two_ranks(data, tmp_path_factory) -> tuple[Path, list[dict]]:
    """An uninterrupted two-rank run of ``SETTINGS``: its folder and both ranks' reports."""
    folder = tmp_path_factory.mktemp("seg_ddp")
    _, reports = _run_ranks(data, folder)
    return folder, reports


def test_two_gloo_ranks_learn_like_one_process_and_agree(data, two_ranks, tmp_path):
    folder, reports = two_ranks
    assert [r["rank"] for r in reports] == [0, 1]
    history = reports[0]["history"]
    assert reports[1]["history"] == history  # rank 0's records (loss parts averaged over both ranks)
    assert reports[0]["head"] == reports[1]["head"]  # one network, not two
    assert [r["epoch"] for r in history] == list(range(1, 9))
    assert _supervised(history[-1]) < 0.7 * _supervised(history[0])
    assert "hist" not in history[0] and "hist" in history[-1]  # D_U losses from the stage boundary on

    single = train_segmentation(data, SETTINGS, tmp_path, CPU).history
    # Not bit-identical (each rank augments its own way, BatchNorm sees 2 images, not 4), but the same
    # run: identical start, the same schedule and steps, and losses within a band of each other.
    assert [r["lr"] for r in history] == [r["lr"] for r in single]
    for ours, theirs in zip(history, single):
        assert _supervised(ours) == pytest.approx(_supervised(theirs), rel=0.25)
    assert history[-1]["miou"] > history[0]["miou"]


def test_rank_0s_checkpoint_loads_into_a_fresh_network(data, two_ranks):
    folder, reports = two_ranks
    saved = load_checkpoint(folder / CHECKPOINT)
    assert saved.epochs_done == 8 and list(saved.history) == reports[0]["history"]
    assert state_digest(saved.head) == reports[0]["head"]  # every rank returned the checkpointed weights
    assert json.loads((folder / HISTORY).read_text())["history"] == reports[0]["history"]
    fresh = build_network(saved, CPU)
    assert holdout_miou(fresh, data, SETTINGS.image_size) == pytest.approx(saved.history[-1]["miou"], abs=1e-9)


@pytest.mark.slow  # two torchrun launches: 40-60 s on a busy 2-core machine
def test_a_killed_two_rank_run_resumes_and_ends_as_if_never_stopped(data, two_ranks, tmp_path):
    """Rank 0 dies right after epoch 3's checkpoint; torchrun stops rank 1; the rerun picks up at 4."""
    straight_folder, straight = two_ranks
    returncode, _ = _run_ranks(data, tmp_path, kill_after=3)
    assert returncode != 0
    assert load_checkpoint(tmp_path / CHECKPOINT).epochs_done == 3
    _, resumed = _run_ranks(data, tmp_path)
    assert all(r["resumed_from"] == 3 for r in resumed)
    assert [r["epoch"] for r in resumed[0]["ran"]] == [4, 5, 6, 7, 8]
    history = resumed[0]["history"]
    assert [r["loss"] for r in history[:3]] == [r["loss"] for r in straight[0]["history"][:3]]
    for ours, theirs in zip(history[3:], straight[0]["history"][3:]):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4)
    expected = load_checkpoint(straight_folder / CHECKPOINT).head
    for name, value in load_checkpoint(tmp_path / CHECKPOINT).head.items():
        torch.testing.assert_close(value, expected[name], rtol=1e-5, atol=1e-6)


def test_torchrun_runs_the_train_seg_command_with_one_log(workspace):  # noqa: F811 (fixture)
    done = torchrun(2, "-m", "pipeline", "train-seg", "--workspace", workspace, "--category", CATEGORY,
                    "--device", "cpu", "--epochs", "2", "--restart")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    out = done.stdout
    assert "rank 0 of 2 processes, gloo" in out
    assert out.count("epoch 1/2") == 1 and out.count("epoch 2/2") == 1 and out.count("checkpoint:") == 1
    checkpoint = Workspace.open(workspace).category_dir(CATEGORY) / FOLDER / "segmentation.safetensors"
    assert load_checkpoint(checkpoint).epochs_done == 2


def _worker(inputs: Path, out: Path, kill_after: int | None) -> None:
    """One rank: train, then report history, resume point and a digest of the returned head."""
    from pipeline.distributed import setup_distributed, teardown

    data, settings = pickle.loads(inputs.read_bytes())  # written by this test module a moment ago
    ctx, device = setup_distributed(torch.device("cpu"))
    ran: list[dict] = []

    def on_epoch(record: dict) -> None:  # called on rank 0 only
        ran.append(record)
        if kill_after is not None and record["epoch"] == kill_after:
            os._exit(17)  # like a SIGKILL: no cleanup, the checkpoint of this epoch is on disk

    result = train_segmentation(data, settings, out, device, dist=ctx, on_epoch=on_epoch)
    report = {"rank": ctx.rank, "history": list(result.history), "resumed_from": result.resumed_from,
              "ran": ran, "head": state_digest(result.net.head_state_dict())}
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(report))
    teardown(ctx)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
