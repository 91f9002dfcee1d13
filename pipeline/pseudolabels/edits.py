"""Curation state below the public edit functions: small per-item decisions in SQLite, drawn or
erased regions as files, and the *effective* components an image has after those edits.

Where each piece lives (all survive a restart; reopening the workspace restores them):

* SQLite, category-scoped settings (``Workspace.set_setting(..., category=c)``), each changed in
  one ``BEGIN IMMEDIATE`` transaction (read-modify-write), so two tabs never lose each other's
  edits to different items:
    - ``pseudo_labels.rejected``: ``{image key: {"components": <components cache key>, "ids": [..]}}``;
      decisions refer to component ids, so they apply only while the image's components are the
      ones they were made on (a re-segmentation drops them).
    - ``pseudo_labels.boxes``: ``{image key: [{"x0", "y0", "x1", "y1", "tag"}, ...]}`` for the
      manual detector.
    - ``pseudo_labels.overrides``: ``{image key: true | false}`` (reliable or not, by hand).
    - ``pseudo_labels.cluster_log``: the cluster edits made, newest last (history only).
    - ``pseudo_labels.settings``: the ``PseudoLabelSettings`` of the last run.
    - ``pseudo_labels.tag_suggestions``: the last tag suggestions; tag decisions use the tags table.
* Files (arrays): ``pseudo_labels/edits/<image key>.npz`` (drawn/erased regions, in order) and
  ``pseudo_labels/clustering.npz`` (the clustering, including renames, merges, splits and moves).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.pseudolabels import store
from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.types import ImageComponents
from pipeline.workspace import Workspace
from pipeline.workspace.db import dumps, loads, now_iso, writing

REJECTED = "pseudo_labels.rejected"
BOXES = "pseudo_labels.boxes"
OVERRIDES = "pseudo_labels.overrides"
CLUSTER_LOG = "pseudo_labels.cluster_log"
SETTINGS = "pseudo_labels.settings"
SUGGESTIONS = "pseudo_labels.tag_suggestions"
EDIT_KINDS = ("add", "erase")


# --- SQLite settings changed in one transaction ----------------------------------------------

@contextmanager
def locked(ws: Workspace) -> Iterator[Any]:
    """Hold the workspace's write lock (one SQLite write transaction) around a read-modify-write
    of a file, so two processes or tabs editing the clustering queue up instead of racing."""
    with writing(ws.db_path) as conn:
        yield conn


def update_in(conn: Any, category: str, key: str, change: Callable[[Any], Any], default: Any) -> Any:
    """Inside ``locked``: replace setting ``key`` by ``change(current)``; returns the new value."""
    row = conn.execute("SELECT value FROM settings WHERE scope = ? AND key = ?", (category, key)).fetchone()
    value = change(default if row is None else loads(row[0]))
    conn.execute(
        "INSERT INTO settings (scope, key, value, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (scope, key)"
        " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (category, key, dumps(value, f"setting {key!r}"), now_iso()),
    )
    return value


def update_setting(ws: Workspace, category: str, key: str, change: Callable[[Any], Any], default: Any) -> Any:
    """Atomically replace a category setting by ``change(current or default)``."""
    ws.category_dir(category)  # validates the name before it becomes a scope
    with locked(ws) as conn:
        return update_in(conn, category, key, change, default)


def rejected_ids(ws: Workspace, category: str) -> dict[str, set[int]]:
    """image key -> ids of its rejected components, only where they were made on its current
    components (decisions made on components a re-run replaced no longer apply)."""
    out: dict[str, set[int]] = {}
    for key, entry in (ws.get_setting(REJECTED, {}, category=category) or {}).items():
        if entry.get("ids") and entry.get("components") == store.components_key(ws, category, key):
            out[key] = {int(i) for i in entry["ids"]}
    return out


def reliability_overrides(ws: Workspace, category: str) -> dict[str, bool]:
    """image key -> True (reliable) / False (unreliable), set by hand."""
    return {k: bool(v) for k, v in (ws.get_setting(OVERRIDES, {}, category=category) or {}).items()}


def manual_boxes(ws: Workspace, category: str) -> dict[str, list[Box]]:
    """image key -> boxes drawn on it, for the manual detector (``references``)."""
    stored = ws.get_setting(BOXES, {}, category=category) or {}
    return {key: [box_from_dict(b) for b in boxes] for key, boxes in sorted(stored.items()) if boxes}


def box_to_dict(box: Box) -> dict:
    return {"x0": box.x0, "y0": box.y0, "x1": box.x1, "y1": box.y1, "tag": box.tag}


def box_from_dict(entry: dict) -> Box:
    return Box(float(entry["x0"]), float(entry["y0"]), float(entry["x1"]), float(entry["y1"]), str(entry["tag"]))


# --- drawn and erased regions ----------------------------------------------------------------

@dataclass(frozen=True)
class RegionEdit:
    """A region drawn onto (``add``: becomes a new component tagged ``tag``) or erased from
    (``erase``: its pixels leave every component) an image.

    Attributes:
        kind: ``"add"`` or ``"erase"``.
        mask: bool ``(H, W)`` at the image's resolution.
        tag: the tag of a drawn component ("" for erase).
    """

    kind: str
    mask: np.ndarray
    tag: str = ""


def _edits_file(ws: Workspace, category: str, image_key: str):
    return store.image_file(ws, category, "edits", image_key, ".npz")


def load_edits(ws: Workspace, category: str, image_key: str) -> list[RegionEdit]:
    """The image's region edits in the order they were made."""
    path = _edits_file(ws, category, image_key)
    if not path.is_file():
        return []
    with np.load(path, allow_pickle=False) as data:
        masks = np.unpackbits(data["masks"], axis=-1, count=int(data["width"])).astype(bool)
        return [RegionEdit(str(k), m, str(t)) for k, m, t in zip(data["kinds"], masks, data["tags"])]


