"""AeCSAD and CSAD behind the common method interface (SPEC §5 steps 6–9, thesis §4.8).

``fit`` runs the whole chain: pseudo-labels if missing → component segmentation network →
patch histograms (the ``histogram`` method's files, in this method's folder) → LGST students →
map normalisation and score fusion statistics on the validation images. The two methods share
all of it and differ only in the global student (``LgstSettings.attention``).

Six branch scores are z-normalised (trimmed z on validation images): histogram global, histogram
grid, part colours, LGST (local + global map), teacher vs global, and patch retrieval (the instant
detector, fitted in the ``retrieval/`` subfolder). The image score is the sum of an image's three
largest z-scores (``FusionSettings``). The heat map is the LGST map (normalised local + global);
every branch's map and score is kept in the prediction for the Inspect page and the per-branch
AUROC of ``evaluate``.
"""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pipeline.data.images import load_rgb
from pipeline.data.samples import DataError
from pipeline.methods.base import FitContext, Prediction
from pipeline.methods.fusion import Fusion, FusionSettings
from pipeline.methods.histogram import method as histogram
from pipeline.methods.histogram.method import COLOUR_BRANCH
from pipeline.methods.instant import method as instant
from pipeline.methods.instant.depth_check import defect_check_images, separation
from pipeline.methods.instant.model import InstantDetector
from pipeline.methods.lgst.checkpoint import build_lgst, load_lgst_checkpoint
from pipeline.methods.lgst.data import load_lgst_data
from pipeline.methods.lgst.maps import LgstMaps, MapNormalisation, fit_map_normalisation, raw_maps, score_maps
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.lgst.torch_model import LgstNet
from pipeline.methods.lgst.train import CHECKPOINT, train_lgst
from pipeline.models.backbones import choose_backbone
from pipeline.models.preprocess import resize_map
from pipeline.pseudolabels import store
from pipeline.pseudolabels.surface import SURFACE_MESSAGE, is_surface
from pipeline.workspace.files import atomic_write_json

STATS_FILE = "lgst_fusion.json"
HISTOGRAM_BRANCHES = ("histogram_global", "histogram_grid", COLOUR_BRANCH)
TEACHER_GLOBAL = "lgst_teacher_global"
RETRIEVAL = "retrieval"
BRANCHES = (*HISTOGRAM_BRANCHES, "lgst", TEACHER_GLOBAL, RETRIEVAL)
"""The image scores that are z-normalised and fused (thesis eq. 4.18 with the histogram module
split into its global and grid distances, as in the CSAD code, plus the part colours of
``histogram/colours.py``, and the LGST module split into the SPEC's local + global map and the
thesis' teacher-vs-global map, eq. 4.11). A model fitted before a branch existed fuses the others:
``Fusion.branches`` of the stored statistics is what a detector sums.

The teacher-vs-global map is fused because, on the 1500-step quick fits, it is the strongest
structural map where the students are weakest. Fused structural AUROC on two synthetic test sets
(20 and 50 images per kind), same networks: fastener_kit 0.935/0.870 → 0.968/0.952, pin_tray
0.868/0.885 → 0.875/0.926, bottle 0.987/0.986 → 1.000/0.991, cable_connector 0.997/0.987 →
1.000/1.000; logical unchanged or higher. As its own branch rather than a third map in the LGST
sum, which was weaker offline (fastener_kit 0.95/0.90).

The retrieval branch (the instant detector's patch distance to a memory bank of good training
patches) and the top-3 rule (``FusionSettings.top_k``) go together. On the quick fits with a
23-minute student budget (pin_tray 1600 steps, fastener_kit 1210), test sets A / B / C (20, 50, 50
images per kind; C held out until both were chosen), fused structural AUROC: pin_tray all five
summed 0.875 / 0.923 / 0.936, retrieval added and all summed 0.915 / 0.950 / 0.959, retrieval with
the top-3 sum 0.958 / 0.952 / 0.964; fastener_kit 0.948 / 0.950 / 0.956 → 0.987 / 0.966 / 0.994.
Logical stays at or above 0.969 (cable_connector B)."""
MAP_BLUR_SIGMA = 1.0
"""Gaussian blur (grid cells) of the LGST maps (local, global, teacher vs global) before
normalisation and the maximum (``blur_maps``). Offline on the 1500-step fits, two test sets: LGST structural AUROC pin_tray
0.89 → 0.91, cable_connector 0.98 → 1.00, fastener_kit 0.875 → 0.89. Stored in the fusion
statistics: a model fitted before it scores unblurred (its quantiles were fitted that way)."""


