"""ImageNet class names and top-k labels: the offline fallback for tag suggestions (SPEC §4)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from timm.data import ImageNetInfo

from pipeline.models.preprocess import to_tensor_batch

CLASSIFIER_SIZE = 224
"""Input side length the ImageNet classifier was trained at."""


@lru_cache(maxsize=1)
def _labels() -> tuple[str, ...]:
    # timm ships the WordNet descriptions with the package, so this needs no network. Only the
    # first synonym is kept ("tench", not "tench, Tinca tinca"): it is what a user would type as a
    # tag. A few first synonyms repeat (e.g. "crane" the bird and the machine).
    descriptions = ImageNetInfo().label_descriptions()
    return tuple(text.split(",")[0].strip() for text in descriptions)


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names in index order, e.g. index 967 is ``"espresso"``."""
    return list(_labels())


def top_labels(model: torch.nn.Module, image: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable ImageNet labels of an RGB uint8 image, with their probabilities.

    ``model`` is an ImageNet classifier in eval mode such as ``build_classifier()``; the image is
    resized to 224×224 with the workbench's one resizer.
    """
    device = next(model.parameters()).device
    batch = to_tensor_batch([image], CLASSIFIER_SIZE).to(device)
    with torch.no_grad():
        probabilities = model(batch).softmax(dim=-1)[0].cpu()
    values, indices = probabilities.topk(k)
    labels = _labels()
    return [(labels[int(index)], float(value)) for value, index in zip(values, indices)]
