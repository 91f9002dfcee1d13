"""Soft confidence of each training image's pseudo-label map (SPEC §9, seed 000 CoZAD): instead of
the hard ``D_L``/``D_U`` cut, every image keeps its supervised loss, weighted by how typical its
class-area histogram is.

Per class column ``c`` of the histograms (background included: its share moves whenever parts are
over- or under-segmented as a whole) the inter-quartile fence is ``[Q1 - k·IQR, Q3 + k·IQR]``
(Tukey's fence, CoZAD's IQR thresholding). An image inside every fence has confidence 1; outside,
each column's excess beyond its fence, in units of ``scale · IQR``, decays it exponentially, and
the columns multiply::

    confidence = exp(-Σ_c excess_c / (scale · max(IQR_c, min_iqr)))

CoZAD weights samples by such a confidence rather than discarding the uncertain ones, so boundary
images still teach the network while a badly mislabelled one (a part class wiped or swapped)
contributes almost nothing. The automatic value is overridden per image by the user.

The pure functions come first; the last section stores the user's choices in the workspace
(category settings, like the reliability overrides of ``pipeline.pseudolabels.edits``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from pipeline.errors import SettingsError
from pipeline.pseudolabels import edits, store
from pipeline.pseudolabels.settings import ConfidenceSettings
from pipeline.workspace import Workspace

OVERRIDES = "pseudo_labels.confidence_overrides"
"""Category setting: ``{image key: confidence in [0, 1]}`` set by hand."""
WEIGHTING = "pseudo_labels.confidence_weighting"
"""Category setting: ``true`` = train the segmentation network with confidence weights."""


def iqr_confidence(histograms: np.ndarray, settings: ConfidenceSettings = ConfidenceSettings()) -> np.ndarray:
    """float64 ``(N,)`` confidence in [0, 1] of each row of ``histograms`` ``(N, C)`` (class-area
    fractions, e.g. ``Reliability.histograms``), fenced per column against all rows."""
    values = np.asarray(histograms, np.float64)
    if values.ndim != 2:
        raise ValueError(f"histograms must be (N, C), got shape {values.shape}")
    if len(values) == 0:
        return np.zeros(0, np.float64)
    q1, q3 = np.percentile(values, [25, 75], axis=0)
    iqr = q3 - q1
    low, high = q1 - settings.k * iqr, q3 + settings.k * iqr
    excess = np.maximum(low - values, 0.0) + np.maximum(values - high, 0.0)
    spread = settings.scale * np.maximum(iqr, settings.min_iqr)
    return np.exp(-(excess / spread).sum(axis=1))


def resolve_confidence(
    image_keys: Sequence[str], automatic: np.ndarray, overrides: Mapping[str, float] = {},
    reliability_overrides: Mapping[str, bool] = {},
) -> np.ndarray:
    """float64 ``(N,)``: the confidence each image trains with. A confidence set by hand wins;
    else an image forced reliable by hand counts 1 and one forced unreliable 0 (the user's D_L/D_U
    decision keeps its meaning in the soft mode); else the automatic value."""
    out = np.asarray(automatic, np.float64).copy()
    for index, key in enumerate(image_keys):
        if key in overrides:
            out[index] = float(overrides[key])
        elif key in reliability_overrides:
            out[index] = 1.0 if reliability_overrides[key] else 0.0
    return out


def check_confidence(value: float) -> float:
    """``value`` as a float in [0, 1]; a ``ValueError`` naming it otherwise."""
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise SettingsError(f"a confidence must lie between 0 and 1, got {value!r}")
    return number


def parse_confidence(text: str) -> float | None:
    """A typed override: ``"auto"`` or empty = None (back to the IQR fence), else a number in [0, 1]
    (a decimal comma is accepted); a ``ValueError`` saying what to type otherwise."""
    cleaned = str(text).strip().lower()
    if cleaned in ("", "auto"):
        return None
    try:
        number = float(cleaned.replace(",", "."))
    except ValueError:
        raise SettingsError(f"type a confidence between 0 and 1, or 'auto'; got {text!r}") from None
    return check_confidence(number)


def describe(confidence: np.ndarray, floor: float) -> str:
    """One line on the distribution: ``60 images: 48 at 1.0, 9 in (0.05, 1), 3 below 0.05; median 1.00``."""
    values = np.asarray(confidence, np.float64)
    if len(values) == 0:
        return "no images"
    full, low = int((values >= 1.0 - 1e-9).sum()), int((values < floor).sum())
    return (f"{len(values)} images: {full} at 1.0, {len(values) - full - low} in ({floor:g}, 1), "
            f"{low} below {floor:g}; median {np.median(values):.2f}, min {values.min():.2f}")


# --- stored in the workspace -------------------------------------------------------------------

@dataclass(frozen=True)
class ImageConfidence:
    """The confidence of a category's training images, as the pages and the trainer see it.

    Attributes:
        image_keys: training images, in the order of the stored reliability split.
        automatic: float ``(N,)`` from the IQR fence.
        effective: float ``(N,)`` after the user's overrides (what training uses).
        overrides: image key -> confidence set by hand.
    """

    image_keys: tuple[str, ...]
    automatic: np.ndarray
    effective: np.ndarray
    overrides: dict[str, float]


def confidence_overrides(ws: Workspace, category: str) -> dict[str, float]:
    """image key -> confidence set by hand."""
    return {k: float(v) for k, v in (ws.get_setting(OVERRIDES, {}, category=category) or {}).items()}


def set_confidence_override(ws: Workspace, category: str, image_key: str, value: float | None) -> None:
    """Set an image's confidence by hand (0-1); None gives it back to the IQR fence."""
    split = store.load_reliability(ws, category)
    if split is None or image_key not in split.image_keys:
        raise ValueError(f"{image_key!r} is not a pseudo-labelled training image of {category!r}")
    number = None if value is None else check_confidence(value)

    def change(state: dict) -> dict:
        state = {k: v for k, v in state.items() if k != image_key}
        return state if number is None else {**state, image_key: number}

    edits.update_setting(ws, category, OVERRIDES, change, {})


def image_confidence(ws: Workspace, category: str,
                     settings: ConfidenceSettings = ConfidenceSettings()) -> ImageConfidence | None:
    """Confidence of the images of the stored split (None before the first split)."""
    split = store.load_reliability(ws, category)
    if split is None:
        return None
    automatic = iqr_confidence(split.histograms, settings)
    overrides = {k: v for k, v in confidence_overrides(ws, category).items() if k in split.image_keys}
    effective = resolve_confidence(split.image_keys, automatic, overrides, edits.reliability_overrides(ws, category))
    return ImageConfidence(tuple(split.image_keys), automatic, effective, overrides)


def weighting_enabled(ws: Workspace, category: str) -> bool:
    """Whether the category trains its segmentation network with confidence weights (default off)."""
    return bool(ws.get_setting(WEIGHTING, False, category=category))


def set_weighting(ws: Workspace, category: str, enabled: bool) -> None:
    """Switch confidence weighting on or off for the category's segmentation training."""
    ws.category_dir(category)  # a clear error for a bad name before it becomes a scope
    ws.set_setting(WEIGHTING, bool(enabled), category=category)


def confidence_line(ws: Workspace, category: str) -> str:
    """How typical the new label maps are (IQR-fence confidence) and whether training weighs by it."""
    confidence = image_confidence(ws, category)
    if confidence is None:
        return "confidence: no reliability split yet"
    state = "on" if weighting_enabled(ws, category) else "off (fit/train-seg --confidence-weighting to use it)"
    return f"confidence: {describe(confidence.effective, ConfidenceSettings().floor)}; weighting {state}"
