"""The histogram branch alone as a detection method (``histogram``): pseudo-labels → segmentation
network → predicted label maps → global and grid class-area Mahalanobis scores (SPEC §5 step 7),
and the part-colour distance (``colours.py``: each class's colour jointly with the class areas).

The image score is the sum of the three distances, each z-normalised with the 20th–80th percentile
trimmed mean and spread of the validation images (thesis eq. 4.17–4.18), so neither dominates by
scale. The anomaly map paints each grid cell with its most unusual class count/area (in standard
deviations), and ``explanations`` says which counts deviate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline.data.images import load_rgb
from pipeline.methods.base import FitContext, Prediction
from pipeline.methods.fusion import TrimmedZ
from pipeline.methods.histogram.branches import EXPLAIN_ABOVE
from pipeline.methods.histogram.colours import WEIGHTS_FILE as COLOUR_FILE
from pipeline.methods.histogram.colours import (
    ColourModel,
    colour_distances,
    colour_scores,
    enough_images,
    fit_colour_model,
    load_colour_model,
    save_colour_model,
)
from pipeline.methods.histogram.scoring import (
    HistogramModel,
    explain,
    fit_histogram_model,
    load_histogram_model,
    mahalanobis_scores,
    named_regions,
    save_histogram_model,
)
from pipeline.methods.histogram.surface import (
    SURFACE_FILE,
    SurfaceDetector,
    fit_surface,
    is_surface_model,
    load_surface,
)
from pipeline.methods.segmentation.checkpoint import build_network, load_checkpoint
from pipeline.methods.segmentation.data import resize_image, load_segmentation_data
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.methods.segmentation.torch_model import SegmentationNet, predict_labels
from pipeline.methods.segmentation.train import CHECKPOINT, train_segmentation
from pipeline.models.backbones import choose_backbone
from pipeline.progress import ProgressFn
from pipeline.pseudolabels import store
from pipeline.pseudolabels.confidence import weighting_enabled
from pipeline.pseudolabels.run import run_pseudo_labels
from pipeline.pseudolabels.surface import is_surface
from pipeline.workspace.files import atomic_write_json

COLOUR_BRANCH = "part_colour"
"""Branch name of the part-colour distance (``colours.py``) in scores and fusion."""
GRID = 2
"""P of the P×P grid histogram (thesis: 2)."""
FUSION_FILE = "histogram_fusion.json"


class HistogramDetector:
    """A fitted histogram method: segmentation network + histogram model + score normalisers."""

    method = "histogram"

    def __init__(self, net: SegmentationNet, model: HistogramModel, size: int, class_names: dict[int, str],
                 global_z: TrimmedZ, grid_z: TrimmedZ, colours: ColourModel | None = None,
                 colour_z: TrimmedZ | None = None) -> None:
        """``colours``/``colour_z``: the part-colour scorer and its normaliser; None for a model
        fitted before it existed (then there is no ``part_colour`` branch)."""
        self.net, self.model, self.size, self.class_names = net, model, size, class_names
        self.global_z, self.grid_z = global_z, grid_z
        self.colours, self.colour_z = (colours, colour_z) if colours is not None and colour_z is not None else (None, None)

    def label_maps(self, images: list[np.ndarray]) -> list[np.ndarray]:
        return predicted_maps(self.net, images, self.size)

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        resized = [resize_image(im, self.size) for im in images]
        maps = predict_labels(self.net, resized, self.size)
        global_d, grid_d = mahalanobis_scores(self.model, maps)
        n = len(maps)
        colour_d, shares = colour_scores(self.colours, resized, maps) if self.colours is not None else ([None] * n,) * 2
        return [self._prediction(m, float(g), float(c), d, sh)
                for m, g, c, d, sh in zip(maps, global_d, grid_d, colour_d, shares)]

    def _prediction(self, label_map: np.ndarray, global_d: float, grid_d: float, colour_d: float | None,
                    shares: np.ndarray | None) -> Prediction:
        deviations = explain(self.model, label_map, self.class_names)
        z = {"histogram_global": float(self.global_z(global_d)), "histogram_grid": float(self.grid_z(grid_d))}
        scores = {"histogram_global": global_d, "histogram_grid": grid_d}
        sentences = [d.sentence for d in deviations if d.unusualness >= EXPLAIN_ABOVE]
        if colour_d is not None:
            scores[COLOUR_BRANCH], z[COLOUR_BRANCH] = float(colour_d), float(self.colour_z(colour_d))
            if z[COLOUR_BRANCH] >= EXPLAIN_ABOVE:
                sentences.append(self._colour_sentence(shares, z[COLOUR_BRANCH]))
        return Prediction(
            score=sum(z.values()), anomaly_map=cell_map(deviations, label_map.shape, self.model.grid),
            branch_maps={"segmentation": label_map.astype(np.float32)},
            branch_scores={**scores, **{f"z_{k}": v for k, v in z.items()}},
            explanations=tuple(sentences),
            regions=named_regions(deviations, self.model.grid, EXPLAIN_ABOVE),
        )

    def _colour_sentence(self, shares: np.ndarray, z: float) -> str:
        cls = int(np.argmax(shares)) + 1
        name = self.class_names.get(cls, f"class {cls}")
        return (f"part colours: the colour of class '{name}' is unusual next to the other parts "
                f"({shares[cls - 1]:.0%} of the colour distance, {z:.1f} spreads above good images)")


def predicted_maps(net: SegmentationNet, images: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Label maps at the network's input side: the histogram's fixed reference frame."""
    return predict_labels(net, [resize_image(im, size) for im in images], size)