class LgstDetector:
    """A fitted AeCSAD/CSAD model: histogram detector + LGST network + normalisation + fusion;
    with ``retrieval`` (an instant detector), its score is one more fused branch. ``hist`` is None
    for a surface (no part classes): the part-based branches are left out."""

    def __init__(self, method: str, hist: histogram.HistogramDetector | None, net: LgstNet,
                 norm: MapNormalisation, fusion: Fusion, retrieval: InstantDetector | None = None,
                 blur_sigma: float = 0.0) -> None:
        self.method, self.hist, self.net, self.norm, self.fusion = method, hist, net, norm, fusion
        self.retrieval, self.blur_sigma = retrieval, float(blur_sigma)

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        hist_preds = self.hist.predict(images) if self.hist is not None else [None] * len(images)
        lgst = [score_maps(raw, self.norm) for raw in raw_maps(self.net, images, blur_sigma=self.blur_sigma)]
        retrieval = self.retrieval.predict(images) if self.retrieval is not None else [None] * len(images)
        return [self.combine(h, m, r) for h, m, r in zip(hist_preds, lgst, retrieval)]

    def combine(self, hist: Prediction | None, lgst: LgstMaps, retrieval: Prediction | None = None) -> Prediction:
        """One image's prediction from its branch outputs: the fused score, every map in one frame,
        the branch scores with their z-scores (the bench times this step on its own)."""
        scores = {**(hist.branch_scores if hist is not None else {}), "lgst": lgst.score,
                  TEACHER_GLOBAL: lgst.teacher_global_score,
                  "lgst_local": float(lgst.local.max()), "lgst_global": float(lgst.global_.max())}
        if retrieval is not None:
            scores[RETRIEVAL] = retrieval.score
        fused = self.fusion(scores)
        # One frame for all maps: the segmenter's input side, or the students' on a surface.
        shape = hist.branch_maps["segmentation"].shape if hist is not None else lgst.local.shape
        maps = {"local": lgst.local, "global": lgst.global_, "teacher_global": lgst.teacher_global}
        branch_maps = {name: resize_map(m, shape) for name, m in maps.items()}
        if hist is not None:
            branch_maps.update(segmentation=hist.branch_maps["segmentation"], histogram=hist.anomaly_map)
        if retrieval is not None:
            branch_maps[RETRIEVAL] = resize_map(retrieval.anomaly_map, shape)
        return Prediction(
            score=fused, anomaly_map=resize_map(lgst.combined, shape), branch_maps=branch_maps,
            branch_scores={**scores, **{f"z_{k}": v for k, v in self.fusion.z_scores(scores).items()}},
            explanations=hist.explanations if hist is not None else (SURFACE_MESSAGE,),
            regions=hist.regions if hist is not None else (),
            fused=self.fusion.counted(scores) if self.fusion.summed < len(self.fusion.branches) else (),
        )


def fit(ctx: FitContext, attention: bool) -> dict[str, str]:
    """AeCSAD (``attention``) or CSAD into ``ctx.out_dir``: the whole chain of the module docstring."""
    histogram.ensure_pseudo_labels(ctx)
    surface = is_surface(ctx.workspace, ctx.category)
    # segmenter → histogram model; a surface has no parts to count, so neither is trained
    files = {} if surface else histogram.fit(ctx)
    hist = None if surface else histogram.load(ctx.out_dir, ctx.device)
    backbone = choose_backbone(ctx.backbone, ctx.profile)
    settings = LgstSettings.for_profile(ctx.profile, attention=attention, seed=ctx.seed, backbone=backbone,
                                        **ctx.changed("lgst"))
    fusion = FusionSettings.for_profile(ctx.profile, **ctx.changed("fusion"))
    label_maps = {} if surface else reliable_label_maps(ctx)  # LSA moves parts: none on a surface
    data = load_lgst_data(ctx.data.select("train", "good"), settings.image_size, label_maps)
    trained = train_lgst(data, settings, ctx.out_dir, ctx.device, progress=ctx.progress, report=ctx.report)
    validation = [load_rgb(s.path) for s in ctx.data.select("validation", "good")]
    if not validation:
        raise DataError(f"category {ctx.category!r} has no validation images: LGST maps and fusion need good ones")
    raws = raw_maps(trained.net, validation, blur_sigma=MAP_BLUR_SIGMA)
    norm = fit_map_normalisation(raws, settings.quantiles)
    val_scores = _validation_scores(hist, validation, raws, norm)
    if fusion.retrieval:
        files.update({f"{RETRIEVAL}_{k}": f"{RETRIEVAL}/{v}" for k, v in instant.fit(_in_subfolder(ctx), settings.image_size).items()})
        val_scores[RETRIEVAL] = [p.score for p in instant.load(ctx.out_dir / RETRIEVAL, ctx.device).predict(validation)]
    elif (ctx.out_dir / RETRIEVAL).exists():
        shutil.rmtree(ctx.out_dir / RETRIEVAL)  # a stale bank from an earlier fit with retrieval
    fused = Fusion.fit(val_scores, fusion.top_k)
    check = {}
    if surface and fusion.surface_check:
        fused, check = _surface_branches(ctx, fused, trained.net, norm, validation)
    atomic_write_json(ctx.out_dir / STATS_FILE, {
        "method": settings.method, "surface": surface, "maps": norm.to_dict(), "map_blur_sigma": MAP_BLUR_SIGMA,
        "fusion": fused.to_dict(), "fusion_top_k": fusion.top_k, "surface_branch_check": check,
        "lgst_steps": trained.steps, "lgst_train_seconds": trained.seconds,  # a time budget may train fewer
    })
    return {**files, "lgst": CHECKPOINT, "lgst_fusion": STATS_FILE}


