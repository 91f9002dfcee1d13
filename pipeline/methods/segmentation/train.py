"""Training loop of the component segmentation network (SPEC §5 step 6, thesis §5.3).

Adam with a cosine learning-rate schedule over the epochs; augmentation and LSA on ``D_L``; the
supervised losses from the start and the ``D_U`` losses from ``stage_start`` on. Each epoch draws
its randomness from ``(seed, epoch)``, so a run resumed from a checkpoint after a kill continues
exactly as the uninterrupted run would. A checkpoint is written atomically after every epoch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from pipeline.device import set_determinism
from pipeline.methods.base import ProgressFn, no_progress
from pipeline.methods.segmentation.augment import augment_pair
from pipeline.methods.segmentation.checkpoint import load_checkpoint, restore_optimizer, save_checkpoint
from pipeline.methods.segmentation.data import SegmentationData
from pipeline.methods.segmentation.losses import class_weights, label_histogram, total_loss, unsupervised_active
from pipeline.methods.segmentation.lsa import logical_synthetic_anomaly
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.methods.segmentation.torch_model import SegmentationNet, labels_to_tensor, predict_labels
from pipeline.models.backbones import build_backbone
from pipeline.models.preprocess import to_tensor_batch
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
) -> TrainingResult:
    """Train (or resume) the head on ``data``; the checkpoint lives in ``out_dir``."""
    if not data.train_images:
        raise ValueError("no training images in D_L (all held out?); pseudo-label more images")
    set_determinism(settings.seed)
    net = SegmentationNet(build_backbone(settings.backbone, device=device), data.n_classes, settings).to(device)
    optimizer = torch.optim.Adam(net.head_parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    path = out_dir / CHECKPOINT
    fingerprint = data.fingerprint()
    history, start = _resume(path, net, optimizer, settings, data.class_names, fingerprint) if resume else ([], 0)
    n_labels = net.n_labels
    weight = class_weights(data.train_maps, n_labels, settings.max_class_weight).to(device)
    reference = label_histogram(data.train_maps, n_labels).to(device)
    steps = _steps_per_epoch(len(data.train_images), settings.batch_size)
    for epoch in range(start, settings.epochs):
        started = time.perf_counter()
        lr = cosine_lr(epoch, settings)
        for group in optimizer.param_groups:
            group["lr"] = lr
        net.train()
        parts = _train_epoch(net, optimizer, data, settings, epoch, weight, reference, device,
                             lambda step: progress("train segmentation", epoch * steps + step, settings.epochs * steps))
        record = {"epoch": epoch + 1, **parts, "miou": holdout_miou(net, data, settings.image_size), "lr": lr,
                  "seconds": round(time.perf_counter() - started, 2)}
        history.append(record)
        save_checkpoint(path, net, optimizer, settings, data.class_names, epoch + 1, history, fingerprint)
        atomic_write_json(out_dir / HISTORY, {"epochs": settings.epochs, "epochs_done": epoch + 1,
                                              "settings": settings.to_dict(), "history": history})
        if on_epoch is not None:
            on_epoch(record)
    net.eval()
    return TrainingResult(net, path, tuple(history), start)


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


def _train_epoch(net, optimizer, data, settings, epoch, weight, reference, device, step_done) -> dict:
    """One pass over ``D_L``; returns the epoch's mean loss and loss parts."""
    rng = np.random.default_rng([settings.seed, epoch])
    torch.manual_seed(settings.seed * 100_003 + epoch)  # dropout: same per epoch after a resume
    order = rng.permutation(len(data.train_images))
    use_unlabelled = bool(data.unlabelled_images) and unsupervised_active(epoch, settings.epochs, settings.stage_start)
    sums: dict[str, float] = {}
    batches = [order[i:i + settings.batch_size] for i in range(0, len(order), settings.batch_size)]
    for step, batch in enumerate(batches, start=1):
        images, maps = zip(*(_labelled_sample(data, int(i), rng, settings) for i in batch))
        x = to_tensor_batch(list(images), settings.image_size).to(device)
        y = labels_to_tensor(list(maps), settings.image_size).to(device)
        unlabelled = _unlabelled_batch(data, rng, settings, device) if use_unlabelled else None
        loss, parts = total_loss(
            net(x), y, settings.loss, epoch, settings.epochs,
            unlabelled_logits=net(unlabelled) if unlabelled is not None else None, reference_hist=reference,
            class_weight=weight, gamma=settings.focal_gamma, stage_start=settings.stage_start,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for name, value in {"loss": loss.detach(), **parts}.items():
            sums[name] = sums.get(name, 0.0) + float(value)
        step_done(step)
    return {name: round(total / len(batches), 5) for name, total in sums.items()}


def _labelled_sample(data: SegmentationData, index: int, rng: np.random.Generator, settings: SegmentationSettings):
    image, labels = data.train_images[index], data.train_maps[index]
    if rng.random() < settings.lsa_probability:
        image, labels, _ = logical_synthetic_anomaly(image, labels, rng, settings.lsa)
    return augment_pair(image, labels, rng, settings.augment)


def _unlabelled_batch(data: SegmentationData, rng: np.random.Generator, settings: SegmentationSettings, device) -> torch.Tensor:
    picks = rng.choice(len(data.unlabelled_images), size=min(settings.batch_size, len(data.unlabelled_images)), replace=False)
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
