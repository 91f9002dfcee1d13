"""Instant detector (SPEC §9, seed 003 MRAD-TF): train-free memory retrieval over patch features.

Fit = embed the good training images, keep a coreset of their patches as the memory bank;
predict = distance of each patch to its nearest bank entry, blurred; image score = map maximum.
A second, coarser bank on deeper stages (``deep_layers``) is scored the same way; both maps are
divided by their typical good validation image's peak, the deep one gated by the fine one (``two_depth_map``),
and the larger wins per pixel. Labelled bad
images can be added as anomaly keys.
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
from pipeline.methods.base import Prediction
from pipeline.methods.instant.depth_check import deep_bank_helps
from pipeline.methods.instant.torch_model import (
    DEFAULT_DEEP_LAYERS,
    DEFAULT_LAYERS,
    PatchEmbedder,
    flatten_patches,
    gaussian_blur,
    greedy_coreset,
    patch_scores,
    two_depth_map,
)
from pipeline.models.backbones import build_backbone
from pipeline.models.preprocess import aspect_shape, to_tensor_batch
from pipeline.progress import ProgressFn, no_progress
from pipeline.workspace.files import atomic_save_safetensors, atomic_write_json, load_safetensors

METHOD = "instant"


@dataclass(frozen=True)
class InstantSettings:
    """Settings of the instant detector; defaults are the ``quick`` profile.

    Attributes:
        backbone: registry name of the frozen image backbone.
        layers: backbone stages to embed; ``()`` picks ``DEFAULT_LAYERS[backbone]``.
        deep_layers: stages of the second, coarser bank; ``None`` picks
            ``DEFAULT_DEEP_LAYERS[backbone]``, ``()`` fits the single bank (models fitted before it
            existed load with ``()``).
        two_depth: ``"auto"`` keeps the deep bank only where it tells synthetic defects on good
            validation images apart better than the single bank (``depth_check``);
            ``"always"`` keeps it.
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
    deep_layers: tuple[str, ...] | None = None
    two_depth: str = "auto"
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

    @property
    def deep_stage_names(self) -> tuple[str, ...]:
        if self.deep_layers is None:
            return DEFAULT_DEEP_LAYERS.get(self.backbone, ())
        return self.deep_layers

    @classmethod
    def from_dict(cls, raw: dict) -> "InstantSettings":
        """Settings saved with ``asdict`` (JSON lists back to tuples); older files get the
        behaviour they were fitted with."""
        raw = dict(raw)
        raw["layers"] = tuple(raw.get("layers") or ())
        raw.setdefault("max_aspect", 1.0)  # fitted before it existed: every image was squeezed square
        raw.setdefault("deep_layers", ())  # fitted before it existed: one bank
        if raw["deep_layers"] is not None:
            raw["deep_layers"] = tuple(raw["deep_layers"])
        return cls(**raw)

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0) -> "InstantSettings":
        """``quick``: small bank for seconds-long fits; ``paper``: a PatchCore-sized bank."""
        if profile == "quick":
            return cls(seed=seed)
        if profile == "paper":
            return cls(coreset_ratio=0.25, max_bank=40000, seed=seed)
        raise SettingsError(f"unknown profile {profile!r}; choose 'quick' or 'paper'")


@dataclass(frozen=True)
class DeepBank:
    """The second, coarser memory bank and the common scale of both banks' maps.

    Attributes:
        good_bank: float32 (K', C') patch embeddings of good training images on the deep stages.
        anomaly_bank: float32 (A', C') of labelled anomalies, A' may be 0.
        fine_scale: (offset, unit) that put the fine bank's map on the common scale,
            ``(map - offset) / unit``: (0, the mean image score, i.e. blurred map maximum, of
            good validation images; of the training images when there are none), so 1.0 is a
            typical good image's peak.
        deep_scale: the same for the deep bank.
    """

    good_bank: torch.Tensor
    anomaly_bank: torch.Tensor
    fine_scale: tuple[float, float]
    deep_scale: tuple[float, float]


