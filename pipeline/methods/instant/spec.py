"""The instant detector's ``MethodSpec`` (method name ``instant``).

Light on purpose: the registry and the CLI's parser import it without torch; each callable
imports the heavy module it needs when called.
"""

from __future__ import annotations

from pipeline.methods.base import BenchRun, BenchStages, BranchMap, Detector, MethodSpec, deferred_bundle

RETRIEVAL_MAP = BranchMap(
    "retrieval", "Patch retrieval",
    "distance of each patch to its nearest good training patch (the instant detector's memory bank, a fused "
    "branch of aecsad and csad); colours span this image's own range",
)
"""The instant detector's distance map where another method carries it as a branch."""


def _method():
    from pipeline.methods.instant import method

    return method


def _export():
    from pipeline.methods.instant import export

    return export


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
    fit=lambda ctx: _method().fit(ctx),
    load=lambda folder, device: _method().load(folder, device),
    trains=("retrieval",),
    bundle=deferred_bundle(_export),
    bench=BenchStages(measure=_bench),
)
