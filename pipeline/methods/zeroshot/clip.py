"""CLIP towers from open_clip, built offline: architecture configs, weights from local files only.

open_clip is imported inside the functions: it pulls in transformers and timm (seconds), and
importing ``pipeline.methods`` must stay fast for every other method. ``open_clip.create_model``
is not used because a ``pretrained`` tag, an ``hf-hub:`` name or a Hugging Face text tower makes
it download; the model class is instantiated from the config instead, and weights go through
``open_clip.load_checkpoint`` (safetensors or ``torch.load(weights_only=True)``, key conversion,
position-embedding resize), only ever with a path the weight registry resolved.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

from pipeline.errors import MissingFileError, SettingsError
from pipeline.methods.zeroshot.settings import ARCHITECTURE_ENV, CLIP_WEIGHTS_KEY
from pipeline.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, to_tensor_batch
from pipeline.models.weights import IncompatibleWeightsError, MissingWeightsError, resolve_weights

DEFAULT = "default"
"""``checkpoint`` value meaning: resolve the CLIP weights through the registry."""

REQUIRED_KEYS = ("embed_dim", "vision_cfg", "text_cfg")


def import_open_clip() -> ModuleType:
    """The open_clip module, or ``MissingWeightsError`` saying how to install it.

    Raised as missing weights (not ImportError) because to the user it is the same situation:
    a model piece to install locally, reported as one line by the CLI and the pages."""
    try:
        import open_clip
    except ImportError as error:
        raise MissingWeightsError(
            "The zero-shot CLIP method needs the open_clip package: pip install open-clip-torch "
            f"(it is in requirements.txt). Import failed: {error}"
        ) from error
    return open_clip


def architecture_config(architecture: str) -> dict:
    """The open_clip model config for a built-in model name or a model-config JSON file.

    A JSON file may hold the raw config (``embed_dim``, ``vision_cfg``, ``text_cfg``) or an
    ``open_clip_config.json`` as found next to Hugging Face open_clip weights (``model_cfg``).

    Raises:
        FileNotFoundError: a ``.json`` path that does not exist.
        ValueError: unknown name, or an architecture this method cannot use offline.
    """
    path = Path(architecture).expanduser()
    if architecture.endswith(".json") or path.is_file():
        if not path.is_file():
            raise MissingFileError(f"CLIP model config {path} does not exist")
        raw = json.loads(path.read_text(encoding="utf-8"))
        config = raw.get("model_cfg", raw) if isinstance(raw, dict) else raw
    else:
        open_clip = import_open_clip()
        # Only registered names: a schema such as 'hf-hub:' would make open_clip fetch the config.
        if architecture not in open_clip.list_models():
            raise SettingsError(
                f"unknown CLIP architecture {architecture!r}; use an open_clip model name such as "
                "ViT-B-16, ViT-B-16-quickgelu (OpenAI weights), ViT-B-32 or ViT-L-14, or the path "
                "of an open_clip model-config JSON"
            )
        config = open_clip.get_model_config(architecture)
    check_supported(config, architecture)
    return copy.deepcopy(config)


def check_supported(config: object, architecture: str) -> None:
    """Refuse configs without ViT patch tokens or whose towers would need downloads or other tokenizers."""
    if not isinstance(config, dict) or any(key not in config for key in REQUIRED_KEYS):
        raise SettingsError(f"{architecture}: not an open_clip model config (needs {', '.join(REQUIRED_KEYS)})")
    vision, text = config["vision_cfg"], config["text_cfg"]
    reasons = []
    if "timm_model_name" in vision:
        reasons.append("its image tower comes from timm")
    if isinstance(vision.get("layers"), (list, tuple)):
        reasons.append("its image tower is a ResNet (no patch tokens)")
    if vision.get("attentional_pool"):
        reasons.append("its image tower pools with attention (patch tokens are not in the joint space)")
    if "hf_model_name" in text or "hf_tokenizer_name" in text:
        reasons.append("its text tower or tokenizer comes from Hugging Face")
    if "multimodal_cfg" in config:
        reasons.append("it is a CoCa captioner")
    if reasons:
        raise SettingsError(f"CLIP architecture {architecture!r} is not supported: {'; '.join(reasons)}. "
                         "Use a ViT CLIP with open_clip's own text tower (e.g. ViT-B-16)")


def build_clip(
    config: dict, checkpoint: Path | str | None = DEFAULT, image_size: int | None = None,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """A frozen open_clip CLIP model in eval mode.

    Args:
        config: open_clip model config (``architecture_config``).
        checkpoint: ``"default"`` resolves ``open_clip`` through the weight registry (may raise
            ``MissingWeightsError``); a path loads that file; ``None`` keeps random weights.
        image_size: input side in px; the weights' position embedding is resized to it.

    Raises:
        IncompatibleWeightsError: the file does not fit this architecture.
    """
    open_clip = import_open_clip()
    check_supported(config, "config")
    cfg = copy.deepcopy(config)
    if image_size is not None:
        patch = cfg["vision_cfg"].get("patch_size", 16)
        if image_size % patch:
            raise SettingsError(f"image_size {image_size} is not a multiple of the patch size {patch}")
        cfg["vision_cfg"]["image_size"] = image_size
    model_class = open_clip.CustomTextCLIP if cfg.pop("custom_text", False) else open_clip.CLIP
    model = model_class(**cfg)
    path = None if checkpoint is None else resolve_weights(
        CLIP_WEIGHTS_KEY, None if str(checkpoint) == DEFAULT else checkpoint)
    if path is not None:
        load_clip_weights(model, path)
    model.requires_grad_(False)
    return model.eval().to(device)


def load_clip_weights(model: nn.Module, path: Path) -> None:
    """Load a local open_clip checkpoint strictly; any mismatch is an ``IncompatibleWeightsError``."""
    open_clip = import_open_clip()
    try:
        open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True, device="cpu")
    except Exception as error:  # unreadable files and shape mismatches fail in many ways
        raise IncompatibleWeightsError(
            f"{path} cannot be loaded as these CLIP weights: {error}. Check that "
            f"${ARCHITECTURE_ENV} names the file's architecture (OpenAI weights need the "
            "'-quickgelu' variant) and that it is an open_clip state dict (.safetensors or .bin), "
            "not OpenAI's TorchScript .pt archive"
        ) from error


def weights_fingerprint(model: nn.Module) -> float:
    """Sum of every weight in float64: tells whether the weights changed since the anchors were built."""
    return float(sum(t.detach().to("cpu", torch.float64).sum() for t in model.state_dict().values()))


def encode_prompts(model: nn.Module, prompts: list[str]) -> torch.Tensor:
    """Text embeddings ``(P, D)`` of prompts, tokenised with open_clip's bundled BPE (no download)."""
    open_clip = import_open_clip()
    tokenizer = open_clip.SimpleTokenizer(context_length=getattr(model, "context_length", 77))
    device = next(model.parameters()).device
    with torch.no_grad():
        return model.encode_text(tokenizer(prompts).to(device)).float()


