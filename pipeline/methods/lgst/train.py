"""Training loop of the LGST students (SPEC §5 step 8, thesis §5.4).

Adam with step decay (×0.1 after ``lr_drop_at`` of the steps). Each step draws its batch and its
LSA from ``(seed, step)`` (and the rank under torchrun), so a run resumed from a checkpoint after
a kill continues exactly as the uninterrupted run would. Checkpoints are written atomically every
``checkpoint_every`` steps and at the end, by the main rank only.

With ``time_budget_s`` the number of steps is planned from the measured pace (``budget_steps``)
and re-planned every ``REPLAN_EVERY`` steps until the learning rate drops, after which the plan is
fixed; a step costs about 1.5× more on one category than another (more LSA twins through the
local student), so a fixed count cannot keep every category inside a time target.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from time import perf_counter as _clock

import numpy as np
import torch

from pipeline.device import set_determinism
from pipeline.distributed import (
    DistributedContext,
    barrier,
    broadcast_object,
    mean_across,
    rank_generator,
    unwrap,
    wrap_ddp,
)
from pipeline.methods.lgst.checkpoint import load_lgst_checkpoint, save_lgst_checkpoint
from pipeline.methods.lgst.data import LgstData
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.lgst.torch_model import LgstNet
from pipeline.methods.segmentation.checkpoint import restore_optimizer
from pipeline.methods.segmentation.lsa import logical_synthetic_anomaly
from pipeline.models.backbones import build_backbone
from pipeline.models.preprocess import to_tensor_batch
from pipeline.progress import MetricsFn, ProgressFn, no_metrics, no_progress

CHECKPOINT = "lgst.safetensors"
STAGE = "train lgst"
REPLAN_EVERY = 10
"""Steps between two plans of a time-budgeted run (the first after this many steps)."""
TEACHER_CACHE_BYTES = 1 << 30
"""The plain training images' teacher features are kept in memory when they fit in this much
(they never change: the teacher is frozen); above it they are recomputed every step."""


@dataclass(frozen=True)
class LgstTrainingResult:
    """Attributes:
        net: the trained network in eval mode (unwrapped from DDP).
        checkpoint: path of the checkpoint file.
        history: loss records (``step``, ``loss``, ``loss_local``, ``loss_global``, ``loss_fusion``,
            ``lr``, ``seconds`` since the run (re)started).
        resumed_from: steps already done when this call started (0 = fresh start).
        steps: steps trained in total (``settings.steps`` unless a time budget planned fewer).
        seconds: training seconds over every run of this checkpoint (resumed runs included).
    """

    net: LgstNet
    checkpoint: Path
    history: tuple[dict, ...]
    resumed_from: int
    steps: int = 0
    seconds: float = 0.0


def step_lr(step: int, settings: LgstSettings, steps: int | None = None) -> float:
    """Learning rate of ``step``: ``lr``, then ×0.1 from ``lr_drop_at`` of the run's ``steps``
    (default ``settings.steps``) on."""
    return settings.lr * (0.1 if step >= drop_step(settings, steps) else 1.0)


def drop_step(settings: LgstSettings, steps: int | None = None) -> int:
    """First step trained at the lowered learning rate."""
    return int(settings.lr_drop_at * (settings.steps if steps is None else steps))


def budget_steps(settings: LgstSettings, done: int, seconds: float) -> int:
    """Steps the run trains in total: ``settings.steps``, or under a time budget as many as fit
    in ``time_budget_s`` at the pace so far (``seconds`` for ``done`` steps), rounded down to a
    multiple of ``REPLAN_EVERY`` and never fewer than ``done``."""
    if settings.time_budget_s <= 0 or done <= 0 or seconds <= 0:
        return settings.steps
    fitting = int(settings.time_budget_s * done / seconds) // REPLAN_EVERY * REPLAN_EVERY
    return max(done, min(settings.steps, fitting))


def log_every(settings: LgstSettings) -> int:
    """Steps between loss records: about 200 records per run, at least every step."""
    return max(1, settings.steps // 200)


def train_lgst(
    data: LgstData, settings: LgstSettings, out_dir: Path, device: torch.device, *, resume: bool = True,
    progress: ProgressFn = no_progress, report: MetricsFn = no_metrics, dist_ctx: DistributedContext | None = None,
) -> LgstTrainingResult:
    """Train (or resume) the students on ``data``; the checkpoint lives in ``out_dir``."""
    ctx = dist_ctx or DistributedContext()
    if not ctx.is_main:  # one log and one job record, from rank 0, as the segmenter does
        progress, report = no_progress, no_metrics
    set_determinism(settings.seed)
    net = LgstNet(build_backbone(settings.backbone, device=device), settings).to(device)
    optimizer = torch.optim.Adam(net.student_parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    path, fingerprint = out_dir / CHECKPOINT, data.fingerprint()
    history, start, plan = _resume(path, net, optimizer, settings, fingerprint) if resume else _fresh(settings)
    if start == 0:
        net.teacher.fit_normalisation(_batches(data.images, settings, device))
    cache = _teacher_cache(net, data, settings, device)
    model = wrap_ddp(net, ctx, device)
    started, window = _clock(), []
    step = start
    while step < plan.steps:
        for group in optimizer.param_groups:
            group["lr"] = step_lr(step, settings, plan.steps)
        picks, x, x_aug, augmented = _batch(data, settings, step, ctx, device)
        teacher = cache[torch.as_tensor(picks)].to(device) if cache is not None else None
        loss, parts = model(x, x_aug, augmented, teacher)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window.append({"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in parts.items()}})
        done = step = step + 1
        seconds = _clock() - started
        plan = _replan(plan, settings, done, seconds, ctx)
        if done % log_every(settings) == 0 or done == plan.steps:
            record = {"stage": STAGE, "step": done, **_mean(window, ctx), "lr": optimizer.param_groups[0]["lr"],
                      "seconds": round(seconds, 2)}
            history.append(record)
            window = []
            report(record)
        if done % settings.checkpoint_every == 0 or done == plan.steps:
            _save(path, net, optimizer, done, history, fingerprint, ctx, plan, seconds)
        progress(STAGE, done, plan.steps)
    net.eval()
    spent = plan.spent(seconds) if step > start else plan.seconds_before
    return LgstTrainingResult(unwrap(model).eval(), path, tuple(history), start, plan.steps, spent)


@dataclass(frozen=True)
class _Plan:
    """Steps the run trains in total, and training seconds spent by the runs before this one."""

    steps: int
    seconds_before: float = 0.0

    def spent(self, seconds_now: float) -> float:
        return round(self.seconds_before + seconds_now, 2)


def _replan(plan: _Plan, settings: LgstSettings, done: int, seconds_now: float, ctx: DistributedContext) -> _Plan:
    """A time-budgeted run's plan after step ``done``; fixed once the learning rate has dropped
    (every rank follows rank 0's plan, so all stop together)."""
    if settings.time_budget_s <= 0 or done % REPLAN_EVERY or done >= drop_step(settings, plan.steps):
        return plan
    steps = broadcast_object(budget_steps(settings, done, plan.spent(seconds_now)), ctx)
    return replace(plan, steps=steps)


def _teacher_cache(net: LgstNet, data: LgstData, settings: LgstSettings, device: torch.device) -> torch.Tensor | None:
    """Teacher features ``(N, C, g, g)`` of every plain training image (CPU), or None if too big."""
    size = len(data.images) * settings.out_channels * settings.grid ** 2 * 4
    if size > TEACHER_CACHE_BYTES:
        return None
    return torch.cat([net.teacher(x).cpu() for x in _batches(data.images, settings, device)])


def _batch(data: LgstData, settings: LgstSettings, step: int, ctx: DistributedContext, device: torch.device):
    """``(picks, x, x_aug, augmented)`` of ``step``: this rank's image indices and images, LSA
    applied to some of the twins."""
    rng = rank_generator(ctx, settings.seed, step)
    size = ctx.local_batch(settings.batch_size)
    picks = rng.choice(len(data.images), size=size, replace=len(data.images) < size)
    plain, twins, augmented = [], [], []
    for index in picks:
        image, labels = data.images[int(index)], data.label_maps[int(index)]
        twin = image
        if labels is not None and rng.random() < settings.lsa_probability:
            moved, _, changed = logical_synthetic_anomaly(image, labels, rng, settings.lsa)
            twin = moved if changed.any() else image
        plain.append(image)
        twins.append(twin)
        augmented.append(twin is not image)
    x = to_tensor_batch(plain, settings.image_size).to(device)
    x_aug = to_tensor_batch(twins, settings.image_size).to(device) if any(augmented) else x
    return [int(i) for i in picks], x, x_aug, torch.tensor(augmented, dtype=torch.bool, device=device)


def _batches(images: tuple[np.ndarray, ...], settings: LgstSettings, device: torch.device, chunk: int = 16):
    for start in range(0, len(images), chunk):
        yield to_tensor_batch(list(images[start:start + chunk]), settings.image_size).to(device)


def _mean(window: list[dict], ctx: DistributedContext) -> dict[str, float]:
    local = {k: float(np.mean([w[k] for w in window])) for k in window[0]} if window else {}
    return {k: round(v, 6) for k, v in mean_across(local, ctx).items()}


def _save(path: Path, net: LgstNet, optimizer, done: int, history: list[dict], fingerprint: str,
          ctx: DistributedContext, plan: _Plan, seconds_now: float) -> None:
    if ctx.is_main:
        save_lgst_checkpoint(path, net, optimizer, done, history, fingerprint, planned_steps=plan.steps,
                             train_seconds=plan.spent(seconds_now))
    barrier(ctx)  # nobody reads a half-written checkpoint


def _fresh(settings: LgstSettings) -> tuple[list[dict], int, _Plan]:
    return [], 0, _Plan(settings.steps)


def _resume(path: Path, net: LgstNet, optimizer: torch.optim.Optimizer, settings: LgstSettings,
            fingerprint: str) -> tuple[list[dict], int, _Plan]:
    """Load a compatible checkpoint into ``net``/``optimizer``; a mismatching one is started over.
    Returns the history, the steps done and the plan the checkpoint's run was following."""
    fresh = _fresh(settings)
    if not path.is_file():
        return fresh
    try:
        saved = load_lgst_checkpoint(path)
    except (ValueError, OSError, KeyError):
        return fresh  # unreadable or foreign: train from scratch (overwritten at the next checkpoint)
    if saved.settings != settings or saved.data_fingerprint != fingerprint:
        return fresh  # other settings or other images: resuming would mix two runs
    net.load_student_state_dict(saved.model)
    if saved.optimizer:
        restore_optimizer(optimizer, saved.optimizer)
    planned = min(saved.planned_steps or settings.steps, settings.steps)
    done = min(saved.steps_done, planned)
    return list(saved.history), done, _Plan(planned, saved.train_seconds)