def _validation_scores(hist: histogram.HistogramDetector | None, validation: list[np.ndarray], raws: list[dict],
                       norm: MapNormalisation) -> dict[str, list[float]]:
    """Each branch's scores of the good validation images: what the trimmed z-scores are fitted on."""
    scores: dict[str, list[float]] = {}
    hist_preds = hist.predict(validation) if hist is not None else [None] * len(validation)
    for h, raw in zip(hist_preds, raws):
        for name in HISTOGRAM_BRANCHES:
            if h is not None and name in h.branch_scores:
                scores.setdefault(name, []).append(h.branch_scores[name])
        maps = score_maps(raw, norm)
        scores.setdefault("lgst", []).append(maps.score)
        scores.setdefault(TEACHER_GLOBAL, []).append(maps.teacher_global_score)
    return scores


def _surface_branches(ctx: FitContext, fusion: Fusion, net: LgstNet, norm: MapNormalisation,
                      validation: list[np.ndarray]) -> tuple[Fusion, dict]:
    """The subset of a surface's branches whose fused score best separates synthetic defects of
    the good validation images (ties keep more branches), and what each subset reached.

    Measured on KolektorSDD (aecsad quick): LGST alone 0.507 on the synthetic check (0.625 on the
    real test), teacher vs global 0.508 (0.618), retrieval 0.594 (0.877), all three 0.565 (0.828):
    the check orders the subsets as the real defects do."""
    images, defective = defect_check_images(validation, ctx.seed)
    scores = _validation_scores(None, images, raw_maps(net, images, blur_sigma=MAP_BLUR_SIGMA), norm)
    if RETRIEVAL in fusion.branches:
        scores[RETRIEVAL] = [p.score for p in instant.load(ctx.out_dir / RETRIEVAL, ctx.device).predict(images)]
    names = tuple(fusion.branches)
    reached = {}
    for size in range(1, len(names) + 1):
        for subset in itertools.combinations(names, size):
            only = fusion.only(subset)
            reached[subset] = separation([only({b: scores[b][i] for b in subset}) for i in range(len(images))], defective)
    best = max(reached, key=lambda subset: (reached[subset], len(subset)))
    return fusion.only(best), {"kept": list(best), "separation": {"+".join(k): v for k, v in reached.items()}}


def _in_subfolder(ctx: FitContext) -> FitContext:
    return replace(ctx, out_dir=ctx.out_dir / RETRIEVAL)


def reliable_label_maps(ctx: FitContext) -> dict[str, np.ndarray]:
    """Pseudo-label maps of the reliable (``D_L``) images by sample key: the parts LSA may move."""
    if ctx.workspace is None:
        return {}
    reliable = store.load_state(ctx.workspace, ctx.category).reliable
    maps = {key: store.load_label_map(ctx.workspace, ctx.category, key) for key in reliable}
    return {key: m for key, m in maps.items() if m is not None}


def load(folder: Path, device: torch.device) -> LgstDetector:
    """The AeCSAD/CSAD detector fitted into ``folder``."""
    stats = json.loads((folder / STATS_FILE).read_text())
    net = build_lgst(load_lgst_checkpoint(folder / CHECKPOINT), device)
    fusion = Fusion.from_dict(stats["fusion"], stats.get("fusion_top_k", 0))  # older files: the sum of all
    retrieval = instant.load(folder / RETRIEVAL, device) if RETRIEVAL in fusion.branches else None
    hist = None if stats.get("surface") else histogram.load(folder, device)
    return LgstDetector(stats["method"], hist, net,
                        MapNormalisation.from_dict(stats["maps"]), fusion, retrieval,
                        blur_sigma=float(stats.get("map_blur_sigma", 0.0)))

