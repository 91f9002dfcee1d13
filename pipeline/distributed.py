"""Distributed data parallel training under ``torchrun``: NCCL on GPUs, gloo on CPU (SPEC §7).

One small layer over ``torch.distributed`` so a training loop reads the same in one process and
in many: without torchrun's environment every helper is a no-op and the loop runs exactly as
before. Under ``torchrun --nproc_per_node N`` each process is one rank; a loop

* calls ``setup_distributed`` once (joins the process group, picks ``cuda:LOCAL_RANK``),
* wraps the trainable module with ``wrap_ddp`` (gradients are averaged across ranks),
* trains on ``ctx.shard(order)`` of each epoch's sample order, with ``ctx.local_batch(batch)``
  images per step so the global batch (and so the learning-rate semantics) stays the same,
* averages its logged numbers with ``mean_across``,
* writes files on ``ctx.is_main`` only, then ``barrier``s so no rank reads a half-written file,
* and calls ``teardown`` at the end.

Randomness: every rank seeds the model the same way (DDP also broadcasts rank 0's weights when
wrapping), while augmentation draws from ``rank_generator``/``rank_seed``: different per rank,
deterministic per (seed, epoch, rank), so a resumed run continues as the uninterrupted one.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from pipeline.device import DeviceError

ENV_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")
"""What torchrun sets for every process it starts (MASTER_ADDR/PORT come with them)."""


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a distributed run.

    Attributes:
        rank: global rank of this process (0 = the main one that writes files and prints).
        world_size: number of processes; 1 when not launched by torchrun.
        local_rank: rank on this machine; picks the GPU.
        backend: ``"nccl"``, ``"gloo"``, or ``None`` when single process.
        owns_group: ``setup_distributed`` created the process group, so ``teardown`` destroys it.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """The rank that writes checkpoints and logs (rank 0)."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process: collectives and DDP are in use."""
        return self.world_size > 1

    def shard(self, order: Sequence[int]) -> list[int]:
        """This rank's slice of an epoch's sample order (every ``world_size``-th, from ``rank``).

        The order is padded by wrapping round to a multiple of ``world_size``, so every rank gets
        the same count and takes the same number of optimizer steps: a rank with one step fewer
        would leave the others waiting for its gradients forever. Single process: ``order`` itself.
        """
        items = [int(i) for i in order]
        if not self.active or not items:
            return items
        total = math.ceil(len(items) / self.world_size) * self.world_size
        padded = [items[i % len(items)] for i in range(total)]
        return padded[self.rank::self.world_size]

    def local_batch(self, batch_size: int) -> int:
        """Images per rank and step that keep the global batch at ``batch_size`` (rounded up).

        Keeping the global batch keeps the number of steps per epoch, and so the tuned learning
        rate and schedule, the same as in one process; N ranks then each do 1/N of the work.
        """
        return max(1, math.ceil(batch_size / self.world_size))


def launched_by_torchrun() -> bool:
    """Whether torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``) is set."""
    return all(name in os.environ for name in ENV_VARS)


