import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.methods.segmentation.losses import (
    SegLossWeights,
    class_weights,
    cross_entropy_loss,
    dice_loss,
    entropy_loss,
    focal_loss,
    histogram_loss,
    label_histogram,
    soft_histogram,
    total_loss,
    unsupervised_active,
)


def _target() -> torch.Tensor:
    """(2, 4, 4) labels over 3 classes, each class present."""
    t = torch.zeros(2, 4, 4, dtype=torch.long)
    t[0, :2, :2] = 1
    t[1, 2:, :] = 2
    return t


def _perfect_logits(target: torch.Tensor, n_labels: int, scale: float = 40.0) -> torch.Tensor:
    return F.one_hot(target, n_labels).permute(0, 3, 1, 2).float() * scale


def _random_logits(shape=(2, 3, 4, 4), seed=0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_perfect_prediction_gives_zero_ce_dice_and_focal():
    target = _target()
    logits = _perfect_logits(target, 3)
    weights = class_weights([target.numpy()], 3)
    assert cross_entropy_loss(logits, target, weights) < 1e-6
    assert dice_loss(logits, target) < 1e-6
    assert focal_loss(logits, target) < 1e-6


def test_wrong_prediction_is_penalised_by_every_supervised_loss():
    target = _target()
    wrong = _perfect_logits((target + 1) % 3, 3)
    assert cross_entropy_loss(wrong, target) > 10
    assert dice_loss(wrong, target) > 0.99
    assert focal_loss(wrong, target) > 10


def test_cross_entropy_is_the_weighted_mean_of_eq_4_1():
    target, logits = _target(), _random_logits()
    w = torch.tensor([0.5, 2.0, 1.0])
    log_p = F.log_softmax(logits, 1).gather(1, target[:, None])[:, 0]
    expected = -(w[target] * log_p).sum() / w[target].sum()
    assert torch.allclose(cross_entropy_loss(logits, target, w), expected)


def test_focal_with_gamma_zero_equals_cross_entropy_and_gamma_down_weights_easy_pixels():
    target, logits = _target(), _random_logits()
    w = torch.tensor([0.5, 2.0, 1.0])
    assert torch.allclose(focal_loss(logits, target, gamma=0.0), cross_entropy_loss(logits, target))
    assert torch.allclose(focal_loss(logits, target, gamma=0.0, alpha=w), cross_entropy_loss(logits, target, w))
    assert focal_loss(logits, target, gamma=2.0) < focal_loss(logits, target, gamma=0.0)


def test_dice_ignores_classes_absent_from_the_target():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2] = 1  # class 2 absent
    logits = _perfect_logits(target, 3)
    assert dice_loss(logits, target) < 1e-6  # an absent, unpredicted class does not count
    # half the pixels of class 1 predicted as the absent class 2: class 1's overlap drops
    leaky = target.clone()
    leaky[0, 0] = 2
    loss = dice_loss(_perfect_logits(leaky, 3), target)
    # class 0: dice 1; class 1: 2·4/(8+4) = 2/3 -> mean loss (0 + 1/3) / 2
    assert loss.item() == pytest.approx(1 / 6, abs=1e-4)


def test_uniform_prediction_has_maximal_entropy_and_confident_has_none():
    k = 5
    uniform = torch.zeros(2, k, 3, 3)
    assert entropy_loss(uniform).item() == pytest.approx(math.log(k), rel=1e-6)
    assert entropy_loss(_random_logits((2, k, 3, 3))) < math.log(k)
    confident = _perfect_logits(torch.zeros(2, 3, 3, dtype=torch.long), k)
    assert entropy_loss(confident) < 1e-6


def test_histogram_loss_is_zero_when_histograms_match_and_grows_with_mismatch():
    target = _target()
    reference = label_histogram([t.numpy() for t in target], 3)
    assert torch.allclose(reference, torch.tensor([(12 + 8) / 32, 4 / 32, 8 / 32]))
    # a prediction with exactly the reference fractions in each image: uniform logits won't do,
    # so use per-pixel probabilities equal to the reference everywhere
    matched = reference.log().view(1, 3, 1, 1).expand(2, 3, 4, 4)
    assert torch.allclose(soft_histogram(matched), reference.expand(2, 3))
    assert histogram_loss(matched, reference) < 1e-12
    assert histogram_loss(matched, reference, form="l1") < 1e-6
    all_background = _perfect_logits(torch.zeros(2, 4, 4, dtype=torch.long), 3)
    expected_l2 = float(((torch.tensor([1.0, 0, 0]) - reference) ** 2).sum())
    assert histogram_loss(all_background, reference).item() == pytest.approx(expected_l2, rel=1e-4)
    assert histogram_loss(all_background, reference, form="l1").item() == pytest.approx(0.75, rel=1e-4)


def test_class_weights_are_inverse_frequency_on_a_hand_case():
    labels = np.array([[0, 0, 0, 0], [0, 0, 1, 1]])  # 6 background, 2 of class 1, class 2 absent
    w = class_weights([labels], 3)
    # balanced rule: 8 pixels / (2 present classes · count)
    assert torch.allclose(w, torch.tensor([8 / 12, 8 / 4, 0.0]))
    assert (w[:2] * torch.tensor([6.0, 2.0])).sum().item() == pytest.approx(8.0)  # pixel-weighted mean 1
    assert class_weights([labels], 3, max_weight=1.5)[1].item() == pytest.approx(1.5)
    with pytest.raises(ValueError):
        class_weights([labels], 1)  # label 1 does not fit 1 label


def test_schedule_switches_on_at_the_stage_boundary():
    assert not unsupervised_active(39, 120)
    assert unsupervised_active(40, 120)
    assert [unsupervised_active(e, 15) for e in range(7)] == [False] * 5 + [True] * 2
    target = _target()
    logits, unlabelled = _random_logits(), _random_logits(seed=1)
    ref = label_histogram([t.numpy() for t in target], 3)
    kwargs = dict(unlabelled_logits=unlabelled, reference_hist=ref)
    before, parts_before = total_loss(logits, target, SegLossWeights(), 4, 15, **kwargs)
    after, parts_after = total_loss(logits, target, SegLossWeights(), 5, 15, **kwargs)
    assert set(parts_before) == {"ce", "dice", "focal"}
    assert set(parts_after) == {"ce", "dice", "focal", "hist", "entropy"}
    w = SegLossWeights()
    expected = before + w.hist * parts_after["hist"] + w.entropy * parts_after["entropy"]
    assert torch.allclose(after, expected)
    # no D_U batch: supervised only, whatever the epoch
    alone, parts = total_loss(logits, target, w, 14, 15)
    assert set(parts) == {"ce", "dice", "focal"} and torch.allclose(alone, before)


def test_total_loss_backpropagates_and_weight_presets_match_the_thesis():
    logits = _random_logits().requires_grad_(True)
    target = _target()
    loss, _ = total_loss(logits, target, SegLossWeights.csad(), 0, 10, class_weight=class_weights([target.numpy()], 3))
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    t = SegLossWeights.thesis()
    assert (t.ce, t.dice, t.focal, t.hist, t.entropy, t.hist_form) == (1.0, 0.5, 0.5, 0.3, 0.1, "l2")
    c = SegLossWeights.csad()
    assert (c.ce, c.dice, c.focal, c.hist, c.entropy, c.hist_form) == (0.5, 1.0, 10.0, 10.0, 1.0, "l1")
    with pytest.raises(ValueError):
        SegLossWeights(hist_form="l3")
