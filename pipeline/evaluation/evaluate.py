"""Score a category's test images with a fitted method and compute the SPEC §6 metrics."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipeline.data.images import load_mask
from pipeline.data.registered import load_workspace_category
from pipeline.data.samples import DataError
from pipeline.methods.calibrated import fusion_mode, load_calibration
from pipeline.methods.runner import load_detector, predict_samples
from pipeline.metrics.aupro import aupro
from pipeline.metrics.auroc import DEFECT_KINDS, image_auroc_by_kind, scored_branches
from pipeline.metrics.calibration import FusionCalibration
from pipeline.metrics.roc import RocCurve, roc_curve
from pipeline.metrics.subtypes import load_subtypes, subtype_aurocs
from pipeline.models.preprocess import resize_map
from pipeline.progress import ProgressFn, no_progress
from pipeline.workspace import ScoreRow, Workspace
from pipeline.workspace.files import atomic_save_npy, atomic_write_json

AUPRO_MAX_SIDE = 512
"""Maps and masks are compared at most at this resolution to bound memory on large images."""

BRANCH_SCORES_FILE = "branch_scores_test.json"
"""Per test image branch scores, in the method folder: ``{"keys", "kinds", "branches": {name: [score]}}``."""


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of one method on one category's test split (the ``evaluate --out`` JSON).

    Attributes:
        auroc: image AUROC per defect kind vs good, and ``mean``; ``None`` where a kind has no images.
        aupro: pixel AUPRO up to FPR 0.05 per defect kind with masks, and ``mean``.
        n: test image counts per kind.
        roc: ROC curve per defect kind vs good (``None`` where not computable).
        seconds: ``fit`` (from the model record) and ``evaluate`` wall times.
        excluded: test images left out because they were used to fit (labelled anomaly keys).
        branch_auroc: image AUROC per defect kind of each branch score the method reports
            (``Prediction.branch_scores``: e.g. ``histogram_global``, ``lgst_local``), so a report can
            show what each branch contributes; empty for single-score methods.
        fusion_comparison: when the method has a few-shot calibration, image AUROC per defect
            kind of the ``equal`` and ``calibrated`` fusion on the same test images (the marked bad
            images left out), the ``weights``, and the ``active`` fusion; None otherwise.
        subtype_auroc: image AUROC of each named anomaly subtype against the good images, per
            branch too (``subtypes.subtype_aurocs``); empty unless the data names subtypes
            (synthetic data's ``synth_info.json``).
    """

    category: str
    method: str
    auroc: dict[str, float | None]
    aupro: dict[str, float | None]
    n: dict[str, int]
    roc: dict[str, RocCurve | None]
    seconds: dict[str, float | None]
    excluded: tuple[str, ...] = field(default=())
    branch_auroc: dict[str, dict[str, float | None]] = field(default_factory=dict)
    fusion_comparison: dict | None = None
    subtype_auroc: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "category": self.category,
            "method": self.method,
            "auroc": self.auroc,
            "aupro": self.aupro,
            "n": self.n,
            "roc": {k: (None if v is None else v.to_dict()) for k, v in self.roc.items()},
            "seconds": self.seconds,
            "excluded": list(self.excluded),
            "branch_auroc": self.branch_auroc,
            "fusion_comparison": self.fusion_comparison,
            "subtype_auroc": self.subtype_auroc,
        }


def _bounded(shape: tuple[int, int]) -> tuple[int, int]:
    scale = min(1.0, AUPRO_MAX_SIDE / max(shape))
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def _per_kind_roc(kinds: list[str], scores: list[float]) -> dict[str, RocCurve | None]:
    out: dict[str, RocCurve | None] = {}
    for kind in DEFECT_KINDS:
        idx = [i for i, k in enumerate(kinds) if k in ("good", kind)]
        labels = [int(kinds[i] == kind) for i in idx]
        if kind == "bad" and not any(labels):
            continue
        out[kind] = roc_curve(labels, [scores[i] for i in idx]) if 0 < sum(labels) < len(labels) else None
    return out


