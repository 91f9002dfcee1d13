"""Patch histogram branch (SPEC §5 step 7): scores label maps by their class-area layout.

``scoring`` is pure NumPy on label maps (from the segmentation network or the pseudo-labels).
"""

from pipeline.methods.histogram.scoring import (
    Deviation,
    HistogramModel,
    cell_names,
    component_counts,
    explain,
    fit_histogram_model,
    load_histogram_model,
    mahalanobis,
    mahalanobis_scores,
    patch_histograms,
    region_features,
    save_histogram_model,
)

__all__ = [
    "Deviation",
    "HistogramModel",
    "cell_names",
    "component_counts",
    "explain",
    "fit_histogram_model",
    "load_histogram_model",
    "mahalanobis",
    "mahalanobis_scores",
    "patch_histograms",
    "region_features",
    "save_histogram_model",
]
