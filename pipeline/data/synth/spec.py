"""What a synthetic category is: its component classes, rules, anomaly kinds and renderer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from pipeline.data.synth.render import Rendered

RenderFn = Callable[[np.random.Generator, int, "str | None"], Rendered]
"""``render(rng, size, anomaly)``: draw one image; ``anomaly`` is ``None`` for a good image or one
of the category's logical/structural kind names."""


@dataclass(frozen=True)
class CategorySpec:
    """One synthetic category.

    Attributes:
        name: short snake_case name, also the output folder name.
        classes: component class id -> name (0 = background is implicit).
        rules: the logical rules a good image obeys, in plain words (none for a bare surface).
        logical: logical anomaly kinds (rule broken, nothing damaged); may be empty, and the
            generator then writes no logical test images.
        structural: structural anomaly kinds (damage, contamination).
        render: draws one image, see ``RenderFn``.
    """

    name: str
    classes: dict[int, str]
    rules: tuple[str, ...]
    logical: tuple[str, ...]
    structural: tuple[str, ...]
    render: RenderFn

    def anomaly_kinds(self, kind: str) -> tuple[str, ...]:
        """Anomaly subtypes of an image kind (``good`` has none)."""
        return {"good": (), "logical": self.logical, "structural": self.structural}[kind]
