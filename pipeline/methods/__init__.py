"""Detection methods, chosen by name: the registry of every method's ``MethodSpec``.

Importing it does not import torch (the specs are light; their callables import the heavy modules
when called), so the CLI can build its parser and choices from it. Everything that depends on a
method's abilities asks here instead of naming methods.
"""

from __future__ import annotations

from pipeline.errors import SettingsError
from pipeline.methods.aecsad.spec import AECSAD, CSAD
from pipeline.methods.base import (
    BenchRun, BenchStages, BranchMap, BundleExport, Detector, FitContext, MethodSpec, Prediction,
)
from pipeline.methods.histogram.spec import HISTOGRAM
from pipeline.methods.instant.spec import INSTANT
from pipeline.methods.zeroshot.spec import ZEROSHOT

METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in (INSTANT, HISTOGRAM, AECSAD, CSAD, ZEROSHOT)}

BENCH_ORDER: tuple[MethodSpec, ...] = (AECSAD, CSAD, INSTANT)
"""The methods ``bench`` times, in its run and report order: the thesis method, its baseline,
then the train-free one. Exactly the specs with ``bench`` stages (a test checks)."""


def get_method(name: str) -> MethodSpec:
    """The method called ``name``; unknown names get a message listing the available ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise SettingsError(f"unknown method {name!r}; available: {', '.join(METHODS)}") from None


def method_names() -> tuple[str, ...]:
    """Every method name, in the registry's order (``--method`` choices)."""
    return tuple(METHODS)


def bundle_method_names() -> tuple[str, ...]:
    """Methods that export to a one-file bundle, alphabetical (as messages list them)."""
    return tuple(sorted(name for name, spec in METHODS.items() if spec.bundle is not None))


def onnx_method_names() -> tuple[str, ...]:
    """Methods whose whole inference graph exports to ONNX, in the registry's order."""
    return tuple(name for name, spec in METHODS.items() if spec.onnx)


def lgst_method_names() -> tuple[str, ...]:
    """Methods with LGST students (``train-lgst``), in the registry's order."""
    return tuple(name for name, spec in METHODS.items() if "lgst" in spec.trains)


def segmenting_method_names() -> tuple[str, ...]:
    """Methods whose fit trains the segmentation network on the pseudo-labels."""
    return tuple(name for name, spec in METHODS.items() if spec.segments)


def bench_method_names() -> tuple[str, ...]:
    """Methods ``bench`` times, in its order (``BENCH_ORDER``)."""
    return tuple(spec.name for spec in BENCH_ORDER)


__all__ = [
    "BENCH_ORDER", "METHODS", "BenchRun", "BenchStages", "BranchMap", "BundleExport", "Detector", "FitContext", "MethodSpec", "Prediction", "bench_method_names",
    "bundle_method_names", "get_method", "lgst_method_names", "method_names", "onnx_method_names",
    "segmenting_method_names",
]
