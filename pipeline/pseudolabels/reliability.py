"""Split the training images into reliable (``D_L``) and unreliable (``D_U``) pseudo-labels
(SPEC §5 step 5): HDBSCAN over per-image class-area histograms; images in the dominant
cluster(s) and close to its centre are reliable. User overrides win over the automatic split.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from pipeline.pseudolabels.settings import ReliabilitySettings
from pipeline.pseudolabels.types import Reliability


def class_histograms(label_maps: Sequence[np.ndarray], n_classes: int) -> np.ndarray:
    """float32 ``(N, n_classes + 1)``: per map, the fraction of its pixels in each class
    (column 0 = background); labels above ``n_classes`` are counted as background."""
    out = np.zeros((len(label_maps), n_classes + 1), np.float32)
    for row, label_map in enumerate(label_maps):
        values = np.asarray(label_map).ravel().astype(np.int64)
        values[(values < 0) | (values > n_classes)] = 0
        counts = np.bincount(values, minlength=n_classes + 1)
        out[row] = counts / max(values.size, 1)
    return out


def split_reliable(
    label_maps: Sequence[np.ndarray],
    image_keys: Sequence[str],
    n_classes: int,
    settings: ReliabilitySettings = ReliabilitySettings(),
    overrides: Mapping[str, bool] = {},
) -> Reliability:
    """The reliable/unreliable split of the images whose label maps are given.

    Args:
        label_maps: uint8 ``(H, W)`` per image, class ids ``0..n_classes``.
        image_keys: per map, the image key (``overrides`` are looked up by it).
        overrides: image key → reliable or not, set by the user; applied last.
    """
    if len(label_maps) != len(image_keys):
        raise ValueError(f"{len(label_maps)} label maps but {len(image_keys)} image keys")
    histograms = class_histograms(label_maps, n_classes)
    groups = density_groups(histograms, settings)
    automatic, distance = _near_dominant_centre(histograms, groups, settings)
    reliable = automatic.copy()
    for index, key in enumerate(image_keys):
        if key in overrides:
            reliable[index] = bool(overrides[key])
    return Reliability(tuple(image_keys), histograms, reliable, automatic, distance)


def density_groups(histograms: np.ndarray, settings: ReliabilitySettings) -> np.ndarray:
    """int ``(N,)`` HDBSCAN cluster of each histogram, -1 = noise. With fewer images than two
    minimum-size clusters need, or identical histograms, everything is one group (0)."""
    n = len(histograms)
    size = max(2, int(round(settings.min_cluster_fraction * n)))
    if n < 2 * size or np.allclose(histograms, histograms[:1]):
        return np.zeros(n, np.int64)
    import hdbscan  # imported here: it is slow to import and only this stage needs it

    model = hdbscan.HDBSCAN(min_cluster_size=size, min_samples=settings.min_samples)
    groups = model.fit_predict(histograms.astype(np.float64)).astype(np.int64)
    if (groups < 0).all():  # no structure found: one group, judged by distance alone
        return np.zeros(n, np.int64)
    return groups


def _near_dominant_centre(
    histograms: np.ndarray, groups: np.ndarray, settings: ReliabilitySettings
) -> tuple[np.ndarray, np.ndarray]:
    """``(reliable, distance)``: members of a dominant group within the spread limit of its
    centre; ``distance`` to the own centre (members) or the nearest dominant centre (others)."""
    n = len(histograms)
    if n == 0:
        return np.zeros(0, bool), np.zeros(0, np.float64)
    ids, counts = np.unique(groups[groups >= 0], return_counts=True)
    dominant = ids[counts >= settings.dominant_fraction * counts.max()]
    centres = {g: np.median(histograms[groups == g], axis=0) for g in dominant}
    reliable = np.zeros(n, bool)
    nearest, own = np.full(n, np.inf), np.full(n, np.nan)
    for g, centre in centres.items():
        to_centre = np.linalg.norm(histograms - centre, axis=1)
        members = groups == g
        limit = np.quantile(to_centre[members], settings.distance_quantile) * settings.distance_factor
        reliable |= members & (to_centre <= limit + 1e-12)
        own[members] = to_centre[members]
        nearest = np.minimum(nearest, to_centre)
    return reliable, np.where(np.isnan(own), nearest, own)
