"""``pipeline.distributed``: shards, rank seeds and no-op collectives in one process, then the real
collectives and DDP gradient averaging in two gloo processes started by torchrun.

Run as a script (``torchrun ... test_distributed.py OUT``) this file is also the worker of the
two-process test, so the test and what it checks stay side by side.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.distributed import (
    ENV_VARS, DistributedContext, barrier, broadcast_object, broadcast_state, mean_across, rank_generator, rank_seed,
    setup_distributed, teardown, unwrap, wrap_ddp,
)

REPO = Path(__file__).resolve().parents[2]
SINGLE = DistributedContext()


def torchrun(nproc: int, *args: object, timeout: float = 180) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node nproc ARGS`` on CPU, one torch thread per process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for name in ENV_VARS:  # never inherit a surrounding run's rank
        env.pop(name, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               *[str(a) for a in args]]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)



def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names and values: equal digests, bit-identical weights."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode() + state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def run_two_ranks(worker: Path, inputs: object, folder: Path, kill_after: int | None = None) -> tuple[int, list[dict]]:
    """Run ``worker`` (a test file that is also a torchrun script) in two gloo processes on the pickled
    ``inputs`` into ``folder``; returns torchrun's exit code and each rank's ``rank*.json`` report."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inputs.pkl").write_bytes(pickle.dumps(inputs))
    for old in folder.glob("rank*.json"):
        old.unlink()
    done = torchrun(2, worker, folder / "inputs.pkl", folder, *([kill_after] if kill_after else []))
    if kill_after is None:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    reports = [json.loads(p.read_text()) for p in sorted(folder.glob("rank*.json"))]
    return done.returncode, reports

