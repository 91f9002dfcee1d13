"""The box detector without GroundingDINO: boxes the user drew on reference images (SPEC §4).

On a reference image the drawn boxes are returned as they are. On any other image they are
propagated: each drawn box is turned into a mask by the segmenter (box-prompted), the mask region
is described by a small feature vector, and the segmenter's automatic proposals of the new image
that look like a tag's examples become that tag's boxes. The drawn box's picture is also looked
for in the new image (template matching, ``templates``): that finds a part the proposals cut into
pieces. Boxes of one tag that overlap, or where one lies inside the other, are one object.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from pipeline.errors import NotReadyError
from pipeline.pseudolabels.adapters import templates
from pipeline.pseudolabels.adapters.base import Box, Segmenter
from pipeline.pseudolabels.adapters.tagger import normalise_tag

Embed = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``embed(image uint8 (H, W, 3), mask bool (H, W)) -> float (D,)``: describes one region."""

ImageSource = Mapping[str, np.ndarray] | Callable[[str], np.ndarray]
"""Reference images by image key: a dict, or a function loading one (uint8 RGB ``(H, W, 3)``)."""


@dataclass(frozen=True)
class ManualBoxSettings:
    """How drawn boxes are propagated to other images.

    Attributes:
        bandwidth: feature distance at which similarity is e^-0.5 ≈ 0.61; similarity is
            ``exp(-d² / (2·bandwidth²))`` in (0, 1]. With the default embedding, 0.25 is about a
            quarter of the colour range, or a 1.4× size change. Custom embeddings are L2-normalised
            first, so d² = 2 − 2·cosine.
        min_similarity: a proposal becomes a box of its most similar tag when its similarity to
            one of that tag's drawn examples reaches this (0-1).
        max_per_tag: at most this many boxes per tag and image, most similar first.
        overlap_iou: proposals of one tag whose boxes overlap more than this IoU are one object;
            the most similar is kept.
        min_area: proposals smaller than this many pixels are ignored.
        template_score: a place where the picture of a box drawn for an object tag matches with
            at least this score (mean normalised cross-correlation of the colour channels, -1..1,
            ``templates.match_boxes``) becomes a box of its tag; ``None`` turns template matching
            off. 0.5: on the synthetic bottles (labels drawn on two images, 58 others) every
            other label matched at 0.59 or more (median 0.77, other flavours included) and the
            best match anywhere else reached 0.44.
        contained: two boxes of one tag where one has at least this share of its area inside
            the other are one object (a label's paper band inside the label); the better kept.
    """

    bandwidth: float = 0.25
    min_similarity: float = 0.5
    max_per_tag: int = 20
    overlap_iou: float = 0.7
    min_area: int = 16
    template_score: float | None = 0.5
    contained: float = 0.9


def region_features(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Colour, size and shape of a region as float32 ``(9,)``, scaled so that unit distances mean
    roughly the same visual change: mean and half the std of RGB in [0, 1], half the log2 of the
    side length relative to the image, fill of its bounding box, half the log of its elongation."""
    mask = np.asarray(mask, dtype=bool)
    pixels = image[mask].astype(np.float32) / 255.0
    if len(pixels) == 0:
        return np.zeros(9, np.float32)
    rows, cols = np.nonzero(mask)
    relative_side = np.sqrt(len(pixels) / mask.size)
    fill = len(pixels) / ((np.ptp(rows) + 1) * (np.ptp(cols) + 1))
    # Eigenvalues of the pixel-coordinate covariance: elongation independent of rotation.
    spread = np.linalg.eigvalsh(np.cov(np.stack([rows, cols])) + np.eye(2) / 12) if len(rows) > 1 else np.ones(2)
    elongation = 0.5 * np.log(np.sqrt(spread[1] / spread[0]))
    shape = [0.5 * np.log2(relative_side), fill, elongation]
    return np.concatenate([pixels.mean(0), 0.5 * pixels.std(0), shape]).astype(np.float32)


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Pixel box ``x0, y0, x1, y1`` around a non-empty mask (x1, y1 exclusive)."""
    rows, cols = np.nonzero(mask)
    return float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)


