"""Hand curation of the pseudo-labels: what the Tags, Masks and Clusters pages (and the ``tags``
command) call. Every edit is stored in the workspace before the function returns (where: see
``edits``), so it survives a restart, and then only what it invalidates is recomputed:

* tag decisions and drawn boxes change the inputs of the masks stage: they take effect at the
  next run (``run_pseudo_labels``), which re-segments only the images whose cache key changed;
* rejecting/accepting a component changes the clustering's members: the clustering is updated
  (other components keep their cluster), then the label maps and the reliability split;
* drawing or erasing a region changes one image's components: that image's features are
  recomputed (no re-segmentation), then as above;
* cluster edits (rename, merge, split, move) change the clustering; only the label maps whose
  colours changed are repainted, and the split is redone when any did (a rename repaints nothing);
* a reliability override changes one flag of the stored split.

Cluster ids stay contiguous (1..n): after a merge, or a move that empties a cluster, the ids above
the removed one shift down by one, names following their clusters. Functions that change ids
return the new ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from pipeline.pseudolabels import edits, refresh, store
from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.edits import RegionEdit
from pipeline.pseudolabels.types import Clustering
from pipeline.workspace import Workspace
from pipeline.workspace.db import now_iso


# --- context ---------------------------------------------------------------------------------

def run_context(ws: Workspace, category: str):
    """``(settings, training image keys, image paths by key)`` of the category's last run."""
    from pipeline.pseudolabels.settings import PseudoLabelSettings

    info = store.read_json(ws, category, "run.json")
    stored = ws.get_setting(edits.SETTINGS, None, category=category)
    if not info.get("images") or stored is None:
        raise ValueError(f"no pseudo-labels for category {category!r} yet; run pseudo-labels first")
    return PseudoLabelSettings.from_dict(stored), list(info["images"]), dict(info["images"])


def _refresh_after_mask_edit(ws: Workspace, category: str, image_key: str | None, device: str) -> None:
    from pipeline.data.images import load_rgb
    from pipeline.device import resolve_device

    settings, keys, paths = run_context(ws, category)
    if image_key is not None:
        extractor = refresh.FeatureExtractor(settings, resolve_device(device))
        refresh.update_features(ws, category, image_key, lambda: load_rgb(paths[image_key]), extractor, settings)
    clustering, _ = refresh.sync_clustering(ws, category, keys, settings, mode="incremental")
    refresh.refresh_outputs(ws, category, keys, settings, clustering)


def _known_image(ws: Workspace, category: str, image_key: str):
    components = edits.effective_components(ws, category, image_key)
    if components is None:
        raise ValueError(f"no components stored for image {image_key!r} of {category!r}; run pseudo-labels first")
    return components


# --- masks -----------------------------------------------------------------------------------

def set_component_rejected(
    ws: Workspace, category: str, image_key: str, component_id: int, rejected: bool = True, device: str = "auto",
) -> None:
    """Reject (leave out of clustering and label maps) or accept again one component of an image."""
    components = _known_image(ws, category, image_key)
    if not 1 <= int(component_id) <= components.count:
        raise ValueError(f"{image_key} has no component {component_id} (it has {components.count})")
    current = store.components_key(ws, category, image_key)

    def change(state: dict) -> dict:
        entry = state.get(image_key, {})
        ids = set(entry.get("ids", [])) if entry.get("components") == current else set()
        ids = ids | {int(component_id)} if rejected else ids - {int(component_id)}
        return {**state, image_key: {"components": current, "ids": sorted(ids)}}

    edits.update_setting(ws, category, edits.REJECTED, change, {})
    _refresh_after_mask_edit(ws, category, None, device)


def add_region(ws: Workspace, category: str, image_key: str, mask: np.ndarray, tag: str, device: str = "auto") -> int:
    """Add a hand-drawn region (bool mask at image resolution) as a new component; returns its id."""
    from pipeline.pseudolabels.adapters.tagger import normalise_tag

    mask = _region(ws, category, image_key, mask)
    _append_edit(ws, category, image_key, RegionEdit("add", mask, normalise_tag(tag)))
    _refresh_after_mask_edit(ws, category, image_key, device)
    return edits.effective_components(ws, category, image_key).count


def erase_region(ws: Workspace, category: str, image_key: str, mask: np.ndarray, device: str = "auto") -> None:
    """Remove the pixels of a region (bool mask) from every component of the image."""
    mask = _region(ws, category, image_key, mask)
    _append_edit(ws, category, image_key, RegionEdit("erase", mask))
    _refresh_after_mask_edit(ws, category, image_key, device)


