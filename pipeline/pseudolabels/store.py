"""Files of the pseudo-label stages inside the workspace, each written atomically.

Layout under ``<workspace>/categories/<category>/pseudo_labels/`` (``<key>`` is the image key,
e.g. ``train/good/000.png``, so the folders mirror the dataset)::

    components/<key>.npz   ImageComponents (uint16 instances, background, sources) + its cache key
    features/<key>.npz     component features (K, D) + the component ids they describe + cache key
    edits/<key>.npz        hand-drawn / erased regions of the image (see ``edits``)
    label_maps/<key>       8-bit PNG label map (0 = background); the name keeps the image's suffix
    label_maps.json        image key -> signature of what its label map was painted from
    clustering.npz         Clustering arrays + names and provenance as embedded JSON (one file,
                           so names and labels can never disagree after a crash)
    reliability.npz        Reliability arrays
    run.json               the last run: adapters and why, tags, settings, counts, seconds

Per-image files are written as soon as the image is done, so an interrupted run loses at most
the image it was working on. A cached file is reused only when its stored cache key matches.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from pipeline.pseudolabels.types import Clustering, ImageComponents, Reliability
from pipeline.workspace import Workspace
from pipeline.workspace.files import atomic_save_png, atomic_write_bytes, atomic_write_json, json_default

FOLDER = "pseudo_labels"
"""Name of the pseudo-label folder inside the category folder."""


# --- keys and paths --------------------------------------------------------------------------

def cache_key(*parts: Any, image_path: Path | None = None) -> str:
    """sha256 over the image file's bytes (if given) and the JSON of ``parts``."""
    digest = hashlib.sha256()
    if image_path is not None:
        digest.update(Path(image_path).read_bytes())
    digest.update(json.dumps(parts, sort_keys=True, default=json_default).encode("utf-8"))
    return digest.hexdigest()


def pl_dir(ws: Workspace, category: str) -> Path:
    """``<category folder>/pseudo_labels/``, created on demand."""
    folder = ws.category_dir(category) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def image_file(ws: Workspace, category: str, folder: str, image_key: str, suffix: str = "") -> Path:
    """Path of an image's file in ``folder``; refuses keys that would leave that folder."""
    parts = PurePosixPath(image_key).parts
    if not parts or image_key.startswith("/") or any(p in ("..", ".") for p in parts) or "\\" in image_key:
        raise ValueError(f"not a usable image key: {image_key!r}")
    return pl_dir(ws, category).joinpath(folder, *parts[:-1], parts[-1] + suffix)


def _save_npz(path: Path, **arrays: Any) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buffer.getvalue())


