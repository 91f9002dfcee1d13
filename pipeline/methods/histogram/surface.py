"""The histogram method on a surface (``pipeline.pseudolabels.surface``): no part classes, so no
counts, areas or colours to compare. Rather than refuse, it scores with the one part-free branch
that needs no training, patch retrieval (the instant detector's memory bank, in ``retrieval/``),
z-normalised on the validation images like every fused branch, and says so in each prediction.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pipeline.data.images import load_rgb
from pipeline.methods.base import FitContext, Prediction
from pipeline.methods.fusion import TrimmedZ
from pipeline.methods.instant import method as instant
from pipeline.methods.instant.model import InstantDetector
from pipeline.pseudolabels.surface import SURFACE_MESSAGE
from pipeline.workspace.files import atomic_write_json

RETRIEVAL = "retrieval"
"""Branch name and sub-folder of the memory bank (as in AeCSAD's retrieval branch)."""
SURFACE_FILE = "histogram_surface.json"


class SurfaceDetector:
    """Patch retrieval standing in for the histograms on a category without parts."""

    method = "histogram"

    def __init__(self, retrieval: InstantDetector, z: TrimmedZ) -> None:
        self.retrieval, self.z = retrieval, z

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        return [self._prediction(p) for p in self.retrieval.predict(images)]

    def _prediction(self, retrieved: Prediction) -> Prediction:
        z = float(self.z(retrieved.score))
        return Prediction(
            score=z, anomaly_map=retrieved.anomaly_map, branch_maps={RETRIEVAL: retrieved.anomaly_map},
            branch_scores={RETRIEVAL: retrieved.score, f"z_{RETRIEVAL}": z},
            explanations=(f"{SURFACE_MESSAGE}; scored by patch retrieval alone",),
        )


def fit_surface(ctx: FitContext) -> dict[str, str]:
    """Memory bank of the good training images, and its score normaliser on the validation ones."""
    files = instant.fit(replace(ctx, out_dir=ctx.out_dir / RETRIEVAL))
    retrieval = instant.load(ctx.out_dir / RETRIEVAL, ctx.device)
    validation = [load_rgb(s.path) for s in ctx.data.select("validation", "good")]
    scores = [p.score for p in retrieval.predict(validation)] if validation else [0.0]
    atomic_write_json(ctx.out_dir / SURFACE_FILE, {"surface": True, RETRIEVAL: TrimmedZ.fit(scores).__dict__})
    return {**{f"{RETRIEVAL}_{k}": f"{RETRIEVAL}/{v}" for k, v in files.items()}, "surface": SURFACE_FILE}


def is_surface_model(folder: Path) -> bool:
    """The model in ``folder`` was fitted as a surface (its newest fit wrote the surface file)."""
    return (folder / SURFACE_FILE).is_file()


def load_surface(folder: Path, device: torch.device) -> SurfaceDetector:
    stats = json.loads((folder / SURFACE_FILE).read_text())
    return SurfaceDetector(instant.load(folder / RETRIEVAL, device), TrimmedZ(**stats[RETRIEVAL]))
