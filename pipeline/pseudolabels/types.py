"""Typed results of the pseudo-label stages (shared by the stages, the store, the CLI and pages)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ImageComponents:
    """The kept components of one training image after the mask filters (SPEC §5 step 2).

    Attributes:
        image_key: ``Sample.key`` of the image ("train/good/000.png").
        instances: int32 ``(H, W)`` at the image's resolution; 0 = no component (background),
            ``k`` = the k-th kept component (1-based). Components do not overlap here: where
            masks overlapped, the smaller one wins (small parts lie on top of big ones).
        background: bool ``(H, W)``, the background found (background prompts' masks, or the
            region connected to the image border when there is no detector).
        sources: per component (length K), where it came from: ``"box:<tag>"`` or ``"auto"``.
    """

    image_key: str
    instances: np.ndarray
    background: np.ndarray
    sources: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.sources) if self.sources else int(self.instances.max(initial=0))


@dataclass(frozen=True)
class Clustering:
    """Cluster assignment of every component of a category.

    Attributes:
        image_keys: per component (length N), the image it belongs to.
        component_ids: per component, its id in that image's ``instances`` (1-based).
        labels: int per component: the cluster id (1-based, = class id in label maps), 0 if dropped
            (its cluster was too small, SPEC §5 step 4).
        names: cluster id → display name ("cluster 1" until the user renames it).
        features: float32 ``(N, D)`` component features the clustering used.
    """

    image_keys: tuple[str, ...]
    component_ids: np.ndarray
    labels: np.ndarray
    names: dict[int, str]
    features: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0), np.float32))

    @property
    def n_clusters(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class Reliability:
    """The labelled/unlabelled split of the training images (SPEC §5 step 5).

    Attributes:
        image_keys: training images, in order.
        histograms: float32 ``(N, n_clusters + 1)`` class-area fractions (column 0 = background).
        reliable: bool ``(N,)``; True = in ``D_L`` (after user overrides).
        automatic: bool ``(N,)``; the HDBSCAN decision before overrides.
        distance: float ``(N,)``, distance to the dominant cluster's centre (lower = more typical).
    """

    image_keys: tuple[str, ...]
    histograms: np.ndarray
    reliable: np.ndarray
    automatic: np.ndarray
    distance: np.ndarray
