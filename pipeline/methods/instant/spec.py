"""The instant detector's ``MethodSpec`` (method name ``instant``).

Light on purpose: the registry and the CLI's parser import it without torch; each callable
imports the heavy module it needs when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.methods.base import BenchRun, BenchStages, BranchMap, BundleExport, Detector, FitContext, MethodSpec

if TYPE_CHECKING:
    import torch

    from pipeline.methods.bundle_parts import BundleReader

RETRIEVAL_MAP = BranchMap(
    "retrieval", "Patch retrieval",
    "distance of each patch to its nearest good training patch (the instant detector's memory bank, a fused "
    "branch of aecsad and csad); colours span this image's own range",
)
"""The instant detector's distance map where another method carries it as a branch."""


def _fit(ctx: FitContext) -> dict[str, str]:
    from pipeline.methods.instant import method

    return method.fit(ctx)


def _load(folder: Path, device: "torch.device") -> Detector:
    from pipeline.methods.instant import method

    return method.load(folder, device)


def _bundle_parts(detector: Detector, seg_settings=None, class_names: dict[int, str] | None = None):
    from pipeline.methods.instant import export

    return export.bundle_parts(detector, seg_settings, class_names)


def _bundle_detector(reader: "BundleReader") -> Detector:
    from pipeline.methods.instant import export

    return export.bundle_detector(reader)


def _bench(run: BenchRun, shared: dict) -> tuple[dict, Detector]:
    from pipeline.methods.instant import bench

    return bench.instant_bench(run, shared)


INSTANT = MethodSpec(
    name="instant",
    title="Instant (train-free memory retrieval)",
    summary=(
        "Nearest-neighbour distance of each image patch to a memory bank of good patches; "
        "no training, heat maps in seconds. Marked bad images become anomaly keys."
    ),
    fit=_fit,
    load=_load,
    trains=("retrieval",),
    bundle=BundleExport(parts=_bundle_parts, detector=_bundle_detector),
    bench=BenchStages(measure=_bench),
)
