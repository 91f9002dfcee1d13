"""Segment Anything segmenter over ``segment-anything`` (SPEC §4, §5 step 2).

Box-prompted masks (``M_G``) come from ``SamPredictor`` with all boxes of an image in one batch;
automatic proposals (``M_S``) from ``SamAutomaticMaskGenerator``. Both share one predictor that
keeps the last image embedding, so asking for boxes and proposals of the same image runs the
(expensive) image encoder once.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from pipeline.errors import SettingsError
from pipeline.models.backbones import load_state_file
from pipeline.models.weights import IncompatibleWeightsError, resolve_weights
from pipeline.pseudolabels.adapters.base import Box

DEFAULT = "default"
"""``checkpoint`` value meaning: whatever the weight registry resolves for the model type."""

MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
"""SAM image encoder sizes; registry keys are ``sam_<type>``."""


@dataclass(frozen=True)
class SamSettings:
    """SAM's model choice, box-prompt options and automatic-mode (``SamAutomaticMaskGenerator``)
    settings, with the library's defaults.

    Attributes:
        model_type: ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``.
        box_multimask: ask for 3 masks per box and keep the one SAM rates best (else one mask).
        boxes_per_batch: boxes decoded together in box-prompted mode.
        points_per_side: automatic mode samples a points_per_side² grid of point prompts.
        points_per_batch: point prompts decoded together.
        pred_iou_thresh: drop proposals whose predicted IoU (SAM's own quality estimate) is lower (0-1).
        stability_score_thresh: drop proposals whose IoU between the masks binarised at
            ±stability_score_offset around the cutoff is lower (0-1).
        stability_score_offset: logit offset used for the stability score.
        box_nms_thresh: box IoU above which duplicate proposals are suppressed.
        crop_n_layers: > 0 also runs on 2^i × 2^i image crops for layers i = 1..n (slower, finds
            small parts).
        crop_nms_thresh: box IoU for suppressing duplicates between crops.
        crop_overlap_ratio: overlap of neighbouring crops as a fraction of the crop side.
        crop_n_points_downscale_factor: points per side shrink by this factor per crop layer.
        min_mask_region_area: remove holes and islands smaller than this many pixels (0 = off).
    """

    model_type: str = "vit_b"
    box_multimask: bool = False
    boxes_per_batch: int = 64
    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0

    def generator_kwargs(self) -> dict:
        """The fields ``SamAutomaticMaskGenerator`` takes, by its argument names."""
        own = {"model_type", "box_multimask", "boxes_per_batch"}
        return {key: value for key, value in asdict(self).items() if key not in own}


def build_sam(
    model_type: str = "vit_b", checkpoint: Path | str | None = DEFAULT, device: torch.device | str = "cpu"
) -> torch.nn.Module:
    """A SAM model in eval mode.

    Args:
        checkpoint: ``"default"`` resolves ``sam_<model_type>`` through the registry (may raise
            ``MissingWeightsError``); a path loads that file; ``None`` keeps random weights.
    """
    if model_type not in MODEL_TYPES:
        raise SettingsError(f"unknown SAM model type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}")
    from segment_anything import sam_model_registry

    key = f"sam_{model_type}"
    path = None if checkpoint is None else resolve_weights(key, None if str(checkpoint) == DEFAULT else checkpoint)
    model = sam_model_registry[model_type](checkpoint=None)  # the library would torch.load unsafely
    if path is not None:
        try:
            model.load_state_dict(load_state_file(path))
        except RuntimeError as error:
            raise IncompatibleWeightsError(f"{path} does not fit SAM {model_type}: {error}") from error
    model.requires_grad_(False)
    return model.eval().to(device)


@lru_cache(maxsize=1)
def _predictor_class() -> type:
    # Defined lazily so importing this module never imports segment_anything.
    from segment_anything import SamPredictor

    class CachingPredictor(SamPredictor):
        """A ``SamPredictor`` that skips re-encoding the image it encoded last."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__(model)
            SamPredictor.reset_image(self)  # the override below would skip the initial reset
            self._key: tuple | None = None

        def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
            key = (image_format, image.shape, hashlib.blake2b(np.ascontiguousarray(image).data).digest())
            if self.is_image_set and key == self._key:
                return
            super().set_image(image, image_format)
            self._key = key

        def reset_image(self) -> None:
            # The mask generator resets after each image; keep the embedding for segment_boxes.
            pass

    return CachingPredictor


class SamSegmenter:
    """Box-prompted masks and automatic proposals from one SAM model."""

    name = "sam"

    def __init__(self, model: torch.nn.Module, settings: SamSettings = SamSettings()) -> None:
        """``model``: a ``segment_anything.modeling.Sam`` (``build_sam``, or any size for tests)."""
        from segment_anything import SamAutomaticMaskGenerator

        self.settings = settings
        self.predictor = _predictor_class()(model)
        self.generator = SamAutomaticMaskGenerator(model, **settings.generator_kwargs())
        self.generator.predictor = self.predictor

    def segment_boxes(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """Bool ``(len(boxes), H, W)``, one mask per box in box order."""
        height, width = image.shape[:2]
        if len(boxes) == 0:
            return np.zeros((0, height, width), dtype=bool)
        self.predictor.set_image(image)
        prompts = torch.as_tensor(np.stack([box.as_array() for box in boxes]), device=self.predictor.device)
        step = self.settings.boxes_per_batch
        batches = [prompts[i : i + step] for i in range(0, len(prompts), step)]
        return np.concatenate([self._decode(batch, (height, width)) for batch in batches])

    def _decode(self, boxes: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        multimask = self.settings.box_multimask
        with torch.no_grad():
            masks, scores, _ = self.predictor.predict_torch(
                None, None, boxes=self.predictor.transform.apply_boxes_torch(boxes, size), multimask_output=multimask
            )
        best = scores.argmax(dim=1)  # (B,); always 0 with a single mask
        return masks[torch.arange(len(masks)), best].cpu().numpy().astype(bool)

    def propose(self, image: np.ndarray) -> np.ndarray:
        """Bool ``(P, H, W)`` automatic proposals, SAM's best-rated first."""
        records = sorted(self.generator.generate(image), key=lambda r: -r["predicted_iou"])
        if not records:
            return np.zeros((0, *image.shape[:2]), dtype=bool)
        return np.stack([record["segmentation"] for record in records]).astype(bool)
