"""Pick each adapter: the foundation model when its weights are present, else the offline fallback
(SPEC §4). Every ``choose_*`` also returns one sentence saying what was picked and why, for the
CLI summary and the pages.

``auto`` never fails for missing weights; naming a model explicitly (``sam``, ``groundingdino``)
or giving an explicit checkpoint path does, with ``MissingWeightsError`` naming the file.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from pipeline.errors import NotReadyError, SettingsError
from pipeline.models.weights import REGISTRY, SHARED_DIR_ENV, resolve_weights, weight_status
from pipeline.pseudolabels.adapters.base import Box, BoxDetector, Segmenter, Tagger

if TYPE_CHECKING:  # the modules themselves are imported only when their adapter is built
    from pipeline.pseudolabels.adapters.classic import ClassicSettings
    from pipeline.pseudolabels.adapters.grounding_dino import GroundingDinoSettings
    from pipeline.pseudolabels.adapters.manual_boxes import ManualBoxSettings
    from pipeline.pseudolabels.adapters.sam import SamSettings

SEGMENTERS = ("auto", "sam", "classic")
DETECTORS = ("auto", "groundingdino", "manual", "none")
NO_DETECTOR = "no detector: automatic proposals only, background from the image border"
CLASSIC = "classical region proposals (felzenszwalb/SLIC regions, GrabCut inside boxes)"


def choose_segmenter(
    kind: str = "auto",
    device: torch.device | str = "cpu",
    checkpoint: Path | str | None = None,
    sam_settings: SamSettings | None = None,
    classic_settings: ClassicSettings | None = None,
) -> tuple[Segmenter, str]:
    """``(segmenter, why)`` for ``kind`` ``auto``/``sam``/``classic``.

    Args:
        checkpoint: SAM weight file (else the registry's search for ``sam_<model_type>``).
        sam_settings: ``SamSettings`` (model type, automatic-mode settings); default settings if None.
        classic_settings: ``ClassicSettings`` for the fallback; its defaults if None.
    """
    _check_kind(kind, SEGMENTERS, "segmenter")
    from pipeline.pseudolabels.adapters.sam import SamSettings

    settings = sam_settings or SamSettings()
    key = f"sam_{settings.model_type}"
    if kind == "auto" and checkpoint is None:
        unavailable = _unavailable(key)
        if unavailable:
            return _classic(classic_settings), f"{unavailable}; using {CLASSIC}"
    if kind in ("auto", "sam"):
        from pipeline.pseudolabels.adapters.sam import SamSegmenter, build_sam

        model = build_sam(settings.model_type, checkpoint or "default", device)
        return SamSegmenter(model, settings), f"SAM {settings.model_type} ({_found(key, checkpoint)})"
    return _classic(classic_settings), f"{CLASSIC}, as asked"


def choose_detector(
    kind: str = "auto",
    device: torch.device | str = "cpu",
    references: Mapping[str, Sequence[Box]] | None = None,
    segmenter: Segmenter | None = None,
    *,
    checkpoint: Path | str | None = None,
    text_encoder: Path | str | None = None,
    settings: GroundingDinoSettings | None = None,
    reference_images: Mapping[str, np.ndarray] | Callable[[str], np.ndarray] | None = None,
    manual_settings: ManualBoxSettings | None = None,
) -> tuple[BoxDetector | None, str]:
    """``(detector or None, why)`` for ``kind`` ``auto``/``groundingdino``/``manual``/``none``.

    ``auto``: GroundingDINO when its checkpoint and text encoder are found, else the boxes drawn
    on reference images (``references``: image key → boxes), else no detector.

    Args:
        segmenter: propagates drawn boxes (manual detector); the classical one if None.
        checkpoint, text_encoder: GroundingDINO file and BERT folder (else the registry's search).
        settings: ``GroundingDinoSettings``; manual_settings: ``ManualBoxSettings``.
        reference_images: the reference images by key, for the manual detector.
    """
    _check_kind(kind, DETECTORS, "detector")
    if kind == "none":
        return None, NO_DETECTOR
    drawn = {key: list(boxes) for key, boxes in (references or {}).items() if boxes}
    if kind == "manual":
        if not drawn:
            raise NotReadyError(
                "the manual detector needs boxes drawn on at least one reference image (Masks page); "
                "use --detector none for automatic proposals only"
            )
        return _manual(drawn, segmenter, reference_images, manual_settings)
    if kind == "groundingdino" or checkpoint or text_encoder:  # explicit paths must work
        return _grounding_dino(device, checkpoint, text_encoder, settings)
    unavailable = _unavailable("groundingdino") or _unavailable("groundingdino_text_encoder")
    if not unavailable:
        return _grounding_dino(device, None, None, settings)
    if not drawn:
        return None, f"{unavailable}; no boxes drawn: {NO_DETECTOR}"
    detector, why = _manual(drawn, segmenter, reference_images, manual_settings)
    return detector, f"{unavailable}; using {why}"


def choose_taggers(
    device: torch.device | str = "cpu",
    imagenet: bool = True,
    ram_checkpoint: Path | str | None = None,
    text_encoder: Path | str | None = None,
    classifier: torch.nn.Module | None = None,
) -> tuple[list[Tagger], str]:
    """``(taggers, why)``: RAM++ when the ``ram`` package, its checkpoint and a local BERT folder
    are all present, then always the curated vocabulary, then (if ``imagenet``) the embedded
    classifier's ImageNet labels. User-typed tags come from ``tagger.user_tags``.

    Raises:
        MissingWeightsError, ImportError: ``ram_checkpoint`` given but RAM++ cannot be built.
    """
    from pipeline.pseudolabels.adapters.tagger import ImageNetTagger, RamPlusTagger, VocabularyTagger

    taggers: list[Tagger] = []
    unavailable = ram_plus_unavailable(text_encoder) if ram_checkpoint is None else ""
    if not unavailable:  # an explicit checkpoint must work: missing pieces raise here
        ram = resolve_weights("ram_plus", ram_checkpoint)
        bert = resolve_weights("groundingdino_text_encoder", text_encoder)
        taggers.append(RamPlusTagger(ram, bert, str(device)))
    taggers.append(VocabularyTagger())
    if imagenet:
        taggers.append(ImageNetTagger(classifier, device=str(device)))
    names = " + ".join({"ram_plus": "RAM++", "vocabulary": "curated vocabulary",
                        "imagenet": "ImageNet labels"}[t.name] for t in taggers)
    return taggers, names if not unavailable else f"{unavailable}; using {names}"


def ram_plus_unavailable(text_encoder: Path | str | None = None) -> str:
    """Why RAM++ cannot be used (package, checkpoint or BERT folder missing), ``""`` if it can.
    Cheap (no model is built): the Tags page shows it before anyone asks for suggestions."""
    return _unavailable("ram_plus") or _unavailable("groundingdino_text_encoder", text_encoder)


def model_unavailable(key: str) -> str:
    """Why the registry model ``key`` (``sam_vit_b``, ``groundingdino``, ...) cannot be used, ``""``
    if it can; for the pages' hints next to the detector and segmenter choices."""
    return _unavailable(key)


def _check_kind(kind: str, allowed: tuple[str, ...], what: str) -> None:
    if kind not in allowed:
        raise SettingsError(f"unknown {what} {kind!r}; choose one of: {', '.join(allowed)}")


def _unavailable(key: str, explicit: Path | str | None = None) -> str:
    """Why ``key``'s model cannot be used (package or weights missing), or ``""`` if it can."""
    spec = REGISTRY[key]
    if spec.package and importlib.util.find_spec(spec.package) is None:
        return f"{spec.title}: package {spec.package!r} is not installed"
    status = weight_status(key, explicit)
    if not status.found:
        return (
            f"{spec.title} weights not found (expected {spec.filenames[0]} via {spec.env_var} "
            f"or in ${SHARED_DIR_ENV})"
        )
    return ""


def _found(key: str, explicit: Path | str | None) -> str:
    return str(weight_status(key, explicit).path)


def _classic(settings=None) -> Segmenter:
    from pipeline.pseudolabels.adapters.classic import ClassicSegmenter  # lazy: another module's work

    return ClassicSegmenter() if settings is None else ClassicSegmenter(settings)


def _grounding_dino(device, checkpoint, text_encoder, settings) -> tuple[BoxDetector, str]:
    from pipeline.pseudolabels.adapters.grounding_dino import (
        GroundingDinoDetector,
        GroundingDinoSettings,
        build_grounding_dino,
    )

    model = build_grounding_dino(checkpoint or "default", text_encoder or "default", device)
    why = (f"GroundingDINO ({_found('groundingdino', checkpoint)}, text encoder "
           f"{_found('groundingdino_text_encoder', text_encoder)})")
    return GroundingDinoDetector(model, settings or GroundingDinoSettings()), why


def _manual(drawn, segmenter, reference_images, settings) -> tuple[BoxDetector, str]:
    from pipeline.pseudolabels.adapters.manual_boxes import ManualBoxDetector, ManualBoxSettings

    segmenter = segmenter if segmenter is not None else _classic()
    detector = ManualBoxDetector(drawn, segmenter, settings=settings or ManualBoxSettings(),
                                 reference_images=reference_images)
    n_boxes = sum(len(boxes) for boxes in drawn.values())
    why = (f"the {n_boxes} box(es) drawn on {len(drawn)} reference image(s), "
           f"propagated by the {segmenter.name} segmenter")
    return detector, why