@dataclass(frozen=True)
class InstantModel:
    """A fitted instant detector.

    Attributes:
        settings: the settings that made it.
        good_bank: float32 (K, C) patch embeddings of good training images.
        anomaly_bank: float32 (A, C) patch embeddings of labelled anomalies, A may be 0.
        anomaly_sources: image keys the anomaly keys came from (kept out of evaluation).
        deep: the second bank, None for a single-bank model (maps then in distance units).
        depth_check: (single-bank, two-bank) AUROC on synthetic defects of good validation
            images that decided ``deep`` under ``two_depth="auto"``; None when not checked.
    """

    settings: InstantSettings
    good_bank: torch.Tensor
    anomaly_bank: torch.Tensor
    anomaly_sources: tuple[str, ...] = field(default=())
    deep: DeepBank | None = None
    depth_check: tuple[float, float] | None = None


def _batches(items: Sequence, size: int):
    for start in range(0, len(items), size):
        yield start, items[start:start + size]


def embed_images(
    embedder: PatchEmbedder, images: Sequence[np.ndarray], settings: InstantSettings,
    device: torch.device, progress: ProgressFn = no_progress, stage: str = "embed",
) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Embeddings on CPU for uint8 RGB images of any size, in input order: one (n, C, h, w)
    tensor per run of consecutive images that share an input shape (``aspect_shape``; with
    ``max_aspect = 1``, one per batch), paired with the deep stages' (n, C', h', w') or None."""
    out = []
    for start, batch in _batches(images, settings.batch_size):
        for shape, group in _same_shape_runs(batch, settings):
            fine, deep = embedder.forward_both(to_tensor_batch(group, shape).to(device))
            out.append((fine.float().cpu(), None if deep is None else deep.float().cpu()))
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


def _one_per_image(runs: list[tuple[torch.Tensor, torch.Tensor | None]]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    return [(fine[i:i + 1], None if deep is None else deep[i:i + 1]) for fine, deep in runs for i in range(fine.shape[0])]


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
    return PatchEmbedder(backbone, settings.stage_names, settings.deep_stage_names).to(device)


def fit_instant(
    train_images: Sequence[np.ndarray], settings: InstantSettings, embedder: PatchEmbedder,
    device: torch.device, progress: ProgressFn = no_progress,
    validation_images: Sequence[np.ndarray] = (),
) -> InstantModel:
    """Memory bank(s) from good training images; with deep stages, the good ``validation_images``
    (the training images when none are given) set both banks' scale. No gradient step anywhere."""
    if not train_images:
        raise DataError("the instant detector needs at least one good training image")
    settings = replace(settings, deep_layers=embedder.deep_layers)  # saved resolved: loads the same
    emb = embed_images(embedder, train_images, settings, device, progress, "embed train images")
    progress("select memory bank", 0, 1)
    bank = _select_bank(torch.cat([flatten_patches(fine) for fine, _ in emb]), settings)
    model = InstantModel(settings=settings, good_bank=bank, anomaly_bank=_no_rows(bank))
    if embedder.deep_layers:
        deep = _select_bank(torch.cat([flatten_patches(d) for _, d in emb]), settings)
        model = replace(model, deep=DeepBank(deep, _no_rows(deep), (0.0, 1.0), (0.0, 1.0)))
    progress("select memory bank", 1, 1)
    if model.deep is not None:
        reference = validation_images if len(validation_images) else train_images
        model = _with_depth_scale(model, reference, embedder, device, progress)
        model = _checked_depth(model, reference, embedder, device, progress)
    return model


