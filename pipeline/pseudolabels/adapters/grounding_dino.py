"""GroundingDINO box detector over ``groundingdino-py`` (SPEC §4, §5 step 2).

The text encoder (BERT) is always read from a local folder: groundingdino's own loader would ask
the Hugging Face hub for ``bert-base-uncased``, so ``build_grounding_dino`` swaps in loaders that
pass ``local_files_only=True`` while the model is built.
"""

from __future__ import annotations

import pickle

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from pipeline.models.weights import IncompatibleWeightsError, resolve_weights
from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.adapters.tagger import normalise_tag

DEFAULT = "default"
"""``checkpoint``/``text_encoder`` value meaning: whatever the weight registry resolves."""

MAX_TEXT_TOKENS = 256
"""GroundingDINO's text length limit (tokens, with [CLS] and [SEP]); longer captions are split."""


@dataclass(frozen=True)
class GroundingDinoSettings:
    """How boxes are read from GroundingDINO's 900 queries.

    Attributes:
        box_threshold: a query is kept when its best prompt-token probability exceeds this (0-1).
        text_threshold: a kept query gives one box per tag whose best token probability exceeds
            this (0-1), as upstream names a box by all tokens above it.
        nms_iou: boxes of the same tag overlapping more than this IoU are merged (highest kept).
        max_boxes_per_tag: at most this many boxes per tag and image, best first.
        resize_short_side: the image's short side in pixels before the model (800 as trained);
            at least ~256 so the encoder has the 900 tokens its query selection needs.
        resize_max_side: cap on the long side in pixels after resizing (1333 as trained).
    """

    box_threshold: float = 0.35
    text_threshold: float = 0.25
    nms_iou: float = 0.5
    max_boxes_per_tag: int = 20
    resize_short_side: int = 800
    resize_max_side: int = 1333


def build_grounding_dino(
    checkpoint: Path | str | None = DEFAULT,
    text_encoder: Path | str = DEFAULT,
    device: torch.device | str = "cpu",
) -> torch.nn.Module:
    """GroundingDINO Swin-T OGC in eval mode.

    Args:
        checkpoint: ``"default"`` resolves ``groundingdino`` through the registry (may raise
            ``MissingWeightsError``); a path loads that file; ``None`` keeps random weights.
        text_encoder: local BERT folder (config.json, vocab.txt, weights); ``"default"`` resolves
            ``groundingdino_text_encoder``. Its hidden size may differ from BERT-base's 768 only
            with random detector weights (tests use a tiny one).
    """
    # Both paths are checked before the (slow) groundingdino import, the detector's file first.
    path = None if checkpoint is None else resolve_weights("groundingdino", _explicit(checkpoint))
    encoder = resolve_weights("groundingdino_text_encoder", _explicit(text_encoder))
    from groundingdino.util.slconfig import SLConfig

    args = SLConfig.fromfile(str(_config_file()))
    args.device = str(device)
    args.text_encoder_type = str(encoder)
    # Gradient checkpointing only saves memory in training and warns at inference.
    args.use_checkpoint = False
    args.use_transformer_ckpt = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch.meshgrid indexing, from Swin
        warnings.simplefilter("ignore", FutureWarning)  # its timm.models.layers import
        from groundingdino.models import build_model

        with _local_text_encoder():
            model = build_model(args)
    if path is not None:
        _load_checkpoint(model, path)
    model.requires_grad_(False)
    return model.eval().to(device)


def _explicit(path: Path | str) -> Path | str | None:
    return None if str(path) == DEFAULT else path


def _config_file() -> Path:
    import groundingdino

    return Path(groundingdino.__file__).parent / "config" / "GroundingDINO_SwinT_OGC.py"


@contextmanager
def _local_text_encoder() -> Iterator[None]:
    """Make groundingdino load tokenizer and BERT from the folder path only, never the hub."""
    from groundingdino.util import get_tokenlizer as module
    from transformers import AutoTokenizer, BertModel

    def tokenizer(folder: str):
        # A fast tokenizer: detect() needs its character offsets to find each tag's tokens.
        return AutoTokenizer.from_pretrained(folder, local_files_only=True, use_fast=True)

    def language_model(folder: str):
        return BertModel.from_pretrained(folder, local_files_only=True)

    originals = module.get_tokenlizer, module.get_pretrained_language_model
    module.get_tokenlizer, module.get_pretrained_language_model = tokenizer, language_model
    try:
        yield
    finally:
        module.get_tokenlizer, module.get_pretrained_language_model = originals


