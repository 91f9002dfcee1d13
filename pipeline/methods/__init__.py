"""Detection methods, chosen by name."""

from __future__ import annotations

from pipeline.errors import SettingsError
from pipeline.methods.aecsad import AECSAD, CSAD
from pipeline.methods.base import Detector, FitContext, MethodSpec, Prediction
from pipeline.methods.histogram.method import HISTOGRAM
from pipeline.methods.instant import INSTANT
from pipeline.methods.zeroshot import ZEROSHOT

METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in (INSTANT, HISTOGRAM, AECSAD, CSAD, ZEROSHOT)}


def get_method(name: str) -> MethodSpec:
    """The method called ``name``; unknown names get a message listing the available ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise SettingsError(f"unknown method {name!r}; available: {', '.join(METHODS)}") from None


__all__ = ["METHODS", "Detector", "FitContext", "MethodSpec", "Prediction", "get_method"]
