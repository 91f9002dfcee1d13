"""Zero-shot CLIP text-prompt scorer (method name ``zeroshot``); runs only with local CLIP weights."""

from pipeline.methods.zeroshot.method import ZEROSHOT, prompt_word, set_object_word, unavailable_reason
from pipeline.methods.zeroshot.model import ZeroShotDetector, ZeroShotModel
from pipeline.methods.zeroshot.settings import ZeroShotSettings

__all__ = [
    "ZEROSHOT", "ZeroShotDetector", "ZeroShotModel", "ZeroShotSettings",
    "prompt_word", "set_object_word", "unavailable_reason",
]
