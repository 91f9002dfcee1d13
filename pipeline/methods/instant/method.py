"""The instant detector behind the common method interface (``MethodSpec``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pipeline.data.images import load_mask, load_rgb
from pipeline.methods.base import FitContext
from pipeline.methods.instant.model import (
    InstantDetector, InstantSettings, add_anomaly_keys, build_embedder, fit_instant, load_instant, save_instant,
)
from pipeline.models.backbones import choose_backbone


def _labelled_bad_inputs(ctx: FitContext) -> tuple[list[np.ndarray], list[np.ndarray | None], list[str]]:
    by_key = {s.key: s for s in ctx.data.samples}
    images, masks, keys = [], [], []
    for key in ctx.labelled_bad:
        sample = by_key.get(key)
        if sample is None:
            continue
        rgb = load_rgb(sample.path)
        images.append(rgb)
        masks.append(load_mask(sample.mask_paths, rgb.shape[:2]) if sample.mask_paths else None)
        keys.append(key)
    return images, masks, keys


def fit(ctx: FitContext, image_size: int | None = None) -> dict[str, str]:
    """The memory bank of ``ctx``'s good training images; ``image_size``: the network input side
    when not the profile's (AeCSAD's retrieval branch embeds the LGST input)."""
    backbone = choose_backbone(ctx.backbone, ctx.profile)
    settings = replace(InstantSettings.for_profile(ctx.profile, seed=ctx.seed), backbone=backbone)
    settings = replace(settings, image_size=image_size or settings.image_size)
    settings = replace(settings, **ctx.changed("retrieval"))  # ``fit --set retrieval.field=value`` wins
    embedder = build_embedder(settings, ctx.device)
    train = [load_rgb(s.path) for s in ctx.data.select("train", "good")]
    validation = [load_rgb(s.path) for s in ctx.data.select("validation", "good")]
    model = fit_instant(train, settings, embedder, ctx.device, ctx.progress, validation)
    images, masks, keys = _labelled_bad_inputs(ctx)
    model = add_anomaly_keys(model, images, masks, keys, embedder, ctx.device)
    return save_instant(model, ctx.out_dir)


def load(folder: Path, device: torch.device) -> InstantDetector:
    """The instant detector fitted into ``folder``."""
    model = load_instant(folder)
    return InstantDetector(model, build_embedder(model.settings, device), device)

