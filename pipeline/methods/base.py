"""What every detection method returns, and the small interface the CLI, evaluation and pages use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

import numpy as np

from pipeline.progress import MetricsFn, ProgressFn, no_metrics, no_progress

if TYPE_CHECKING:
    import torch

    from pipeline.data.samples import CategoryData
    from pipeline.workspace import Workspace

@dataclass(frozen=True)
class Prediction:
    """One image scored by a method.

    Attributes:
        score: image anomaly score; higher is more anomalous. Not calibrated across methods.
        anomaly_map: float32 array ``(h, w)`` at the method's map resolution; resize it to the
            image size for display (``pipeline.models.preprocess.resize_map``).
        branch_maps: optional extra maps by name (same shape as ``anomaly_map``), e.g. the
            local/global maps of LGST methods. The instant detector has none.
        branch_scores: optional per-branch image scores by name.
        explanations: optional sentences saying why, most telling first (the histogram branch:
            "grid cell top-left: class 'pin' count 0, expected 1; ...").
        fused: the branches whose z-scores (``z_<name>`` in ``branch_scores``) the score adds up,
            where a fusion keeps only some of them (AeCSAD/CSAD: the image's three largest);
            empty when every z-score counts or the method has none.
    """

    score: float
    anomaly_map: np.ndarray
    branch_maps: dict[str, np.ndarray] = field(default_factory=dict)
    branch_scores: dict[str, float] = field(default_factory=dict)
    explanations: tuple[str, ...] = ()
    fused: tuple[str, ...] = ()


class Detector(Protocol):
    """A fitted method, ready to score RGB images."""

    method: str

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        """Score RGB uint8 images ``(H, W, 3)`` of any size."""
        ...


@dataclass(frozen=True)
class FitContext:
    """Everything a method's ``fit`` may use.

    Attributes:
        data: the category's images (train/validation used; test never looked at).
        out_dir: folder the method writes its model files into (atomically).
        profile: ``"quick"`` or ``"paper"`` (SPEC §7).
        device: torch device to compute on.
        seed: seed for every random choice.
        labelled_bad: image keys (``Sample.key``) the user marked as defective; methods that
            can use bad examples (instant: anomaly keys) read them, others ignore them.
        progress: progress sink.
        report: live training metrics sink (loss and its parts, mIoU, ...); see ``MetricsFn``.
        backbone: ``"auto"`` or a backbone name (see ``pipeline.models.backbones.choose_backbone``).
        workspace, category: where the category's pseudo-labels live (methods with a segmentation
            branch read them; None when fitting outside a workspace).
        settings_changes: training settings changed from the profile's defaults, by part
            (``{"lgst": {"steps": 3000}}``; ``pipeline.methods.training_settings``), checked
            against ``MethodSpec.trains`` before the fit starts.
    """

    data: "CategoryData"
    out_dir: Path
    profile: str
    device: "torch.device"
    seed: int = 0
    labelled_bad: tuple[str, ...] = ()
    progress: ProgressFn = no_progress
    backbone: str = "auto"
    workspace: "Workspace | None" = None
    category: str = ""
    report: MetricsFn = no_metrics
    settings_changes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def changed(self, part: str) -> dict[str, Any]:
        """The changed fields of one training part, as keyword arguments of its ``for_profile``."""
        return dict(self.settings_changes.get(part, {}))


@dataclass(frozen=True)
class MethodSpec:
    """One detection method as the CLI, evaluation and pages see it.

    Attributes:
        name: CLI name (``--method``).
        title: short human title for the UI.
        summary: one sentence on what it does and needs.
        fit: trains/builds the model into ``ctx.out_dir``; returns ``{role: file name}``.
        load: ``(out_dir, device) -> Detector``.
        trains: the training settings parts its fit reads (``segmentation``, ``lgst``): what
            ``fit --set part.field=value`` may change.
    """

    name: str
    title: str
    summary: str
    fit: Callable[[FitContext], dict[str, str]]
    load: Callable[[Path, "torch.device"], Detector]
    trains: tuple[str, ...] = ()
