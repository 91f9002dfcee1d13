"""The ``MethodSpec`` of AeCSAD and of its CSAD baseline (method names ``aecsad``, ``csad``).

Light on purpose: the registry and the CLI's parser import it without torch; each callable
imports the heavy module it needs when called. The two methods differ only in the global student
(``attention``), so every callable takes it from the spec it serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.methods.base import BenchRun, BenchStages, BranchMap, BundleExport, Detector, FitContext, MethodSpec
from pipeline.methods.histogram.branches import HISTOGRAM_MAP, SEGMENTATION_MAP
from pipeline.methods.instant.spec import RETRIEVAL_MAP

if TYPE_CHECKING:
    import torch

    from pipeline.methods.bundle_parts import BundleReader

LGST_MAPS = (
    BranchMap("local", "Local student", "local student vs teacher: small structural defects (scratches, dents); "
              "bright = 3× the rarest good-pixel level", (0.0, 0.3)),
    BranchMap("global", "Global student", "global student vs local student: logical defects (parts in the wrong "
              "place or combination); bright = 3× the rarest good-pixel level", (0.0, 0.3)),
    BranchMap("teacher_global", "Teacher vs global", "teacher vs global student (thesis eq. 4.11): what the image-wide "
              "reconstruction cannot reproduce, a fused branch of its own; raw distance, colours span "
              "this image's own range"),
)
"""The LGST maps of a prediction (``LgstDetector.combine``)."""
BRANCH_MAPS = (*LGST_MAPS, SEGMENTATION_MAP, RETRIEVAL_MAP, HISTOGRAM_MAP)
TRAINS = ("segmentation", "lgst", "fusion", "retrieval")


def _fit(ctx: FitContext, attention: bool) -> dict[str, str]:
    from pipeline.methods.aecsad import method

    return method.fit(ctx, attention=attention)


def _load(folder: Path, device: "torch.device") -> Detector:
    from pipeline.methods.aecsad import method

    return method.load(folder, device)


def _bundle_parts(detector: Detector, seg_settings=None, class_names: dict[int, str] | None = None):
    from pipeline.methods.aecsad import export

    return export.bundle_parts(detector, seg_settings, class_names)


def _bundle_detector(reader: "BundleReader") -> Detector:
    from pipeline.methods.aecsad import export

    return export.bundle_detector(reader)


def _bench(run: BenchRun, shared: dict, method: str, attention: bool) -> tuple[dict, Detector]:
    from pipeline.methods.aecsad import bench

    return bench.lgst_bench(run, method, attention, shared)


BUNDLE = BundleExport(parts=_bundle_parts, detector=_bundle_detector)

AECSAD = MethodSpec(
    name="aecsad",
    title="AeCSAD (attention local–global student–teacher + histograms)",
    summary=(
        "The thesis method: a local student for scratches and dents, a global student with "
        "self-attention for parts in the wrong place or combination, and part-count histograms from "
        "the segmentation network, plus patch retrieval for small defects, fused into one score. "
        "Trains for minutes on CPU (quick profile)."
    ),
    fit=lambda ctx: _fit(ctx, attention=True),
    load=_load,
    trains=TRAINS,
    segments=True,
    attention=True,
    branch_maps=BRANCH_MAPS,
    bundle=BUNDLE,
    onnx=True,
    bench=BenchStages(measure=lambda run, shared: _bench(run, shared, "aecsad", attention=True), headline=True),
)

CSAD = MethodSpec(
    name="csad",
    title="CSAD baseline (plain CNN global student + histograms)",
    summary=(
        "The same chain as AeCSAD with the published CSAD global student (a CNN autoencoder squeezed "
        "to 1×1, no attention), for side-by-side comparison."
    ),
    fit=lambda ctx: _fit(ctx, attention=False),
    load=_load,
    trains=TRAINS,
    segments=True,
    branch_maps=BRANCH_MAPS,
    bundle=BUNDLE,
    onnx=True,
    bench=BenchStages(measure=lambda run, shared: _bench(run, shared, "csad", attention=False)),
)