def setup_distributed(device: torch.device) -> tuple[DistributedContext, torch.device]:
    """Join torchrun's process group; returns the context and the device this rank uses.

    Without torchrun's environment (or with one process) nothing happens: a single-process
    context and ``device`` unchanged. Otherwise the process group is initialised from the
    environment (NCCL for a CUDA ``device``, gloo else; an existing group is reused) and a CUDA
    device becomes ``cuda:LOCAL_RANK``, one GPU per process.
    """
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        return DistributedContext(), device
    rank, world_size, local_rank = (int(os.environ[name]) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if device.type == "cuda":
        device = _rank_gpu(local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    owns_group = not dist.is_initialized()
    if owns_group:
        kwargs = {"device_id": device} if device.type == "cuda" else {}  # NCCL binds its communicator eagerly
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size, **kwargs)
    else:  # a caller's group: trust its numbers, and see which of its backends serves our device
        rank, world_size = dist.get_rank(), dist.get_world_size()
        backend = _serving_backend(str(dist.get_backend()), device)
    return DistributedContext(rank, world_size, local_rank, backend, owns_group), device


def _serving_backend(name: str, device: torch.device) -> str:
    # A group made without a backend is "cpu:gloo,cuda:nccl"; the helpers here only need to know
    # whether their tensors must live on the GPU (NCCL) or the CPU (gloo).
    if device.type == "cuda" and "nccl" in name:
        return "nccl"
    return "gloo" if "gloo" in name else name


def _rank_gpu(local_rank: int) -> torch.device:
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise DeviceError(f"torchrun started local rank {local_rank} but only {count} GPU(s) are visible; "
                          "use --nproc_per_node at most the GPU count")
    torch.cuda.set_device(local_rank)  # collectives and new CUDA tensors default to this GPU
    return torch.device("cuda", local_rank)


def wrap_ddp(module: nn.Module, ctx: DistributedContext, device: torch.device) -> nn.Module:
    """``module`` in ``DistributedDataParallel`` when distributed, else ``module`` itself.

    DDP broadcasts rank 0's parameters and buffers at wrap time (so all ranks start identical)
    and averages gradients across ranks during ``backward``. It wraps, not copies: the module
    keeps its own state dict, so checkpoints save ``unwrap(m)`` (or the original) unchanged.
    """
    if not ctx.active:
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (or ``module`` when it is not wrapped)."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def mean_across(values: dict[str, float], ctx: DistributedContext) -> dict[str, float]:
    """Average of each value over all ranks (all-reduce); ``values`` itself in one process.

    Every rank must pass the same keys; they are reduced in sorted order so that a dict built in
    another order on another rank still lines up.
    """
    if not ctx.active or not values:
        return values
    names = sorted(values)
    tensor = torch.tensor([float(values[n]) for n in names], dtype=torch.float64, device=_collective_device(ctx))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return {name: float(total) / ctx.world_size for name, total in zip(names, tensor.tolist())}


def broadcast_object(value: Any, ctx: DistributedContext, src: int = 0) -> Any:
    """Rank ``src``'s picklable ``value`` on every rank (e.g. a record only rank 0 computed)."""
    if not ctx.active:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=src, device=_collective_device(ctx))
    return holder[0]


def broadcast_state(module: nn.Module, ctx: DistributedContext, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into ``module`` on every rank, in place.

    DDP keeps parameters in step but each rank's BatchNorm running statistics drift from its own
    last batch; call this before using the trained module outside training so it matches rank
    ``src``'s checkpoint everywhere.
    """
    if not ctx.active:
        return
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=src)


def barrier(ctx: DistributedContext) -> None:
    """Wait until every rank got here (e.g. rank 0 finished writing a checkpoint)."""
    if not ctx.active:
        return
    if ctx.backend == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])  # NCCL would otherwise guess the GPU
    else:
        dist.barrier()


def teardown(ctx: DistributedContext) -> None:
    """Leave the process group when ``setup_distributed`` created it (a caller's group is kept)."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def rank_generator(ctx: DistributedContext, *key: int) -> np.random.Generator:
    """NumPy generator for ``key`` (e.g. seed, epoch) and this rank: independent per rank.

    One process: ``default_rng(key)``. Distributed: the rank is NumPy's ``spawn_key``, the
    sanctioned way to derive independent streams (plain ``[*key, rank]`` would give rank 0 the
    same stream as ``key``, because short seeds are padded with zeros).
    """
    if not ctx.active:
        return np.random.default_rng(list(key))
    return np.random.default_rng(np.random.SeedSequence(list(key), spawn_key=(ctx.rank,)))


def rank_seed(seed: int, ctx: DistributedContext) -> int:
    """An integer seed (for ``torch.manual_seed``) per (``seed``, rank); ``seed`` in one process."""
    if not ctx.active:
        return seed
    return int(np.random.SeedSequence(seed, spawn_key=(ctx.rank,)).generate_state(1, np.uint64)[0])


def _collective_device(ctx: DistributedContext) -> torch.device:
    # NCCL only moves CUDA tensors; gloo moves CPU ones.
    return torch.device("cuda", torch.cuda.current_device()) if ctx.backend == "nccl" else torch.device("cpu")


def describe_processes(device: torch.device, ctx: DistributedContext) -> str:
    """``cpu`` in one process; ``cpu (rank 0 of 2 processes, gloo)`` under torchrun (printed by rank 0)."""
    if not ctx.active:
        return str(device)
    return f"{device} (rank {ctx.rank} of {ctx.world_size} processes, {ctx.backend})"


def _silent(*_args: object) -> None:
    """``print`` of the ranks other than 0: one log per distributed run."""


def main_rank_only(say: Callable[[str], None], ctx: DistributedContext) -> Callable[[str], None]:
    """``say`` on rank 0 (or in a single process), a sink that drops every line on the other ranks."""
    return say if ctx.is_main else _silent
