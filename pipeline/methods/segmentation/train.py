"""Training loop of the component segmentation network (SPEC §5 step 6, thesis §5.3).

Adam with a cosine learning-rate schedule over the epochs; augmentation and LSA on ``D_L``; the
supervised losses from the start (each image weighted by its confidence when the data carries
``train_weights``) and the ``D_U`` losses from ``stage_start`` on. Each epoch draws
its randomness from ``(seed, epoch)``, so a run resumed from a checkpoint after a kill continues
exactly as the uninterrupted run would. A checkpoint is written atomically after every epoch.

Under ``torchrun`` (``pipeline.distributed``) each rank trains on its shard of the epoch's order
with ``batch_size / world_size`` images per step (the global batch, and so the schedule, stay as in
one process); the head is wrapped in DDP so gradients are averaged; the loss parts are averaged
across ranks; rank 0 alone writes the checkpoint and history and reports progress, the others wait
for it at a barrier. Augmentation randomness comes from ``(seed, epoch, rank)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from pipeline.device import set_determinism
from pipeline.distributed import (
    DistributedContext,
    barrier,
    broadcast_object,
    broadcast_state,
    mean_across,
    rank_generator,
    rank_seed,
    wrap_ddp,
)
from pipeline.errors import NotReadyError
from pipeline.methods.segmentation.augment import augment_pair
from pipeline.methods.segmentation.checkpoint import load_checkpoint, restore_optimizer, save_checkpoint
from pipeline.methods.segmentation.data import SegmentationData
from pipeline.methods.segmentation.losses import class_weights, label_histogram, total_loss, unsupervised_active
from pipeline.methods.segmentation.lsa import logical_synthetic_anomaly
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.methods.segmentation.torch_model import SegmentationNet, labels_to_tensor, predict_labels
from pipeline.models.backbones import build_backbone
from pipeline.models.preprocess import to_tensor_batch
from pipeline.progress import ProgressFn, no_progress
from pipeline.workspace.files import atomic_write_json

CHECKPOINT = "segmentation.safetensors"
HISTORY = "segmentation_history.json"
"""Per-epoch records as plain JSON beside the checkpoint, for pages and scripts that read no safetensors."""
EpochFn = Callable[[dict], None]
"""Called with each finished epoch's record (the CLI prints it, a job stores it)."""


@dataclass(frozen=True)
class TrainingResult:
    """A finished (or resumed and finished) training run.

    Attributes:
        net: the trained network in eval mode.
        checkpoint: path of the checkpoint file.
        history: one record per epoch: ``epoch``, ``loss`` and each loss part, ``miou`` (held-out
            mean IoU, None without a held-out slice), ``lr``, ``seconds``.
        resumed_from: epochs already done when this call started (0 = fresh start).
    """

    net: SegmentationNet
    checkpoint: Path
    history: tuple[dict, ...]
    resumed_from: int


def cosine_lr(epoch: int, settings: SegmentationSettings) -> float:
    """Learning rate of ``epoch``: cosine from ``lr`` down to ``min_lr`` over the run."""
    if settings.epochs <= 1:
        return settings.lr
    phase = epoch / (settings.epochs - 1)
    return settings.min_lr + 0.5 * (settings.lr - settings.min_lr) * (1 + math.cos(math.pi * phase))


