"""The segmentation network's training data, read from a category's pseudo-labels in the workspace.

``D_L`` (reliable images with their label maps) is split into a training part and a held-out
slice for the per-epoch mean IoU; ``D_U`` (unreliable images) feeds the unsupervised losses.
With confidence weighting (``confidence`` given) the labelled set is instead every image whose
confidence reaches the floor, each with its confidence as weight; the rest is ``D_U``, and the
held-out slice comes from the full-confidence images only (a low-confidence map is a poor truth).
Images and maps are resized once to the network's input side, so every epoch works on small
arrays and augmentation/LSA cost does not grow with the photo resolution.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.data.images import load_rgb
from pipeline.errors import NotReadyError
from pipeline.pseudolabels import store
from pipeline.pseudolabels.confidence import image_confidence
from pipeline.pseudolabels.settings import ConfidenceSettings
from pipeline.workspace import Workspace


class NoPseudoLabelsError(NotReadyError):
    """The category has no pseudo-labels (or no reliable image) to train on."""


@dataclass(frozen=True)
class SegmentationData:
    """Training inputs of one category.

    Attributes:
        train_images, train_maps: ``D_L`` minus the held-out slice: RGB uint8 ``(S, S, 3)`` and
            uint8 label maps ``(S, S)`` (0 = background, 1..n_classes = clusters), S = input side.
        holdout_images, holdout_maps: the held-out slice of ``D_L`` (may be empty).
        unlabelled_images: ``D_U`` images, RGB uint8 ``(S, S, 3)``.
        class_names: cluster id -> name (1..n_classes).
        keys: image keys by role (``train``, ``holdout``, ``unlabelled``), for the record.
        train_weights: per training image, the weight of its supervised loss (its confidence);
            None = the hard split (every training image counts fully).
    """

    train_images: tuple[np.ndarray, ...]
    train_maps: tuple[np.ndarray, ...]
    holdout_images: tuple[np.ndarray, ...]
    holdout_maps: tuple[np.ndarray, ...]
    unlabelled_images: tuple[np.ndarray, ...]
    class_names: dict[int, str]
    keys: dict[str, tuple[str, ...]]
    train_weights: tuple[float, ...] | None = None

    @property
    def n_classes(self) -> int:
        return max(self.class_names, default=0)

    def fingerprint(self) -> str:
        """sha256 of every image and map: a checkpoint trained on other pseudo-labels is not resumed."""
        digest = hashlib.sha256(json.dumps(self.class_names, sort_keys=True).encode())
        for array in (*self.train_images, *self.train_maps, *self.holdout_images, *self.holdout_maps,
                      *self.unlabelled_images):
            digest.update(np.ascontiguousarray(array).tobytes())
        if self.train_weights is not None:  # only then: hard-split checkpoints keep their fingerprint
            digest.update(np.asarray(self.train_weights, np.float64).tobytes())
        return digest.hexdigest()


def load_segmentation_data(
    ws: Workspace, category: str, side: int, holdout_fraction: float = 0.1, seed: int = 0,
    confidence: ConfidenceSettings | None = None,
) -> SegmentationData:
    """Read the pseudo-labels of ``category``; raises ``NoPseudoLabelsError`` with what to run.

    ``confidence`` switches from the hard split to confidence weighting (see the module docstring).
    """
    state = store.load_state(ws, category)
    paths = store.read_json(ws, category, "run.json").get("images", {})
    if not state.label_maps or not paths:
        raise NoPseudoLabelsError(
            f"category {category!r} has no pseudo-labels yet; run `python -m pipeline pseudo-labels "
            f"--workspace {ws.path} --category {category} --data ...` (or the Masks page) first"
        )
    if confidence is None:
        labelled_keys = [k for k in state.reliable if k in paths]
        weights, unlabelled_keys = None, [k for k in state.unreliable if k in paths]
        held_out = _holdout_indices(len(labelled_keys), holdout_fraction, seed)
    else:
        labelled_keys, weights, unlabelled_keys = _weighted_sets(ws, category, paths, confidence)
        full = [i for i, w in enumerate(weights) if w >= 1.0 - 1e-9]
        held_out = {full[i] for i in _holdout_indices(len(full), holdout_fraction, seed)}
    if not labelled_keys:
        what = "reliable (D_L) image" if confidence is None else f"image with confidence {confidence.floor:g} or more"
        raise NoPseudoLabelsError(f"category {category!r}: no {what}; mark some reliable on the Clusters page")
    labelled = [(k, *_load_pair(ws, category, k, Path(paths[k]), side)) for k in labelled_keys]
    train = [i for i in range(len(labelled)) if i not in held_out]
    held = [i for i in range(len(labelled)) if i in held_out]
    return SegmentationData(
        train_images=tuple(labelled[i][1] for i in train), train_maps=tuple(labelled[i][2] for i in train),
        holdout_images=tuple(labelled[i][1] for i in held), holdout_maps=tuple(labelled[i][2] for i in held),
        unlabelled_images=tuple(resize_image(load_rgb(Path(paths[k])), side) for k in unlabelled_keys),
        class_names={int(c): str(n) for c, n in state.cluster_names.items()},
        keys={"train": tuple(labelled[i][0] for i in train), "holdout": tuple(labelled[i][0] for i in held),
              "unlabelled": tuple(unlabelled_keys)},
        train_weights=None if weights is None else tuple(weights[i] for i in train),
    )


def _weighted_sets(ws: Workspace, category: str, paths: dict, settings: ConfidenceSettings
                   ) -> tuple[list[str], list[float], list[str]]:
    """``(labelled keys, their confidences, unlabelled keys)``: the images at or above the floor
    are labelled (a confidence of 0 never is), the others unlabelled; the split's order."""
    found = image_confidence(ws, category, settings)
    if found is None:
        return [], [], []
    labelled, weights, unlabelled = [], [], []
    for key, value in zip(found.image_keys, found.effective):
        if key not in paths:
            continue
        if value >= settings.floor and value > 0:
            labelled.append(key)
            weights.append(float(value))
        else:
            unlabelled.append(key)
    return labelled, weights, unlabelled


def _load_pair(ws: Workspace, category: str, key: str, path: Path, side: int) -> tuple[np.ndarray, np.ndarray]:
    label_map = store.load_label_map(ws, category, key)
    if label_map is None:
        raise NoPseudoLabelsError(f"{key}: no label map stored; rerun pseudo-labels")
    return resize_image(load_rgb(path), side), resize_label_map(label_map, side)


def _holdout_indices(n: int, fraction: float, seed: int) -> set[int]:
    """A seeded slice of ``D_L``; at least one image once there are 5, none below (too few to spare)."""
    if n < 5 or fraction <= 0:
        return set()
    count = max(1, int(round(fraction * n)))
    return {int(i) for i in np.random.default_rng(seed).permutation(n)[:count]}


def resize_image(image: np.ndarray, side: int) -> np.ndarray:
    """An RGB uint8 image at ``side``×``side`` (PIL bilinear): the segmenter's and the LGST data's input."""
    if image.shape[:2] == (side, side):
        return np.array(image)  # a writable copy, as after a resize
    return np.array(Image.fromarray(image).resize((side, side), Image.BILINEAR))


def resize_label_map(label_map: np.ndarray, side: int) -> np.ndarray:
    """A label map at ``side``×``side`` (nearest: classes are not blended)."""
    label_map = np.array(label_map, np.uint8)
    if label_map.shape == (side, side):
        return label_map
    return np.array(Image.fromarray(label_map).resize((side, side), Image.NEAREST))
