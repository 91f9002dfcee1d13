"""Settings of the pseudo-label stages (SPEC §5 steps 2-5), one frozen dataclass per stage.

Every default is the one the synthetic benchmark was measured with
(``scripts/pseudo_label_quality.py``); none is tuned per category. ``PseudoLabelSettings``
round-trips through plain JSON (stored in the workspace) and fingerprints each part, so a
cached stage result is reused exactly when the settings it depends on are unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pipeline.assignments import parse_assignments
from pipeline.errors import SettingsError


@dataclass(frozen=True)
class MaskSettings:
    """Mask filtering (SPEC §5 step 2).

    Attributes:
        background_overlap: a proposal with at least this fraction of its pixels inside the
            background is dropped (0-1).
        min_area: connected pieces of at most this many pixels are dropped; counted at
            ``reference_side`` × ``reference_side`` and scaled with the image's pixel count.
        reference_side: the image side ``min_area`` refers to (the synthetic images' 256 px).
        covered_overlap: a mask with at least this fraction of its pixels covered by masks
            already kept is dropped (0-1).
        max_area_fraction: a piece covering more than this fraction of the image is a support
            (table, plate) under the parts: it is dropped and added to the background; 1 keeps all.
        fill_distance: pixels that are neither background nor in a kept component (dropped
            tiny pieces, edge strips) join the nearest component within this distance (at
            ``reference_side``; scaled with the image side); 0 leaves them unlabelled.
        border_background: with no detector (or no background prompt), the background is the
            region connected to the image border whose colour matches the border's.
        border_width: width in pixels of the image frame whose colours model the background.
        border_tolerance: CIELAB distance (ΔE) under which a region counts as background colour.
        border_support: a frame colour models the background only when at least this fraction
            of the frame shares it (within ``border_tolerance``): a part that touches the border
            over a short stretch does not make its own colour background.
        border_smoothing: Gaussian sigma in pixels applied before comparing colours (sensor noise).
    """

    background_overlap: float = 0.95
    min_area: int = 50
    reference_side: int = 256
    covered_overlap: float = 0.9
    max_area_fraction: float = 0.35
    fill_distance: float = 8.0
    border_background: bool = True
    border_width: int = 3
    border_tolerance: float = 12.0
    border_support: float = 0.05
    border_smoothing: float = 1.0


@dataclass(frozen=True)
class FeatureSettings:
    """Component features (SPEC §5 step 3).

    Attributes:
        crop_size: side in pixels each square component crop is resized to.
        variants: average the features of the 8 rotations/flips of each crop (rotations
            0/90/180/270 of the crop and of its mirror image, which include the horizontal
            and vertical flips); False = the crop as is.
        rotations: rotation angles averaged over, evenly spaced over 360° (a multiple of 4; 4 =
            right angles only); each also mirrored, so ``2 × rotations`` variants per crop.
        backbone: backbone name for ``build_backbone`` (``"efficientnet_lite0"``, ``"auto"``, ...).
        stage: backbone stage whose map is pooled; None = the deepest.
        mask_fill: what replaces the pixels of the crop outside the component: ``"mean"``
            (ImageNet mean colour, i.e. zero after normalisation), ``"black"``, or ``"none"``
            (keep the surroundings).
        colour_invariance: how much of the component's mean colour is removed (0-1): 1 shifts
            it to neutral grey, keeping shape and inner contrast, so colour variants of a part
            (drinks, cables) look alike.
        crop_side: the crop's side before padding: ``"max"`` (the bounding box's longer side)
            or ``"diagonal"`` (its diagonal, so any rotation keeps the component inside).
        crop_padding: margin added on each side, as a fraction of that side.
        min_crop: the crop's side is at least this fraction of the image's longer side, so small
            parts keep their size relative to each other (a nut and a washer differ in size more
            than in shape) instead of all being blown up to the crop size.
        projection_dim: reduce the pooled features to this many dimensions with a fixed random
            projection seeded by ``seed``; None keeps them.
        seed: seed of the projection.
        batch_size: crops per forward pass (memory vs speed; results do not depend on it).
    """

    crop_size: int = 64
    variants: bool = True
    rotations: int = 4
    backbone: str = "efficientnet_lite0"
    stage: str | None = None
    mask_fill: str = "mean"
    colour_invariance: float = 0.0
    crop_side: str = "max"
    crop_padding: float = 0.1
    min_crop: float = 0.0
    projection_dim: int | None = None
    seed: int = 0
    batch_size: int = 128


@dataclass(frozen=True)
class ClusterSettings:
    """MeanShift over component features (SPEC §5 step 4).

    Attributes:
        bandwidth: MeanShift kernel radius in (normalised) feature space; None = estimated.
        bandwidth_quantile: quantile of the pairwise distances used as bandwidth when estimated.
        min_cluster_fraction: clusters with fewer members than this fraction of the number of
            images are dropped (their components get label 0).
        normalize: scale each feature vector to unit length first, so the bandwidth is an angle
            and does not depend on the backbone's activation scale.
        pca_dim: reduce to this many principal components before clustering (deterministic
            SVD); None keeps all dimensions.
        max_seeds: at most this many MeanShift seeds (a seeded subsample of the components):
            the cost grows with seeds × components.
        seed: seed of the bandwidth estimate's subsample, the seed subsample and KMeans.
        colour_split: a cluster whose members form two colour groups (KMeans on the components'
            mean CIELAB a*b*) with centres at least this ΔE apart is split in two, when
            ``colour_presence`` holds; 0 never splits. Deep features see shape more than colour:
            a gold nut and a white washer of one size end up together otherwise.
        colour_presence: both colour groups must occur in at least this share of the images the
            cluster occurs in: a part type is in (nearly) every good image, while colour variants
            of one part (drinks of several flavours) each occur in only some.
    """

    bandwidth: float | None = None
    bandwidth_quantile: float = 0.3
    min_cluster_fraction: float = 0.2
    normalize: bool = True
    pca_dim: int | None = None
    max_seeds: int = 1000
    seed: int = 0
    colour_split: float = 10.0
    colour_presence: float = 0.9


@dataclass(frozen=True)
class ReliabilitySettings:
    """HDBSCAN split of the images into reliable and unreliable ones (SPEC §5 step 5).

    Attributes:
        min_cluster_fraction: HDBSCAN ``min_cluster_size`` as a fraction of the image count
            (at least 2).
        min_samples: HDBSCAN ``min_samples``; None = its default (= min_cluster_size).
        dominant_fraction: besides the largest cluster, every cluster at least this fraction
            of the largest one's size is dominant too.
        distance_quantile: within the dominant clusters, images farther from their cluster's
            centre than this quantile of the member distances (times ``distance_factor``) are
            unreliable.
        distance_factor: multiplier of that quantile (1.5 tolerates ordinary spread).
    """

    min_cluster_fraction: float = 0.1
    min_samples: int | None = None
    dominant_fraction: float = 0.5
    distance_quantile: float = 0.9
    distance_factor: float = 1.5


@dataclass(frozen=True)
class ConfidenceSettings:
    """How the IQR fence turns a class-area histogram into a confidence (``confidence.py``, SPEC §9).

    Not a part of ``PseudoLabelSettings``: it shapes segmentation training (it is saved with
    ``SegmentationSettings``), not the label maps.

    Attributes:
        k: fence multiplier: a fraction more than ``k·IQR`` beyond the quartiles is atypical
            (Tukey's 1.5).
        scale: decay length in IQRs: an excess of ``scale·IQR`` in one column gives ``e⁻¹ ≈ 0.37``.
        min_iqr: floor of each column's IQR (fraction of the image area), so a class whose area
            hardly varies does not turn a few pixels of difference into zero confidence.
        floor: in confidence weighting, images below this confidence leave the supervised losses
            and join the unlabelled set (they still feed the histogram/entropy losses).
    """

    k: float = 1.5
    scale: float = 1.0
    min_iqr: float = 0.002
    floor: float = 0.05

    def __post_init__(self) -> None:
        if self.k < 0 or self.scale <= 0 or self.min_iqr <= 0 or not 0 <= self.floor <= 1:
            raise SettingsError(f"invalid confidence settings: {self}")


@dataclass(frozen=True)
class ClassicSettings:
    """The classical offline segmenter (felzenszwalb/SLIC proposals, GrabCut in boxes).

    Attributes:
        method: automatic proposals from ``"felzenszwalb"``, ``"slic"`` or ``"both"``.
        work_side: images are segmented with their longer side resized to this many pixels,
            so the scale parameters mean the same at any resolution; 0 = native size.
        felzenszwalb_scales: felzenszwalb ``scale`` values (one partition each; higher = larger
            regions).
        felzenszwalb_sigma: Gaussian pre-smoothing of felzenszwalb.
        felzenszwalb_min_size: felzenszwalb's minimum region size in pixels at ``work_side``.
        min_thickness: regions whose largest inscribed radius is below this many pixels (at
            ``work_side``) are edge strips: their pixels go to the nearest thicker region.
        merge_colour_scale: a thin region joins the neighbour maximising shared boundary length /
            (1 + ΔE / merge_colour_scale): smaller values weigh colour likeness more.
        absorb_order: ``"simultaneous"`` merges all thin regions of a round at once (chains can
            carry a thin part's core away with its outline); ``"thickest_first"`` merges one at a
            time, thickest first, and stops once a merge makes a region thick enough, so a pin
            made of a core strip and an outline strip survives (segmentation-only ARI on the
            synthetic benchmark +0.01 to +0.06; the default clustering is not yet tuned for it).
        refine_iterations: passes that give each pixel on a region boundary to the adjacent
            region (own or 4-neighbour) of the nearest mean CIELAB colour, so anti-aliased edge
            pixels go to the side that covers most of them; 0 = off.
        slic_segments: approximate number of SLIC superpixels.
        slic_compactness: SLIC colour/space trade-off (higher = more square superpixels).
        grabcut_iterations: GrabCut iterations inside each box.
        grabcut_backend: ``"auto"`` (OpenCV if importable), ``"opencv"`` or ``"skimage"``
            (felzenszwalb regions in the box minus those matching the box frame's colour).
        seed: seed of OpenCV's random generator before each GrabCut (its GMM initialisation).
    """

    method: str = "felzenszwalb"
    work_side: int = 256
    felzenszwalb_scales: tuple[float, ...] = (200.0,)
    felzenszwalb_sigma: float = 0.8
    felzenszwalb_min_size: int = 30
    min_thickness: float = 2.5
    merge_colour_scale: float = 5.0
    absorb_order: str = "simultaneous"
    refine_iterations: int = 0
    slic_segments: int = 150
    slic_compactness: float = 10.0
    grabcut_iterations: int = 5
    grabcut_backend: str = "auto"
    seed: int = 0


PARTS = ("masks", "features", "clusters", "reliability", "classic")
"""The parts of ``PseudoLabelSettings`` that ``fingerprint`` accepts."""


@dataclass(frozen=True)
class PseudoLabelSettings:
    """All pseudo-label settings of a category run."""

    masks: MaskSettings = field(default_factory=MaskSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    clusters: ClusterSettings = field(default_factory=ClusterSettings)
    reliability: ReliabilitySettings = field(default_factory=ReliabilitySettings)
    classic: ClassicSettings = field(default_factory=ClassicSettings)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain JSON-able dict ``{part: {field: value}}`` (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PseudoLabelSettings:
        """Inverse of ``to_dict``; missing parts/fields take their defaults, unknown ones are
        ignored (settings stored by an older or newer version still load)."""
        parts = {}
        for part in dataclasses.fields(cls):
            part_type = _PART_TYPES[part.name]
            values = dict(data.get(part.name) or {})
            known = {f.name: f for f in dataclasses.fields(part_type)}
            kwargs = {k: _restore(v, known[k].default) for k, v in values.items() if k in known}
            parts[part.name] = part_type(**kwargs)
        return cls(**parts)

    def fingerprint(self, part: str) -> str:
        """sha256 hex of the canonical JSON of one part (``PARTS``), the cache key of a stage."""
        if part not in PARTS:
            raise KeyError(f"unknown settings part {part!r}; choose one of {PARTS}")
        text = json.dumps(dataclasses.asdict(getattr(self, part)), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


_PART_TYPES = {
    "masks": MaskSettings,
    "features": FeatureSettings,
    "clusters": ClusterSettings,
    "reliability": ReliabilitySettings,
    "classic": ClassicSettings,
}


def _restore(value: Any, default: Any) -> Any:
    # JSON has no tuples: a list read back for a tuple field becomes a tuple again, so the
    # round trip gives an equal (and hashable) dataclass.
    if isinstance(value, list) and isinstance(default, tuple):
        return tuple(value)
    return value


def with_assignments(settings: PseudoLabelSettings, assignments: list[str]) -> PseudoLabelSettings:
    """``settings`` with each ``part.field=value`` applied (``parse_assignments`` reads and checks
    them), for the CLI's ``--set`` and the quality script."""
    data = settings.to_dict()
    for part, changes in parse_assignments(assignments, _PART_TYPES).items():
        data[part].update(changes)
    return PseudoLabelSettings.from_dict(data)
