"""Training settings a fit may change from its profile's defaults (``fit --set part.field=value``).

The parts are the settings dataclasses of what a method trains: ``segmentation``
(``SegmentationSettings``: the component segmentation network), ``lgst`` (``LgstSettings``:
the local–global students), ``fusion`` (``FusionSettings``: which branches AeCSAD/CSAD fuse,
and how) and ``retrieval`` (``InstantSettings``: the patch-retrieval memory bank of the instant
method and of AeCSAD/CSAD's and the surface histogram's retrieval branch, e.g.
``retrieval.layers=["s16","s32"]`` for deeper, texture-robust features on a surface). A method lists the parts its fit reads in ``MethodSpec.trains``;
a change to a part it does not train is refused rather than silently ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.assignments import parse_assignments
from pipeline.errors import SettingsError
from pipeline.methods.fusion import FusionSettings
from pipeline.methods.instant.model import InstantSettings
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.segmentation.settings import SegmentationSettings

TRAINING_PARTS: dict[str, type] = {"segmentation": SegmentationSettings, "lgst": LgstSettings,
                                   "fusion": FusionSettings, "retrieval": InstantSettings}
RESERVED = {
    "seed": "use --seed",
    "backbone": "use --backbone",
    "attention": "choose --method aecsad (attention) or csad (plain CNN)",
    "confidence_weighting": "use --confidence-weighting",
}
"""Fields the fit sets from its own options; a second way to set them would disagree."""

SettingsChanges = Mapping[str, Mapping[str, Any]]
"""``{part: {field: value}}``, e.g. ``{"lgst": {"steps": 3000}}``."""


def parse_training_settings(assignments: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``fit --set`` texts as checked changes (see ``pipeline.assignments.parse_assignments``)."""
    return parse_assignments(assignments, TRAINING_PARTS, RESERVED)


def check_training_settings(method: str, trains: tuple[str, ...], changes: SettingsChanges) -> dict[str, dict[str, Any]]:
    """``changes`` re-checked (they may come from a stored job) and refused for parts ``method``
    does not train; returns them as plain dicts."""
    texts = [f"{part}.{name}={_json(value)}" for part, fields in changes.items() for name, value in fields.items()]
    checked = parse_training_settings(texts)
    unused = sorted(set(checked) - set(trains))
    if unused:
        trained = ", ".join(trains) or "nothing that --set can change"
        raise SettingsError(f"method {method!r} does not train {', '.join(unused)} (it trains: {trained})")
    return checked


def _json(value: Any) -> str:
    return json.dumps(list(value) if isinstance(value, tuple) else value)