def edits_digest(ws: Workspace, category: str, image_key: str) -> str:
    """Identity of the image's edits ("" when there are none), for cache keys."""
    path = _edits_file(ws, category, image_key)
    if not path.is_file():
        return ""
    with np.load(path, allow_pickle=False) as data:
        return str(data["digest"])


def save_edits(ws: Workspace, category: str, image_key: str, edits: list[RegionEdit]) -> None:
    """Replace the image's edits (an empty list removes the file)."""
    path = _edits_file(ws, category, image_key)
    if not edits:
        path.unlink(missing_ok=True)
        return
    masks = np.stack([np.asarray(e.mask, bool) for e in edits])
    packed = np.packbits(masks, axis=-1)  # 1 bit per pixel: a few drawn masks stay small
    kinds, tags = np.array([e.kind for e in edits]), np.array([e.tag for e in edits])
    digest = hashlib.sha256(packed.tobytes() + repr((kinds.tolist(), tags.tolist(), masks.shape)).encode()).hexdigest()
    store._save_npz(path, masks=packed, width=np.array(masks.shape[-1]), kinds=kinds, tags=tags,
                    digest=np.array(digest))


def apply_edits(base: ImageComponents, edits: list[RegionEdit]) -> ImageComponents:
    """The components after the edits: a drawn region becomes the next id on top of the others,
    erased pixels belong to no component. Ids never shift, so decisions made on
    component ids stay valid (an erased-away component simply has no pixels left)."""
    instances = np.asarray(base.instances, np.int32).copy()
    background = np.asarray(base.background, bool).copy()
    sources = list(base.sources or ("auto",) * base.count)
    for edit in edits:
        mask = np.asarray(edit.mask, bool)
        if mask.shape != instances.shape:
            raise ValueError(f"{base.image_key}: region of shape {mask.shape} on an image of {instances.shape}")
        if edit.kind == "add":
            sources.append(f"drawn:{edit.tag}")
            instances[mask] = len(sources)
            background &= ~mask
        else:
            instances[mask] = 0
    return ImageComponents(base.image_key, instances, background, tuple(sources))


def effective_components(ws: Workspace, category: str, image_key: str) -> ImageComponents | None:
    """The stored components of an image with its drawn/erased regions applied (None if none)."""
    base = store.load_components(ws, category, image_key)
    if base is None:
        return None
    edits = load_edits(ws, category, image_key)
    return apply_edits(base, edits) if edits else base


def component_version(ws: Workspace, category: str, image_key: str) -> str:
    """Identity of an image's effective components: its components cache key + its edits."""
    return store.cache_key(store.components_key(ws, category, image_key), edits_digest(ws, category, image_key))


def nonempty(components: ImageComponents) -> tuple[ImageComponents, np.ndarray]:
    """The components that still have pixels, renumbered 1..K for the feature stage, and the
    original id of each (``ids[k - 1]`` is the original id of new component ``k``)."""
    ids = np.unique(components.instances)
    ids = ids[ids > 0].astype(np.int32)
    lookup = np.zeros(int(components.instances.max(initial=0)) + 1, np.int32)
    lookup[ids] = np.arange(1, len(ids) + 1)
    sources = list(components.sources or ("auto",) * components.count)
    compact = ImageComponents(
        components.image_key, lookup[components.instances], components.background,
        tuple(sources[i - 1] if i - 1 < len(sources) else "auto" for i in ids),
    )
    return compact, ids
