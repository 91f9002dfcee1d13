"""Zero-shot CLIP scorer (SPEC §9, seed 002 AA-CLIP, without its adapters): fit, save, load, predict.

Fit trains nothing: it encodes the normal and abnormal prompt ensembles for the object word into
two text anchors. Predict compares every patch token and the image token with the anchors.
The anchors are saved with a fingerprint of the CLIP weights they came from, so loading with
other weights is refused instead of scoring against mismatched anchors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.errors import MissingFileError
from pipeline.methods.base import Prediction
from pipeline.methods.settings_io import settings_from_dict
from pipeline.methods.zeroshot.clip import (
    ClipPatchEncoder,
    build_clip,
    clip_batch,
    encode_prompts,
    weights_fingerprint,
)
from pipeline.methods.zeroshot.settings import CLIP_WEIGHTS_KEY, METHOD, ZeroShotSettings
from pipeline.methods.zeroshot.torch_model import (
    abnormal_probability,
    image_scores,
    patch_maps,
    text_anchors,
    top_mean,
    upsample_maps,
)
from pipeline.models.weights import IncompatibleWeightsError, resolve_weights
from pipeline.workspace.files import atomic_save_safetensors, atomic_write_json, load_safetensors

MODEL_FILE = "zeroshot_anchors.safetensors"
SETTINGS_FILE = "zeroshot_settings.json"
TUPLE_FIELDS = ("normal_templates", "abnormal_templates", "layers", "mean", "std")
FINGERPRINT_TOLERANCE = 1e-6
"""Relative difference of weight sums above which the weights count as other weights."""


@dataclass(frozen=True)
class ZeroShotModel:
    """A fitted zero-shot scorer.

    Attributes:
        settings: the settings that made it (object word included).
        model_config: the open_clip model config the anchors were built with (saved, so loading
            needs no architecture lookup).
        anchors: float32 ``(2, D)`` unit text anchors, rows (normal, abnormal).
        fingerprint: ``weights_fingerprint`` of the CLIP weights used.
    """

    settings: ZeroShotSettings
    model_config: dict
    anchors: torch.Tensor
    fingerprint: float


def fit_zeroshot(settings: ZeroShotSettings, model_config: dict, clip: nn.Module) -> ZeroShotModel:
    """Text anchors of the object word's normal and abnormal prompts; no gradient step anywhere."""
    normal, abnormal = settings.prompts()
    anchors = text_anchors(encode_prompts(clip, normal), encode_prompts(clip, abnormal)).cpu()
    return ZeroShotModel(settings, model_config, anchors, weights_fingerprint(clip))


def score_features(
    model: ZeroShotModel, global_features: torch.Tensor, layer_tokens: list[torch.Tensor], grid: tuple[int, int]
) -> list[Prediction]:
    """Pure scoring: CLIP image-tower outputs -> one Prediction per image."""
    s = model.settings
    anchors = model.anchors.to(global_features.device)
    maps = upsample_maps(patch_maps(layer_tokens, grid, anchors, s.temperature), s.image_size, s.blur_sigma)
    global_p = abnormal_probability(global_features, anchors, s.temperature)
    scores = image_scores(maps, global_p, s.top_fraction, s.global_weight)
    patches = top_mean(maps, s.top_fraction)
    maps_np = maps.cpu().numpy().astype(np.float32)
    return [
        Prediction(score=float(scores[i]), anomaly_map=maps_np[i],
                   branch_scores={"clip_patches": float(patches[i]), "clip_global": float(global_p[i])})
        for i in range(len(maps_np))
    ]


class ZeroShotDetector:
    """A fitted zero-shot model bound to the CLIP image tower (the ``Detector`` protocol)."""

    method = METHOD

    def __init__(self, model: ZeroShotModel, encoder: ClipPatchEncoder, device: torch.device) -> None:
        self.model = model
        self.encoder = encoder.to(device).eval()
        self.device = device

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        s = self.model.settings
        out: list[Prediction] = []
        for start in range(0, len(images), s.batch_size):
            x = clip_batch(images[start:start + s.batch_size], s.image_size, s.mean, s.std).to(self.device)
            with torch.no_grad():
                global_features, tokens = self.encoder(x)
            out.extend(score_features(self.model, global_features, tokens, self.encoder.grid))
        return out


def detector_from_clip(model: ZeroShotModel, clip: nn.Module, device: torch.device) -> ZeroShotDetector:
    """Keep only the image tower: the text tower's work is done once the anchors exist."""
    return ZeroShotDetector(model, ClipPatchEncoder(clip.visual, model.settings.layers), device)


def load_detector(folder: Path, device: torch.device, checkpoint: Path | str | None = None) -> ZeroShotDetector:
    """A saved model with its CLIP weights (``checkpoint``, else the settings' path, else the registry).

    Raises:
        MissingWeightsError: no CLIP weights found (the message says where to put them).
        IncompatibleWeightsError: the weights differ from the ones the anchors were built with.
    """
    model = load_zeroshot(folder)
    path = resolve_weights(CLIP_WEIGHTS_KEY, checkpoint or model.settings.weights or None)
    clip = build_clip(model.model_config, path, model.settings.image_size)
    found = weights_fingerprint(clip)
    if abs(found - model.fingerprint) > FINGERPRINT_TOLERANCE * max(1.0, abs(model.fingerprint)):
        raise IncompatibleWeightsError(
            f"the CLIP weights {path} are not the ones the zero-shot model in {folder} was fitted with; "
            "fit it again (`fit --method zeroshot`) to rebuild its text anchors"
        )
    return detector_from_clip(model, clip, device)


def save_zeroshot(model: ZeroShotModel, folder: Path) -> dict[str, str]:
    """Anchors as safetensors (settings, config and fingerprint in its metadata) + readable settings JSON."""
    meta = {
        "settings": json.dumps(asdict(model.settings)),
        "model_config": json.dumps(model.model_config),
        "fingerprint": repr(model.fingerprint),
    }
    atomic_save_safetensors(folder / MODEL_FILE, {"anchors": model.anchors.contiguous()}, meta)
    atomic_write_json(folder / SETTINGS_FILE, {**asdict(model.settings), "model_config": model.model_config})
    return {"anchors": MODEL_FILE, "settings": SETTINGS_FILE}


def load_zeroshot(folder: Path) -> ZeroShotModel:
    """Inverse of ``save_zeroshot``."""
    path = Path(folder) / MODEL_FILE
    if not path.exists():
        raise MissingFileError(f"no zero-shot model in {folder} (expected {MODEL_FILE}); run `fit --method zeroshot` first")
    tensors, meta = load_safetensors(path)
    settings = settings_from_dict(ZeroShotSettings, json.loads(meta["settings"]), "zeroshot", tuples=TUPLE_FIELDS)
    return ZeroShotModel(
        settings=settings,
        model_config=json.loads(meta["model_config"]),
        anchors=tensors["anchors"],
        fingerprint=float(meta["fingerprint"]),
    )
