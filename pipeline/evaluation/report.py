"""What the Evaluate page and the plant-manager report show, computed from the workspace.

Everything here reads what ``fit``/``evaluate`` stored (scores, maps, threshold, branch scores),
so the page, the HTML report and the CLI's ``evaluate`` JSON agree number for number. The HTML
itself is written by ``pipeline.evaluation.report_html``.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.data.images import load_rgb
from pipeline.data.registered import load_workspace_category
from pipeline.errors import NotReadyError
from pipeline.evaluation.evaluate import load_branch_scores
from pipeline.evaluation.report_data import GalleryItem, ReportData
from pipeline.evaluation.report_html import render_report
from pipeline.methods import METHODS
from pipeline.metrics.auroc import DEFECT_KINDS, image_auroc_by_kind
from pipeline.metrics.colour_scale import colour_bar, heat_overlay, scale_caption, workspace_display_range
from pipeline.metrics.reference import REFERENCE_AUROC
from pipeline.metrics.roc import RocCurve, roc_curve
from pipeline.metrics.threshold import ThresholdSummary, summarize_threshold
from pipeline.workspace import ScoreRow, Workspace
from pipeline.workspace.files import atomic_write_text

GALLERY_SIDE = 320
"""Gallery images are shrunk to at most this many pixels per side (keeps the report small)."""

AUROC_KEYS = ("logical", "structural", "mean")


def kind_rocs(kinds: list[str], scores: list[float]) -> dict[str, RocCurve]:
    """ROC curve of each defect kind against the good images (kinds without both classes left out)."""
    out = {}
    for kind in DEFECT_KINDS:
        idx = [i for i, k in enumerate(kinds) if k in ("good", kind)]
        labels = [int(kinds[i] == kind) for i in idx]
        if 0 < sum(labels) < len(labels):
            out[kind] = roc_curve(labels, [scores[i] for i in idx])
    return out


def shown_branches(branches: dict[str, list[float]]) -> dict[str, list[float]]:
    """Branch scores worth a curve: z-normalised copies rank exactly as their raw scores, so they are left out."""
    return {name: values for name, values in branches.items() if not name.startswith("z_")}


def branch_rocs(kinds: list[str], branches: dict[str, list[float]]) -> dict[str, dict[str, RocCurve]]:
    """``{kind: {branch: ROC curve}}`` of every branch score against the good images."""
    per_branch = {name: kind_rocs(kinds, values) for name, values in shown_branches(branches).items()}
    out: dict[str, dict[str, RocCurve]] = {}
    for name, curves in per_branch.items():
        for kind, curve in curves.items():
            out.setdefault(kind, {})[name] = curve
    return out


def branch_auroc_table(kinds: list[str], branches: dict[str, list[float]]) -> dict[str, dict[str, float | None]]:
    return {name: image_auroc_by_kind(kinds, values) for name, values in shown_branches(branches).items()}


def auroc_rows(ws: Workspace, method: str) -> list[dict]:
    """Our AUROC per category (fractions) for ``method``, their average when there are several, then
    the published reference rows (percent, SPEC §6)."""
    ours = []
    for record in ws.categories():
        model = ws.model_record(record.name, method)
        auroc = (model.metrics or {}).get("auroc") if model else None
        if auroc:
            ours.append({"method": f"{method} (ours)", "category": record.name, **{k: auroc.get(k) for k in AUROC_KEYS}})
    if len(ours) > 1:
        avg = {k: _mean([row[k] for row in ours]) for k in AUROC_KEYS}
        ours.append({"method": f"{method} (ours)", "category": "average", **avg})
    reference = [{"method": name, "category": "MVTec LOCO (published)", **{k: v / 100 for k, v in ref.items()}}
                 for name, ref in REFERENCE_AUROC.items()]
    return ours + reference


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def threshold_summary(ws: Workspace, category: str, method: str, test_rows: list[ScoreRow]) -> ThresholdSummary | None:
    """The stored threshold: good validation images it flags, labelled bad test images it misses."""
    threshold = ws.get_threshold(category, method)
    val = [r.score for r in ws.scores(category, method, split="validation")]
    if threshold is None or not val:
        return None
    return summarize_threshold(threshold, val, [r.score for r in test_rows if r.kind != "good"])


def data_counts(ws: Workspace, category: str) -> dict[str, int]:
    data = load_workspace_category(ws, category)
    counts = {"train": len(data.select("train", "good")), "validation": len(data.select("validation", "good"))}
    for kind in ("good", "logical", "structural", "bad"):
        n = len(data.select("test", kind))
        if n or kind != "bad":
            counts[f"test_{kind}"] = n
    return counts


def _jpeg(rgb: np.ndarray, side: int = GALLERY_SIDE) -> bytes:
    image = Image.fromarray(rgb)
    image.thumbnail((side, side))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=88)
    return buf.getvalue()


def worst_images(ws: Workspace, category: str, method: str, test_rows: list[ScoreRow], n: int,
                 display: tuple[float, float]) -> list[GalleryItem]:
    """The ``n`` highest-scored test images with their stored heat maps laid over them, coloured on
    ``display`` (``colour_scale.workspace_display_range``)."""
    paths = {s.key: s.path for s in load_workspace_category(ws, category).select("test")}
    threshold = ws.get_threshold(category, method)
    items = []
    for row in sorted(test_rows, key=lambda r: -r.score)[:n]:
        if row.image_key not in paths or not row.map_file or not ws.resolve(row.map_file).is_file():
            continue
        rgb = load_rgb(paths[row.image_key])
        amap = np.load(ws.resolve(row.map_file)).astype(np.float32)
        low, high = display
        items.append(GalleryItem(
            key=row.image_key, kind=row.kind, score=row.score,
            flagged=None if threshold is None else bool(row.score > threshold),
            image_jpeg=_jpeg(rgb), overlay_jpeg=_jpeg(heat_overlay(rgb, amap, low, high)),
        ))
    return items


def collect_report(ws: Workspace, category: str, method: str, n_worst: int = 8) -> ReportData:
    """The report's content; ``ValueError`` when the method was never fitted or evaluated."""
    record = ws.model_record(category, method)
    if record is None:
        raise NotReadyError(f"no fitted {method!r} model for category {category!r}: fit it first (Train page or `fit`)")
    rows = ws.scores(category, method, split="test")
    if not rows:
        raise NotReadyError(f"{method!r} on {category!r} is not evaluated yet: run `evaluate` or the Evaluate page first")
    kinds, scores = [r.kind for r in rows], [r.score for r in rows]
    branch_kinds, branches = load_branch_scores(ws, category, method)
    if sorted(branch_kinds) != sorted(kinds):
        branch_kinds, branches = [], {}  # from an older evaluation: no curves rather than wrong ones
    metrics = record.metrics or {}
    display = workspace_display_range(ws, category, method)
    return ReportData(
        category=category, method=method, method_title=METHODS[method].title if method in METHODS else method,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        counts=data_counts(ws, category),
        settings={k: record.settings.get(k) for k in ("profile", "backbone", "device", "seed") if record.settings and k in record.settings},
        auroc=image_auroc_by_kind(kinds, scores),
        aupro=metrics.get("aupro") or {},
        auroc_rows=auroc_rows(ws, method),
        roc=kind_rocs(kinds, scores),
        branch_roc=branch_rocs(branch_kinds, branches),
        branch_auroc=branch_auroc_table(branch_kinds, branches),
        threshold=threshold_summary(ws, category, method, rows),
        kinds=kinds, scores=scores,
        gallery=worst_images(ws, category, method, rows, n_worst, display),
        fusion=metrics.get("fusion_comparison"),
        subtypes=metrics.get("subtype_auroc") or {},
        colour_bar_jpeg=_jpeg(colour_bar(*display)), colour_caption=scale_caption(*display),
    )


def report_html(ws: Workspace, category: str, method: str, n_worst: int = 8) -> str:
    """The self-contained HTML report (no external files, scripts or fonts)."""
    return render_report(collect_report(ws, category, method, n_worst))


def default_report_path(ws: Workspace, category: str, method: str) -> Path:
    return ws.path / "reports" / f"{category}_{method}_report.html"


def write_report(ws: Workspace, category: str, method: str, out: Path | None = None, n_worst: int = 8) -> Path:
    """Write the report to ``out`` (default: ``<workspace>/reports/<category>_<method>_report.html``)."""
    path = Path(out) if out is not None else default_report_path(ws, category, method)
    atomic_write_text(path, report_html(ws, category, method, n_worst))
    return path
