"""What every detection method returns, and the small interface the CLI, evaluation and pages use.

A ``MethodSpec`` also says what its method can do besides fit and load (its abilities): bundle and
ONNX export, bench stages, the branch maps the Inspect page describes, whether it trains the
segmenter on pseudo-labels and whether its global student uses attention. ``pipeline.deploy`` and
the pages ask the registry (``pipeline.methods``) for these instead of naming methods. This module
and the specs stay free of torch: a spec's callables import their heavy modules when called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

import numpy as np

from pipeline.progress import MetricsFn, ProgressFn, no_metrics, no_progress

if TYPE_CHECKING:
    import torch

    from pipeline.data.samples import CategoryData
    from pipeline.methods.bundle_parts import BundleReader
    from pipeline.workspace import Workspace

@dataclass(frozen=True)
class NamedRegion:
    """A place the evidence points at that the heat map alone would not show: a histogram grid
    cell whose part counts or areas are off from the good images.

    Attributes:
        name: what is off there, e.g. ``"grid cell top-left: 'pin' count 0, expected 1"``.
        box: ``(top, left, bottom, right)`` as fractions of the image's height and width (0..1).
    """

    name: str
    box: tuple[float, float, float, float]


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
        regions: the grid cells the histogram branch finds off, most unusual first (outlined and
            named on Inspect and in ``predict``'s output); empty without part counts.
    """

    score: float
    anomaly_map: np.ndarray
    branch_maps: dict[str, np.ndarray] = field(default_factory=dict)
    branch_scores: dict[str, float] = field(default_factory=dict)
    explanations: tuple[str, ...] = ()
    fused: tuple[str, ...] = ()
    regions: tuple[NamedRegion, ...] = ()


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
class BranchMap:
    """How the Inspect page shows one branch map of a ``Prediction``.

    Attributes:
        name: the key in ``Prediction.branch_maps``.
        label: short title (the toggle's text).
        meaning: one sentence on what the map shows (the toggle's help and the picture's caption).
        value_range: colour range of the map; None: each image's own range.
    """

    name: str
    label: str
    meaning: str
    value_range: tuple[float, float] | None = None


@dataclass(frozen=True)
class BundleExport:
    """How a method's fitted detector travels in a one-file bundle (``pipeline.deploy.bundle``).

    Attributes:
        parts: ``(detector, segmenter settings or None, class names or None) -> (config, tensors)``;
            ``config["method"]`` names the method, tensors are keyed by role prefix. Raises
            ``BundleError`` for a detector it cannot carry (e.g. one fitted on a surface).
        detector: ``(reader) -> Detector``, the inverse, from a verified bundle's parts
            (``pipeline.methods.bundle_parts.BundleReader``).
    """

    parts: Callable[[Detector, Any, "dict[int, str] | None"], "tuple[dict, dict[str, torch.Tensor]]"]
    detector: Callable[["BundleReader"], Detector]


class ExportModule(Protocol):
    """A method's export module (``<method>/export.py``): the two halves of ``BundleExport``."""

    def bundle_parts(self, detector: Detector, seg_settings: Any = None,
                     class_names: "dict[int, str] | None" = None) -> "tuple[dict, dict[str, torch.Tensor]]": ...

    def bundle_detector(self, reader: "BundleReader") -> Detector: ...


def deferred_bundle(export_module: Callable[[], ExportModule]) -> BundleExport:
    """A ``BundleExport`` whose functions import the method's export module on first call:
    ``export_module`` returns it (a function-level import), so the registry stays without torch."""
    return BundleExport(
        parts=lambda detector, seg_settings=None, class_names=None: export_module().bundle_parts(
            detector, seg_settings, class_names),
        detector=lambda reader: export_module().bundle_detector(reader),
    )


class BenchRun(Protocol):
    """What a method's bench stages get from the benchmark (``pipeline.deploy.bench``).

    ``images``: random RGB uint8 inputs by batch size (1 and the throughput batch); ``profile``,
    ``seed``, ``n_train`` (images a memory bank is sized for) and ``training`` (time training
    steps too) come from the bench options."""

    device: "torch.device"
    images: dict[int, list[np.ndarray]]
    profile: str
    seed: int
    n_train: int
    training: bool

    def time(self, label: str, make: Callable[[int], Callable[[], object]], batches: tuple[int, ...] | None = None,
             memory: bool = False) -> dict:
        """``{"batch1": timing, ...}`` of the call ``make(batch)`` returns, logged under ``label``."""
        ...

    def measure(self, fn: Callable[[], object], budget_share: float = 1.0) -> dict:
        """One timing of ``fn`` within ``budget_share`` of the per-figure time budget."""
        ...

    def log(self, line: str) -> None:
        """One line of the bench's running log."""
        ...

    def random_images(self, n: int, seed: int) -> list[np.ndarray]:
        """``n`` more random inputs of the bench's side (training steps' batches)."""
        ...


@dataclass(frozen=True)
class BenchStages:
    """A method's part of ``python -m pipeline bench``.

    Attributes:
        measure: ``(run, shared) -> (result, detector)``: times the method's stages, end to end and
            (``run.training``) its training steps on a random-weight detector of the profile's
            shapes; ``result`` is the method's entry of the bench JSON (``kind``, ``stages``,
            ``end_to_end``, ...). ``shared`` carries figures methods have in common (the
            segmenter's training step), measured once per run.
        headline: the method the bench's target (end to end within 3× EfficientAD-M), attention
            share and operator profile are reported for (``<name>_...`` keys of the JSON).
    """

    measure: Callable[[BenchRun, dict], "tuple[dict, Detector]"]
    headline: bool = False


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
            ``fit --set part.field=value`` may change; ``"lgst" in trains``: it has LGST students
            (``train-lgst`` may train them).
        segments: its fit trains the segmentation network on the pseudo-labels (the Train page
            says whether confidence weighting is on; a bundle carries the segmenter's settings).
        attention: its LGST global student has self-attention (AeCSAD; CSAD's has none).
        branch_maps: the maps its predictions may carry in ``Prediction.branch_maps``, in the
            Inspect page's display order.
        bundle: how it travels in a one-file bundle; None: it cannot be bundled.
        onnx: its whole inference graph exports to ONNX (``pipeline.deploy.graph``).
        bench: its stages in ``python -m pipeline bench``; None: not benchmarked.
    """

    name: str
    title: str
    summary: str
    fit: Callable[[FitContext], dict[str, str]]
    load: Callable[[Path, "torch.device"], Detector]
    trains: tuple[str, ...] = ()
    segments: bool = False
    attention: bool = False
    branch_maps: tuple[BranchMap, ...] = ()
    bundle: BundleExport | None = None
    onnx: bool = False
    bench: BenchStages | None = None