def _per_kind_aupro(kinds: list[str], masks: list[np.ndarray | None], maps: list[np.ndarray]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for kind in ("logical", "structural"):
        idx = [i for i, k in enumerate(kinds) if k == "good" or (k == kind and masks[i] is not None)]
        sel_masks = [masks[i] if masks[i] is not None else np.zeros(maps[i].shape, bool) for i in idx]
        out[kind] = aupro(sel_masks, [maps[i] for i in idx]) if any(kinds[i] == kind for i in idx) else None
    present = [v for v in out.values() if v is not None]
    out["mean"] = float(np.mean(present)) if present else None
    return out


def branch_aurocs(kinds: list[str], branch_scores: list[dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """Image AUROC per defect kind of every branch score present on all images (z-scores, which
    rank exactly as their raw scores, are left out)."""
    return {name: image_auroc_by_kind(kinds, [float(b[name]) for b in branch_scores])
            for name in scored_branches(branch_scores)}


def compare_fusions(kinds: list[str], branch_scores: list[dict[str, float]], calibration: FusionCalibration | None,
                    active: str) -> dict | None:
    """AUROC per defect kind of the equal-weight and the calibrated fusion of the same images."""
    if calibration is None or not branch_scores:
        return None
    z = [{b: float(s[f"z_{b}"]) for b in calibration.branches} for s in branch_scores]
    return {
        "active": active, "mode": calibration.mode, "weights": dict(zip(calibration.branches, calibration.weights)),
        "n_marked": calibration.n_bad, "reason": calibration.reason,
        "equal": image_auroc_by_kind(kinds, [sum(v.values()) for v in z]),
        "calibrated": image_auroc_by_kind(kinds, [calibration.score(v) for v in z]),
    }


def save_branch_scores(method_dir: Path, rows: list[ScoreRow], branch_scores: list[dict[str, float]]) -> None:
    """Keep each test image's branch scores (for per-branch ROC curves); empty for single-score methods."""
    names = [n for n in (branch_scores[0] if branch_scores else {}) if all(n in b for b in branch_scores)]
    atomic_write_json(method_dir / BRANCH_SCORES_FILE, {
        "keys": [r.image_key for r in rows], "kinds": [r.kind for r in rows],
        "branches": {n: [float(b[n]) for b in branch_scores] for n in names},
    })


def load_branch_scores(workspace: Workspace, category: str, method: str) -> tuple[list[str], dict[str, list[float]]]:
    """(kinds, {branch: scores}) of the last evaluation's test images; empty when none were stored."""
    path = workspace.method_dir(category, method) / BRANCH_SCORES_FILE
    if not path.is_file():
        return [], {}
    data = json.loads(path.read_text())
    return list(data["kinds"]), {k: list(v) for k, v in data["branches"].items()}


def evaluate_method(
    workspace: Workspace, category: str, method: str, device: str | torch.device = "auto",
    progress: ProgressFn = no_progress, save_maps: bool = True,
) -> EvaluationResult:
    """Score every test image, store scores (and maps for Inspect), return the metrics."""
    start = time.perf_counter()
    data = load_workspace_category(workspace, category)
    record = workspace.model_record(category, method)
    detector = load_detector(workspace, category, method, device)
    calibration = load_calibration(workspace, category, method)
    used = set((record.settings or {}).get("labelled_bad", [])) if record else set()
    used |= set(calibration.used_keys if calibration else ())
    tests = [s for s in data.select("test") if s.key not in used]
    excluded = tuple(s.key for s in data.select("test") if s.key in used)
    if not tests:
        raise DataError(f"category {category!r} has no test images to evaluate (looked in {data.root}/test)")
    kinds, scores, masks, maps, rows, branches = [], [], [], [], [], []
    method_dir = workspace.method_dir(category, method)
    for sample, rgb, pred in predict_samples(detector, tests, progress, "score test images"):
        shape = _bounded(rgb.shape[:2])
        kinds.append(sample.kind)
        scores.append(pred.score)
        branches.append(pred.branch_scores)
        maps.append(resize_map(pred.anomaly_map, shape))
        masks.append(load_mask(sample.mask_paths, shape) if sample.mask_paths else None)
        map_file = None
        if save_maps:
            path = method_dir / "maps" / sample.split / sample.kind / f"{Path(sample.path).stem}.npy"
            atomic_save_npy(path, pred.anomaly_map.astype(np.float16))
            map_file = workspace.relative(path)
        rows.append(ScoreRow(sample.key, sample.split, sample.kind, pred.score, map_file))
    workspace.save_scores(category, method, rows)
    save_branch_scores(method_dir, rows, branches)
    auroc = image_auroc_by_kind(kinds, scores)
    result = EvaluationResult(
        category=category,
        method=method,
        auroc=auroc,
        aupro=_per_kind_aupro(kinds, masks, maps),
        n={k: kinds.count(k) for k in ("good", "logical", "structural", "bad") if k != "bad" or "bad" in kinds},
        roc=_per_kind_roc(kinds, scores),
        seconds={"fit": (record.metrics or {}).get("seconds_fit") if record else None, "evaluate": time.perf_counter() - start},
        excluded=excluded,
        branch_auroc=branch_aurocs(kinds, branches),
        fusion_comparison=compare_fusions(kinds, branches, calibration, fusion_mode(workspace, category, method)),
        subtype_auroc=subtype_aurocs(kinds, load_subtypes(data.root, tests), scores, branches),
    )
    workspace.update_model_metrics(category, method, {"auroc": auroc, "aupro": result.aupro,
                                                      "fusion_comparison": result.fusion_comparison,
                                                      "subtype_auroc": result.subtype_auroc})
    return result
