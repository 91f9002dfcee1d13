"""GroundingDINO adapter: random-weight model with a tiny local BERT, run end to end offline."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.models.weights import MissingWeightsError
from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.adapters.grounding_dino import (
    GroundingDinoDetector,
    GroundingDinoSettings,
    build_grounding_dino,
    caption_spans,
    cxcywh_to_xyxy,
)

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "?", "pin", "tray", "conveyor", "belt", "##s"]
SMALL = GroundingDinoSettings(resize_short_side=256, resize_max_side=400)  # ≥ 900 encoder tokens


def write_tiny_bert(folder: Path) -> Path:
    """A random 2-head, 1-layer BERT with a 12-word vocabulary, saved like a hub download."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=300)
    BertModel(config).save_pretrained(folder)
    BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("bert") / "bert-base-uncased")


@pytest.fixture(scope="module")
def model(tiny_bert: Path) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_grounding_dino(checkpoint=None, text_encoder=tiny_bert)


def test_normalised_cxcywh_becomes_clipped_pixel_xyxy():
    boxes = np.array([[0.5, 0.5, 0.5, 0.25], [0.05, 0.9, 0.2, 0.4]])
    xyxy = cxcywh_to_xyxy(boxes, width=200, height=100)
    np.testing.assert_allclose(xyxy[0], [50, 37.5, 150, 62.5])
    np.testing.assert_allclose(xyxy[1], [0, 70, 30, 100])  # x0 -5 and y1 110 clipped
    assert xyxy.dtype == np.float32


def test_each_tag_is_found_by_its_own_tokens(tiny_bert: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert), local_files_only=True)
    caption, spans = caption_spans(["pin", "conveyor belts", "tray"], tokenizer)
    assert caption == "pin . conveyor belts . tray ."
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(caption)["input_ids"])
    assert [[tokens[i] for i in span] for span in spans] == [["pin"], ["conveyor", "belt", "##s"], ["tray"]]


def test_builds_offline_from_the_local_folder_and_detects_inside_the_image(tiny_bert, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("GroundingDINO tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    torch.manual_seed(0)
    model = build_grounding_dino(checkpoint=None, text_encoder=tiny_bert)
    assert not model.training and model.bert.config.hidden_size == 32
    image = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    settings = GroundingDinoSettings(box_threshold=0.0, text_threshold=0.0, max_boxes_per_tag=5,
                                     resize_short_side=256, resize_max_side=400)
    boxes = GroundingDinoDetector(model, settings).detect(image, "a.png", ["Pin", "tray"], ["conveyor belt", "pin"])
    assert boxes and all(isinstance(box, Box) for box in boxes)
    by_tag = {tag: [b for b in boxes if b.tag == tag] for tag in ("pin", "tray", "conveyor belt")}
    assert {b.tag for b in boxes} <= set(by_tag)
    assert all(0 < len(found) <= 5 for found in by_tag.values())
    assert all(b.background == (b.tag == "conveyor belt") for b in boxes)  # "pin" stays an object
    for b in boxes:
        assert 0 <= b.x0 < b.x1 <= 96 and 0 <= b.y0 < b.y1 <= 64 and 0 <= b.score <= 1


def test_thresholds_filter_boxes(model):
    image = np.full((64, 64, 3), 128, np.uint8)
    strict = GroundingDinoDetector(model, GroundingDinoSettings(box_threshold=1.0, resize_short_side=256))
    assert strict.detect(image, "a.png", ["pin"], []) == []
    assert GroundingDinoDetector(model, SMALL).detect(image, "a.png", [], []) == []


def test_missing_text_encoder_folder_names_what_is_expected(tmp_path):
    with pytest.raises(MissingWeightsError, match="vocab.txt"):
        (tmp_path / "bert").mkdir()
        build_grounding_dino(checkpoint=None, text_encoder=tmp_path / "bert")


@pytest.mark.slow
def test_checkpoint_round_trip_gives_the_same_boxes(model, tiny_bert, tmp_path):
    torch.save({"model": model.state_dict()}, tmp_path / "groundingdino_swint_ogc.pth")
    torch.manual_seed(1)  # different random init, overwritten by the file
    loaded = build_grounding_dino(checkpoint=tmp_path / "groundingdino_swint_ogc.pth", text_encoder=tiny_bert)
    image = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    settings = GroundingDinoSettings(box_threshold=0.0, text_threshold=0.0, resize_short_side=256)
    expected = GroundingDinoDetector(model, settings).detect(image, "a", ["pin", "tray"], [])
    assert GroundingDinoDetector(loaded, settings).detect(image, "a", ["pin", "tray"], []) == expected
