"""Recompute what depends on the stored components, redoing only what changed: features of the
images whose effective components changed, the clustering (kept, updated or recomputed), the
label maps whose inputs changed, and the reliability split when any label map changed.

Used by ``run`` after the masks stage and by ``curation`` after every edit. The stage modules are
imported when called, so tests can monkeypatch their functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pipeline.errors import NotReadyError, SettingsError
from pipeline.progress import ProgressFn, no_progress
from pipeline.pseudolabels import edits, store
from pipeline.pseudolabels.types import Clustering, Reliability
from pipeline.workspace import Workspace

SYNC_MODES = ("auto", "full", "incremental")


# --- features --------------------------------------------------------------------------------

def features_cache_key(ws: Workspace, category: str, image_key: str, settings) -> str:
    """Features depend on the effective components (stored components + edits) and the settings."""
    # "colours": features stored before component colours were kept are recomputed once.
    return store.cache_key(edits.component_version(ws, category, image_key), settings.fingerprint("features"), "colours")


class FeatureExtractor:
    """``component_features`` with the backbone built on first use (cached images need none)."""

    def __init__(self, settings, device) -> None:
        self.settings = settings
        self.device = device
        self._backbone = None

    def __call__(self, image: np.ndarray, components) -> np.ndarray:
        from pipeline.pseudolabels import features as feature_stage

        if self._backbone is None:
            self._backbone = build_feature_backbone(self.settings.features, self.device)
        return feature_stage.component_features(image, components, self._backbone, self.settings.features, self.device)


def build_feature_backbone(feature_settings, device):
    """The frozen backbone named by the feature settings (the embedded one by default)."""
    from pipeline.models.backbones import build_backbone, choose_backbone

    name = getattr(feature_settings, "backbone", "auto")
    return build_backbone(choose_backbone(name), device=device)


def update_features(
    ws: Workspace, category: str, image_key: str, image: Callable[[], np.ndarray],
    extractor: Callable, settings,
) -> bool:
    """Compute and store the image's features unless stored ones match; True if computed.

    ``image`` is called only when the features must be computed (loading costs time too).
    """
    key = features_cache_key(ws, category, image_key, settings)
    if store.features_key(ws, category, image_key) == key:
        return False
    components = edits.effective_components(ws, category, image_key)
    if components is None:
        raise NotReadyError(f"{image_key}: no components stored; run pseudo-labels first")
    from pipeline.pseudolabels.features import component_colours

    compact, ids = edits.nonempty(components)
    if len(ids):
        rgb = image()
        rows, colours = np.asarray(extractor(rgb, compact), np.float32), component_colours(rgb, compact)
    else:
        rows, colours = np.zeros((0, 0), np.float32), np.zeros((0, 3), np.float32)
    store.save_features(ws, category, image_key, rows, ids, key, colours)
    return True


# --- clustering ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClusterInputs:
    """Every non-rejected component with its features, and the fingerprint of all of it."""

    image_keys: tuple[str, ...]
    component_ids: np.ndarray
    features: np.ndarray
    features_keys: dict[str, str]
    fingerprint: str
    colours: np.ndarray | None = None


def gather(ws: Workspace, category: str, image_keys: list[str], settings) -> ClusterInputs:
    """Collect the stored features of the images, leaving out rejected components."""
    rejected = edits.rejected_ids(ws, category)
    keys, ids, rows, fkeys, colours = [], [], [], {}, []
    for image_key in image_keys:
        loaded = store.load_features(ws, category, image_key)
        if loaded is None:
            raise NotReadyError(f"{image_key}: no features stored; run pseudo-labels first")
        fkeys[image_key] = store.features_key(ws, category, image_key)
        features, component_ids = loaded
        keep = ~np.isin(component_ids, sorted(rejected.get(image_key, ())))
        keys += [image_key] * int(keep.sum())
        ids.append(component_ids[keep])
        rows += [features[keep]] if keep.any() else []
        stored_colours = store.load_colours(ws, category, image_key)
        colours.append(None if stored_colours is None else stored_colours[keep])
    fingerprint = store.cache_key(
        settings.fingerprint("clusters"), [(k, fkeys[k], sorted(rejected.get(k, ()))) for k in image_keys]
    )
    features = np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)
    component_ids = np.concatenate(ids).astype(np.int32) if ids else np.zeros(0, np.int32)
    known = all(c is not None for c in colours)
    colour_rows = np.concatenate(colours).astype(np.float32) if known and colours else None
    return ClusterInputs(tuple(keys), component_ids, features, fkeys, fingerprint, colour_rows)


def sync_clustering(
    ws: Workspace, category: str, image_keys: list[str], settings, mode: str = "auto",
) -> tuple[Clustering, str]:
    """Bring the stored clustering up to date; returns it and ``"kept"``, ``"updated"`` or
    ``"reclustered"``.

    A clustering made from exactly these inputs is kept as is, with the user's cluster edits.
    ``auto`` (a run) otherwise clusters from scratch. ``incremental`` (a curation edit) keeps
    every unchanged component in its cluster and puts new or changed ones into the cluster with
    the nearest centre. ``full`` always clusters from scratch.
    """
    if mode not in SYNC_MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {SYNC_MODES}")
    inputs = gather(ws, category, image_keys, settings)
    stored = store.load_clustering_meta(ws, category)
    meta = {"inputs": inputs.fingerprint, "clusters": settings.fingerprint("clusters"),
            "features": inputs.features_keys}
    if stored is not None and mode != "full" and stored[1].get("inputs") == inputs.fingerprint:
        return stored[0], "kept"
    if stored is not None and mode == "incremental" and stored[1].get("clusters") == meta["clusters"]:
        clustering, how = _incremental(stored[0], stored[1], inputs), "updated"
    else:
        clustering, how = _cluster(inputs, len(image_keys), settings), "reclustered"
    store.save_clustering(ws, category, clustering, meta)
    return clustering, how


def _cluster(inputs: ClusterInputs, n_images: int, settings) -> Clustering:
    if len(inputs.image_keys) == 0:
        return Clustering((), np.zeros(0, np.int32), np.zeros(0, np.int32), {}, inputs.features)
    from pipeline.pseudolabels import clustering as cluster_stage

    with single_openmp_thread():
        result = cluster_stage.cluster_components(
            inputs.features, list(inputs.image_keys), inputs.component_ids, n_images, settings.clusters,
            colours=inputs.colours,
        )
    return compact(result)


def single_openmp_thread():
    """Context that runs scikit-learn's OpenMP loops on one thread. MeanShift's neighbour
    queries are tiny; with more threads than idle cores (2 cores, torch busy too) OpenMP's
    spin-waiting made a 123-point clustering take 14 s instead of 0.2 s."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _incremental(stored: Clustering, meta: dict, inputs: ClusterInputs) -> Clustering:
    unchanged = {k for k, v in meta.get("features", {}).items() if inputs.features_keys.get(k) == v}
    old = {(k, int(i)): int(label) for k, i, label in zip(stored.image_keys, stored.component_ids, stored.labels)
           if k in unchanged}
    labels = np.array([old.get((k, int(i)), -1) for k, i in zip(inputs.image_keys, inputs.component_ids)], np.int32)
    new = labels < 0
    centres = {cid: inputs.features[labels == cid].mean(0) for cid in stored.names if (labels == cid).any()}
    if new.any():
        labels[new] = _nearest(inputs.features[new], centres)
    return compact(Clustering(inputs.image_keys, inputs.component_ids, labels, dict(stored.names), inputs.features))


