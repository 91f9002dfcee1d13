"""Fit a method on a workspace category and keep what it learnt from the validation images.

This is the one place that ties data, methods and the workspace together for ``fit``; the CLI,
jobs and pages all call it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from pipeline.data.images import load_rgb
from pipeline.data.registered import load_workspace_category
from pipeline.data.samples import Sample
from pipeline.device import resolve_device, set_determinism
from pipeline.errors import MissingFileError
from pipeline.methods import get_method
from pipeline.methods.base import Detector, FitContext, Prediction
from pipeline.methods.calibrated import CALIBRATION_FILE, with_active_fusion
from pipeline.methods.training_settings import SettingsChanges, check_training_settings
from pipeline.metrics.colour_scale import fit_map_scale
from pipeline.metrics.threshold import default_flagged, threshold_for_flagged
from pipeline.progress import MetricsFn, ProgressFn, no_metrics, no_progress
from pipeline.pseudolabels.surface import SURFACE_MESSAGE, is_surface
from pipeline.workspace import ScoreRow, Workspace

FLAGGED_SETTING = "threshold_flagged"
"""Per-category setting ``{method: N}``: the threshold flags N good validation images."""


@dataclass(frozen=True)
class FitSummary:
    """What ``fit_method`` did.

    Attributes:
        category, method: what was fitted.
        seconds: wall time of fit + validation scoring.
        n_train, n_validation: images used.
        threshold: the threshold now stored for the category/method.
        flagged: good validation images that threshold flags.
        files: model files by role, relative to the method folder.
        notes: sentences a user should read about this fit (e.g. ``SURFACE_MESSAGE``).
    """

    category: str
    method: str
    seconds: float
    n_train: int
    n_validation: int
    threshold: float
    flagged: int
    files: dict[str, str]
    notes: tuple[str, ...] = ()


def predict_samples(
    detector: Detector, samples: list[Sample], progress: ProgressFn = no_progress,
    stage: str = "score images", batch: int = 8,
) -> list[tuple[Sample, np.ndarray, Prediction]]:
    """Load and score samples in batches; returns (sample, rgb, prediction) in input order."""
    out = []
    for start in range(0, len(samples), batch):
        chunk = samples[start:start + batch]
        images = [load_rgb(s.path) for s in chunk]
        out.extend(zip(chunk, images, detector.predict(images)))
        progress(stage, min(start + batch, len(samples)), len(samples))
    return out


def store_threshold(workspace: Workspace, category: str, method: str, val_scores: list[float], flagged: int | None = None) -> tuple[float, int]:
    """Set the threshold from the stored "N flagged" choice (or the default) and remember N."""
    choices = dict(workspace.get_setting(FLAGGED_SETTING, {}, category=category) or {})
    n = flagged if flagged is not None else choices.get(method, default_flagged(len(val_scores)))
    n = int(min(max(n, 0), len(val_scores)))
    value = threshold_for_flagged(val_scores, n)
    choices[method] = n
    workspace.set_setting(FLAGGED_SETTING, choices, category=category)
    workspace.set_threshold(category, method, value, note=f"{n} of {len(val_scores)} good validation images flagged")
    return value, n


def fit_method(
    workspace: Workspace, category: str, method: str, profile: str = "quick",
    device: str = "auto", seed: int = 0, progress: ProgressFn = no_progress, backbone: str = "auto",
    report: MetricsFn = no_metrics, settings_changes: SettingsChanges | None = None,
) -> FitSummary:
    """Fit ``method`` on the category's good training images, score its validation images.

    ``settings_changes`` (``{"lgst": {"steps": 3000}}``) changes training settings from the
    profile's defaults; they are checked against what the method trains before anything runs,
    and stored with the model.

    ``progress`` gets every loop's steps; ``report`` gets live training metrics (losses) from
    methods that train (a background job stores both, see ``pipeline.jobs``).
    """
    spec = get_method(method)
    changes = check_training_settings(method, spec.trains, settings_changes or {})
    data = load_workspace_category(workspace, category)
    dev = resolve_device(device)
    set_determinism(seed)
    labels = workspace.image_labels(category)
    ctx = FitContext(
        data=data, out_dir=workspace.method_dir(category, method), profile=profile, device=dev,
        seed=seed, labelled_bad=tuple(sorted(k for k, v in labels.items() if v != "good")), progress=progress,
        backbone=backbone, workspace=workspace, category=category, report=report, settings_changes=changes,
    )
    start = time.perf_counter()
    (ctx.out_dir / CALIBRATION_FILE).unlink(missing_ok=True)  # weights fitted on the old model's branches
    files = spec.fit(ctx)
    detector = spec.load(ctx.out_dir, dev)
    validation = data.select("validation", "good")
    scored = predict_samples(detector, validation, progress, "score validation images")
    seconds = time.perf_counter() - start
    val_scores = [p.score for _, _, p in scored]
    workspace.save_scores(category, method, [ScoreRow(s.key, s.split, s.kind, p.score) for s, _, p in scored])
    threshold, flagged = store_threshold(workspace, category, method, val_scores)
    scale = fit_map_scale([p.anomaly_map for _, _, p in scored], val_scores)
    low, high = scale.display_range(threshold)
    workspace.record_model(
        category, method, files,
        settings={"profile": profile, "device": str(dev), "seed": seed, "backbone": backbone,
                  "labelled_bad": list(ctx.labelled_bad), "settings_changes": changes},
        metrics={
            "seconds_fit": seconds, "n_train": len(data.select("train", "good")),
            "n_validation": len(validation), "display_range": [low, high], "map_scale": scale.to_dict(),
        },
    )
    surface = "segmentation" in spec.trains and is_surface(workspace, category)
    return FitSummary(category, method, seconds, len(data.select("train", "good")), len(validation), threshold, flagged,
                      files, notes=(SURFACE_MESSAGE,) if surface else ())


def load_detector(workspace: Workspace, category: str, method: str, device: str | torch.device = "auto",
                  fusion: str = "active") -> Detector:
    """The fitted detector of a category; a clear error when it was never fitted.

    ``fusion="active"`` scores with the fusion weights the user applied (few-shot calibration,
    ``pipeline.evaluation.calibrate``), ``"equal"`` with the method's own equal-weight sum."""
    if workspace.model_record(category, method) is None:
        raise MissingFileError(
            f"no fitted {method!r} model for category {category!r} in {workspace.path}; "
            f"run `python -m pipeline fit --method {method}` or use the Train page first"
        )
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    detector = get_method(method).load(workspace.method_dir(category, method), dev)
    return with_active_fusion(detector, workspace, category, method) if fusion == "active" else detector
