"""What one report holds: typed containers filled by ``report`` and rendered by ``report_html``."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.metrics.reference import REFERENCE_NOTE
from pipeline.metrics.roc import RocCurve
from pipeline.metrics.threshold import ThresholdSummary


@dataclass(frozen=True)
class GalleryItem:
    """One of the worst-scored test images: the photo and its heat map as JPEG bytes."""

    key: str
    kind: str
    score: float
    flagged: bool | None
    image_jpeg: bytes
    overlay_jpeg: bytes


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows for one category and method.

    Attributes:
        counts: images per split/kind (``train``, ``validation``, ``test_good``, ``test_logical``, ...).
        auroc, aupro: image AUROC and pixel AUPRO per defect kind and ``mean`` (fractions; None = no images).
        auroc_rows: the AUROC table: our categories for this method, then the published reference rows.
        roc: ROC curve per defect kind vs good.
        branch_roc: ``{kind: {branch: curve}}`` for methods with branch scores (empty otherwise).
        branch_auroc: ``{branch: {logical, structural, mean}}``.
        threshold: the stored threshold and what it flags (None when no threshold is stored).
        kinds, scores: the test images' kinds and scores (the histogram).
        gallery: the worst test images, worst first.
        fusion: the last evaluation's ``fusion_comparison`` (few-shot calibration), None without one.
        subtypes: the last evaluation's ``subtype_auroc`` (synthetic data only; empty otherwise).
        colour_bar_jpeg, colour_caption: the gallery's colour scale (``colour_scale``) and what it means.
    """

    category: str
    method: str
    method_title: str
    generated: str
    counts: dict[str, int]
    settings: dict
    auroc: dict[str, float | None]
    aupro: dict[str, float | None]
    auroc_rows: list[dict]
    roc: dict[str, RocCurve]
    branch_roc: dict[str, dict[str, RocCurve]]
    branch_auroc: dict[str, dict[str, float | None]]
    threshold: ThresholdSummary | None
    kinds: list[str]
    scores: list[float]
    gallery: list[GalleryItem] = field(default_factory=list)
    reference_note: str = REFERENCE_NOTE
    fusion: dict | None = None
    subtypes: dict[str, dict] = field(default_factory=dict)
    colour_bar_jpeg: bytes = b""
    colour_caption: str = ""

    def to_dict(self) -> dict:
        """The numbers of the report (embedded in it as JSON, so it can be checked by a program)."""
        return {
            "category": self.category, "method": self.method, "generated": self.generated, "counts": self.counts,
            "auroc": self.auroc, "aupro": self.aupro, "auroc_rows": self.auroc_rows,
            "roc": {k: v.to_dict() for k, v in self.roc.items()},
            "branch_roc": {k: {b: c.to_dict() for b, c in v.items()} for k, v in self.branch_roc.items()},
            "branch_auroc": self.branch_auroc,
            "threshold": None if self.threshold is None else self.threshold.to_dict(),
            "gallery": [{"key": g.key, "kind": g.kind, "score": g.score, "flagged": g.flagged} for g in self.gallery],
            "fusion": self.fusion,
            "subtype_auroc": self.subtypes,
        }