def train_segmentation(
    data: SegmentationData, settings: SegmentationSettings, out_dir: Path, device: torch.device,
    *, resume: bool = True, progress: ProgressFn = no_progress, on_epoch: EpochFn | None = None,
    dist: DistributedContext = DistributedContext(),
) -> TrainingResult:
    """Train (or resume) the head on ``data``; the checkpoint lives in ``out_dir``.

    ``dist`` (from ``setup_distributed``) makes this one rank of a DDP run; ``progress`` and
    ``on_epoch`` are then called on rank 0 only, and every rank returns rank 0's history and weights.
    """
    if not data.train_images:
        raise NotReadyError("no training images in D_L (all held out?); pseudo-label more images")
    set_determinism(settings.seed)
    net = SegmentationNet(build_backbone(settings.backbone, device=device), data.n_classes, settings).to(device)
    optimizer = torch.optim.Adam(net.head_parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    path = out_dir / CHECKPOINT
    fingerprint = data.fingerprint()
    # Every rank reads the same file, so all resume at the same epoch with the same weights.
    history, start = _resume(path, net, optimizer, settings, data.class_names, fingerprint) if resume else ([], 0)
    if not dist.is_main:
        progress, on_epoch = no_progress, None  # one progress bar and one log, rank 0's
    step_module = wrap_ddp(_HeadStep(net), dist, device)
    n_labels = net.n_labels
    # With confidence weights a doubtful map also counts less in the class balance and the D_U reference.
    weight = class_weights(data.train_maps, n_labels, settings.max_class_weight, data.train_weights).to(device)
    reference = label_histogram(data.train_maps, n_labels, data.train_weights).to(device)
    steps = _steps_per_epoch(len(dist.shard(range(len(data.train_images)))), dist.local_batch(settings.batch_size))
    for epoch in range(start, settings.epochs):
        started = time.perf_counter()
        lr = cosine_lr(epoch, settings)
        for group in optimizer.param_groups:
            group["lr"] = lr
        net.train()
        sums = _train_epoch(step_module, optimizer, data, settings, epoch, weight, reference, device, dist,
                            lambda step: progress("train segmentation", epoch * steps + step, settings.epochs * steps))
        parts = {name: round(value, 5) for name, value in mean_across(sums, dist).items()}
        # The held-out score needs rank 0's BatchNorm statistics (those checkpointed), so rank 0
        # computes the record and every rank keeps that one: all histories stay identical.
        miou = holdout_miou(net, data, settings.image_size) if dist.is_main else None
        record = broadcast_object({"epoch": epoch + 1, **parts, "miou": miou, "lr": lr,
                                   "seconds": round(time.perf_counter() - started, 2)}, dist)
        history.append(record)
        if dist.is_main:
            _write_epoch(out_dir, net, optimizer, settings, data, epoch + 1, history, fingerprint)
        barrier(dist)  # no rank moves on (or returns) before the checkpoint is whole on disk
        if on_epoch is not None:
            on_epoch(record)
    broadcast_state(net.head, dist)  # rank 0's BatchNorm statistics everywhere, as in the checkpoint
    net.eval()
    return TrainingResult(net, path, tuple(history), start)


def _write_epoch(out_dir: Path, net: SegmentationNet, optimizer: torch.optim.Optimizer, settings: SegmentationSettings,
                 data: SegmentationData, epochs_done: int, history: list[dict], fingerprint: str) -> None:
    """Checkpoint and plain-JSON history after an epoch (both atomic)."""
    save_checkpoint(out_dir / CHECKPOINT, net, optimizer, settings, data.class_names, epochs_done, history, fingerprint)
    atomic_write_json(out_dir / HISTORY, {"epochs": settings.epochs, "epochs_done": epochs_done,
                                          "settings": settings.to_dict(), "history": history})


class _HeadStep(nn.Module):
    """One training forward: the head on a labelled batch and, optionally, an unlabelled one.

    This is what DDP wraps. Both batches go through one forward call because DDP prepares one
    gradient reduction per call; BatchNorm still sees each batch on its own, as ``net(x)`` and
    ``net(u)`` do. The frozen backbone is kept outside the module (a bound method, not a
    submodule), so DDP neither broadcasts its buffers nor looks at its parameters.
    """

    def __init__(self, net: SegmentationNet) -> None:
        super().__init__()
        self.head = net.head
        self._features = net.features

    def forward(self, x: torch.Tensor, unlabelled: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits of ``x`` and of ``unlabelled`` (None without it), like ``net(x)``, ``net(unlabelled)``."""
        logits = self.head(*self._features(x), x.shape[-2:])
        if unlabelled is None:
            return logits, None
        return logits, self.head(*self._features(unlabelled), unlabelled.shape[-2:])


def _resume(path: Path, net: SegmentationNet, optimizer: torch.optim.Optimizer, settings: SegmentationSettings,
            class_names: dict[int, str], fingerprint: str) -> tuple[list[dict], int]:
    """Load a compatible checkpoint into ``net``/``optimizer``; a mismatching one is started over."""
    if not path.is_file():
        return [], 0
    try:
        saved = load_checkpoint(path)
    except (ValueError, OSError, KeyError):
        return [], 0  # unreadable or foreign: train from scratch (it is overwritten after epoch 1)
    if saved.settings != settings or saved.class_names != class_names or saved.data_fingerprint != fingerprint:
        return [], 0  # other settings or other pseudo-labels: resuming would mix two runs
    net.head.load_state_dict(saved.head)
    if saved.optimizer:
        restore_optimizer(optimizer, saved.optimizer)
    return list(saved.history), min(saved.epochs_done, settings.epochs)


def _steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


def _train_epoch(step_module, optimizer, data, settings, epoch, weight, reference, device,
                 dist: DistributedContext, step_done) -> dict:
    """One pass over this rank's shard of ``D_L``; returns the epoch's mean loss and loss parts (unrounded)."""
    rng = np.random.default_rng([settings.seed, epoch])
    torch.manual_seed(rank_seed(settings.seed * 100_003 + epoch, dist))  # dropout: same per epoch after a resume
    order = dist.shard(rng.permutation(len(data.train_images)))  # the same permutation on every rank
    if dist.active:
        rng = rank_generator(dist, settings.seed, epoch)  # each rank augments its shard its own way
    batch_size = dist.local_batch(settings.batch_size)
    use_unlabelled = bool(data.unlabelled_images) and unsupervised_active(epoch, settings.epochs, settings.stage_start)
    sums: dict[str, float] = {}
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    for step, batch in enumerate(batches, start=1):
        images, maps = zip(*(_labelled_sample(data, int(i), rng, settings) for i in batch))
        x = to_tensor_batch(list(images), settings.image_size).to(device)
        y = labels_to_tensor(list(maps), settings.image_size).to(device)
        unlabelled = _unlabelled_batch(data, rng, batch_size, settings, device) if use_unlabelled else None
        logits, unlabelled_logits = step_module(x, unlabelled)
        loss, parts = total_loss(
            logits, y, settings.loss, epoch, settings.epochs,
            unlabelled_logits=unlabelled_logits, reference_hist=reference,
            class_weight=weight, gamma=settings.focal_gamma, stage_start=settings.stage_start,
            sample_weight=_batch_weights(data, batch, device),
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for name, value in {"loss": loss.detach(), **parts}.items():
            sums[name] = sums.get(name, 0.0) + float(value)
        step_done(step)
    return {name: total / len(batches) for name, total in sums.items()}


def _batch_weights(data: SegmentationData, batch, device) -> torch.Tensor | None:
    """The confidences of a batch's images, or None in the hard split (the unweighted losses)."""
    if data.train_weights is None:
        return None
    return torch.tensor([data.train_weights[int(i)] for i in batch], dtype=torch.float32, device=device)


def _labelled_sample(data: SegmentationData, index: int, rng: np.random.Generator, settings: SegmentationSettings):
    image, labels = data.train_images[index], data.train_maps[index]
    if rng.random() < settings.lsa_probability:
        image, labels, _ = logical_synthetic_anomaly(image, labels, rng, settings.lsa)
    return augment_pair(image, labels, rng, settings.augment)


def _unlabelled_batch(data: SegmentationData, rng: np.random.Generator, batch_size: int, settings: SegmentationSettings,
                      device) -> torch.Tensor:
    picks = rng.choice(len(data.unlabelled_images), size=min(batch_size, len(data.unlabelled_images)), replace=False)
    blank = np.zeros(data.unlabelled_images[0].shape[:2], np.uint8)
    images = [augment_pair(data.unlabelled_images[int(i)], blank, rng, settings.augment)[0] for i in picks]
    return to_tensor_batch(images, settings.image_size).to(device)


def holdout_miou(net: SegmentationNet, data: SegmentationData, size: int) -> float | None:
    """Mean IoU over the labels present in the held-out maps or predictions (pixels pooled)."""
    if not data.holdout_images:
        return None
    predicted = predict_labels(net, list(data.holdout_images), size)
    return mean_iou(predicted, list(data.holdout_maps))


def mean_iou(predicted: list[np.ndarray], truth: list[np.ndarray]) -> float:
    """Mean over labels (background included) of |pred ∩ true| / |pred ∪ true|, pixels pooled."""
    pred = np.concatenate([np.asarray(p).ravel() for p in predicted]).astype(np.int64)
    true = np.concatenate([np.asarray(t).ravel() for t in truth]).astype(np.int64)
    labels = np.union1d(np.unique(pred), np.unique(true))
    ious = [((pred == c) & (true == c)).sum() / max(1, ((pred == c) | (true == c)).sum()) for c in labels]
    return float(np.mean(ious))