def _nearest(features: np.ndarray, centres: dict[int, np.ndarray]) -> np.ndarray:
    if not centres:
        return np.zeros(len(features), np.int32)
    ids = np.array(sorted(centres), np.int32)
    # Compared by direction, as the clustering does by default (unit-length features): the
    # activation scale of a crop says little about which part it shows.
    matrix, rows = _unit(np.stack([centres[i] for i in ids])), _unit(features)
    distance = ((rows[:, None, :] - matrix[None, :, :]) ** 2).sum(-1)
    return ids[distance.argmin(1)]


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def compact(clustering: Clustering) -> Clustering:
    """Drop clusters without members and renumber the rest 1..n in their old order, so class ids
    stay contiguous for the label maps and the segmentation network (names follow their cluster)."""
    labels = np.asarray(clustering.labels, np.int32)
    alive = [cid for cid in sorted(set(clustering.names) | set(labels[labels > 0].tolist())) if (labels == cid).any()]
    lookup = np.zeros(max(alive + [int(labels.max(initial=0))]) + 1, np.int32)
    names = {}
    for new, old in enumerate(alive, start=1):
        lookup[old] = new
        names[new] = clustering.names.get(old, f"cluster {old}")
    if len(names) > 255:
        raise SettingsError(f"{len(names)} clusters do not fit an 8-bit label map (at most 255); raise "
                            "clusters.min_cluster_fraction or clusters.bandwidth_quantile")
    return Clustering(clustering.image_keys, np.asarray(clustering.component_ids, np.int32), lookup[labels],
                      names, clustering.features)