class ManualBoxDetector:
    """Drawn boxes on reference images, propagated to the others through the segmenter."""

    name = "manual"

    def __init__(
        self,
        references: Mapping[str, Sequence[Box]],
        segmenter: Segmenter | None = None,
        embed: Embed | None = None,
        settings: ManualBoxSettings = ManualBoxSettings(),
        *,
        reference_images: ImageSource | None = None,
    ) -> None:
        """
        Args:
            references: image key → the boxes drawn on it, each with its tag.
            segmenter: gives the drawn boxes' masks and the other images' proposals; default the
                classical fallback (``ClassicSegmenter``).
            embed: region description (e.g. pooled backbone features); default ``region_features``.
            reference_images: where to read a reference image when an other image needs its
                examples before the reference itself was passed to ``detect``.
        """
        if not any(references.values()):
            raise NotReadyError("the manual detector needs at least one box drawn on a reference image")
        self.references = {key: list(boxes) for key, boxes in references.items() if boxes}
        self.segmenter = segmenter if segmenter is not None else _classic_segmenter()
        self.embed = embed
        self.settings = settings
        self.reference_images = reference_images
        self._examples: dict[str, list[tuple[str, np.ndarray]]] = {}  # image key → (tag, feature)
        self._templates: dict[str, list[tuple[str, np.ndarray]]] = {}  # image key → (tag, RGB picture)
        # Without requested tags every drawn tag is used, background as drawn.
        self._drawn = {normalise_tag(b.tag): b.background for boxes in self.references.values() for b in boxes}

    def detect(
        self, image: np.ndarray, image_key: str, tags: Sequence[str], background_tags: Sequence[str]
    ) -> list[Box]:
        """The boxes drawn on ``image_key``, else propagated ones, for the requested tags (all
        drawn tags when none are requested); ``background`` follows ``background_tags``."""
        flags = _requested(tags, background_tags) or self._drawn  # tag → is background
        if image_key in self.references:
            self._learn(image_key, image)
            drawn = [(normalise_tag(b.tag), b) for b in self.references[image_key]]
            return [Box(b.x0, b.y0, b.x1, b.y1, tag, 1.0, flags[tag]) for tag, b in drawn if tag in flags]
        for key in self.references:
            self._learn(key)
        return self._propagate(image, flags)

    def _learn(self, key: str, image: np.ndarray | None = None) -> None:
        """Store the features of the masks of the boxes drawn on reference ``key``."""
        if key in self._examples:
            return
        image = self._reference_image(key) if image is None else image
        boxes = self.references[key]
        masks = self.segmenter.segment_boxes(image, boxes)
        examples = []
        for box, mask in zip(boxes, masks):
            inside = _box_mask(box, mask.shape)
            # Keep the part of the mask inside the drawn box; an empty result means the segmenter
            # found nothing there, and the box itself is the best description left.
            region = mask & inside if (mask & inside).any() else inside
            examples.append((normalise_tag(box.tag), self._features(image, region)))
        self._examples[key] = examples
        picture = templates.as_float(image)
        self._templates[key] = [(normalise_tag(b.tag), templates.crop(picture, (b.x0, b.y0, b.x1, b.y1))) for b in boxes]

    def _reference_image(self, key: str) -> np.ndarray:
        source = self.reference_images
        if source is None:
            raise ValueError(
                f"boxes drawn on {key!r} cannot be propagated before that image is seen: "
                "pass reference_images to ManualBoxDetector"
            )
        return source[key] if isinstance(source, Mapping) else source(key)

    def _features(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.embed is None:
            return region_features(image, mask)
        vector = np.asarray(self.embed(image, mask), dtype=np.float32).ravel()
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def _propagate(self, image: np.ndarray, flags: dict[str, bool]) -> list[Box]:
        examples = [(tag, f) for found in self._examples.values() for tag, f in found if tag in flags]
        if not examples:
            return []
        tags = sorted({tag for tag, _ in examples})
        proposals = [m for m in self.segmenter.propose(image) if m.sum() >= self.settings.min_area]
        candidates: dict[str, list[tuple[float, tuple]]] = {tag: [] for tag in tags}
        for mask in proposals:
            tag, similarity = self._best_tag(self._features(image, mask), examples)
            if similarity >= self.settings.min_similarity:
                candidates[tag].append((similarity, mask_box(mask)))
        objects = {tag for tag in tags if not flags[tag]}  # a look-alike must never become background
        for tag, found in self._template_matches(image, objects):
            candidates[tag].extend(found)
        return [
            Box(*corners, tag=tag, score=similarity, background=flags[tag])
            for tag in tags
            for similarity, corners in self._distinct(candidates[tag])
        ]

    def _template_matches(self, image: np.ndarray, tags: set[str]) -> list[tuple[str, list[tuple[float, tuple]]]]:
        if self.settings.template_score is None:
            return []
        picture = templates.as_float(image)
        return [
            (tag, templates.match_boxes(picture, template, self.settings.template_score, self.settings.max_per_tag))
            for found in self._templates.values() for tag, template in found if tag in tags
        ]

    def _best_tag(self, feature: np.ndarray, examples: list[tuple[str, np.ndarray]]) -> tuple[str, float]:
        distances = [float(np.sum((feature - f) ** 2)) for _, f in examples]
        best = int(np.argmin(distances))
        return examples[best][0], float(np.exp(-distances[best] / (2 * self.settings.bandwidth**2)))

    def _distinct(self, candidates: list[tuple[float, tuple]]) -> list[tuple[float, tuple]]:
        """Most similar first, skipping boxes that overlap an already kept one."""
        kept: list[tuple[float, tuple]] = []
        for similarity, corners in sorted(candidates, key=lambda c: -c[0]):
            if len(kept) == self.settings.max_per_tag:
                break
            if all(box_iou(corners, other) <= self.settings.overlap_iou
                   and max(_inside_share(corners, other), _inside_share(other, corners)) < self.settings.contained
                   for _, other in kept):
                kept.append((similarity, corners))
        return kept


def _classic_segmenter() -> Segmenter:
    from pipeline.pseudolabels.adapters.classic import ClassicSegmenter  # lazy: scikit-image import

    return ClassicSegmenter()


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``x0, y0, x1, y1`` boxes."""
    inter = _intersection(a, b)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _intersection(a: Sequence[float], b: Sequence[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h


def _inside_share(a: Sequence[float], b: Sequence[float]) -> float:
    """Share of box ``a``'s area that lies inside box ``b``."""
    area = (a[2] - a[0]) * (a[3] - a[1])
    return _intersection(a, b) / area if area > 0 else 0.0


def _box_mask(box: Box, shape: tuple[int, int]) -> np.ndarray:
    inside = np.zeros(shape, dtype=bool)
    x0, y0 = max(int(np.floor(box.x0)), 0), max(int(np.floor(box.y0)), 0)
    inside[y0 : int(np.ceil(box.y1)), x0 : int(np.ceil(box.x1))] = True
    return inside


def _requested(tags: Sequence[str], background_tags: Sequence[str]) -> dict[str, bool]:
    """Requested tag → is background (a tag given as both stays an object)."""
    requested = {normalise_tag(t): False for t in tags}
    for tag in map(normalise_tag, background_tags):
        requested.setdefault(tag, True)
    requested.pop("", None)
    return requested
