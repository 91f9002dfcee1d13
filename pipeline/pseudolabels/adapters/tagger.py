"""Taggers (SPEC §4, §5 step 1): RAM++ when installed, else the curated vocabulary, the embedded
classifier's ImageNet labels and user-typed tags. All return ``TagSuggestion`` lists that
``merge_suggestions`` folds into one list for the Tags page.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from pipeline.pseudolabels.adapters.base import TagSuggestion

VOCABULARY_PATH = Path(__file__).resolve().parents[3] / "assets" / "vocabulary.json"
"""Curated tags per category: ``{category: {"components": [...], "background": [...]}}``."""

GENERIC = "generic"
"""Vocabulary entry used for a category that has none of its own."""


def normalise_tag(text: str) -> str:
    """Lower-case, single-spaced, without the dots GroundingDINO uses to separate prompts."""
    return re.sub(r"\s+", " ", text.replace(".", " ")).strip().lower()


def user_tags(text: str) -> list[TagSuggestion]:
    """Tags typed by the user, comma (or newline/semicolon) separated, in typed order, deduplicated.

    ``"Pin, cable  clip,,pin"`` gives ``pin`` and ``cable clip`` (score 1, source ``"user"``).
    """
    seen: dict[str, None] = {}
    for part in re.split(r"[,;\n]", text):
        tag = normalise_tag(part)
        if tag:
            seen.setdefault(tag, None)
    return [TagSuggestion(tag=tag, score=1.0, source="user") for tag in seen]


def merge_suggestions(*lists: Iterable[TagSuggestion]) -> list[TagSuggestion]:
    """One suggestion per lower-case tag, highest score first.

    The merged entry keeps the maximum score and all sources joined by ``+`` in first-seen order
    (``"vocabulary+imagenet"``). It is background only when every source says so: keeping a
    possible part as a part is the safer default, the user can still mark it background.
    """
    order: dict[str, None] = {}
    merged: dict[str, list[TagSuggestion]] = defaultdict(list)
    for suggestions in lists:
        for suggestion in suggestions:
            tag = normalise_tag(suggestion.tag)
            if tag:
                order.setdefault(tag, None)
                merged[tag].append(suggestion)
    result = [_merge_one(tag, merged[tag]) for tag in order]
    return sorted(result, key=lambda s: -s.score)  # stable: ties keep first-seen order


def _merge_one(tag: str, group: list[TagSuggestion]) -> TagSuggestion:
    sources = list(dict.fromkeys(part for s in group for part in s.source.split("+")))
    return TagSuggestion(
        tag=tag,
        score=max(s.score for s in group),
        source="+".join(sources),
        background=all(s.background for s in group),
    )


class VocabularyTagger:
    """The category's curated tags from ``assets/vocabulary.json`` (``generic`` when it has none)."""

    name = "vocabulary"

    def __init__(self, path: Path | str = VOCABULARY_PATH) -> None:
        self.path = Path(path)
        self._vocabulary: dict | None = None

    def suggest(self, images: Sequence[np.ndarray], category: str) -> list[TagSuggestion]:
        """Components (score 1) then background tags; ``images`` are not looked at."""
        entry = self.entry(category)
        components = [normalise_tag(t) for t in entry.get("components", [])]
        # A tag listed as both (e.g. generic "tray") stays a part; see merge_suggestions.
        background = [normalise_tag(t) for t in entry.get("background", []) if normalise_tag(t) not in components]
        return [TagSuggestion(t, 1.0, self.name) for t in components] + [
            TagSuggestion(t, 1.0, self.name, background=True) for t in background
        ]

    def entry(self, category: str) -> dict:
        if self._vocabulary is None:
            self._vocabulary = json.loads(self.path.read_text(encoding="utf-8"))
        return self._vocabulary.get(category) or self._vocabulary[GENERIC]


