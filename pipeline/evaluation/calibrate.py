"""Few-shot calibration of a fitted method in a workspace: score the good validation images and
the images the user marked bad, fit fusion weights (``pipeline.metrics.calibration``), and
apply or revert them. The CLI (``calibrate``) and the Evaluate page call these.

Applying re-fuses the stored validation and test scores from their kept z-scores (no image is
scored again), stores the proposed threshold, and makes ``load_detector`` score with the weights.
"""

from __future__ import annotations

from pipeline.data.registered import load_workspace_category
from pipeline.data.samples import Sample
from pipeline.errors import NotReadyError, SettingsError
from pipeline.evaluation.evaluate import BRANCH_SCORES_FILE
from pipeline.methods.aecsad.method import LgstDetector
from pipeline.methods.calibrated import (
    CALIBRATION_FILE,
    FUSION_MODE_SETTING,
    fusion_mode,
    load_calibration,
    read_calibration_file,
    z_branches,
    z_matrix,
)
from pipeline.methods.runner import load_detector, predict_samples, store_threshold
from pipeline.metrics.calibration import CALIBRATED, EQUAL, CalibrationSettings, FusionCalibration, calibrate_fusion
from pipeline.progress import ProgressFn, no_progress
from pipeline.workspace import ScoreRow, Workspace
from pipeline.workspace.files import atomic_write_json


def marked_bad_samples(ws: Workspace, category: str) -> list[Sample]:
    """The category's images the user labelled anything but good (``bad``, ``logical``, ``structural``)."""
    labels = ws.image_labels(category)
    if all(label == "good" for label in labels.values()):  # nothing marked: no need to read the data folder
        return []
    return [s for s in load_workspace_category(ws, category).samples if labels.get(s.key, "good") != "good"]


def calibrate_method(
    ws: Workspace, category: str, method: str, settings: CalibrationSettings = CalibrationSettings(),
    device: str = "auto", progress: ProgressFn = no_progress,
) -> FusionCalibration:
    """Fit (and store, not apply) fusion weights of a fitted multi-branch method."""
    detector = load_detector(ws, category, method, device, fusion="equal")
    data = load_workspace_category(ws, category)
    validation = data.select("validation", "good")
    bad = marked_bad_samples(ws, category)
    val_preds = [p for _, _, p in predict_samples(detector, validation, progress, "score validation images")]
    bad_preds = [p for _, _, p in predict_samples(detector, bad, progress, "score marked bad images")]
    branches = tuple(sorted(z_branches(val_preds[0]))) if val_preds else ()
    if len(branches) < 2:
        raise SettingsError(f"method {method!r} gives one score, so there are no branch weights to calibrate; "
                         "use a multi-branch method (histogram, aecsad, csad) or set the threshold on the Evaluate page")
    top_k = detector.fusion.top_k if isinstance(detector, LgstDetector) else 0
    calibration = calibrate_fusion(z_matrix(val_preds, branches), z_matrix(bad_preds, branches), branches,
                                   settings, used_keys=[s.key for s in bad], top_k=top_k)
    atomic_write_json(ws.method_dir(category, method) / CALIBRATION_FILE, {
        "calibration": calibration.to_dict(), "model_created": ws.model_record(category, method).created_at,
        "validation": {"keys": [s.key for s in validation], "z": z_matrix(val_preds, branches).tolist()},
    })
    return calibration


def apply_calibration(ws: Workspace, category: str, method: str, on: bool = True) -> float:
    """Score with the calibrated weights and proposed threshold (``on``), or back to equal weights
    and the "N flagged" threshold; returns the threshold now stored. Stored validation and test
    scores are re-fused so the Evaluate and Inspect pages stay consistent with the new scores."""
    calibration = load_calibration(ws, category, method)
    if on and (calibration is None or calibration.threshold is None):
        raise NotReadyError(f"no usable calibration for {category}/{method}: mark at least "
                         f"{CalibrationSettings().min_marked} bad images and run calibrate first")
    weights = calibration if on else None
    _rescore_stored(ws, category, method, calibration, weights)
    modes = dict(ws.get_setting(FUSION_MODE_SETTING, {}, category=category) or {})
    modes[method] = calibration.mode if on else EQUAL
    ws.set_setting(FUSION_MODE_SETTING, modes, category=category)
    if on:
        ws.set_threshold(category, method, calibration.threshold,
                         note=f"few-shot calibration on {calibration.n_bad} marked bad images ({calibration.mode} weights)")
        return calibration.threshold
    val = [r.score for r in ws.scores(category, method, split="validation")]
    return store_threshold(ws, category, method, val)[0]


def calibration_applied(ws: Workspace, category: str, method: str) -> bool:
    """Whether the stored calibration is in use: its weights (calibrated mode) or, in equal mode,
    its proposed threshold."""
    calibration = load_calibration(ws, category, method)
    if calibration is None or calibration.threshold is None:
        return False
    if calibration.mode == CALIBRATED:
        return fusion_mode(ws, category, method) == CALIBRATED
    return ws.get_threshold(category, method) == calibration.threshold


def _rescore_stored(ws: Workspace, category: str, method: str, calibration: FusionCalibration | None,
                          weights: FusionCalibration | None) -> None:
    """Rewrite stored validation/test scores under ``weights`` (None: the method's own fusion)."""
    if calibration is None:
        return
    method_dir = ws.method_dir(category, method)
    branches = calibration.branches

    def fused(z_by_branch: dict[str, float]) -> float:
        return weights.score(z_by_branch) if weights is not None else calibration.equal_score(z_by_branch)

    raw = read_calibration_file(method_dir)
    val_z = dict(zip(raw["validation"]["keys"], raw["validation"]["z"]))
    rows = [_rescored(r, fused(dict(zip(branches, val_z[r.image_key])))) for r in ws.scores(category, method, "validation")
            if r.image_key in val_z]
    tests = _test_z(method_dir / BRANCH_SCORES_FILE, branches)
    stored_tests = ws.scores(category, method, "test")
    if stored_tests and all(r.image_key in tests for r in stored_tests):  # else left for the next evaluation
        rows += [_rescored(r, fused(tests[r.image_key])) for r in stored_tests]
    if rows:
        ws.save_scores(category, method, rows)


def _test_z(path, branches: tuple[str, ...]) -> dict[str, dict[str, float]]:
    import json

    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    columns = data["branches"]
    if not all(f"z_{b}" in columns for b in branches):
        return {}
    return {key: {b: float(columns[f"z_{b}"][i]) for b in branches} for i, key in enumerate(data["keys"])}


def _rescored(row: ScoreRow, score: float) -> ScoreRow:
    return ScoreRow(row.image_key, row.split, row.kind, score, row.map_file)
