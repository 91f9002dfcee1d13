"""Adapter choice: real model when its weights are found, fallback otherwise, and why."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

import pipeline.pseudolabels.adapters.grounding_dino as gd_module
import pipeline.pseudolabels.adapters.sam as sam_module
from pipeline.models.weights import SHARED_DIR_ENV, MissingWeightsError
from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.adapters.factory import (
    NO_DETECTOR,
    choose_detector,
    choose_segmenter,
    choose_taggers,
    model_unavailable,
    ram_plus_unavailable,
)
from pipeline.pseudolabels.adapters.manual_boxes import ManualBoxDetector

REFERENCES = {"train/good/000.png": [Box(1, 1, 9, 9, "pin"), Box(10, 10, 20, 20, "cap")], "train/good/001.png": []}


class StandIn:
    name = "classic"

    def __init__(self, settings=None) -> None:
        self.settings = settings

    def segment_boxes(self, image, boxes):
        return np.zeros((len(boxes), *image.shape[:2]), bool)

    def propose(self, image):
        return np.zeros((0, *image.shape[:2]), bool)


@pytest.fixture
def classic(monkeypatch):
    """The real classical segmenter, or a stand-in while that module is not written yet."""
    try:
        from pipeline.pseudolabels.adapters.classic import ClassicSegmenter
    except ImportError:
        fake = types.ModuleType("pipeline.pseudolabels.adapters.classic")
        fake.ClassicSegmenter = StandIn
        monkeypatch.setitem(sys.modules, fake.__name__, fake)
        ClassicSegmenter = StandIn
    return ClassicSegmenter


@pytest.fixture
def weights_dir(isolated_weights, monkeypatch, tmp_path) -> Path:
    """An empty shared weights folder; tests put (fake) files in it."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv(SHARED_DIR_ENV, str(folder))
    return folder


def test_auto_segmenter_falls_back_and_says_why(isolated_weights, classic):
    segmenter, why = choose_segmenter("auto")
    assert isinstance(segmenter, classic) and segmenter.name == "classic"
    assert why.startswith("Segment Anything ViT-B weights not found (expected sam_vit_b_01ec64.pth")
    assert why.endswith("using classical region proposals (felzenszwalb/SLIC regions, GrabCut inside boxes)")
    assert "as asked" in choose_segmenter("classic")[1]


def test_explicit_sam_without_weights_names_the_file(isolated_weights):
    with pytest.raises(MissingWeightsError, match="sam_vit_b_01ec64.pth"):
        choose_segmenter("sam")
    with pytest.raises(MissingWeightsError, match="nowhere.pth"):
        choose_segmenter("auto", checkpoint="/nowhere.pth")  # an explicit path is never ignored
    with pytest.raises(ValueError, match="auto, sam, classic"):
        choose_segmenter("grabcut")


def test_auto_segmenter_uses_sam_when_its_weights_are_found(weights_dir, monkeypatch):
    (weights_dir / "sam_vit_b_01ec64.pth").write_bytes(b"x")
    built = []
    monkeypatch.setattr(sam_module, "build_sam", lambda *args: built.append(args) or "model")
    monkeypatch.setattr(sam_module, "SamSegmenter", lambda model, settings: ("sam", model, settings.model_type))
    segmenter, why = choose_segmenter("auto", device="cpu")
    assert segmenter == ("sam", "model", "vit_b") and built == [("vit_b", "default", "cpu")]
    assert why == f"SAM vit_b ({weights_dir / 'sam_vit_b_01ec64.pth'})"


def test_detector_none_and_manual(isolated_weights, classic):
    assert choose_detector("none") == (None, NO_DETECTOR)
    with pytest.raises(ValueError, match="boxes drawn on at least one reference image"):
        choose_detector("manual", references={"a.png": []})
    segmenter = StandIn()
    detector, why = choose_detector("manual", references=REFERENCES, segmenter=segmenter)
    assert isinstance(detector, ManualBoxDetector) and detector.segmenter is segmenter
    assert why == "the 2 box(es) drawn on 1 reference image(s), propagated by the classic segmenter"
    assert isinstance(choose_detector("manual", references=REFERENCES)[0].segmenter, classic)


def test_auto_detector_without_weights_uses_drawn_boxes_or_none(isolated_weights, classic):
    detector, why = choose_detector("auto")
    assert detector is None and "groundingdino_swint_ogc.pth" in why and why.endswith(NO_DETECTOR)
    detector, why = choose_detector("auto", references=REFERENCES, segmenter=StandIn())
    assert isinstance(detector, ManualBoxDetector) and "groundingdino_swint_ogc.pth" in why
    assert "using the 2 box(es) drawn" in why
    with pytest.raises(MissingWeightsError, match="groundingdino_swint_ogc.pth"):
        choose_detector("groundingdino")
    with pytest.raises(ValueError, match="auto, groundingdino, manual, none"):
        choose_detector("yolo")


def test_auto_detector_uses_grounding_dino_when_both_parts_are_found(weights_dir, monkeypatch):
    (weights_dir / "groundingdino_swint_ogc.pth").write_bytes(b"x")
    bert = weights_dir / "bert-base-uncased"
    bert.mkdir()
    detector, why = choose_detector("auto")
    assert detector is None and "text encoder" in why and "bert-base-uncased" in why  # half is not enough
    for name in ("config.json", "vocab.txt", "model.safetensors"):
        (bert / name).write_text("{}")
    built = []
    monkeypatch.setattr(gd_module, "build_grounding_dino", lambda *args: built.append(args) or "model")
    detector, why = choose_detector("auto", references=REFERENCES)
    assert isinstance(detector, gd_module.GroundingDinoDetector) and detector.model == "model"
    assert built == [("default", "default", "cpu")]
    assert why == f"GroundingDINO ({weights_dir / 'groundingdino_swint_ogc.pth'}, text encoder {bert})"


def test_taggers_without_ram_plus(isolated_weights):
    taggers, why = choose_taggers()
    assert [t.name for t in taggers] == ["vocabulary", "imagenet"]
    assert why.startswith("RAM++") and "package 'ram' is not installed" in why
    assert why.endswith("using curated vocabulary + ImageNet labels")
    assert [t.name for t in choose_taggers(imagenet=False)[0]] == ["vocabulary"]
    with pytest.raises((ImportError, MissingWeightsError)):
        choose_taggers(ram_checkpoint="/nowhere/ram_plus_swin_large_14m.pth")


def test_availability_sentences_for_the_pages(weights_dir):
    """The pages ask what is missing without building any model."""
    assert "package 'ram' is not installed" in ram_plus_unavailable()
    missing = model_unavailable("sam_vit_b")
    assert "sam_vit_b_01ec64.pth" in missing or "package 'segment_anything' is not installed" in missing
    if "not installed" not in missing:
        (weights_dir / "sam_vit_b_01ec64.pth").write_bytes(b"not checked until loaded")
        assert model_unavailable("sam_vit_b") == ""
