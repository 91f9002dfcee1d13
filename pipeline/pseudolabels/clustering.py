"""Cluster component features into pseudo-classes and paint them into label maps (SPEC §5 step 4).

MeanShift finds the number of clusters by itself; clusters with fewer members than a fraction
of the image count are dropped (a real part type occurs in most images, a stray segment in few).
Everything is deterministic for given features and settings.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.cluster import KMeans, MeanShift

from pipeline.pseudolabels.settings import ClusterSettings
from pipeline.pseudolabels.types import Clustering, ImageComponents


def cluster_components(
    features: np.ndarray,
    image_keys: Sequence[str],
    component_ids: np.ndarray,
    n_images: int,
    settings: ClusterSettings = ClusterSettings(),
    colours: np.ndarray | None = None,
) -> Clustering:
    """Cluster all components of a category.

    Args:
        features: float ``(N, D)``, one row per component.
        image_keys: per component, its image's key.
        component_ids: per component, its id in that image's instance map.
        n_images: images in the category (the small-cluster threshold is a fraction of it).
        colours: optional float ``(N, 3)`` mean CIELAB colour per component, for the colour split
            (``ClusterSettings.colour_split``); None skips it.

    Returns:
        Clusters numbered 1..C by decreasing size (ties: first member first), dropped
        components labelled 0, names ``"cluster k"``.
    """
    features = np.asarray(features, np.float32)
    if len(features) != len(image_keys) or len(features) != len(component_ids):
        raise ValueError("features, image_keys and component_ids need one entry per component")
    raw = mean_shift(features, settings) if len(features) else np.zeros(0, np.int64)
    labels = _drop_and_renumber(raw, settings.min_cluster_fraction * n_images)
    if colours is not None and settings.colour_split > 0:
        split = split_by_colour(labels, np.asarray(colours), image_keys, settings)
        kept = split > 0
        labels = np.zeros_like(split)
        labels[kept] = _drop_and_renumber(split[kept], 0)  # 1..C by size again; dropped stay 0
    n_clusters = int(labels.max(initial=0))
    return Clustering(
        image_keys=tuple(image_keys),
        component_ids=np.asarray(component_ids, np.int32),
        labels=labels.astype(np.int32),
        names={k: f"cluster {k}" for k in range(1, n_clusters + 1)},
        features=features,
    )


def recluster(features: np.ndarray, settings: ClusterSettings = ClusterSettings(), n_clusters: int | None = None) -> np.ndarray:
    """int ``(N,)`` group per row, 0-based by decreasing group size (used to split one cluster):
    ``n_clusters`` groups by KMeans, or MeanShift's own number when None. Nothing is dropped."""
    features = np.asarray(features, np.float32)
    if len(features) == 0:
        return np.zeros(0, np.int64)
    if n_clusters is None:
        raw = mean_shift(features, settings)
    else:
        n_clusters = max(1, min(int(n_clusters), len(np.unique(features, axis=0))))
        raw = KMeans(n_clusters, n_init=10, random_state=settings.seed).fit_predict(prepare(features, settings))
    return _drop_and_renumber(raw, 0) - 1


def mean_shift(features: np.ndarray, settings: ClusterSettings = ClusterSettings()) -> np.ndarray:
    """int ``(N,)`` MeanShift cluster index of each row (arbitrary order)."""
    points = prepare(features, settings)
    if len(points) < 2:
        return np.zeros(len(points), np.int64)
    bandwidth = settings.bandwidth or estimate_bandwidth(points, settings)
    if bandwidth <= 0:  # all points identical
        return np.zeros(len(points), np.int64)
    seeds = _seeds(points, settings)
    model = MeanShift(bandwidth=bandwidth, seeds=seeds, cluster_all=True)
    return model.fit_predict(points).astype(np.int64)