def _checked_depth(model: InstantModel, images: Sequence[np.ndarray], embedder: PatchEmbedder,
                   device: torch.device, progress: ProgressFn) -> InstantModel:
    """``two_depth="auto"``: the model without its deep bank unless the bank separates synthetic
    defects of ``images`` better (ties go to the simpler model)."""
    if model.settings.two_depth == "always":
        return model
    if model.settings.two_depth != "auto":
        raise SettingsError(f"unknown two_depth {model.settings.two_depth!r}; choose 'auto' or 'always'")

    def score_pairs(check: list[np.ndarray]) -> np.ndarray:
        rows = []
        for fine, deep in embed_images(embedder, check, model.settings, device, progress, "check the deep bank"):
            fine_map, deep_map = bank_maps(model, fine.to(device), deep.to(device))
            both = two_depth_map(fine_map, deep_map, model.deep.fine_scale, model.deep.deep_scale)
            rows.append(torch.stack([fine_map.amax(dim=(1, 2)), both.amax(dim=(1, 2))], dim=1).cpu())
        return torch.cat(rows).double().numpy()

    single, two = deep_bank_helps(score_pairs, images, model.settings.seed)
    if two > single:
        return replace(model, depth_check=(single, two))
    return replace(model, deep=None, depth_check=(single, two), settings=replace(model.settings, deep_layers=()))


def _no_rows(bank: torch.Tensor) -> torch.Tensor:
    return torch.zeros((0, bank.shape[1]), dtype=bank.dtype)


def _with_depth_scale(model: InstantModel, images: Sequence[np.ndarray], embedder: PatchEmbedder,
                      device: torch.device, progress: ProgressFn) -> InstantModel:
    """Each bank's typical good-image peak on ``images``, which puts both maps on one scale.

    A ratio to the mean rather than a z-score: measured on KolektorSDD, MPDD, synthetic bottle,
    pin_tray and textured_plate it is as good or better everywhere (pin_tray structural 0.953
    against 0.938) and needs no spread estimate from a few validation images."""
    fine_scores, deep_scores = [], []
    for fine, deep in embed_images(embedder, images, model.settings, device, progress, "scale the two banks"):
        fine_map, deep_map = bank_maps(model, fine.to(device), deep.to(device))
        fine_scores.append(fine_map.amax(dim=(1, 2)).cpu())
        deep_scores.append(deep_map.amax(dim=(1, 2)).cpu())
    deep_bank = replace(model.deep, fine_scale=_typical_peak(torch.cat(fine_scores)),
                        deep_scale=_typical_peak(torch.cat(deep_scores)))
    return replace(model, deep=deep_bank)


def _typical_peak(scores: torch.Tensor) -> tuple[float, float]:
    return 0.0, max(float(scores.double().mean()), 1e-12)  # distances: positive unless every image is in the bank


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
    fraction = model.settings.anomaly_key_fraction
    keys = [model.anomaly_bank] + [_anomaly_keys(fine, model.good_bank, mask, fraction) for (fine, _), mask in zip(emb, masks)]
    model = replace(model, anomaly_bank=torch.cat(keys).contiguous(),
                    anomaly_sources=tuple(model.anomaly_sources) + tuple(sources))
    if model.deep is not None:
        deep_keys = [_anomaly_keys(deep, model.deep.good_bank, mask, fraction) for (_, deep), mask in zip(emb, masks)]
        model = replace(model, deep=replace(model.deep, anomaly_bank=torch.cat([model.deep.anomaly_bank, *deep_keys]).contiguous()))
    return model


def _anomaly_keys(emb: torch.Tensor, good_bank: torch.Tensor, mask: np.ndarray | None, fraction: float) -> torch.Tensor:
    """The patches of one image's embeddings (1, C, h, w) under its mask, or without a mask the
    ``fraction`` farthest from the good bank."""
    h, w = emb.shape[-2:]
    patches = flatten_patches(emb)
    if mask is not None and mask.any():
        small = torch.nn.functional.interpolate(
            torch.from_numpy(mask.astype(np.float32))[None, None], size=(h, w), mode="area"
        ).flatten() > 0.25
        return patches[small] if small.any() else patches[:0]
    dist = patch_scores(emb, good_bank, _no_rows(good_bank), 0.0).flatten()
    k = max(1, int(round(fraction * dist.numel())))
    return patches[torch.topk(dist, k).indices]


