"""Settings of the zero-shot CLIP method; no open_clip import here (it takes seconds to import)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipeline.errors import SettingsError
from pipeline.models.weights import CLIP_ARCHITECTURE_ENV, CLIP_DEFAULT_ARCHITECTURE

METHOD = "zeroshot"
CLIP_WEIGHTS_KEY = "open_clip"
"""Weight-registry key of the CLIP checkpoint (``pipeline.models.weights.REGISTRY``)."""

ARCHITECTURE_ENV = CLIP_ARCHITECTURE_ENV
"""Environment variable naming the architecture of the local CLIP weights (an open_clip model
name such as ``ViT-B-32``, or the path of an open_clip model-config JSON)."""

DEFAULT_ARCHITECTURE = CLIP_DEFAULT_ARCHITECTURE
"""open_clip architecture the default weight file (``open_clip_vit_b_16.*``) belongs to."""

OBJECT_SETTING = "zeroshot_object"
"""Category-scoped workspace setting: the word put into the prompts (default: the category name)."""

OBJECT_SLOT = "{object}"
"""Placeholder every prompt template must contain."""

# Prompt ensembles in the spirit of WinCLIP/AA-CLIP: several phrasings per state, averaged into
# one anchor each, so no single wording decides. The abnormal side names both structural
# (damage, scratch) and logical (missing part) defects, the two kinds the workbench tests.
NORMAL_TEMPLATES: tuple[str, ...] = (
    "a photo of a flawless {object}.",
    "a photo of a perfect {object}.",
    "a close-up photo of an undamaged {object}.",
    "a photo of a {object} without defect.",
    "a cropped photo of a good {object}.",
)
ABNORMAL_TEMPLATES: tuple[str, ...] = (
    "a photo of a damaged {object}.",
    "a photo of a broken {object}.",
    "a close-up photo of a {object} with a defect.",
    "a photo of a {object} with a scratch.",
    "a photo of a {object} with a missing part.",
)

# OpenAI CLIP's pixel statistics (open_clip.constants); repeated here so this module stays import-light.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ZeroShotSettings:
    """Everything that shapes the zero-shot scorer; saved with the fitted method.

    Attributes:
        architecture: open_clip model name (``ViT-B-16``) or path of an open_clip model-config JSON
            (a raw config or an ``open_clip_config.json`` with ``model_cfg``). Only ViT image towers
            with open_clip's own text tower are accepted (patch tokens, offline tokenizer).
        weights: explicit CLIP weight file; ``""`` resolves ``open_clip`` through the weight registry.
        object_name: the word put into the prompts' ``{object}`` slot (e.g. ``"pin tray"``).
        normal_templates, abnormal_templates: prompt ensembles; each averages into one text anchor.
        image_size: square input side in px; the position embedding is resized to it when the
            weights were trained at another size.
        layers: ViT blocks whose patch tokens are scored (negative = from the end); their maps are
            averaged. ``(-1,)``: the last block, which is the one aligned with the text space.
        temperature: softmax temperature over the two anchor similarities (CLIP's own: 0.01).
        top_fraction: share of the map's highest pixels averaged into the patch score.
        global_weight: weight of the image-token score in the image score (the rest: patch score).
        blur_sigma: Gaussian smoothing of the upsampled map, in px of the ``image_size`` map.
        batch_size: images per forward pass.
        mean, std: pixel statistics the weights were trained with.
    """

    architecture: str = DEFAULT_ARCHITECTURE
    weights: str = ""
    object_name: str = "object"
    normal_templates: tuple[str, ...] = NORMAL_TEMPLATES
    abnormal_templates: tuple[str, ...] = ABNORMAL_TEMPLATES
    image_size: int = 224
    layers: tuple[int, ...] = (-1,)
    temperature: float = 0.01
    top_fraction: float = 0.01
    global_weight: float = 0.5
    blur_sigma: float = 4.0
    batch_size: int = 8
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    def __post_init__(self) -> None:
        for name in ("normal_templates", "abnormal_templates"):
            templates = getattr(self, name)
            if not templates or any(OBJECT_SLOT not in t for t in templates):
                raise SettingsError(f"{name} must be non-empty and every template must contain {OBJECT_SLOT}")
        if not self.object_name.strip():
            raise SettingsError("object_name must not be empty")
        if not self.layers:
            raise SettingsError("layers must name at least one ViT block")
        if self.temperature <= 0:
            raise SettingsError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_fraction <= 1:
            raise SettingsError(f"top_fraction must be in (0, 1], got {self.top_fraction}")
        if not 0 <= self.global_weight <= 1:
            raise SettingsError(f"global_weight must be in [0, 1], got {self.global_weight}")

    def prompts(self) -> tuple[list[str], list[str]]:
        """(normal, abnormal) prompts with the object word filled in."""
        normal = [t.replace(OBJECT_SLOT, self.object_name) for t in self.normal_templates]
        abnormal = [t.replace(OBJECT_SLOT, self.object_name) for t in self.abnormal_templates]
        return normal, abnormal


def object_word(category: str) -> str:
    """The prompt word for a category name: ``"pin_tray"`` -> ``"pin tray"``."""
    return " ".join(category.replace("_", " ").replace("-", " ").split()) or "object"


def architecture_from_env() -> str:
    """The architecture the local CLIP weights belong to (``$WORKBENCH_CLIP_ARCHITECTURE`` or the default)."""
    return os.environ.get(ARCHITECTURE_ENV, "").strip() or DEFAULT_ARCHITECTURE