def prepare(features: np.ndarray, settings: ClusterSettings) -> np.ndarray:
    """The features as clustered: unit length (``normalize``), then PCA (``pca_dim``)."""
    points = np.asarray(features, np.float64)
    if settings.normalize and len(points):
        points = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    if settings.pca_dim and len(points) > 1 and settings.pca_dim < points.shape[1]:
        centred = points - points.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        vt = vt[: settings.pca_dim]
        signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])  # SVD's sign is arbitrary
        points = centred @ (vt * signs[:, None]).T
    return points


def estimate_bandwidth(points: np.ndarray, settings: ClusterSettings) -> float:
    """Mean distance of each point to its ``bandwidth_quantile`` × N nearest neighbours (as
    scikit-learn's ``estimate_bandwidth``), on a seeded subsample of at most 2000 points."""
    sample = _subsample(points, 2000, settings.seed)
    k = max(1, int(round(len(sample) * settings.bandwidth_quantile)))
    distance = np.sqrt(np.maximum(_squared_distances(sample, sample), 0))
    nearest = np.sort(distance, axis=1)[:, 1:k + 1]  # column 0 is the point itself
    return float(nearest.mean()) if nearest.size else 0.0


def paint_label_map(components: ImageComponents, clustering: Clustering) -> np.ndarray:
    """uint8 ``(H, W)``: each component of the image painted with its cluster id; background,
    dropped and unclustered components 0."""
    rows = np.flatnonzero(np.array(clustering.image_keys, dtype=object) == components.image_key)
    instances = components.instances
    lookup = np.zeros(int(instances.max(initial=0)) + 1, np.uint8)
    for row in rows:
        component = int(clustering.component_ids[row])
        if 0 < component < len(lookup):
            lookup[component] = int(clustering.labels[row])
    return lookup[instances]


def split_by_colour(labels: np.ndarray, colours: np.ndarray, image_keys: Sequence[str], settings: ClusterSettings) -> np.ndarray:
    """Labels with each cluster split in two where its members form two colour groups that are
    ``colour_split`` ΔE apart in a*b* and each occur in ``colour_presence`` of its images;
    dropped components (0) stay 0. New clusters get ids above the existing ones."""
    keys = np.asarray(image_keys, dtype=object)
    out, next_id = labels.copy(), int(labels.max(initial=0)) + 1
    for cluster in range(1, int(labels.max(initial=0)) + 1):
        members = np.flatnonzero(labels == cluster)
        if len(members) < 4:
            continue
        chroma = colours[members, 1:3].astype(np.float64)
        kmeans = KMeans(2, n_init=10, random_state=settings.seed).fit(chroma)
        gap = float(np.linalg.norm(kmeans.cluster_centers_[0] - kmeans.cluster_centers_[1]))
        images = len(set(keys[members]))
        presence = [len(set(keys[members[kmeans.labels_ == g]])) / images for g in (0, 1)]
        if gap >= settings.colour_split and min(presence) >= settings.colour_presence:
            out[members[kmeans.labels_ == 1]] = next_id
            next_id += 1
    return out


def _drop_and_renumber(raw: np.ndarray, min_members: float) -> np.ndarray:
    """Clusters with fewer than ``min_members`` members → 0; the rest 1..C by decreasing size,
    ties broken by their first member's position (deterministic whatever MeanShift's order)."""
    if len(raw) == 0:
        return np.zeros(0, np.int64)
    groups, first, counts = np.unique(raw, return_index=True, return_counts=True)
    order = sorted(range(len(groups)), key=lambda g: (-counts[g], first[g]))
    lookup = {}
    for g in order:
        if counts[g] >= min_members:
            lookup[groups[g]] = len(lookup) + 1
    return np.array([lookup.get(r, 0) for r in raw], np.int64)


def _seeds(points: np.ndarray, settings: ClusterSettings) -> np.ndarray:
    return _subsample(points, settings.max_seeds, settings.seed)


def _subsample(points: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(points) <= limit:
        return points
    index = np.sort(np.random.default_rng(seed).choice(len(points), limit, replace=False))
    return points[index]


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