class ClipPatchEncoder(nn.Module):
    """The CLIP image tower's global embedding and its patch tokens, both in the joint space.

    Patch tokens come from ``VisionTransformer.forward_intermediates`` (open_clip >= 2.26; 3.3
    checked): the chosen blocks' outputs without the class token, through the final LayerNorm
    (``normalize_intermediates``) and then the same projection ``proj`` the pooled token gets,
    so they can be compared with the text anchors (AnomalyCLIP / AA-CLIP do the same).
    """

    def __init__(self, visual: nn.Module, layers: tuple[int, ...]) -> None:
        super().__init__()
        if not hasattr(visual, "forward_intermediates") or getattr(visual, "proj", None) is None:
            raise ValueError("the CLIP image tower has no projected patch tokens (a ViT tower is needed)")
        self.visual = visual
        self.layers = [int(i) for i in layers]
        self.grid: tuple[int, int] = tuple(visual.grid_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(N, 3, S, S)`` -> global ``(N, D)`` and one ``(N, h*w, D)`` token tensor per layer."""
        out = self.visual.forward_intermediates(
            x, indices=self.layers, normalize_intermediates=True, output_fmt="NLC",
        )
        tokens = [t @ self.visual.proj for t in out["image_intermediates"]]
        return out["image_features"], tokens


def clip_batch(images: list[np.ndarray], size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Images as CLIP input ``(N, 3, size, size)``.

    Resized by ``to_tensor_batch`` (the project's one resizer, SPEC §5), whose ImageNet
    normalisation is undone and replaced by the CLIP weights' own pixel statistics."""
    pixels = to_tensor_batch(images, size) * _channels(IMAGENET_STD) + _channels(IMAGENET_MEAN)
    return (pixels - _channels(mean)) / _channels(std)


def _channels(values: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, 3, 1, 1)
