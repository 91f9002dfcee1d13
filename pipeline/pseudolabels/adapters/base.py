"""The three adapter interfaces every tagger, box detector and segmenter implements.

Images are uint8 RGB ``(H, W, 3)`` arrays at their own resolution; boxes and masks are in that
image's pixel coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class TagSuggestion:
    """A candidate tag for a category.

    Attributes:
        tag: lower-case noun phrase ("pin", "cable").
        score: confidence in [0, 1] (1 for user-typed or curated vocabulary entries).
        source: who suggested it: ``"ram_plus"``, ``"vocabulary"``, ``"imagenet"``, ``"user"``.
        background: the source thinks it names background, not a part.
    """

    tag: str
    score: float
    source: str
    background: bool = False


@dataclass(frozen=True)
class Box:
    """An axis-aligned box prompt or detection.

    Attributes:
        x0, y0, x1, y1: corners in image pixels, ``x0 < x1``, ``y0 < y1`` (float).
        tag: the tag (text prompt) it was found for or drawn with.
        score: detector confidence in [0, 1]; 1 for drawn boxes.
        background: the tag is marked as background (its mask is set aside, SPEC §5 step 2).
    """

    x0: float
    y0: float
    x1: float
    y1: float
    tag: str
    score: float = 1.0
    background: bool = False

    def as_array(self) -> np.ndarray:
        return np.array([self.x0, self.y0, self.x1, self.y1], dtype=np.float32)


class Tagger(Protocol):
    """Suggests tags from a few good images."""

    name: str

    def suggest(self, images: Sequence[np.ndarray], category: str) -> list[TagSuggestion]:
        ...


class BoxDetector(Protocol):
    """Finds boxes for text prompts (GroundingDINO) or supplies drawn ones (manual)."""

    name: str

    def detect(self, image: np.ndarray, image_key: str, tags: Sequence[str], background_tags: Sequence[str]) -> list[Box]:
        """Boxes in ``image`` for the object ``tags`` and ``background_tags``.

        ``image_key`` lets a manual detector return the boxes drawn on that very image or
        propagate those drawn on reference images.
        """
        ...


class Segmenter(Protocol):
    """Box-prompted masks and automatic mask proposals (SAM, or classical regions)."""

    name: str

    def segment_boxes(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """One bool mask ``(len(boxes), H, W)`` per box, in box order (``(0, H, W)`` for none)."""
        ...

    def propose(self, image: np.ndarray) -> np.ndarray:
        """Automatic proposals: bool ``(P, H, W)``, possibly overlapping, any order."""
        ...
