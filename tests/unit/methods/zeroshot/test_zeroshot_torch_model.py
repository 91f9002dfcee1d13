"""Zero-shot maths on hand-made embeddings: anchors, per-patch probabilities, maps, image scores."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.methods.zeroshot.model import ZeroShotModel, score_features
from pipeline.methods.zeroshot.settings import ZeroShotSettings
from pipeline.methods.zeroshot.torch_model import (
    ABNORMAL,
    NORMAL,
    abnormal_probability,
    image_scores,
    mean_anchor,
    patch_maps,
    text_anchors,
    top_mean,
    upsample_maps,
)

D = 8


def _anchors(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return text_anchors(torch.randn(3, D, generator=gen), torch.randn(4, D, generator=gen))


def test_mean_anchor_is_a_unit_vector_that_no_single_prompt_length_dominates():
    prompts = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    louder = prompts * torch.tensor([[100.0], [1.0]])
    assert torch.allclose(mean_anchor(prompts), torch.tensor([math.sqrt(0.5)] * 2))
    assert torch.allclose(mean_anchor(louder), mean_anchor(prompts))
    with pytest.raises(ValueError):
        mean_anchor(torch.zeros(0, 2))


def test_abnormal_probability_is_the_softmax_over_the_two_anchor_cosines():
    anchors = _anchors()
    feature = torch.randn(D)
    cos = F.normalize(feature, dim=0) @ anchors.T
    expected = 1 / (1 + math.exp(-(cos[ABNORMAL] - cos[NORMAL]).item() / 0.07))
    assert abnormal_probability(feature, anchors, 0.07).item() == pytest.approx(expected, rel=1e-5)
    # Only the direction counts: a scaled feature is the same patch.
    assert abnormal_probability(5 * feature, anchors, 0.07).item() == pytest.approx(expected, rel=1e-5)


def test_a_patch_equal_to_the_abnormal_anchor_scores_higher_than_one_equal_to_the_normal_anchor():
    anchors = _anchors()
    grid = (2, 3)
    tokens = torch.randn(1, 6, D)
    tokens[0, 1] = anchors[ABNORMAL] * 3.0
    tokens[0, 4] = anchors[NORMAL] * 0.5
    maps = patch_maps([tokens], grid, anchors, temperature=0.01)
    assert maps.shape == (1, 2, 3)
    abnormal, normal = maps[0, 0, 1].item(), maps[0, 1, 1].item()
    assert abnormal > 0.5 > normal
    # Both sit at the extremes one cosine gap allows: symmetric around 1/2.
    assert abnormal == pytest.approx(1 - normal, abs=1e-6)
    assert abnormal == pytest.approx(maps.max().item()) and normal == pytest.approx(maps.min().item())


def test_an_abnormal_patch_raises_the_image_score_and_marks_its_place_in_the_map():
    anchors = _anchors(1)
    settings = ZeroShotSettings(image_size=32, blur_sigma=1.0, top_fraction=0.05, global_weight=0.5)
    model = ZeroShotModel(settings, {}, anchors, 0.0)
    good = anchors[NORMAL].expand(2, 16, D).clone()
    bad = good.clone()
    bad[1, 0] = anchors[ABNORMAL]  # top-left patch of the second image
    globals_ = anchors[NORMAL].expand(2, D)
    clean, damaged = score_features(model, globals_, [bad], (4, 4))
    assert clean.anomaly_map.shape == damaged.anomaly_map.shape == (32, 32)
    assert damaged.score > clean.score
    assert damaged.branch_scores["clip_patches"] > clean.branch_scores["clip_patches"]
    assert damaged.branch_scores["clip_global"] == pytest.approx(clean.branch_scores["clip_global"])
    row, col = divmod(int(damaged.anomaly_map.argmax()), 32)
    assert row < 8 and col < 8
    assert float(clean.anomaly_map.max() - clean.anomaly_map.min()) < 1e-5


def test_patch_maps_average_the_layers_and_check_the_grid():
    anchors = _anchors()
    first, second = torch.randn(2, 4, D), torch.randn(2, 4, D)
    both = patch_maps([first, second], (2, 2), anchors, 0.1)
    alone = [patch_maps([t], (2, 2), anchors, 0.1) for t in (first, second)]
    assert torch.allclose(both, (alone[0] + alone[1]) / 2)
    with pytest.raises(ValueError, match="3x3"):
        patch_maps([first], (3, 3), anchors, 0.1)


def test_upsampling_keeps_a_flat_map_flat_at_the_requested_size():
    maps = torch.full((2, 4, 4), 0.3)
    up = upsample_maps(maps, 32, blur_sigma=2.0)
    assert up.shape == (2, 32, 32)
    assert torch.allclose(up, torch.full_like(up, 0.3), atol=1e-6)


def test_image_score_blends_the_global_probability_with_the_top_pixel_mean():
    maps = torch.zeros(1, 10, 10)
    maps[0, 0, :5] = 1.0  # 5 of 100 pixels
    assert top_mean(maps, 0.05).item() == pytest.approx(1.0)
    assert top_mean(maps, 0.10).item() == pytest.approx(0.5)
    score = image_scores(maps, torch.tensor([0.2]), top_fraction=0.10, global_weight=0.25)
    assert score.item() == pytest.approx(0.25 * 0.2 + 0.75 * 0.5)


def test_settings_refuse_templates_without_the_object_slot():
    with pytest.raises(ValueError, match="{object}"):
        ZeroShotSettings(normal_templates=("a photo of a thing",))
    normal, abnormal = ZeroShotSettings(object_name="pin tray").prompts()
    assert normal[0] == "a photo of a flawless pin tray." and abnormal[0] == "a photo of a damaged pin tray."
