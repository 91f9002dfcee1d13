"""One colour scale per model, in anomaly-map units, anchored to the saved threshold.

A model's image score and its map are in different units for the fused methods (a sum of
z-scores against an LGST or distance map), so the threshold on scores is translated into a map
level: the map peak that flags the same share of good validation images (quantile matching of
the validation scores against the validation map peaks; the identity where the score is the map
peak, as for ``instant``). Dark is the typical good pixel (the median validation pixel), the
threshold's level sits in the middle of the colour map (``THRESHOLD_COLOUR``, red), bright is as far
above the level as the typical good pixel is below it. Inspect, ``predict``'s PNGs, bundles and
the report use the same scale; changing the threshold moves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pipeline.metrics.heatmap import above_level_outline, colorize, overlay, region_boxes
from pipeline.workspace import Workspace

THRESHOLD_POSITION = 0.5
"""Where on the colour map (0 dark, 1 bright) the threshold's level is drawn."""
THRESHOLD_COLOUR_NAME = "red"
"""What a user sees at the threshold's level (the inferno-like map's middle)."""


@dataclass(frozen=True)
class MapScale:
    """A fitted model's map colouring facts, from its good validation images.

    Attributes:
        typical_good: median pixel of the validation maps (map units): drawn dark.
        scores: the validation image scores, ascending.
        peaks: the validation maps' maxima, ascending (as many as ``scores``).
    """

    typical_good: float
    scores: tuple[float, ...]
    peaks: tuple[float, ...]

    def level(self, threshold: float) -> float:
        """The map level that matches image-score ``threshold`` (linear beyond the validation range)."""
        s, p = np.asarray(self.scores, np.float64), np.asarray(self.peaks, np.float64)
        if len(s) == 1 or s[-1] == s[0]:
            return float(p[-1] * threshold / s[-1]) if s[-1] > 0 else float(p[-1])
        if threshold < s[0] or threshold > s[-1]:
            end = slice(0, 2) if threshold < s[0] else slice(-2, None)
            (s0, s1), (p0, p1) = s[end], p[end]
            slope = (p1 - p0) / (s1 - s0) if s1 != s0 else (p[-1] - p[0]) / (s[-1] - s[0])
            return float(p0 + slope * (threshold - s0))
        return float(np.interp(threshold, s, p))

    def display_range(self, threshold: float | None) -> tuple[float, float]:
        """``(vmin, vmax)`` for ``colorize``: the threshold's level (the top good peak without a
        threshold) at ``THRESHOLD_POSITION``."""
        level = self.peaks[-1] if threshold is None else self.level(threshold)
        level = max(level, self.typical_good + 1e-6 * max(1.0, abs(self.typical_good)))
        return self.typical_good, self.typical_good + (level - self.typical_good) / THRESHOLD_POSITION

    def to_dict(self) -> dict:
        return {"typical_good": self.typical_good, "scores": list(self.scores), "peaks": list(self.peaks)}

    @classmethod
    def from_dict(cls, raw: dict) -> "MapScale":
        return cls(float(raw["typical_good"]), tuple(map(float, raw["scores"])), tuple(map(float, raw["peaks"])))


def fit_map_scale(val_maps: list[np.ndarray], val_scores: list[float]) -> MapScale:
    """The scale of a model from its good validation maps and image scores."""
    pixels = np.concatenate([np.asarray(m, np.float64).ravel() for m in val_maps])
    peaks = sorted(float(np.max(m)) for m in val_maps)
    return MapScale(float(np.median(pixels)), tuple(sorted(float(s) for s in val_scores)), tuple(peaks))


def model_display_range(metrics: dict | None, threshold: float | None, current_scores: list[float] | None = None,
                        fallback: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """A model record's colour range at ``threshold``: from its ``map_scale`` (with the validation
    scores as stored now, which a calibration re-fuses; the maps stay); models fitted before it
    existed keep their stored ``display_range``."""
    metrics = metrics or {}
    if "map_scale" in metrics:
        scale = MapScale.from_dict(metrics["map_scale"])
        if current_scores and len(current_scores) == len(scale.peaks):
            scale = MapScale(scale.typical_good, tuple(sorted(map(float, current_scores))), scale.peaks)
        return scale.display_range(threshold)
    low, high = metrics.get("display_range", fallback)
    return float(low), float(high)


def workspace_display_range(ws: Workspace, category: str, method: str,
                            fallback: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """The colour range of a fitted model in ``ws`` at its saved threshold."""
    record = ws.model_record(category, method)
    current = [r.score for r in ws.scores(category, method, split="validation")]
    return model_display_range(record.metrics if record else None, ws.get_threshold(category, method), current, fallback)


def threshold_level(vmin: float, vmax: float) -> float:
    """The map level a display range puts the threshold at."""
    return vmin + THRESHOLD_POSITION * (vmax - vmin)


def heat_overlay(image: np.ndarray, anomaly_map: np.ndarray, vmin: float, vmax: float, opacity: float = 0.5,
                 above: bool = True, boxes: Sequence[tuple[float, float, float, float]] = ()) -> np.ndarray:
    """The map over the image on this scale, what is above the threshold's level outlined (``above``)
    and the named regions' ``boxes`` drawn (``NamedRegion.box``): one drawing for Inspect, checked
    photos, ``predict``'s PNGs and the report, so they look alike."""
    picture = overlay(image, anomaly_map, vmin, vmax, opacity)
    if above:
        picture = above_level_outline(picture, anomaly_map, threshold_level(vmin, vmax))
    return region_boxes(picture, boxes)


def colour_bar(vmin: float, vmax: float, width: int = 256, height: int = 14) -> np.ndarray:
    """uint8 RGB (height, width, 3) ramp from ``vmin`` to ``vmax`` with a white tick at the threshold."""
    ramp = np.tile(np.linspace(vmin, vmax, width)[None, :], (height, 1))
    bar = colorize(ramp, vmin, vmax)
    tick = int(round(THRESHOLD_POSITION * (width - 1)))
    bar[:, max(tick - 1, 0):tick + 1] = 255
    return bar


def scale_caption(vmin: float, vmax: float) -> str:
    """One line that says what the colours mean, in map units."""
    level = threshold_level(vmin, vmax)
    return (f"dark: a typical good pixel ({vmin:.3g}) · {THRESHOLD_COLOUR_NAME} (tick): the threshold's level "
            f"({level:.3g}) · bright: {vmax:.3g} and above")
