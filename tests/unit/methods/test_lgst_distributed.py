"""LGST training as two gloo ranks under torchrun: it learns like one process, both ranks end with
one network, rank 0's checkpoint loads into a fresh one, a killed run resumes, and
``torchrun -m pipeline train-lgst`` prints one log.

Run as a script (``torchrun ... test_lgst_distributed.py INPUTS OUT [KILL_AFTER]``) this file is the
worker: one rank of ``train_lgst`` on pickled data, reporting to ``OUT/rank<r>.json`` (+ ``.npz``).
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

from pipeline.methods.lgst.checkpoint import build_lgst, load_lgst_checkpoint
from pipeline.methods.lgst.train import CHECKPOINT, train_lgst
from pipeline.models.preprocess import to_tensor_batch
from pipeline.workspace import Workspace
from tests.unit.methods.test_cli_train_seg import CATEGORY, workspace  # noqa: F401 (fixture)
from tests.unit.methods.test_lgst_train import CPU, SIDE, TINY, data  # noqa: F401 (fixture)
from tests.unit.test_distributed import run_two_ranks, state_digest, torchrun

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SETTINGS = dataclasses.replace(TINY, steps=40, batch_size=4)
"""A global batch of 4: 4 images a step in one process, 2 per rank in two."""



def _probe(data) -> torch.Tensor:
    """The batch whose maps the ranks report: the first two training images."""
    return to_tensor_batch(list(data.images[:2]), SIDE)


def _without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def _late_loss(history) -> float:
    return float(np.mean([r["loss"] for r in history[-8:]]))


def _run_ranks(data, folder: Path, kill_after: int | None = None) -> tuple[int, list[dict]]:
    """Train ``SETTINGS`` in two gloo processes into ``folder``; torchrun's exit code and each rank's report."""
    return run_two_ranks(Path(__file__), (data, SETTINGS), folder, kill_after)


@pytest.fixture(scope="module")
def two_ranks(data, tmp_path_factory) -> tuple[Path, list[dict]]:
    """An uninterrupted two-rank run of ``SETTINGS``: its folder and both ranks' reports."""
    folder = tmp_path_factory.mktemp("lgst_ddp")
    _, reports = _run_ranks(data, folder)
    return folder, reports


def test_two_gloo_ranks_learn_like_one_process_and_agree(data, two_ranks, tmp_path):
    folder, reports = two_ranks
    assert [r["rank"] for r in reports] == [0, 1]
    history = reports[0]["history"]
    # The loss parts are averaged over both ranks: the same records (each rank times itself, though).
    assert _without_seconds(reports[1]["history"]) == _without_seconds(history)
    assert reports[0]["students"] == reports[1]["students"]  # one network, not two
    assert [r["step"] for r in history] == list(range(1, 41))
    assert _late_loss(history) < 0.8 * float(np.mean([r["loss"] for r in history[:8]]))

    single = train_lgst(data, SETTINGS, tmp_path, CPU).history
    # Not bit-identical (each rank draws its own images and LSA, hard mining sees 2 images, not 4),
    # but the same run: identical start, the same schedule and steps, and a similar end.
    assert [r["lr"] for r in history] == [r["lr"] for r in single]
    assert history[0]["loss"] == pytest.approx(single[0]["loss"], rel=0.15)
    assert _late_loss(history) == pytest.approx(_late_loss(single), rel=0.2)


def test_rank_0s_checkpoint_loads_into_a_fresh_network(data, two_ranks):
    folder, reports = two_ranks
    saved = load_lgst_checkpoint(folder / CHECKPOINT)
    assert saved.steps_done == 40 and list(saved.history) == reports[0]["history"]
    assert saved.settings == SETTINGS and saved.data_fingerprint == data.fingerprint()
    assert state_digest(saved.model) == reports[0]["students"]  # every rank returned the checkpointed weights
    fresh = build_lgst(saved, CPU)
    expected = np.load(folder / "rank1.npz")  # what the other rank's returned network computes
    for name, value in fresh.maps(_probe(data)).items():
        np.testing.assert_allclose(value.numpy(), expected[name], rtol=1e-5, atol=1e-7)


@pytest.mark.slow  # two more torchrun launches: ~70 s on a busy 2-core machine
def test_a_killed_two_rank_run_resumes_and_ends_as_if_never_stopped(data, two_ranks, tmp_path):
    """Rank 0 dies right after step 21's record (step 20's checkpoint on disk); the rerun picks up at 21."""
    straight_folder, straight = two_ranks
    returncode, _ = _run_ranks(data, tmp_path, kill_after=21)
    assert returncode != 0
    assert load_lgst_checkpoint(tmp_path / CHECKPOINT).steps_done == 20
    _, resumed = _run_ranks(data, tmp_path)
    assert all(r["resumed_from"] == 20 for r in resumed)
    assert [r["step"] for r in resumed[0]["ran"]] == list(range(21, 41))
    for ours, theirs in zip(resumed[0]["history"], straight[0]["history"]):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4, abs=1e-6)
    expected = load_lgst_checkpoint(straight_folder / CHECKPOINT).model
    for name, value in load_lgst_checkpoint(tmp_path / CHECKPOINT).model.items():
        torch.testing.assert_close(value, expected[name], rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # the quick profile's 256 px networks in two processes: ~40 s on a busy 2-core machine
def test_torchrun_runs_the_train_lgst_command_with_one_log(workspace):  # noqa: F811 (fixture)
    done = torchrun(2, "-m", "pipeline", "train-lgst", "--workspace", workspace, "--category", CATEGORY,
                    "--device", "cpu", "--steps", "1", "--restart")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    out = done.stdout
    assert "rank 0 of 2 processes, gloo" in out
    assert out.count("step 1/1  loss") == 1 and out.count("checkpoint:") == 1
    checkpoint = Workspace.open(workspace).method_dir(CATEGORY, "aecsad") / CHECKPOINT
    assert load_lgst_checkpoint(checkpoint).steps_done == 1


def _worker(inputs: Path, out: Path, kill_after: int | None) -> None:
    """One rank: train, then report history, resume point, a digest of the returned students and
    their maps of ``_probe``."""
    from pipeline.distributed import setup_distributed, teardown

    data, settings = pickle.loads(inputs.read_bytes())  # written by this test module a moment ago
    ctx, device = setup_distributed(torch.device("cpu"))
    ran: list[dict] = []

    def report(record: dict) -> None:  # every rank gets the (averaged) records
        ran.append(record)
        if ctx.is_main and kill_after is not None and record["step"] == kill_after:
            os._exit(17)  # like a SIGKILL: no cleanup; the last checkpoint is on disk

    result = train_lgst(data, settings, out, device, report=report, dist_ctx=ctx)
    maps = {name: value.numpy() for name, value in result.net.maps(_probe(data)).items()}
    np.savez(out / f"rank{ctx.rank}.npz", **maps)
    report_ = {"rank": ctx.rank, "history": list(result.history), "resumed_from": result.resumed_from,
               "ran": ran, "students": state_digest(result.net.student_state_dict())}
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(report_))
    teardown(ctx)


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
