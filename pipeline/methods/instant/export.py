"""The instant detector in a one-file bundle (``MethodSpec.bundle``): its settings, memory banks
and backbone; also the retrieval branch of AeCSAD/CSAD (role ``retrieval``)."""

from __future__ import annotations

from dataclasses import asdict

import torch

from pipeline.methods.bundle_parts import BundleReader, add_backbone
from pipeline.methods.instant.model import (
    InstantDetector,
    InstantSettings,
    depth_scale,
    model_from_tensors,
    model_tensors,
)
from pipeline.methods.instant.torch_model import PatchEmbedder


def add_instant(tensors: dict[str, torch.Tensor], config: dict, role: str, detector: InstantDetector) -> None:
    """An instant detector's settings, memory banks and backbone under ``role`` (``instant`` for
    the method itself, ``retrieval`` for the AeCSAD/CSAD branch)."""
    model = detector.model
    config[f"{role}_settings"] = asdict(model.settings)
    config[f"{role}_anomaly_sources"] = list(model.anomaly_sources)
    config[f"{role}_deep_scale"] = depth_scale(model)
    tensors.update({f"{role}.{name}": t for name, t in model_tensors(model).items()})
    add_backbone(tensors, config, role, detector.embedder.backbone)


def instant_from_bundle(reader: BundleReader, role: str) -> InstantDetector:
    """The instant detector stored under ``role``, on the reader's device."""
    config = reader.config
    settings = InstantSettings.from_dict(config[f"{role}_settings"])  # older bundles: one bank, square input
    sources = config.get(f"{role}_anomaly_sources", config.get("anomaly_sources", []))  # older instant bundles
    model = model_from_tensors(settings, reader.prefixed(f"{role}."), tuple(sources), config.get(f"{role}_deep_scale"))
    embedder = PatchEmbedder(reader.backbone(role), settings.stage_names, settings.deep_stage_names).to(reader.device)
    return InstantDetector(model, embedder, reader.device)


def bundle_parts(detector: InstantDetector, seg_settings=None, class_names: dict[int, str] | None = None
                 ) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(config, tensors)`` of the instant method (no segmenter: the other arguments are unused)."""
    tensors: dict[str, torch.Tensor] = {}
    config: dict = {"method": "instant", "backbone": detector.model.settings.backbone}
    add_instant(tensors, config, "instant", detector)
    return config, tensors


def bundle_detector(reader: BundleReader) -> InstantDetector:
    return instant_from_bundle(reader, "instant")
