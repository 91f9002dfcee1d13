"""The ``MethodSpec`` of AeCSAD and of its CSAD baseline (method names ``aecsad``, ``csad``).

Light on purpose: the registry and the CLI's parser import it without torch; each callable
imports the heavy module it needs when called. The two methods differ only in the global student
(``attention``), so every callable takes it from the spec it serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.methods.base import BenchRun, BenchStages, BranchMap, Detector, MethodSpec, deferred_bundle
from pipeline.methods.histogram.branches import HISTOGRAM_MAP, SEGMENTATION_MAP
from pipeline.methods.instant.spec import RETRIEVAL_MAP

if TYPE_CHECKING:
    pass


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


def _method():
    from pipeline.methods.aecsad import method

    return method


def _export():
    from pipeline.methods.aecsad import export

    return export


def _bench(method: str, attention: bool) -> BenchStages:
    def measure(run: BenchRun, shared: dict) -> tuple[dict, Detector]:
        from pipeline.methods.aecsad import bench

        return bench.lgst_bench(run, method, attention, shared)

    return BenchStages(measure=measure, headline=attention)  # the thesis method heads the report


def _lgst_method(name: str, title: str, summary: str, attention: bool) -> MethodSpec:
    """AeCSAD (``attention``) or CSAD: the same chain, abilities and maps; only the global student differs."""
    return MethodSpec(
        name=name, title=title, summary=summary,
        fit=lambda ctx: _method().fit(ctx, attention=attention),
        load=lambda folder, device: _method().load(folder, device),
        trains=TRAINS, segments=True, attention=attention, branch_maps=BRANCH_MAPS,
        bundle=deferred_bundle(_export), onnx=True, bench=_bench(name, attention),
    )


AECSAD = _lgst_method(
    "aecsad", "AeCSAD (attention local–global student–teacher + histograms)",
    "The thesis method: a local student for scratches and dents, a global student with "
    "self-attention for parts in the wrong place or combination, and part-count histograms from "
    "the segmentation network, plus patch retrieval for small defects, fused into one score. "
    "Trains for minutes on CPU (quick profile).",
    attention=True,
)

CSAD = _lgst_method(
    "csad", "CSAD baseline (plain CNN global student + histograms)",
    "The same chain as AeCSAD with the published CSAD global student (a CNN autoencoder squeezed "
    "to 1×1, no attention), for side-by-side comparison.",
    attention=False,
)
