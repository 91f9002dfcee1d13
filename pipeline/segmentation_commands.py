"""``train-seg``: train the component segmentation network on a category's pseudo-labels.

Also runs as one rank of a distributed run: ``torchrun --nproc_per_node N -m pipeline train-seg ...``
(DDP over N GPUs with NCCL, or N CPU processes with gloo); rank 0 alone prints and writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import SettingsError
from pipeline.progress import TqdmProgress
from pipeline.workspace import Workspace

if TYPE_CHECKING:  # torch is imported on use: the CLI starts fast for the other commands
    import torch

    from pipeline.distributed import DistributedContext

FOLDER = "segmentation"
"""Per-category workspace folder of the segmentation checkpoint."""


def train_seg_command(
    workspace: Path, category: str, profile: str, device: str, seed: int, epochs: int | None, restart: bool,
    confidence_weighting: bool | None = None,
) -> int:
    """Train (or resume) the category's segmentation network; ``confidence_weighting`` None keeps
    the category's saved setting, True/False saves that first (``fit`` then trains the same way)."""
    from pipeline.device import resolve_device
    from pipeline.distributed import setup_distributed, teardown
    from pipeline.methods.segmentation.data import load_segmentation_data
    from pipeline.methods.segmentation.settings import SegmentationSettings
    from pipeline.methods.segmentation.train import train_segmentation
    from pipeline.models.backbones import choose_backbone
    from pipeline.pseudolabels import confidence

    if epochs is not None and epochs < 1:
        raise SettingsError(f"--epochs must be at least 1, got {epochs}")
    ws = Workspace.open(workspace)
    ws.category(category)  # a clear error for an unknown category
    overrides = {"epochs": epochs} if epochs else {}
    if confidence_weighting is not None:
        confidence.set_weighting(ws, category, confidence_weighting)
    overrides["confidence_weighting"] = confidence.weighting_enabled(ws, category)
    # The backbone ``fit --method histogram`` would pick, so both train the same network.
    settings = SegmentationSettings.for_profile(profile, seed=seed, backbone=choose_backbone("auto", profile), **overrides)
    dist, torch_device = setup_distributed(resolve_device(device))  # one process unless torchrun started us
    say = print if dist.is_main else _silent
    try:
        data = load_segmentation_data(ws, category, settings.image_size, settings.holdout_fraction, seed,
                                      confidence=settings.active_confidence)
        say(f"device: {_describe_processes(torch_device, dist)}; {len(data.train_images)} labelled images "
            f"(+{len(data.holdout_images)} held out), {len(data.unlabelled_images)} unlabelled, "
            f"{data.n_classes} classes: " + ", ".join(data.class_names[c] for c in sorted(data.class_names)))
        say(describe_weighting(ws, category, settings))
        progress = TqdmProgress()
        try:
            result = train_segmentation(
                data, settings, ws.category_dir(category) / FOLDER, torch_device, resume=not restart,
                progress=progress, on_epoch=lambda record: progress.write(format_epoch(record, settings.epochs)),
                dist=dist,
            )
        finally:
            progress.close()
    finally:
        teardown(dist)
    if result.resumed_from:
        say(f"resumed after epoch {result.resumed_from} of {settings.epochs}")
    say(f"checkpoint: {result.checkpoint}")
    return 0


def describe_weighting(ws: Workspace, category: str, settings) -> str:
    """``confidence weighting: off (hard D_L/D_U split)``, or on with the confidence distribution."""
    from pipeline.pseudolabels.confidence import describe, image_confidence

    found = image_confidence(ws, category, settings.confidence) if settings.confidence_weighting else None
    if found is None:
        return "confidence weighting: off (hard D_L/D_U split)"
    floor = settings.confidence.floor
    return f"confidence weighting: on; confidence of the {describe(found.effective, floor)} (below {floor:g}: D_U)"


def _silent(*_args: object) -> None:
    """``print`` of the ranks other than 0: one log per distributed run."""


def _describe_processes(device: torch.device, dist: DistributedContext) -> str:
    """``cpu`` in one process; ``cpu (rank 0 of 2 processes, gloo)`` under torchrun (printed by rank 0)."""
    if not dist.active:
        return str(device)
    return f"{device} (rank {dist.rank} of {dist.world_size} processes, {dist.backend})"


def format_epoch(record: dict, epochs: int) -> str:
    """``epoch 3/15  loss 1.234 (ce 0.5 dice 0.3 ...)  mIoU 0.812  lr 9.1e-04  4.2 s``."""
    parts = " ".join(f"{k} {record[k]:.3f}" for k in ("ce", "dice", "focal", "hist", "entropy") if k in record)
    miou = "n/a" if record.get("miou") is None else f"{record['miou']:.3f}"
    return (f"epoch {record['epoch']}/{epochs}  loss {record['loss']:.3f} ({parts})  held-out mIoU {miou}  "
            f"lr {record['lr']:.1e}  {record['seconds']:.1f} s")
