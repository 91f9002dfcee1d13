"""A detector whose fused score uses calibrated branch weights (``pipeline.metrics.calibration``).

Multi-branch methods put each branch's trimmed z-score in ``Prediction.branch_scores`` as
``z_<branch>``; their own score is the plain sum. ``CalibratedDetector`` replaces that sum by the
weighted one and keeps the equal-weight score beside it (``fused_equal_weights``), so the
Inspect page and ``predict`` show both. The calibration lives in the method folder next to the
model it was fitted on; a refit makes it stale (``load_calibration`` then returns None).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline.methods.base import Detector, Prediction
from pipeline.metrics.calibration import CALIBRATED, EQUAL, FusionCalibration

CALIBRATION_FILE = "fusion_calibration.json"
"""In the method folder: ``{"calibration", "model_created", "validation": {"keys", "z"}, "bad": {...}}``."""
FUSION_MODE_SETTING = "fusion_mode"
"""Per-category workspace setting ``{method: "calibrated" | "equal"}``: which fusion scores images."""
EQUAL_SCORE = "fused_equal_weights"


def z_branches(pred: Prediction) -> dict[str, float]:
    """A prediction's branch z-scores by branch name (empty for single-score methods)."""
    return {k[2:]: float(v) for k, v in pred.branch_scores.items() if k.startswith("z_")}


def z_matrix(preds: list[Prediction], branches: tuple[str, ...]) -> np.ndarray:
    """float64 ``(n, B)``: each prediction's z-scores in ``branches`` order."""
    return np.array([[z_branches(p)[b] for b in branches] for p in preds], np.float64).reshape(len(preds), len(branches))


class CalibratedDetector:
    """``inner``'s predictions with the score re-fused by ``calibration``'s weights."""

    def __init__(self, inner: Detector, calibration: FusionCalibration) -> None:
        self.inner, self.calibration = inner, calibration
        self.method = inner.method

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        return [self._reweigh(p) for p in self.inner.predict(images)]

    def _reweigh(self, pred: Prediction) -> Prediction:
        return replace(pred, score=self.calibration.score(z_branches(pred)),
                       branch_scores={**pred.branch_scores, EQUAL_SCORE: pred.score}, fused=())  # weighs them all


def read_calibration_file(method_dir: Path) -> dict | None:
    path = method_dir / CALIBRATION_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def load_calibration(ws, category: str, method: str) -> FusionCalibration | None:
    """The category/method's calibration, or None when there is none or the model was refitted since."""
    raw = read_calibration_file(ws.method_dir(category, method))
    record = ws.model_record(category, method)
    if raw is None or record is None or raw.get("model_created") != record.created_at:
        return None
    return FusionCalibration.from_dict(raw["calibration"])


def fusion_mode(ws, category: str, method: str) -> str:
    """``"calibrated"`` when the user applied a calibrated fusion that is still valid, else ``"equal"``."""
    chosen = (ws.get_setting(FUSION_MODE_SETTING, {}, category=category) or {}).get(method, EQUAL)
    calibration = load_calibration(ws, category, method) if chosen == CALIBRATED else None
    return CALIBRATED if calibration is not None and calibration.mode == CALIBRATED else EQUAL


def with_active_fusion(detector: Detector, ws, category: str, method: str) -> Detector:
    """``detector`` wrapped with the applied calibration, or unchanged."""
    if fusion_mode(ws, category, method) != CALIBRATED:
        return detector
    return CalibratedDetector(detector, load_calibration(ws, category, method))
