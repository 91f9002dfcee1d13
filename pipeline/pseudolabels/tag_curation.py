"""Tag curation (Tags page, ``tags`` command): suggestions per category and the user's decisions.

Decisions live in the workspace's tags table (``keep`` / ``drop`` / ``background``); the last
suggestions are kept as the ``pseudo_labels.tag_suggestions`` setting so the page can show them
without running the taggers again. Decisions take effect at the next pseudo-label run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from pipeline.data.images import load_rgb
from pipeline.data.samples import Sample
from pipeline.errors import SettingsError
from pipeline.pseudolabels.adapters.base import Tagger, TagSuggestion
from pipeline.pseudolabels.edits import SUGGESTIONS
from pipeline.workspace import Workspace

if TYPE_CHECKING:  # torch is imported on use: the tags command and page load it only to suggest
    import torch

SUGGESTION_IMAGES = 3
"""Good training images the taggers look at (tags describe the category, a few images suffice)."""


@dataclass(frozen=True)
class TagChoice:
    """The tags a run prompts the detector with.

    Attributes:
        tags: object tags (parts).
        background: background tags (their masks are set aside).
        source: ``"curated"`` (the user kept some tags) or ``"vocabulary"`` (none kept yet: the
            category's curated vocabulary, minus tags the user decided about).
    """

    tags: tuple[str, ...]
    background: tuple[str, ...]
    source: str


def category_tags(ws: Workspace, category: str) -> TagChoice:
    """The kept and background tags of the category, or the vocabulary's while none are kept."""
    from pipeline.pseudolabels.adapters.tagger import VocabularyTagger

    decisions = ws.tags(category)
    kept = tuple(t for t, s in decisions.items() if s == "keep")
    background = tuple(t for t, s in decisions.items() if s == "background")
    if kept:
        return TagChoice(kept, background, "curated")
    vocabulary = [s for s in VocabularyTagger().suggest([], category) if s.tag not in decisions]
    return TagChoice(
        tuple(s.tag for s in vocabulary if not s.background),
        background + tuple(s.tag for s in vocabulary if s.background),
        "vocabulary",
    )


def set_tag_status(ws: Workspace, category: str, tag: str, status: str) -> str:
    """Record keep / drop / background for a tag (normalised: lower case, single spaces)."""
    from pipeline.pseudolabels.adapters.tagger import normalise_tag

    clean = normalise_tag(tag)
    if not clean:
        raise SettingsError(f"not a usable tag: {tag!r}")
    ws.category_dir(category)  # a clear error for a bad category name before any write
    ws.set_tag(category, clean, status)
    return clean


def add_custom_tags(ws: Workspace, category: str, text: str) -> list[str]:
    """Keep the tags typed by the user (comma separated); returns them normalised."""
    from pipeline.pseudolabels.adapters.tagger import user_tags

    return [set_tag_status(ws, category, s.tag, "keep") for s in user_tags(text)]


def suggest_tags(
    ws: Workspace, category: str, images: Sequence[np.ndarray], taggers: Sequence[Tagger]
) -> list[TagSuggestion]:
    """Merged suggestions of ``taggers`` for a few good images; stored for the Tags page."""
    from pipeline.pseudolabels.adapters.tagger import merge_suggestions

    merged = merge_suggestions(*(tagger.suggest(list(images), category) for tagger in taggers))
    ws.set_setting(SUGGESTIONS, [_to_dict(s) for s in merged], category=category)
    return merged


def suggestion_samples(samples: Sequence[Sample]) -> list[Sample]:
    """The first ``SUGGESTION_IMAGES`` of a category's training samples (``data.select("train")``)."""
    return list(samples)[:SUGGESTION_IMAGES]


@dataclass(frozen=True)
class Suggested:
    """Outcome of ``suggest_category_tags``: the merged suggestions and which taggers gave them."""

    suggestions: list[TagSuggestion]
    taggers: str


def suggest_category_tags(
    ws: Workspace, category: str, samples: Sequence[Sample], device: torch.device | str, imagenet: bool = True,
    classifier: torch.nn.Module | None = None, load_image: Callable[[Path], np.ndarray] = load_rgb,
    on_taggers: Callable[[str], None] | None = None,
) -> Suggested:
    """Ask the available taggers (Tags page, ``tags`` command) about ``samples`` and store the merged
    suggestions; the ImageNet tagger only when asked and there are images. ``on_taggers`` hears
    which taggers answer before they run (they can be slow)."""
    from pipeline.pseudolabels.adapters.factory import choose_taggers

    taggers, why = choose_taggers(device, imagenet=imagenet and bool(samples), classifier=classifier)
    if on_taggers is not None:
        on_taggers(why)
    return Suggested(suggest_tags(ws, category, [load_image(s.path) for s in samples], taggers), why)


def stored_suggestions(ws: Workspace, category: str) -> list[TagSuggestion]:
    """The suggestions ``suggest_tags`` stored last (empty before)."""
    entries = ws.get_setting(SUGGESTIONS, [], category=category) or []
    return [TagSuggestion(e["tag"], float(e["score"]), e["source"], bool(e["background"])) for e in entries]


def _to_dict(suggestion: TagSuggestion) -> dict:
    return {"tag": suggestion.tag, "score": suggestion.score, "source": suggestion.source,
            "background": suggestion.background}