def clear_region_edits(ws: Workspace, category: str, image_key: str, device: str = "auto") -> None:
    """Undo every drawn and erased region of an image."""
    with edits.locked(ws):
        edits.save_edits(ws, category, image_key, [])
    _refresh_after_mask_edit(ws, category, image_key, device)


def _region(ws: Workspace, category: str, image_key: str, mask: np.ndarray) -> np.ndarray:
    components = _known_image(ws, category, image_key)
    mask = np.asarray(mask).astype(bool)
    if mask.shape != components.instances.shape:
        raise ValueError(f"region of shape {mask.shape}; image {image_key} is {components.instances.shape}")
    if not mask.any():
        raise ValueError("the region is empty")
    return mask


def _append_edit(ws: Workspace, category: str, image_key: str, edit: RegionEdit) -> None:
    with edits.locked(ws):  # read-modify-write of the edits file, one writer at a time
        edits.save_edits(ws, category, image_key, edits.load_edits(ws, category, image_key) + [edit])


def set_boxes(ws: Workspace, category: str, image_key: str, boxes: Sequence[Box]) -> None:
    """Replace the boxes drawn on an image for the manual detector (used from the next run)."""
    for box in boxes:
        if not (box.x0 < box.x1 and box.y0 < box.y1) or not box.tag.strip():
            raise ValueError(f"a box needs x0 < x1, y0 < y1 and a tag; got {box}")
    entries = [edits.box_to_dict(b) for b in boxes]
    edits.update_setting(ws, category, edits.BOXES, lambda state: {**state, image_key: entries}, {})


# --- clusters --------------------------------------------------------------------------------

def _edit_clusters(ws: Workspace, category: str, change: Callable[[Clustering], Clustering], log: dict) -> Clustering:
    with edits.locked(ws) as conn:
        loaded = store.load_clustering_meta(ws, category)
        if loaded is None:
            raise ValueError(f"no clusters for category {category!r} yet; run pseudo-labels first")
        clustering = refresh.compact(change(loaded[0]))
        # Same provenance: a re-run on unchanged inputs keeps the edited clustering.
        store.save_clustering(ws, category, clustering, loaded[1])
        edits.update_in(conn, category, edits.CLUSTER_LOG, lambda old: (old + [{**log, "at": now_iso()}])[-200:], [])
    settings, keys, _ = run_context(ws, category)
    refresh.refresh_outputs(ws, category, keys, settings, clustering)
    return clustering


def _check_cluster(clustering: Clustering, cluster_id: int) -> int:
    if int(cluster_id) not in clustering.names:
        raise ValueError(f"no cluster {cluster_id}; clusters are {sorted(clustering.names)}")
    return int(cluster_id)


def _replace(clustering: Clustering, labels: np.ndarray, names: dict[int, str]) -> Clustering:
    return Clustering(clustering.image_keys, clustering.component_ids, labels, names, clustering.features)


def rename_cluster(ws: Workspace, category: str, cluster_id: int, name: str) -> None:
    """Give a cluster a display name."""
    if not name.strip():
        raise ValueError("a cluster name cannot be empty")

    def change(clustering: Clustering) -> Clustering:
        names = {**clustering.names, _check_cluster(clustering, cluster_id): name.strip()}
        return _replace(clustering, clustering.labels, names)

    _edit_clusters(ws, category, change, {"op": "rename", "cluster": int(cluster_id), "name": name.strip()})


def merge_clusters(ws: Workspace, category: str, keep: int, other: int) -> int:
    """Move every member of ``other`` into ``keep`` (keeping its name); returns ``keep``'s new id."""
    if int(keep) == int(other):
        raise ValueError("pick two different clusters to merge")

    def change(clustering: Clustering) -> Clustering:
        labels = np.asarray(clustering.labels).copy()
        labels[labels == _check_cluster(clustering, other)] = _check_cluster(clustering, keep)
        return _replace(clustering, labels, {k: v for k, v in clustering.names.items() if k != int(other)})

    _edit_clusters(ws, category, change, {"op": "merge", "keep": int(keep), "other": int(other)})
    return int(keep) - (int(other) < int(keep))