def cell_map(deviations, shape: tuple[int, int], grid: int) -> np.ndarray:
    """float32 ``shape`` map: each grid cell holds its most unusual class deviation (in spreads),
    plus the whole image's, so a part missing anywhere lights the whole map a little."""
    out = np.zeros(shape, np.float32)
    rows, cols = np.linspace(0, shape[0], grid + 1).astype(int), np.linspace(0, shape[1], grid + 1).astype(int)
    whole = max((d.unusualness for d in deviations if d.cell is None), default=0.0)
    for d in deviations:
        if d.cell is not None:
            r, c = d.cell
            cell = out[rows[r]:rows[r + 1], cols[c]:cols[c + 1]]
            np.maximum(cell, d.unusualness, out=cell)
    return out + np.float32(whole) / 2


def fit(ctx: FitContext) -> dict[str, str]:
    if ctx.workspace is None:
        raise ValueError("the histogram method trains on the category's pseudo-labels: fit it inside a workspace")
    ensure_pseudo_labels(ctx)
    if is_surface(ctx.workspace, ctx.category):
        return fit_surface(ctx)
    (ctx.out_dir / SURFACE_FILE).unlink(missing_ok=True)  # a refit that found parts
    backbone = choose_backbone(ctx.backbone, ctx.profile)  # WRN50-2 for ``paper`` when its weights exist
    settings = SegmentationSettings.for_profile(ctx.profile, seed=ctx.seed, backbone=backbone,
                                                confidence_weighting=weighting_enabled(ctx.workspace, ctx.category),
                                                **ctx.changed("segmentation"))
    data = load_segmentation_data(ctx.workspace, ctx.category, settings.image_size, settings.holdout_fraction, ctx.seed,
                                  confidence=settings.active_confidence)
    net = train_segmentation(data, settings, ctx.out_dir, ctx.device, progress=ctx.progress,
                             on_epoch=ctx.report).net
    size = settings.image_size
    train_images, train_maps = sample_maps(net, ctx.data.select("train", "good"), size, ctx.progress,
                                           "label maps of training images")
    model = fit_histogram_model(train_maps, data.n_classes, grid=GRID)
    files = save_histogram_model(model, ctx.out_dir)
    colours = None
    if enough_images(len(train_images), data.n_classes):
        colours = fit_colour_model(train_images, train_maps, data.n_classes)
        files["colours"] = save_colour_model(colours, ctx.out_dir)
    else:
        (ctx.out_dir / COLOUR_FILE).unlink(missing_ok=True)  # a refit on fewer images must not keep a stale one
    val_images, validation = sample_maps(net, ctx.data.select("validation", "good"), size, ctx.progress,
                                         "label maps of validation images")
    global_d, grid_d = mahalanobis_scores(model, validation) if validation else ([0.0], [0.0])
    fusion = {"global": TrimmedZ.fit(global_d).__dict__, "grid": TrimmedZ.fit(grid_d).__dict__,
              "image_size": size, "class_names": {str(k): v for k, v in data.class_names.items()}}
    if colours is not None:
        fusion["colour"] = TrimmedZ.fit(colour_distances(colours, val_images, validation) if validation else [0.0]).__dict__
    atomic_write_json(ctx.out_dir / FUSION_FILE, fusion)
    return {**files, "segmentation": CHECKPOINT, "fusion": FUSION_FILE}


def sample_maps(net: SegmentationNet, samples: list, size: int, progress: ProgressFn, stage: str,
                chunk: int = 16) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Samples resized to the network's side (uint8 RGB) and their predicted maps, loaded a chunk
    at a time: full-size photos never pile up in memory."""
    images: list[np.ndarray] = []
    maps: list[np.ndarray] = []
    for start in range(0, len(samples), chunk):
        resized = [resize_image(load_rgb(s.path), size) for s in samples[start:start + chunk]]
        images.extend(resized)
        maps.extend(predict_labels(net, resized, size))
        progress(stage, len(maps), len(samples))
    return images, maps


def ensure_pseudo_labels(ctx: FitContext) -> None:
    """Run the pseudo-label stages when the category has no label maps yet."""
    if not store.load_state(ctx.workspace, ctx.category).label_maps:
        run_pseudo_labels(ctx.workspace, ctx.category, device=str(ctx.device), progress=ctx.progress)


def load(folder: Path, device: torch.device) -> HistogramDetector | SurfaceDetector:
    import json

    if is_surface_model(folder):
        return load_surface(folder, device)
    fusion = json.loads((folder / FUSION_FILE).read_text())
    net = build_network(load_checkpoint(folder / CHECKPOINT), device)
    colour_z = TrimmedZ(**fusion["colour"]) if "colour" in fusion else None
    return HistogramDetector(net, load_histogram_model(folder), int(fusion["image_size"]),
                             {int(k): v for k, v in fusion["class_names"].items()},
                             TrimmedZ(**fusion["global"]), TrimmedZ(**fusion["grid"]),
                             load_colour_model(folder), colour_z)