def test_without_torchrun_everything_is_a_single_process_no_op(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    ctx, device = setup_distributed(torch.device("cpu"))
    assert ctx == SINGLE and device == torch.device("cpu")
    assert ctx.is_main and not ctx.active and ctx.backend is None
    module = nn.Linear(2, 2)
    assert wrap_ddp(module, ctx, device) is module and unwrap(module) is module
    values = {"loss": 1.25, "ce": 0.5}
    assert mean_across(values, ctx) == values
    assert broadcast_object({"a": 1}, ctx) == {"a": 1}
    before = {k: v.clone() for k, v in module.state_dict().items()}
    broadcast_state(module, ctx)
    barrier(ctx)
    teardown(ctx)  # nothing was created, nothing to destroy
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_one_process_under_torchrun_is_single_process_too(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert setup_distributed(torch.device("cpu")) == (SINGLE, torch.device("cpu"))


def test_a_single_process_shard_is_the_whole_order():
    assert SINGLE.shard([3, 1, 2, 0]) == [3, 1, 2, 0]
    assert SINGLE.shard(np.array([2, 0, 1])) == [2, 0, 1]
    assert SINGLE.local_batch(16) == 16


@pytest.mark.parametrize("n, world", [(6, 2), (7, 2), (5, 3), (2, 4), (1, 2)])
def test_shards_cover_the_order_with_the_same_count_on_every_rank(n, world):
    order = list(np.random.default_rng(n).permutation(n))
    shards = [DistributedContext(rank=r, world_size=world).shard(order) for r in range(world)]
    expected = -(-n // world)  # ceil: short shards are padded by wrapping round the order
    assert all(len(s) == expected for s in shards)
    flat = [i for s in shards for i in s]
    assert set(flat) == set(order)  # every sample seen each epoch
    assert len(flat) - len(set(flat)) == expected * world - n  # only the padding repeats
    assert DistributedContext(rank=0, world_size=world).shard([]) == []


def test_local_batch_keeps_the_global_batch():
    assert DistributedContext(rank=0, world_size=2).local_batch(16) == 8
    assert DistributedContext(rank=0, world_size=3).local_batch(16) == 6  # rounded up
    assert DistributedContext(rank=0, world_size=32).local_batch(16) == 1


def test_rank_randomness_differs_by_rank_and_repeats_per_key():
    ranks = [DistributedContext(rank=r, world_size=2) for r in range(2)]
    draws = [rank_generator(ctx, 7, 3).random(4) for ctx in ranks]
    assert not np.allclose(draws[0], draws[1])
    np.testing.assert_array_equal(draws[0], rank_generator(ranks[0], 7, 3).random(4))  # deterministic
    assert not np.allclose(draws[0], rank_generator(ranks[0], 7, 4).random(4))  # another epoch
    # Rank 0 of a distributed run is not the single-process stream (whose first draws order the epoch).
    assert not np.allclose(draws[0], rank_generator(SINGLE, 7, 3).random(4))
    np.testing.assert_array_equal(rank_generator(SINGLE, 7, 3).random(4), np.random.default_rng([7, 3]).random(4))
    assert rank_seed(42, SINGLE) == 42
    seeds = {rank_seed(42, ctx) for ctx in ranks}
    assert len(seeds) == 2 and seeds == {rank_seed(42, ctx) for ctx in ranks}


def test_two_gloo_processes_average_gradients_and_values(tmp_path):
    """Each rank feeds DDP other data; after backward both hold the mean of the two gradients."""
    done = torchrun(2, Path(__file__), tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    for rank, result in enumerate(results):
        assert result["ctx"] == {"rank": rank, "world_size": 2, "local_rank": rank, "backend": "gloo",
                                 "owns_group": True}
        assert result["mean"] == {"a": 1.5, "b": 15.0}  # (1 + 2) / 2, (10 + 20) / 2
        assert result["broadcast"] == "from rank 0"
        assert result["state"] == results[0]["state"]  # rank 0's weights everywhere after broadcast_state
        assert result["again"] == {"same": True, "kept": True}  # idempotent: the caller's group survives
        assert result["initialised_after_teardown"] is False
    # Gradient of mean(w * x) over a rank's inputs: rank r feeds x = r + 1, so the average is 1.5.
    assert results[0]["grad"] == results[1]["grad"] == pytest.approx([1.5, 1.5])
    assert results[0]["weight_after_step"] == results[1]["weight_after_step"]
    shards = [results[r]["shard"] for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 3 and sorted(shards[0] + shards[1]) == [0, 1, 2, 3, 4, 4]


def _worker(out: Path) -> None:
    """One rank of ``test_two_gloo_processes_average_gradients_and_values``."""
    ctx, device = setup_distributed(torch.device("cpu"))
    torch.manual_seed(ctx.rank)  # different initial weights: DDP must broadcast rank 0's
    layer = nn.Linear(2, 1, bias=False)
    model = wrap_ddp(layer, ctx, device)
    assert unwrap(model) is layer
    x = torch.full((3, 2), float(ctx.rank + 1))
    model(x).mean().backward()
    grad = layer.weight.grad[0].tolist()
    torch.optim.SGD(layer.parameters(), lr=0.1).step()
    drift = nn.BatchNorm1d(2)
    drift.running_mean.fill_(float(ctx.rank))  # what each rank's own BatchNorm statistics do
    broadcast_state(drift, ctx)
    result = {
        "ctx": {"rank": ctx.rank, "world_size": ctx.world_size, "local_rank": ctx.local_rank,
                "backend": ctx.backend, "owns_group": ctx.owns_group},
        "mean": mean_across({"b": 10.0 * (ctx.rank + 1), "a": float(ctx.rank + 1)}, ctx),
        "broadcast": broadcast_object("from rank 0" if ctx.is_main else "from another rank", ctx),
        "grad": grad, "weight_after_step": layer.weight[0].tolist(), "shard": ctx.shard([4, 2, 0, 1, 3]),
        "state": drift.running_mean.tolist(),
    }
    again, _ = setup_distributed(device)  # a second call reuses the group and does not own it
    teardown(again)
    result["again"] = {"same": again == DistributedContext(ctx.rank, 2, ctx.local_rank, "gloo", owns_group=False),
                       "kept": torch.distributed.is_initialized()}
    barrier(ctx)
    teardown(ctx)
    result["initialised_after_teardown"] = torch.distributed.is_initialized()
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
