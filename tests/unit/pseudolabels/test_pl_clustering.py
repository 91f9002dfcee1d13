"""MeanShift clustering of component features, small-cluster dropping, reclustering and painting."""

from __future__ import annotations

import numpy as np

from pipeline.pseudolabels.clustering import cluster_components, paint_label_map, recluster
from pipeline.pseudolabels.settings import ClusterSettings
from pipeline.pseudolabels.types import ImageComponents

N_IMAGES = 10


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated groups of 30, 20 and 10 points and a tiny group of 2, in 16-D."""
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[[0, 5, 10, 15]] * 10
    sizes = [30, 20, 10, 2]
    features = np.concatenate([c + rng.normal(0, 0.3, (n, 16)) for c, n in zip(centres, sizes)])
    truth = np.repeat(np.arange(4), sizes)
    order = rng.permutation(len(features))  # the input order must not matter
    return features[order].astype(np.float32), truth[order]


def _keys(n: int) -> tuple[list[str], np.ndarray]:
    keys = [f"train/good/{i % N_IMAGES:03d}.png" for i in range(n)]
    return keys, np.array([i // N_IMAGES + 1 for i in range(n)], np.int32)


def test_well_separated_groups_become_clusters_by_size_and_tiny_one_is_dropped():
    features, truth = _blobs()
    keys, ids = _keys(len(features))
    result = cluster_components(features, keys, ids, N_IMAGES, ClusterSettings(min_cluster_fraction=0.5))
    assert result.n_clusters == 3 and result.names == {1: "cluster 1", 2: "cluster 2", 3: "cluster 3"}
    for group, expected in zip(range(3), (1, 2, 3)):  # numbered by decreasing size
        assert set(result.labels[truth == group].tolist()) == {expected}
    assert set(result.labels[truth == 3].tolist()) == {0}  # 2 members < 0.5 x 10 images
    assert result.labels.dtype == np.int32 and result.features.shape == features.shape
    assert result.image_keys == tuple(keys)


def test_clustering_is_deterministic_and_respects_a_fixed_bandwidth():
    features, _ = _blobs(1)
    keys, ids = _keys(len(features))
    first = cluster_components(features, keys, ids, N_IMAGES)
    again = cluster_components(features, keys, ids, N_IMAGES)
    assert np.array_equal(first.labels, again.labels)
    huge = cluster_components(features, keys, ids, N_IMAGES, ClusterSettings(bandwidth=10.0, min_cluster_fraction=0))
    assert huge.n_clusters == 1


def test_empty_and_single_inputs():
    empty = cluster_components(np.zeros((0, 4), np.float32), [], np.zeros(0, np.int32), 3)
    assert empty.n_clusters == 0 and empty.labels.shape == (0,)
    one = cluster_components(np.ones((1, 4), np.float32), ["a"], np.array([1]), 1, ClusterSettings(min_cluster_fraction=0))
    assert one.labels.tolist() == [1]


def test_recluster_splits_in_two_with_kmeans_or_by_meanshift():
    features, truth = _blobs(2)
    two = features[truth < 2]
    parts = recluster(two, ClusterSettings(), n_clusters=2)
    assert np.bincount(parts).tolist() == [30, 20]  # 0-based, biggest group first
    assert len(np.unique(recluster(two, ClusterSettings()))) == 2


def test_paint_label_map_uses_the_cluster_of_each_component_of_this_image():
    instances = np.zeros((4, 6), np.int32)
    instances[0, :3], instances[1, :3], instances[3, 5] = 1, 2, 3
    components = ImageComponents("b", instances, instances == 0, ("auto",) * 3)
    features = np.zeros((5, 2), np.float32)
    from pipeline.pseudolabels.types import Clustering

    clustering = Clustering(("a", "b", "b", "b", "a"), np.array([1, 1, 2, 3, 2], np.int32),
                            np.array([2, 3, 0, 1, 1], np.int32), {1: "x", 2: "y", 3: "z"}, features)
    label_map = paint_label_map(components, clustering)
    assert label_map.dtype == np.uint8
    assert label_map[0, :3].tolist() == [3, 3, 3]  # component 1 of image b -> cluster 3
    assert label_map[1, :3].tolist() == [0, 0, 0]  # dropped
    assert label_map[3, 5] == 1 and label_map[2].sum() == 0


def _one_shape_two_colours(every_image: bool) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """20 images, 2 parts each of one shape (same features); ``gold`` marks the gold ones.
    ``every_image``: one gold and one white part per image (a nut and a washer); else images 0-9
    hold two gold parts and 10-19 two white ones (one part in two flavours)."""
    rng = np.random.default_rng(1)
    keys = [f"train/good/{i:03d}.png" for i in range(20) for _ in range(2)]
    features = (np.ones((40, 8)) + rng.normal(0, 0.01, (40, 8))).astype(np.float32)
    gold = np.array([j == 0 for i in range(20) for j in range(2)]) if every_image else np.repeat(np.arange(20) < 10, 2)
    return features, keys, np.tile(np.array([1, 2], np.int32), 20), gold


def test_a_cluster_of_two_colours_in_every_image_is_split_in_two():
    features, keys, ids, gold = _one_shape_two_colours(every_image=True)
    settings = ClusterSettings(min_cluster_fraction=0, bandwidth=1.0)
    assert set(cluster_components(features, keys, ids, 20, settings).labels) == {1}  # no colours: one cluster
    labels = cluster_components(features, keys, ids, 20, settings, colours=_colours(gold)).labels
    assert set(labels) == {1, 2}
    assert len(set(labels[gold])) == 1 and len(set(labels[~gold])) == 1 and labels[gold][0] != labels[~gold][0]
    off = ClusterSettings(min_cluster_fraction=0, bandwidth=1.0, colour_split=0)
    assert set(cluster_components(features, keys, ids, 20, off, colours=_colours(gold)).labels) == {1}


def test_colour_variants_found_in_only_some_images_stay_one_cluster():
    features, keys, ids, gold = _one_shape_two_colours(every_image=False)
    labels = cluster_components(features, keys, ids, 20, ClusterSettings(min_cluster_fraction=0, bandwidth=1.0),
                                colours=_colours(gold)).labels
    assert set(labels) == {1}


def _colours(gold: np.ndarray) -> np.ndarray:
    colours = np.zeros((len(gold), 3), np.float32)
    colours[:, 0] = 70
    colours[gold, 2] = 40
    return colours + np.random.default_rng(2).normal(0, 1, colours.shape).astype(np.float32)
