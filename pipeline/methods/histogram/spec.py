"""The histogram method's ``MethodSpec`` (method name ``histogram``).

Light on purpose: the registry and the CLI's parser import it without torch; each callable
imports the heavy module it needs when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.methods.base import BundleExport, Detector, FitContext, MethodSpec
from pipeline.methods.histogram.branches import SEGMENTATION_MAP
from pipeline.methods.instant.spec import RETRIEVAL_MAP

if TYPE_CHECKING:
    import torch

    from pipeline.methods.bundle_parts import BundleReader


def _fit(ctx: FitContext) -> dict[str, str]:
    from pipeline.methods.histogram import method

    return method.fit(ctx)


def _load(folder: Path, device: "torch.device") -> Detector:
    from pipeline.methods.histogram import method

    return method.load(folder, device)


def _bundle_parts(detector: Detector, seg_settings=None, class_names: dict[int, str] | None = None):
    from pipeline.methods.histogram import export

    return export.bundle_parts(detector, seg_settings, class_names)


def _bundle_detector(reader: "BundleReader") -> Detector:
    from pipeline.methods.histogram import export

    return export.bundle_detector(reader)


HISTOGRAM = MethodSpec(
    name="histogram",
    title="Histogram (component counts and areas)",
    summary=(
        "Segments each image into the pseudo-labelled part classes and compares class areas and part "
        "counts, over the image and a 2×2 grid, with the good training images: catches missing, extra "
        "and misplaced parts and says which. Needs pseudo-labels (built automatically if missing)."
    ),
    fit=_fit,
    load=_load,
    trains=("segmentation", "retrieval"),  # retrieval: the surface fallback's memory bank
    segments=True,
    branch_maps=(SEGMENTATION_MAP, RETRIEVAL_MAP),  # retrieval: a surface model's only map
    bundle=BundleExport(parts=_bundle_parts, detector=_bundle_detector),
)
