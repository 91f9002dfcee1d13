"""Training loop of the LGST students (SPEC §5 step 8, thesis §5.4).

Adam with step decay (×0.1 after ``lr_drop_at`` of the steps). Each step draws its batch and its
LSA from ``(seed, step)`` (and the rank under torchrun), so a run resumed from a checkpoint after
a kill continues exactly as the uninterrupted run would. Checkpoints are written atomically every
``checkpoint_every`` steps and at the end, by the main rank only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.device import set_determinism
from pipeline.distributed import DistributedContext, barrier, mean_across, rank_generator, unwrap, wrap_ddp
from pipeline.methods.base import MetricsFn, ProgressFn, no_metrics, no_progress
from pipeline.methods.lgst.checkpoint import load_lgst_checkpoint, save_lgst_checkpoint
from pipeline.methods.lgst.data import LgstData
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.lgst.torch_model import LgstNet
from pipeline.methods.segmentation.checkpoint import restore_optimizer
from pipeline.methods.segmentation.lsa import logical_synthetic_anomaly
from pipeline.models.backbones import build_backbone
from pipeline.models.preprocess import to_tensor_batch

CHECKPOINT = "lgst.safetensors"
STAGE = "train lgst"
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
    """

    net: LgstNet
    checkpoint: Path
    history: tuple[dict, ...]
    resumed_from: int


def step_lr(step: int, settings: LgstSettings) -> float:
    """Learning rate of ``step``: ``lr``, then ×0.1 from ``lr_drop_at`` of the run on."""
    return settings.lr * (0.1 if step >= int(settings.lr_drop_at * settings.steps) else 1.0)


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
    history, start = _resume(path, net, optimizer, settings, fingerprint) if resume else ([], 0)
    if start == 0:
        net.teacher.fit_normalisation(_batches(data.images, settings, device))
    cache = _teacher_cache(net, data, settings, device)
    model = wrap_ddp(net, ctx, device)
    started, window = time.perf_counter(), []
    for step in range(start, settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = step_lr(step, settings)
        picks, x, x_aug, augmented = _batch(data, settings, step, ctx, device)
        teacher = cache[torch.as_tensor(picks)].to(device) if cache is not None else None
        loss, parts = model(x, x_aug, augmented, teacher)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window.append({"loss": float(loss.detach()), **{k: float(v.detach()) for k, v in parts.items()}})
        done = step + 1
        if done % log_every(settings) == 0 or done == settings.steps:
            record = {"stage": STAGE, "step": done, **_mean(window, ctx), "lr": step_lr(step, settings),
                      "seconds": round(time.perf_counter() - started, 2)}
            history.append(record)
            window = []
            report(record)
        if done % settings.checkpoint_every == 0 or done == settings.steps:
            _save(path, net, optimizer, done, history, fingerprint, ctx)
        progress(STAGE, done, settings.steps)
    net.eval()
    return LgstTrainingResult(unwrap(model).eval(), path, tuple(history), start)


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
          ctx: DistributedContext) -> None:
    if ctx.is_main:
        save_lgst_checkpoint(path, net, optimizer, done, history, fingerprint)
    barrier(ctx)  # nobody reads a half-written checkpoint


def _resume(path: Path, net: LgstNet, optimizer: torch.optim.Optimizer, settings: LgstSettings,
            fingerprint: str) -> tuple[list[dict], int]:
    """Load a compatible checkpoint into ``net``/``optimizer``; a mismatching one is started over."""
    if not path.is_file():
        return [], 0
    try:
        saved = load_lgst_checkpoint(path)
    except (ValueError, OSError, KeyError):
        return [], 0  # unreadable or foreign: train from scratch (overwritten at the next checkpoint)
    if saved.settings != settings or saved.data_fingerprint != fingerprint:
        return [], 0  # other settings or other images: resuming would mix two runs
    net.load_student_state_dict(saved.model)
    if saved.optimizer:
        restore_optimizer(optimizer, saved.optimizer)
    return list(saved.history), min(saved.steps_done, settings.steps)
