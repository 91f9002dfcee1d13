"""Training a category's segmentation network on its own (``train-seg``), outside a fit.

The settings are those ``fit --method histogram`` would build (same backbone choice), and the
checkpoint lands in ``<workspace>/categories/<category>/segmentation/``. Also runs as one rank of a
distributed run: ``torchrun --nproc_per_node N -m pipeline train-seg ...`` (DDP over N GPUs with
NCCL, or N CPU processes with gloo); rank 0 alone reports and writes.
"""

from __future__ import annotations

from typing import Callable

from pipeline.device import resolve_device
from pipeline.distributed import describe_processes, main_rank_only, setup_distributed, teardown
from pipeline.methods.segmentation.data import load_segmentation_data
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.methods.segmentation.train import TrainingResult, train_segmentation
from pipeline.models.backbones import choose_backbone
from pipeline.progress import TqdmProgress
from pipeline.pseudolabels import confidence
from pipeline.workspace import Workspace

FOLDER = "segmentation"
"""Per-category workspace folder of the segmentation checkpoint."""


def standalone_settings(
    ws: Workspace, category: str, profile: str, seed: int, epochs: int | None = None,
    confidence_weighting: bool | None = None,
) -> SegmentationSettings:
    """The profile's settings (``epochs`` overrides its number); ``confidence_weighting`` None keeps
    the category's saved setting, True/False saves that first (``fit`` then trains the same way)."""
    ws.category(category)  # a clear error for an unknown category
    overrides = {"epochs": epochs} if epochs else {}
    if confidence_weighting is not None:
        confidence.set_weighting(ws, category, confidence_weighting)
    overrides["confidence_weighting"] = confidence.weighting_enabled(ws, category)
    # The backbone ``fit --method histogram`` would pick, so both train the same network.
    return SegmentationSettings.for_profile(profile, seed=seed, backbone=choose_backbone("auto", profile), **overrides)


def train_standalone(
    ws: Workspace, category: str, settings: SegmentationSettings, device: str, restart: bool = False,
    say: Callable[[str], None] = print,
) -> TrainingResult:
    """Train (or resume, unless ``restart``) the category's network in one process or as one
    torchrun rank; ``say`` hears what is trained, each epoch and where the checkpoint is (rank 0)."""
    dist, torch_device = setup_distributed(resolve_device(device))  # one process unless torchrun started us
    say = main_rank_only(say, dist)
    try:
        data = load_segmentation_data(ws, category, settings.image_size, settings.holdout_fraction, settings.seed,
                                      confidence=settings.active_confidence)
        say(f"device: {describe_processes(torch_device, dist)}; {len(data.train_images)} labelled images "
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
    return result


def describe_weighting(ws: Workspace, category: str, settings: SegmentationSettings) -> str:
    """``confidence weighting: off (hard D_L/D_U split)``, or on with the confidence distribution."""
    found = confidence.image_confidence(ws, category, settings.confidence) if settings.confidence_weighting else None
    if found is None:
        return "confidence weighting: off (hard D_L/D_U split)"
    floor = settings.confidence.floor
    return (f"confidence weighting: on; confidence of the {confidence.describe(found.effective, floor)} "
            f"(below {floor:g}: D_U)")


def format_epoch(record: dict, epochs: int) -> str:
    """``epoch 3/15  loss 1.234 (ce 0.5 dice 0.3 ...)  mIoU 0.812  lr 9.1e-04  4.2 s``."""
    parts = " ".join(f"{k} {record[k]:.3f}" for k in ("ce", "dice", "focal", "hist", "entropy") if k in record)
    miou = "n/a" if record.get("miou") is None else f"{record['miou']:.3f}"
    return (f"epoch {record['epoch']}/{epochs}  loss {record['loss']:.3f} ({parts})  held-out mIoU {miou}  "
            f"lr {record['lr']:.1e}  {record['seconds']:.1f} s")
