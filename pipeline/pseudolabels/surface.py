"""Surfaces: categories whose pseudo-labels found no separate parts.

Textured metal, painted plates, commutators: the classical proposals (or SAM) find nothing that
differs from the border backdrop, or one region that is the whole surface. Part counts, class
areas and part colours then measure nothing, so the part-based branches (histograms, part
colours, the segmenter that feeds them, LSA) are left out and a method scores with the branches
that apply: LGST, teacher vs global and patch retrieval.
"""

from __future__ import annotations

import numpy as np

from pipeline.pseudolabels import store
from pipeline.workspace import Workspace

SURFACE_MESSAGE = "no separate parts found: treated as a surface; the part-based branches are left out"
"""The one line every front end (CLI, jobs, Masks/Clusters/Train pages) shows for a surface."""

WHOLE_SURFACE_FRACTION = 0.6
"""A single part class covering at least this share of the label maps (on average) is the
surface itself, not a part lying on a backdrop (one screw on a tray still has histograms)."""

SAMPLED_MAPS = 24
"""Label maps read to measure that share: enough for a stable mean, cheap on a large category."""


def is_surface(ws: Workspace, category: str) -> bool:
    """True when the stored pseudo-labels have no part class, or one that covers the image."""
    state = store.load_state(ws, category)
    classes = [cid for cid in state.cluster_sizes if cid > 0]
    if len(classes) == 0:
        return True
    if len(classes) > 1:
        return False
    return foreground_share(ws, category, state.label_maps[:SAMPLED_MAPS]) >= WHOLE_SURFACE_FRACTION


def foreground_share(ws: Workspace, category: str, keys: tuple[str, ...]) -> float:
    """Mean share of labelled (non-zero) pixels over the label maps of ``keys``; 0 without any."""
    shares = []
    for key in keys:
        label_map = store.load_label_map(ws, category, key)
        if label_map is not None and label_map.size:
            shares.append(float(np.count_nonzero(label_map)) / label_map.size)
    return float(np.mean(shares)) if shares else 0.0
