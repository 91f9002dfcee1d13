"""Instant detector (SPEC §9, seed 003 MRAD-TF): train-free memory retrieval over patch features.

Fit = embed the good training images, keep a coreset of their patches as the memory bank;
predict = distance of each patch to its nearest bank entry, blurred; image score = map maximum.
Labelled bad images can be added as anomaly keys.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from pipeline.data.samples import DataError
from pipeline.errors import MissingFileError, SettingsError
from pipeline.methods.base import Prediction, ProgressFn, no_progress
from pipeline.methods.instant.torch_model import (
    DEFAULT_LAYERS,
    PatchEmbedder,
    flatten_patches,
    gaussian_blur,
    greedy_coreset,
    patch_scores,
)
from pipeline.models.backbones import build_backbone
from pipeline.models.preprocess import aspect_shape, to_tensor_batch
from pipeline.workspace.files import atomic_save_safetensors, atomic_write_json, load_safetensors

METHOD = "instant"


@dataclass(frozen=True)
class InstantSettings:
    """Settings of the instant detector; defaults are the ``quick`` profile.

    Attributes:
        backbone: registry name of the frozen image backbone.
        layers: backbone stages to embed; ``()`` picks ``DEFAULT_LAYERS[backbone]``.
        image_size: input side in px: the square every image is resized to, or with
            ``max_aspect`` above 1 the short side of an elongated image.
        max_aspect: an elongated image keeps its aspect ratio up to this long/short ratio
            (``preprocess.aspect_shape``), so thin defects across its length are not squeezed
            away; 1 squeezes every image into the square (models fitted before it existed).
        coreset_ratio: fraction of training patches kept in the memory bank.
        max_bank: upper bound on bank rows, bounds memory and query time.
        coreset: ``"greedy"`` (k-centre, PatchCore) or ``"random"`` subsampling.
        blur_sigma: Gaussian smoothing of the patch map, in map pixels.
        anomaly_weight: weight of the "closer to a known anomaly" margin.
        anomaly_key_fraction: share of a labelled bad image's patches (the most distant from the
            good bank) used as anomaly keys when it has no mask.
        batch_size: images per forward pass.
        seed: seeds coreset selection.
    """

    backbone: str = "efficientnet_lite0"
    layers: tuple[str, ...] = ()
    image_size: int = 256
    max_aspect: float = 3.0
    coreset_ratio: float = 0.1
    max_bank: int = 8192
    coreset: str = "greedy"
    blur_sigma: float = 1.0
    anomaly_weight: float = 1.0
    anomaly_key_fraction: float = 0.02
    batch_size: int = 8
    seed: int = 0

    @property
    def stage_names(self) -> tuple[str, ...]:
        return self.layers or DEFAULT_LAYERS[self.backbone]

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0) -> "InstantSettings":
        """``quick``: small bank for seconds-long fits; ``paper``: a PatchCore-sized bank."""
        if profile == "quick":
            return cls(seed=seed)
        if profile == "paper":
            return cls(coreset_ratio=0.25, max_bank=40000, seed=seed)
        raise SettingsError(f"unknown profile {profile!r}; choose 'quick' or 'paper'")


@dataclass(frozen=True)
class InstantModel:
    """A fitted instant detector.

    Attributes:
        settings: the settings that made it.
        good_bank: float32 (K, C) patch embeddings of good training images.
        anomaly_bank: float32 (A, C) patch embeddings of labelled anomalies, A may be 0.
        anomaly_sources: image keys the anomaly keys came from (kept out of evaluation).
    """

    settings: InstantSettings
    good_bank: torch.Tensor
    anomaly_bank: torch.Tensor
    anomaly_sources: tuple[str, ...] = field(default=())


def _batches(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield start, items[start:start + size]


def embed_images(
    embedder: PatchEmbedder, images: Sequence[np.ndarray], settings: InstantSettings,
    device: torch.device, progress: ProgressFn = no_progress, stage: str = "embed",
) -> list[torch.Tensor]:
    """Embeddings on CPU for uint8 RGB images of any size, in input order: one (n, C, h, w)
    tensor per run of consecutive images that share an input shape (``aspect_shape``; with
    ``max_aspect = 1``, one per batch)."""
    out = []
    for start, batch in _batches(images, settings.batch_size):
        for shape, group in _same_shape_runs(batch, settings):
            out.append(embedder(to_tensor_batch(group, shape).to(device)).float().cpu())
        progress(stage, min(start + len(batch), len(images)), len(images))
    return out


def _same_shape_runs(batch: Sequence[np.ndarray], settings: InstantSettings):
    """Consecutive images that share an input shape, as ``(shape, images)`` runs (one forward each)."""
    runs: list[tuple[tuple[int, int], list[np.ndarray]]] = []
    for image in batch:
        shape = aspect_shape(image.shape, settings.image_size, settings.max_aspect)
        if runs and runs[-1][0] == shape:
            runs[-1][1].append(image)
        else:
            runs.append((shape, [image]))
    return runs


def _one_per_image(runs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [run[i:i + 1] for run in runs for i in range(run.shape[0])]


def _select_bank(patches: torch.Tensor, settings: InstantSettings) -> torch.Tensor:
    size = min(settings.max_bank, max(1, int(round(patches.shape[0] * settings.coreset_ratio))))
    if settings.coreset == "greedy":
        idx = greedy_coreset(patches, size, settings.seed)
    elif settings.coreset == "random":
        gen = torch.Generator().manual_seed(settings.seed)
        idx = torch.randperm(patches.shape[0], generator=gen)[:size]
    else:
        raise SettingsError(f"unknown coreset {settings.coreset!r}; choose 'greedy' or 'random'")
    return patches[idx].contiguous()


def build_embedder(settings: InstantSettings, device: torch.device, checkpoint: str | Path | None = "default") -> PatchEmbedder:
    backbone = build_backbone(settings.backbone, checkpoint=checkpoint, device=device)
    return PatchEmbedder(backbone, settings.stage_names).to(device)


def fit_instant(
    train_images: Sequence[np.ndarray], settings: InstantSettings, embedder: PatchEmbedder,
    device: torch.device, progress: ProgressFn = no_progress,
) -> InstantModel:
    """Memory bank from good training images. No gradient step anywhere."""
    if not train_images:
        raise DataError("the instant detector needs at least one good training image")
    emb = embed_images(embedder, train_images, settings, device, progress, "embed train images")
    progress("select memory bank", 0, 1)
    bank = _select_bank(torch.cat([flatten_patches(run) for run in emb]), settings)
    progress("select memory bank", 1, 1)
    empty = torch.zeros((0, bank.shape[1]), dtype=bank.dtype)
    return InstantModel(settings=settings, good_bank=bank, anomaly_bank=empty)


def add_anomaly_keys(
    model: InstantModel, images: Sequence[np.ndarray], masks: Sequence[np.ndarray | None],
    sources: Sequence[str], embedder: PatchEmbedder, device: torch.device,
) -> InstantModel:
    """Add patches of labelled bad images as anomaly keys.

    With a mask, the patches under the mask are used; without, the patches farthest from the
    good bank (``anomaly_key_fraction`` of the image), since a bad image is mostly good.
    """
    if not images:
        return model
    emb = _one_per_image(embed_images(embedder, images, model.settings, device))
    empty = torch.zeros((0, model.good_bank.shape[1]))
    no_keys = replace(model, anomaly_bank=empty)
    keys = [model.anomaly_bank]
    for i, mask in enumerate(masks):
        h, w = emb[i].shape[-2:]
        patches = flatten_patches(emb[i])
        if mask is not None and mask.any():
            small = torch.nn.functional.interpolate(
                torch.from_numpy(mask.astype(np.float32))[None, None], size=(h, w), mode="area"
            ).flatten() > 0.25
            chosen = patches[small] if small.any() else patches[:0]
        else:
            dist = patch_scores(emb[i], no_keys.good_bank, no_keys.anomaly_bank, 0.0).flatten()
            k = max(1, int(round(model.settings.anomaly_key_fraction * dist.numel())))
            chosen = patches[torch.topk(dist, k).indices]
        keys.append(chosen)
    return replace(
        model,
        anomaly_bank=torch.cat(keys).contiguous(),
        anomaly_sources=tuple(model.anomaly_sources) + tuple(sources),
    )


def score_embeddings(model: InstantModel, emb: torch.Tensor) -> list[Prediction]:
    """Pure scoring: embeddings (N, C, h, w) -> one Prediction per image."""
    bank = model.good_bank.to(emb.device)
    anomalies = model.anomaly_bank.to(emb.device)
    maps = patch_scores(emb, bank, anomalies, model.settings.anomaly_weight)
    maps = gaussian_blur(maps, model.settings.blur_sigma).cpu().numpy().astype(np.float32)
    return [Prediction(score=float(m.max()), anomaly_map=m) for m in maps]


class InstantDetector:
    """A fitted instant model bound to its embedder and device (the ``Detector`` protocol)."""

    method = METHOD

    def __init__(self, model: InstantModel, embedder: PatchEmbedder, device: torch.device) -> None:
        self.model = model
        self.embedder = embedder
        self.device = device

    def predict(self, images: list[np.ndarray]) -> list[Prediction]:
        out: list[Prediction] = []
        for _, batch in _batches(images, self.model.settings.batch_size):
            for emb in embed_images(self.embedder, batch, self.model.settings, self.device):
                out.extend(score_embeddings(self.model, emb.to(self.device)))
        return out


def save_instant(model: InstantModel, folder: Path) -> dict[str, str]:
    """Write the model as safetensors + JSON settings; returns {role: file name}."""
    weights = folder / "instant_bank.safetensors"
    meta = {"settings": json.dumps(asdict(model.settings)), "anomaly_sources": json.dumps(list(model.anomaly_sources))}
    atomic_save_safetensors(
        weights,
        {"good_bank": model.good_bank.contiguous(), "anomaly_bank": model.anomaly_bank.contiguous()},
        meta,
    )
    atomic_write_json(folder / "instant_settings.json", asdict(model.settings))
    return {"bank": weights.name, "settings": "instant_settings.json"}


def load_instant(folder: Path) -> InstantModel:
    """Inverse of ``save_instant``."""
    path = folder / "instant_bank.safetensors"
    if not path.exists():
        raise MissingFileError(f"no instant model in {folder} (expected {path.name}); run `fit --method instant` first")
    tensors, meta = load_safetensors(path)
    raw = json.loads(meta["settings"])
    raw["layers"] = tuple(raw.get("layers") or ())
    raw.setdefault("max_aspect", 1.0)  # fitted before it existed: every image was squeezed square
    return InstantModel(
        settings=InstantSettings(**raw),
        good_bank=tensors["good_bank"],
        anomaly_bank=tensors["anomaly_bank"],
        anomaly_sources=tuple(json.loads(meta.get("anomaly_sources", "[]"))),
    )
