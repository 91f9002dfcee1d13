"""Whole-image LGST maps and scores (SPEC §5 step 8): raw maps → quantile-normalised → summed.

Each raw map is normalised with the 0.9 and 0.995 quantiles (q_a, q_b) of the validation maps,
``0.1 · (m − q_a) / (q_b − q_a)`` as in EfficientAD/CSAD, so a good image's pixels mostly lie
below 0 and the 99.5th percentile of good pixels maps to 0.1 in both maps before they are added.
The LGST image score is the maximum of the sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.methods.lgst.torch_model import LgstNet
from pipeline.models.preprocess import to_tensor_batch

NORMALISED = ("local", "global")
"""Maps that are normalised and summed into the LGST map; ``teacher_global`` is shown raw."""


@dataclass(frozen=True)
class QuantileRange:
    """``(start, end)`` quantiles of a map's validation pixels."""

    start: float
    end: float

    def __call__(self, m: np.ndarray) -> np.ndarray:
        spread = self.end - self.start
        scale = 0.1 / spread if spread > 1e-6 else 1.0  # a flat map (degenerate model) stays unscaled
        return ((np.asarray(m, np.float32) - self.start) * scale).astype(np.float32)


@dataclass(frozen=True)
class MapNormalisation:
    """Per-map ranges fitted on validation images (never test images)."""

    local: QuantileRange
    global_: QuantileRange

    def to_dict(self) -> dict:
        return {"local": [self.local.start, self.local.end], "global": [self.global_.start, self.global_.end]}

    @classmethod
    def from_dict(cls, raw: dict) -> "MapNormalisation":
        return cls(QuantileRange(*map(float, raw["local"])), QuantileRange(*map(float, raw["global"])))


def raw_maps(net: LgstNet, images: list[np.ndarray], batch: int = 8, blur_sigma: float = 0.0
             ) -> list[dict[str, np.ndarray]]:
    """Per image the raw maps ``(grid, grid)`` float32 by name (``MAP_NAMES``), in input order
    (``blur_sigma``: see ``LgstNet.maps``)."""
    device = next(net.local.parameters()).device
    out: list[dict[str, np.ndarray]] = []
    for start in range(0, len(images), batch):
        x = to_tensor_batch(images[start:start + batch], net.settings.image_size).to(device)
        maps = {k: v.float().cpu().numpy() for k, v in net.maps(x, blur_sigma).items()}
        out.extend({k: v[i] for k, v in maps.items()} for i in range(x.shape[0]))
    return out


def fit_map_normalisation(maps: list[dict[str, np.ndarray]], quantiles: tuple[float, float] = (0.9, 0.995)
                          ) -> MapNormalisation:
    """Quantile ranges of the local and global maps over every pixel of ``maps``."""
    if not maps:
        raise ValueError("map normalisation needs at least one validation image")
    ranges = []
    for name in NORMALISED:
        pixels = np.concatenate([m[name].ravel() for m in maps]).astype(np.float64)
        start, end = np.quantile(pixels, quantiles)
        ranges.append(QuantileRange(float(start), float(end)))
    return MapNormalisation(*ranges)


@dataclass(frozen=True)
class LgstMaps:
    """One image's LGST maps, all float32 ``(grid, grid)``.

    Attributes:
        combined: normalised local + normalised global; its maximum is ``score``.
        local, global_: the normalised branch maps.
        teacher_global: raw teacher-vs-global-student map (thesis eq. 4.11); its maximum is the
            ``lgst_teacher_global`` branch score.
    """

    combined: np.ndarray
    local: np.ndarray
    global_: np.ndarray
    teacher_global: np.ndarray

    @property
    def score(self) -> float:
        return float(self.combined.max())

    @property
    def teacher_global_score(self) -> float:
        return float(self.teacher_global.max())


def score_maps(raw: dict[str, np.ndarray], norm: MapNormalisation) -> LgstMaps:
    """Normalise and combine one image's raw maps: a pure function."""
    local, global_ = norm.local(raw["local"]), norm.global_(raw["global"])
    return LgstMaps(local + global_, local, global_, np.asarray(raw["teacher_global"], np.float32))