def _load_npz(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _stored_key(path: Path) -> str | None:
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:  # npz members load lazily: reads one entry
        return str(data["cache_key"]) if "cache_key" in data.files else None


# --- components and features -----------------------------------------------------------------

def save_components(ws: Workspace, category: str, components: ImageComponents, key: str) -> None:
    """Store one image's components under its cache key (replaces any older result)."""
    instances = np.asarray(components.instances)
    if instances.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError(f"{components.image_key}: more than 65535 components")
    sources = np.array(components.sources or ("auto",) * components.count, dtype=str)
    _save_npz(
        image_file(ws, category, "components", components.image_key, ".npz"),
        instances=instances.astype(np.uint16), background=np.asarray(components.background, bool),
        sources=sources.reshape(-1), cache_key=np.array(key),
    )


def load_components(ws: Workspace, category: str, image_key: str) -> ImageComponents | None:
    """The stored components of an image (whatever key made them), or None."""
    data = _load_npz(image_file(ws, category, "components", image_key, ".npz"))
    if data is None:
        return None
    return ImageComponents(
        image_key, data["instances"].astype(np.int32), data["background"].astype(bool),
        tuple(str(s) for s in data["sources"]),
    )


def components_key(ws: Workspace, category: str, image_key: str) -> str | None:
    """Cache key of the stored components, or None when there are none."""
    return _stored_key(image_file(ws, category, "components", image_key, ".npz"))


def has_components(ws: Workspace, category: str, image_key: str, key: str) -> bool:
    """True when the image's components were stored under exactly this cache key."""
    return components_key(ws, category, image_key) == key


def save_features(
    ws: Workspace, category: str, image_key: str, features: np.ndarray, component_ids: np.ndarray, key: str,
    colours: np.ndarray | None = None,
) -> None:
    """Store the features of an image's non-empty components (row i describes ``component_ids[i]``),
    and optionally their mean CIELAB colours ``(K, 3)``."""
    features = np.asarray(features, np.float32)
    ids = np.asarray(component_ids, np.int32).reshape(-1)
    if features.ndim != 2 or len(features) != len(ids):
        raise ValueError(f"{image_key}: {features.shape} features for {len(ids)} components")
    extra = {} if colours is None else {"colours": np.asarray(colours, np.float32).reshape(len(ids), 3)}
    _save_npz(image_file(ws, category, "features", image_key, ".npz"),
              features=features, component_ids=ids, cache_key=np.array(key), **extra)


def load_features(ws: Workspace, category: str, image_key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(features (K, D) float32, component ids (K,))`` of an image, or None."""
    data = _load_npz(image_file(ws, category, "features", image_key, ".npz"))
    return None if data is None else (data["features"], data["component_ids"])


def load_colours(ws: Workspace, category: str, image_key: str) -> np.ndarray | None:
    """Mean CIELAB colours ``(K, 3)`` stored with the features (None for features stored before)."""
    data = _load_npz(image_file(ws, category, "features", image_key, ".npz"))
    return None if data is None or "colours" not in data else data["colours"]


def features_key(ws: Workspace, category: str, image_key: str) -> str | None:
    """Cache key of the stored features, or None."""
    return _stored_key(image_file(ws, category, "features", image_key, ".npz"))


# --- clustering, label maps, reliability, run info -------------------------------------------

def save_clustering(ws: Workspace, category: str, clustering: Clustering, meta: dict | None = None) -> None:
    """Store the category's clustering; ``meta`` (JSON) records what it was computed from."""
    names = {str(k): v for k, v in clustering.names.items()}
    _save_npz(
        pl_dir(ws, category) / "clustering.npz",
        image_keys=np.array(clustering.image_keys, dtype=str).reshape(-1),
        component_ids=np.asarray(clustering.component_ids, np.int32).reshape(-1),
        labels=np.asarray(clustering.labels, np.int32).reshape(-1),
        features=np.asarray(clustering.features, np.float32),
        names_json=np.array(json.dumps(names)), meta_json=np.array(json.dumps(meta or {}, default=json_default)),
    )


def load_clustering(ws: Workspace, category: str) -> Clustering | None:
    """The stored clustering (with the user's edits), or None."""
    loaded = load_clustering_meta(ws, category)
    return None if loaded is None else loaded[0]


def load_clustering_meta(ws: Workspace, category: str) -> tuple[Clustering, dict] | None:
    """``(clustering, meta)`` as stored, or None."""
    data = _load_npz(pl_dir(ws, category) / "clustering.npz")
    if data is None:
        return None
    names = {int(k): str(v) for k, v in json.loads(str(data["names_json"])).items()}
    clustering = Clustering(
        tuple(str(k) for k in data["image_keys"]), data["component_ids"], data["labels"],
        dict(sorted(names.items())), data["features"],
    )
    return clustering, json.loads(str(data["meta_json"]))


def save_label_map(ws: Workspace, category: str, image_key: str, label_map: np.ndarray) -> None:
    """Store an image's label map as an 8-bit PNG (0 = background)."""
    atomic_save_png(image_file(ws, category, "label_maps", image_key), np.asarray(label_map, np.uint8))


def label_map_path(ws: Workspace, category: str, image_key: str) -> Path:
    """Where the label map of ``image_key`` is stored (it may not exist yet)."""
    return image_file(ws, category, "label_maps", image_key)


def load_label_map(ws: Workspace, category: str, image_key: str) -> np.ndarray | None:
    """The stored uint8 label map, or None."""
    path = label_map_path(ws, category, image_key)
    if not path.is_file():
        return None
    with Image.open(path) as image:
        return np.array(image, dtype=np.uint8)


def save_reliability(ws: Workspace, category: str, reliability: Reliability, inputs: str = "") -> None:
    """Store the labelled/unlabelled split; ``inputs`` identifies the label maps it was made from."""
    _save_npz(
        pl_dir(ws, category) / "reliability.npz",
        image_keys=np.array(reliability.image_keys, dtype=str).reshape(-1),
        histograms=np.asarray(reliability.histograms, np.float32),
        reliable=np.asarray(reliability.reliable, bool), automatic=np.asarray(reliability.automatic, bool),
        distance=np.asarray(reliability.distance, np.float64), cache_key=np.array(inputs),
    )


def load_reliability(ws: Workspace, category: str) -> Reliability | None:
    """The stored split, or None."""
    data = _load_npz(pl_dir(ws, category) / "reliability.npz")
    if data is None:
        return None
    keys = tuple(str(k) for k in data["image_keys"])
    return Reliability(keys, data["histograms"], data["reliable"], data["automatic"], data["distance"])


def reliability_inputs(ws: Workspace, category: str) -> str | None:
    """The ``inputs`` the stored split was saved with, or None when there is none."""
    return _stored_key(pl_dir(ws, category) / "reliability.npz")


def read_json(ws: Workspace, category: str, name: str) -> dict:
    """A JSON file of the pseudo-label folder (``run.json``, ``label_maps.json``); {} if absent."""
    path = pl_dir(ws, category) / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_json(ws: Workspace, category: str, name: str, value: dict) -> None:
    """Atomically replace a JSON file of the pseudo-label folder."""
    atomic_write_json(pl_dir(ws, category) / name, value)


# --- summary for the pages -------------------------------------------------------------------

@dataclass(frozen=True)
class PseudoLabelState:
    """What the pseudo-label folder of a category holds, for the pages' status lines.

    Attributes:
        category: the category.
        components: image keys with stored components.
        features: image keys with stored features.
        label_maps: image keys with a stored label map.
        cluster_sizes: cluster id -> number of components (empty before clustering).
        cluster_names: cluster id -> display name.
        n_components: components in the clustering (rejected ones excluded).
        reliable: image keys in ``D_L``; unreliable: in ``D_U`` (both empty before the split).
        run: the last run's record (``run.json``): ``detector``, ``segmenter``, their
            ``*_message``, ``tags``, ``background_tags``, ``settings``, ``seconds``, ...
    """

    category: str
    components: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    label_maps: tuple[str, ...] = ()
    cluster_sizes: dict[int, int] = field(default_factory=dict)
    cluster_names: dict[int, str] = field(default_factory=dict)
    n_components: int = 0
    reliable: tuple[str, ...] = ()
    unreliable: tuple[str, ...] = ()
    run: dict = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """A run finished: there are label maps and a reliability split."""
        return bool(self.label_maps) and bool(self.reliable or self.unreliable)


def _keys_under(folder: Path, suffix: str) -> tuple[str, ...]:
    if not folder.is_dir():
        return ()
    # Temporary files of interrupted atomic writes start with "." and are not results.
    names = (p.relative_to(folder).as_posix() for p in folder.rglob("*" + suffix)
             if p.is_file() and not p.name.startswith("."))
    return tuple(sorted(name[: len(name) - len(suffix)] for name in names))


def load_state(ws: Workspace, category: str) -> PseudoLabelState:
    """Summary of everything stored for the category (cheap: reads no image arrays)."""
    root = pl_dir(ws, category)
    clustering = load_clustering(ws, category)
    sizes: dict[int, int] = {}
    if clustering is not None:
        labels = np.asarray(clustering.labels)
        sizes = {cid: int((labels == cid).sum()) for cid in clustering.names}
    reliability = load_reliability(ws, category)
    keys = np.array(reliability.image_keys if reliability else (), dtype=object)
    flags = np.asarray(reliability.reliable if reliability else (), bool)
    return PseudoLabelState(
        category=category,
        components=_keys_under(root / "components", ".npz"),
        features=_keys_under(root / "features", ".npz"),
        label_maps=_keys_under(root / "label_maps", ""),
        cluster_sizes=sizes,
        cluster_names=dict(clustering.names) if clustering else {},
        n_components=len(clustering.image_keys) if clustering else 0,
        reliable=tuple(keys[flags]), unreliable=tuple(keys[~flags]),
        run=read_json(ws, category, "run.json"),
    )
