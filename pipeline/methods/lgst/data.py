"""Training inputs of the LGST branch: every good training image, and the pseudo-label maps of
those that have one (LSA needs part masks to move parts)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.images import load_rgb
from pipeline.data.samples import DataError, Sample
from pipeline.methods.segmentation.data import resize_image, resize_label_map


@dataclass(frozen=True)
class LgstData:
    """Attributes:
        images: RGB uint8 ``(S, S, 3)`` training images, S = the network input side.
        label_maps: per image a uint8 ``(S, S)`` pseudo-label map (0 = background) or ``None``.
        keys: the images' sample keys, same order.
    """

    images: tuple[np.ndarray, ...]
    label_maps: tuple[np.ndarray | None, ...]
    keys: tuple[str, ...]

    def fingerprint(self) -> str:
        """sha256 of every image and map: a checkpoint of other data is never resumed."""
        digest = hashlib.sha256(json.dumps(self.keys).encode())
        for image, labels in zip(self.images, self.label_maps):
            digest.update(np.ascontiguousarray(image).tobytes())
            digest.update(b"-" if labels is None else np.ascontiguousarray(labels).tobytes())
        return digest.hexdigest()


def load_lgst_data(samples: list[Sample], side: int, label_maps: dict[str, np.ndarray] | None = None) -> LgstData:
    """Read and resize ``samples``; ``label_maps`` by sample key (any size, resized nearest)."""
    if not samples:
        raise DataError("LGST needs at least one good training image")
    label_maps = label_maps or {}
    images = tuple(resize_image(load_rgb(Path(s.path)), side) for s in samples)
    maps = tuple(resize_label_map(label_maps[s.key], side) if s.key in label_maps else None for s in samples)
    return LgstData(images, maps, tuple(s.key for s in samples))