def bank_maps(model: InstantModel, emb: torch.Tensor, deep_emb: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each bank's blurred distance map, (N, h, w) and (N, h', w') or None without a deep bank."""
    s = model.settings

    def one(e: torch.Tensor, good: torch.Tensor, bad: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(patch_scores(e, good.to(e.device), bad.to(e.device), s.anomaly_weight), s.blur_sigma)

    fine = one(emb, model.good_bank, model.anomaly_bank)
    if model.deep is None:
        return fine, None
    if deep_emb is None:
        raise RuntimeError("a two-bank instant model was scored without the deep stages' embeddings")
    return fine, one(deep_emb, model.deep.good_bank, model.deep.anomaly_bank)


def score_embeddings(model: InstantModel, emb: torch.Tensor, deep_emb: torch.Tensor | None = None) -> list[Prediction]:
    """Pure scoring: embeddings (N, C, h, w) (and the deep stages') -> one Prediction per image."""
    fine, deep = bank_maps(model, emb, deep_emb)
    maps = fine if deep is None else two_depth_map(fine, deep, model.deep.fine_scale, model.deep.deep_scale)
    maps = maps.cpu().numpy().astype(np.float32)
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
            for fine, deep in embed_images(self.embedder, batch, self.model.settings, self.device):
                out.extend(score_embeddings(self.model, fine.to(self.device), None if deep is None else deep.to(self.device)))
        return out


def save_instant(model: InstantModel, folder: Path) -> dict[str, str]:
    """Write the model as safetensors + JSON settings; returns {role: file name}."""
    weights = folder / "instant_bank.safetensors"
    meta = {"settings": json.dumps(asdict(model.settings)), "anomaly_sources": json.dumps(list(model.anomaly_sources))}
    if model.deep is not None:
        meta["deep_scale"] = json.dumps(depth_scale(model))
    if model.depth_check is not None:
        meta["depth_check"] = json.dumps(list(model.depth_check))
    atomic_save_safetensors(weights, model_tensors(model), meta)
    atomic_write_json(folder / "instant_settings.json", asdict(model.settings))
    return {"bank": weights.name, "settings": "instant_settings.json"}


def load_instant(folder: Path) -> InstantModel:
    """Inverse of ``save_instant``."""
    path = folder / "instant_bank.safetensors"
    if not path.exists():
        raise MissingFileError(f"no instant model in {folder} (expected {path.name}); run `fit --method instant` first")
    tensors, meta = load_safetensors(path)
    settings = InstantSettings.from_dict(json.loads(meta["settings"]))
    sources = tuple(json.loads(meta.get("anomaly_sources", "[]")))
    model = model_from_tensors(settings, tensors, sources, json.loads(meta.get("deep_scale", "null")))
    check = json.loads(meta.get("depth_check", "null"))
    return model if check is None else replace(model, depth_check=(float(check[0]), float(check[1])))


def model_tensors(model: InstantModel) -> dict[str, torch.Tensor]:
    """The model's banks by name (``save_instant``'s file, a bundle's ``<role>.`` tensors)."""
    out = {"good_bank": model.good_bank.contiguous(), "anomaly_bank": model.anomaly_bank.contiguous()}
    if model.deep is not None:
        out.update(deep_good_bank=model.deep.good_bank.contiguous(), deep_anomaly_bank=model.deep.anomaly_bank.contiguous())
    return out


def depth_scale(model: InstantModel) -> list[float] | None:
    """``[*fine_scale, *deep_scale]`` of a two-bank model (JSON-ready), else None."""
    return None if model.deep is None else [*model.deep.fine_scale, *model.deep.deep_scale]


def model_from_tensors(settings: InstantSettings, tensors: dict[str, torch.Tensor], sources: tuple[str, ...],
                       scale: list[float] | None) -> InstantModel:
    """Inverse of ``model_tensors`` + ``depth_scale``."""
    deep = None
    if "deep_good_bank" in tensors:
        deep = DeepBank(tensors["deep_good_bank"], tensors["deep_anomaly_bank"],
                        (float(scale[0]), float(scale[1])), (float(scale[2]), float(scale[3])))
    return InstantModel(settings, tensors["good_bank"], tensors["anomaly_bank"], sources, deep)