def split_cluster(ws: Workspace, category: str, cluster_id: int, n_clusters: int | None = 2) -> list[int]:
    """Re-cluster the members of one cluster by their stored features (``n_clusters`` parts, or
    as many as the clustering finds when None); the biggest part keeps the id and name, the
    others become new clusters at the end. Returns the ids of all parts."""
    from pipeline.pseudolabels import clustering as cluster_stage

    settings, _, _ = run_context(ws, category)
    parts: list[int] = []

    def change(clustering: Clustering) -> Clustering:
        cid = _check_cluster(clustering, cluster_id)
        labels = np.asarray(clustering.labels).copy()
        members = np.flatnonzero(labels == cid)
        with refresh.single_openmp_thread():
            sub = np.asarray(cluster_stage.recluster(clustering.features[members], settings.clusters, n_clusters))
        groups = sorted(np.unique(sub).tolist(), key=lambda g: (-(sub == g).sum(), g))
        names, parts[:] = dict(clustering.names), [cid]
        for number, group in enumerate(groups[1:], start=2):
            new = max(names) + 1
            labels[members[sub == group]] = new
            names[new] = f"{clustering.names[cid]} ({number})"
            parts.append(new)
        return _replace(clustering, labels, names)

    _edit_clusters(ws, category, change, {"op": "split", "cluster": int(cluster_id), "n_clusters": n_clusters})
    return parts


def move_component(ws: Workspace, category: str, image_key: str, component_id: int, target: int | None) -> int:
    """Put one component into cluster ``target`` (None: a new cluster of its own); returns the
    id of the cluster it ended up in."""
    def change(clustering: Clustering) -> Clustering:
        row = _row(clustering, image_key, component_id)
        labels, names = np.asarray(clustering.labels).copy(), dict(clustering.names)
        if target is None:
            labels[row] = max(names, default=0) + 1
            names[int(labels[row])] = f"cluster {int(labels[row])}"
        else:
            labels[row] = _check_cluster(clustering, target)
        return _replace(clustering, labels, names)

    moved = _edit_clusters(ws, category, change, {"op": "move", "image": image_key,
                                                  "component": int(component_id), "target": target})
    return int(moved.labels[_row(moved, image_key, component_id)])


def _row(clustering: Clustering, image_key: str, component_id: int) -> int:
    hits = np.flatnonzero((np.array(clustering.image_keys, dtype=object) == image_key)
                          & (np.asarray(clustering.component_ids) == int(component_id)))
    if len(hits) == 0:
        raise ValueError(f"component {component_id} of {image_key} is not clustered (rejected or unknown)")
    return int(hits[0])


def set_reliability_override(ws: Workspace, category: str, image_key: str, reliable: bool | None) -> None:
    """Force an image into ``D_L`` (True) or ``D_U`` (False); None returns it to the automatic split."""
    settings, keys, _ = run_context(ws, category)
    if image_key not in keys:
        raise ValueError(f"{image_key!r} is not a training image of {category!r}")

    def change(state: dict) -> dict:
        state = {k: v for k, v in state.items() if k != image_key}
        return state if reliable is None else {**state, image_key: bool(reliable)}

    edits.update_setting(ws, category, edits.OVERRIDES, change, {})
    clustering = store.load_clustering(ws, category)
    if clustering is not None:
        refresh.refresh_outputs(ws, category, keys, settings, clustering)


# --- views for the pages ---------------------------------------------------------------------

def component_clusters(ws: Workspace, category: str, image_key: str) -> dict[int, int]:
    """component id -> cluster id (0: dropped as too rare) for one image; rejected ones absent."""
    clustering = store.load_clustering(ws, category)
    if clustering is None:
        return {}
    rows = np.array(clustering.image_keys, dtype=object) == image_key
    return {int(i): int(label) for i, label in zip(clustering.component_ids[rows], clustering.labels[rows])}


def cluster_members(ws: Workspace, category: str) -> dict[int, list[tuple[str, int]]]:
    """cluster id -> its components as ``(image key, component id)``, for the gallery."""
    clustering = store.load_clustering(ws, category)
    if clustering is None:
        return {}
    members: dict[int, list[tuple[str, int]]] = {cid: [] for cid in clustering.names}
    for key, cid, label in zip(clustering.image_keys, clustering.component_ids, clustering.labels):
        if int(label) > 0:
            members[int(label)].append((key, int(cid)))
    return members


def rejected_components(ws: Workspace, category: str, image_key: str) -> set[int]:
    """Ids of the image's rejected components."""
    return edits.rejected_ids(ws, category).get(image_key, set())


@dataclass(frozen=True)
class ClusterLogEntry:
    """One cluster edit: ``op`` (rename/merge/split/move), its arguments and when (``at``)."""

    op: str
    details: dict
    at: str


def cluster_log(ws: Workspace, category: str) -> list[ClusterLogEntry]:
    """The cluster edits made on the category, oldest first (the last 200)."""
    entries = ws.get_setting(edits.CLUSTER_LOG, [], category=category) or []
    return [ClusterLogEntry(e["op"], {k: v for k, v in e.items() if k not in ("op", "at")}, e["at"]) for e in entries]