# --- label maps and reliability --------------------------------------------------------------

def paint(instances: np.ndarray, component_ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """uint8 label map: each listed component painted with its cluster; anything else 0."""
    lookup = np.zeros(max(int(instances.max(initial=0)), int(np.max(component_ids, initial=0))) + 1, np.uint8)
    lookup[np.asarray(component_ids, np.int64)] = labels
    return lookup[instances]


def refresh_outputs(
    ws: Workspace, category: str, image_keys: list[str], settings, clustering: Clustering,
    progress: ProgressFn = no_progress,
) -> Reliability:
    """Repaint the label maps whose inputs changed and redo the split if any did; apply overrides."""
    per_image = _rows_by_image(clustering)
    empty = (np.zeros(0, np.int32), np.zeros(0, np.int32))
    signatures = {
        key: store.cache_key(edits.component_version(ws, category, key), *[a.tolist() for a in per_image.get(key, empty)])
        for key in image_keys
    }
    index = store.read_json(ws, category, "label_maps.json")
    changed = {k for k in image_keys
               if index.get(k) != signatures[k] or not store.label_map_path(ws, category, k).is_file()}
    inputs = store.cache_key([signatures[k] for k in image_keys], clustering.n_clusters,
                             settings.fingerprint("reliability"))
    reliability = store.load_reliability(ws, category)
    if changed or reliability is None or store.reliability_inputs(ws, category) != inputs:
        maps = []
        for done, key in enumerate(image_keys, start=1):
            maps.append(_label_map(ws, category, key, per_image.get(key, empty), key in changed))
            index[key] = signatures[key]
            progress("label maps", done, len(image_keys))
        store.write_json(ws, category, "label_maps.json", {k: index[k] for k in image_keys})
        reliability = _split(maps, image_keys, clustering.n_clusters, settings, edits.reliability_overrides(ws, category))
    reliability = with_overrides(reliability, edits.reliability_overrides(ws, category))
    store.save_reliability(ws, category, reliability, inputs)
    return reliability


def _rows_by_image(clustering: Clustering) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    keys = np.array(clustering.image_keys, dtype=object)
    ids, labels = np.asarray(clustering.component_ids), np.asarray(clustering.labels)
    return {key: (ids[keys == key].astype(np.int32), labels[keys == key].astype(np.int32)) for key in dict.fromkeys(keys)}


def _label_map(ws: Workspace, category: str, key: str, rows, repaint: bool) -> np.ndarray:
    if not repaint:
        stored = store.load_label_map(ws, category, key)
        if stored is not None:
            return stored
    components = edits.effective_components(ws, category, key)
    if components is None:
        raise NotReadyError(f"{key}: no components stored; run pseudo-labels first")
    label_map = paint(components.instances, *rows)
    store.save_label_map(ws, category, key, label_map)
    return label_map


def _split(maps: list[np.ndarray], image_keys: list[str], n_classes: int, settings, overrides) -> Reliability:
    from pipeline.pseudolabels import reliability as reliability_stage

    return reliability_stage.split_reliable(maps, list(image_keys), n_classes, settings.reliability, overrides)


def with_overrides(reliability: Reliability, overrides: dict[str, bool]) -> Reliability:
    """The split with the user's per-image decisions applied over the automatic one."""
    reliable = np.asarray(reliability.automatic, bool).copy()
    for i, key in enumerate(reliability.image_keys):
        if key in overrides:
            reliable[i] = overrides[key]
    return Reliability(reliability.image_keys, reliability.histograms, reliable, reliability.automatic,
                       reliability.distance)