class ImageNetTagger:
    """Top-k ImageNet labels of the embedded EfficientNet-Lite0 classifier, averaged over images.

    ImageNet has few industrial part names, so these are hints for the user, not tags to trust.
    """

    name = "imagenet"

    def __init__(self, classifier: torch.nn.Module | None = None, k: int = 5, device: str = "cpu") -> None:
        """``classifier``: an ImageNet classifier in eval mode (1000 logits); built lazily from the
        embedded weights when omitted."""
        self.k = k
        self.device = device
        self._classifier = classifier

    @property
    def classifier(self) -> torch.nn.Module:
        if self._classifier is None:
            from pipeline.models.backbones import build_classifier

            self._classifier = build_classifier(device=self.device)
        return self._classifier

    def suggest(self, images: Sequence[np.ndarray], category: str) -> list[TagSuggestion]:
        """The ``k`` labels with the highest mean probability over ``images`` (score = that mean)."""
        from pipeline.models.imagenet import imagenet_labels, top_labels

        if not images:
            return []
        n_labels = len(imagenet_labels())
        totals: dict[str, float] = defaultdict(float)
        for image in images:
            # All 1000 probabilities, so the mean is exact and not only over each image's top-k.
            for label, probability in top_labels(self.classifier, image, k=n_labels):
                totals[normalise_tag(label)] += probability / len(images)
        best = sorted(totals.items(), key=lambda item: -item[1])[: self.k]
        return [TagSuggestion(tag, float(score), self.name) for tag, score in best]


class RamPlusTagger:
    """RAM++ (Recognize Anything Plus) tags; score = fraction of the images that got the tag.

    Needs the ``ram`` package (github.com/xinyu1205/recognize-anything, not on PyPI), the
    ``ram_plus`` checkpoint and a local ``bert-base-uncased`` folder for its tokenizer (RAM++ asks
    the Hugging Face hub for it otherwise). The factory builds it only when all three are present.
    """

    name = "ram_plus"
    IMAGE_SIZE = 384
    """Input side the Swin-L RAM++ checkpoint was trained at."""

    def __init__(self, checkpoint: Path | str, text_encoder: Path | str, device: str = "cpu") -> None:
        try:
            from ram import get_transform
            from ram.models import ram_plus
        except ImportError as error:
            raise ImportError(
                "RAM++ needs the `ram` package from https://github.com/xinyu1205/recognize-anything "
                "(not on PyPI)"
            ) from error

        with _local_ram_tokenizer(Path(text_encoder)):
            model = ram_plus(pretrained=str(checkpoint), image_size=self.IMAGE_SIZE, vit="swin_l")
        self.model = model.eval().to(device)
        self.device = device
        self.transform = get_transform(image_size=self.IMAGE_SIZE)

    def suggest(self, images: Sequence[np.ndarray], category: str) -> list[TagSuggestion]:
        from PIL import Image
        from ram import inference_ram

        counts: dict[str, int] = defaultdict(int)
        for image in images:
            batch = self.transform(Image.fromarray(image)).unsqueeze(0).to(self.device)
            english, _ = inference_ram(batch, self.model)  # "tag a | tag b | ..."
            for tag in {normalise_tag(t) for t in english.split("|")} - {""}:
                counts[tag] += 1
        ranked = sorted(counts.items(), key=lambda item: -item[1])
        return [TagSuggestion(tag, n / len(images), self.name) for tag, n in ranked]


@contextmanager
def _local_ram_tokenizer(folder: Path) -> Iterator[None]:
    """Make RAM++'s ``init_tokenizer`` read BERT's vocabulary from ``folder``, never the hub."""
    import ram.models.ram_plus as module  # it did ``from .utils import *``: patch its own name
    from transformers import BertTokenizer

    def init_tokenizer():  # same special tokens as ram.models.utils.init_tokenizer
        tokenizer = BertTokenizer.from_pretrained(str(folder), local_files_only=True)
        tokenizer.add_special_tokens({"bos_token": "[DEC]"})
        tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
        tokenizer.enc_token_id = tokenizer.additional_special_tokens_ids[0]
        return tokenizer

    original = getattr(module, "init_tokenizer", None)
    module.init_tokenizer = init_tokenizer
    try:
        yield
    finally:
        module.init_tokenizer = original
