"""Taggers: curated vocabulary, typed tags, ImageNet suggestions and merging them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.models.imagenet import imagenet_labels
from pipeline.pseudolabels.adapters.base import TagSuggestion
from pipeline.pseudolabels.adapters.tagger import (
    ImageNetTagger,
    VocabularyTagger,
    merge_suggestions,
    normalise_tag,
    user_tags,
)


def test_vocabulary_gives_the_category_entry_or_the_generic_one():
    tagger = VocabularyTagger()
    pin_tray = tagger.suggest([], "pin_tray")
    assert [(s.tag, s.background) for s in pin_tray] == [
        ("tray", False), ("divider", False), ("pin", False), ("background", True)]
    assert all(s.score == 1.0 and s.source == "vocabulary" for s in pin_tray)
    generic = tagger.suggest([], "no_such_category")
    assert {"screw", "cable"} <= {s.tag for s in generic if not s.background}
    assert "conveyor belt" in {s.tag for s in generic if s.background}
    assert [s.tag for s in generic].count("tray") == 1  # listed as both in generic: kept a part


def test_vocabulary_file_is_configurable(tmp_path):
    path = tmp_path / "vocabulary.json"
    vocabulary = {"generic": {"components": ["Gear"]}, "kit": {"components": ["Nut"], "background": ["Felt"]}}
    path.write_text(json.dumps(vocabulary))
    suggestions = VocabularyTagger(path).suggest([], "kit")
    assert [(s.tag, s.background) for s in suggestions] == [("nut", False), ("felt", True)]


def test_user_tags_are_split_normalised_and_deduplicated():
    tags = user_tags(" Pin, cable   Clip,,pin;\nwasher. ")
    assert [t.tag for t in tags] == ["pin", "cable clip", "washer"]
    assert all(t.score == 1.0 and t.source == "user" and not t.background for t in tags)
    assert user_tags(" , ") == []


def test_merge_keeps_max_score_all_sources_and_background_only_if_unanimous():
    merged = merge_suggestions(
        [TagSuggestion("Pin", 1.0, "vocabulary"), TagSuggestion("table", 1.0, "vocabulary", background=True)],
        [TagSuggestion("pin", 0.3, "imagenet"), TagSuggestion("screw", 0.6, "imagenet")],
        [TagSuggestion("table", 0.9, "ram_plus", background=True), TagSuggestion("screw", 0.2, "ram_plus", True)],
    )
    assert [(s.tag, s.score, s.source, s.background) for s in merged] == [
        ("pin", 1.0, "vocabulary+imagenet", False),
        ("table", 1.0, "vocabulary+ram_plus", True),
        ("screw", 0.6, "imagenet+ram_plus", False),
    ]
    assert merge_suggestions() == []
    assert normalise_tag("  Conveyor   Belt. ") == "conveyor belt"


class ColourClassifier(torch.nn.Module):
    """Fake ImageNet classifier: reddish images → class 967, bluish → class 1."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(x), 1000)
        red_minus_blue = (x[:, 0] - x[:, 2]).mean(dim=(1, 2))
        logits[:, 967] = self.scale * red_minus_blue
        logits[:, 1] = -self.scale * red_minus_blue
        return logits


def test_imagenet_labels_are_averaged_over_the_images():
    red = np.zeros((32, 32, 3), np.uint8); red[..., 0] = 255
    blue = np.zeros((32, 32, 3), np.uint8); blue[..., 2] = 255
    tagger = ImageNetTagger(ColourClassifier(), k=3)
    labels = imagenet_labels()
    only_red = tagger.suggest([red], "kit")
    assert only_red[0].tag == labels[967] and only_red[0].score > 0.99 and only_red[0].source == "imagenet"
    both = tagger.suggest([red, blue], "kit")
    assert len(both) == 3 and {both[0].tag, both[1].tag} == {labels[967], labels[1]}
    assert both[0].score == pytest.approx(0.5, abs=0.01) and both[2].score < 0.01
    assert tagger.suggest([], "kit") == []


def test_embedded_classifier_gives_ranked_probabilities():
    image = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    suggestions = ImageNetTagger(k=4).suggest([image, image[::-1]], "kit")
    scores = [s.score for s in suggestions]
    assert len(suggestions) == 4 and scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1
    assert all(s.tag == normalise_tag(s.tag) for s in suggestions)