def _load_checkpoint(model: torch.nn.Module, path: Path) -> None:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's "weights only load failed"
        # The official release pickles more than tensors; it is the file the user chose to trust,
        # loaded the way groundingdino's own load_model does.
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise IncompatibleWeightsError(f"{path} holds no GroundingDINO state dict")
    state = {key.removeprefix("module."): value for key, value in state.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches raise even when not strict
        raise IncompatibleWeightsError(f"{path} does not fit GroundingDINO Swin-T: {error}") from error
    # Upstream loads non-strictly (BERT's position_ids buffer differs between transformers
    # versions); anything more missing means the wrong file.
    missing = [key for key in result.missing_keys if not key.endswith("position_ids")]
    if missing:
        raise IncompatibleWeightsError(f"{path} lacks {len(missing)} GroundingDINO tensors, e.g. {missing[:3]}")


def cxcywh_to_xyxy(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised ``(N, 4)`` centre-x, centre-y, width, height → pixel ``x0, y0, x1, y1``,
    clipped to the image."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    cx, cy, w, h = boxes.T
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    xyxy *= np.array([width, height, width, height], dtype=np.float32)
    return np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)


def caption_of(tags: Sequence[str]) -> str:
    """GroundingDINO's prompt format: tags separated and ended by dots, ``"pin . tray ."``."""
    return " . ".join(tags) + " ."


def caption_spans(tags: Sequence[str], tokenizer) -> tuple[str, list[list[int]]]:
    """The caption for ``tags`` and, per tag, the indices of the tokens that spell it."""
    caption, chars, start = caption_of(tags), [], 0
    for tag in tags:
        chars.append((start, start + len(tag)))
        start += len(tag) + len(" . ")
    offsets = tokenizer(caption, return_offsets_mapping=True)["offset_mapping"]
    spans = [
        [i for i, (s, e) in enumerate(offsets) if e > s and s >= start and e <= end] for start, end in chars
    ]
    return caption, spans


class GroundingDinoDetector:
    """Boxes for text prompts; each box is assigned to the one tag its tokens score highest."""

    name = "groundingdino"

    def __init__(self, model: torch.nn.Module, settings: GroundingDinoSettings = GroundingDinoSettings()) -> None:
        """``model``: from ``build_grounding_dino``."""
        self.model = model
        self.settings = settings

    def detect(
        self, image: np.ndarray, image_key: str, tags: Sequence[str], background_tags: Sequence[str]
    ) -> list[Box]:
        """Boxes for ``tags`` and ``background_tags`` in ``image`` pixels (``image_key`` unused)."""
        prompts = _prompts(tags, background_tags)
        if not prompts:
            return []
        height, width = image.shape[:2]
        pixels = self._preprocess(image)
        boxes: list[Box] = []
        for chunk in _chunks(list(prompts), self.model.tokenizer):
            caption, spans = caption_spans(chunk, self.model.tokenizer)
            probabilities, cxcywh = self._forward(pixels, caption)
            xyxy = cxcywh_to_xyxy(cxcywh, width, height)
            boxes += self._select(probabilities, xyxy, chunk, spans, prompts)
        return boxes

    def _preprocess(self, image: np.ndarray) -> torch.Tensor:
        import groundingdino.datasets.transforms as T
        from PIL import Image

        s = self.settings
        transform = T.Compose(
            [T.RandomResize([s.resize_short_side], max_size=s.resize_max_side),  # one size: deterministic
             T.ToTensor(),
             T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]
        )
        return transform(Image.fromarray(image), None)[0]

    def _forward(self, pixels: torch.Tensor, caption: str) -> tuple[np.ndarray, np.ndarray]:
        """Per query: token probabilities ``(900, 256)`` and normalised cxcywh boxes ``(900, 4)``."""
        device = next(self.model.parameters()).device
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecated calls inside groundingdino
            outputs = self.model(pixels[None].to(device), captions=[caption])
        return outputs["pred_logits"][0].sigmoid().cpu().numpy(), outputs["pred_boxes"][0].cpu().numpy()

    def _select(
        self, probabilities: np.ndarray, xyxy: np.ndarray, tags: list[str], spans: list[list[int]],
        prompts: dict[str, bool],
    ) -> list[Box]:
        from torchvision.ops import batched_nms

        s = self.settings
        # A tag's probability is that of its best token; '.', [CLS] and [SEP] are ignored.
        per_tag = np.stack([probabilities[:, span].max(axis=1) if span else np.zeros(len(xyxy)) for span in spans], 1)
        valid = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        query_ok = (per_tag.max(axis=1) > s.box_threshold) & valid
        # Upstream names a box by every token above text_threshold; here: one box per such tag.
        queries, tag_ids = np.nonzero(query_ok[:, None] & (per_tag > s.text_threshold))
        if queries.size == 0:
            return []
        scores = per_tag[queries, tag_ids]
        order = batched_nms(torch.from_numpy(xyxy[queries]), torch.from_numpy(scores).float(),
                            torch.from_numpy(tag_ids), s.nms_iou).numpy()
        boxes, counts = [], dict.fromkeys(range(len(tags)), 0)
        for i in order:  # batched_nms returns indices by decreasing score
            tag_id = int(tag_ids[i])
            if counts[tag_id] < s.max_boxes_per_tag:
                counts[tag_id] += 1
                tag = tags[tag_id]
                x0, y0, x1, y1 = map(float, xyxy[queries[i]])
                boxes.append(Box(x0, y0, x1, y1, tag=tag, score=float(scores[i]), background=prompts[tag]))
        return boxes


def _prompts(tags: Sequence[str], background_tags: Sequence[str]) -> dict[str, bool]:
    """Normalised prompt → is background, in order; a tag given as both stays an object."""
    prompts = {normalise_tag(t): False for t in tags}
    for tag in map(normalise_tag, background_tags):
        prompts.setdefault(tag, True)
    prompts.pop("", None)
    return prompts


def _chunks(tags: list[str], tokenizer) -> list[list[str]]:
    """Split the prompts into captions that fit GroundingDINO's 256-token text window."""
    chunks: list[list[str]] = [[]]
    for tag in tags:
        candidate = chunks[-1] + [tag]
        if chunks[-1] and len(tokenizer(caption_of(candidate))["input_ids"]) > MAX_TEXT_TOKENS:
            chunks.append([tag])
        else:
            chunks[-1] = candidate
    return chunks
