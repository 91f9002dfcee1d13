import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.methods.segmentation.losses import (
    SegLossWeights, class_weights, cross_entropy_loss, dice_loss, entropy_loss, focal_loss, histogram_loss,
    label_histogram, soft_histogram, total_loss, unsupervised_active,
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


# --- per-sample (confidence) weights -----------------------------------------------------------

def _three_images(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, 4, 4) labels over 3 classes (class 2 only in the last image) and random logits."""
    target = torch.zeros(3, 4, 4, dtype=torch.long)
    target[0, :2, :2] = 1
    target[1, 1:, 2:] = 1
    target[2, 2:, :] = 2
    return target, _random_logits((3, 3, 4, 4), seed)


SUPERVISED = {
    "ce": lambda lg, t, w, s: cross_entropy_loss(lg, t, w, sample_weight=s),
    "focal": lambda lg, t, w, s: focal_loss(lg, t, 2.0, w, sample_weight=s),
    "dice": lambda lg, t, w, s: dice_loss(lg, t, w, sample_weight=s),
}
CLASS_WEIGHT = torch.tensor([0.5, 2.0, 1.0])


@pytest.mark.parametrize("name", sorted(SUPERVISED))
@pytest.mark.parametrize("class_weight", [None, CLASS_WEIGHT])
def test_weights_all_one_give_the_unweighted_loss(name, class_weight):
    target, logits = _three_images()
    loss = SUPERVISED[name]
    assert torch.allclose(loss(logits, target, class_weight, torch.ones(3)), loss(logits, target, class_weight, None))


@pytest.mark.parametrize("name", sorted(SUPERVISED))
@pytest.mark.parametrize("class_weight", [None, CLASS_WEIGHT])
def test_a_weight_zero_image_contributes_nothing(name, class_weight):
    target, logits = _three_images()
    loss = SUPERVISED[name]
    weighted = loss(logits, target, class_weight, torch.tensor([1.0, 1.0, 0.0]))
    assert torch.allclose(weighted, loss(logits[:2], target[:2], class_weight, None))  # class 2 absent there too
    # and scrambling the excluded image's labels changes nothing
    scrambled = target.clone()
    scrambled[2] = (scrambled[2] + 1) % 3
    assert torch.allclose(loss(logits, scrambled, class_weight, torch.tensor([1.0, 1.0, 0.0])), weighted)


@pytest.mark.parametrize("name", ["ce", "focal"])  # pixel means; Dice's per-class ratios need not lie between
def test_only_relative_weights_matter_and_a_low_weight_moves_the_loss_towards_the_others(name):
    target, logits = _three_images()
    loss = SUPERVISED[name]
    half = loss(logits, target, None, torch.tensor([1.0, 1.0, 0.5]))
    assert torch.allclose(loss(logits, target, None, torch.tensor([4.0, 4.0, 2.0])), half)
    full, without = loss(logits, target, None, None), loss(logits[:2], target[:2], None, None)
    assert min(full, without) - 1e-6 <= half <= max(full, without) + 1e-6


def test_fractional_weights_follow_the_weighted_mean_of_eq_4_1():
    target, logits = _three_images()
    s = torch.tensor([1.0, 0.25, 0.5])
    log_p = F.log_softmax(logits, 1).gather(1, target[:, None])[:, 0]
    pixel = s[:, None, None] * CLASS_WEIGHT[target]
    expected = -(pixel * log_p).sum() / pixel.sum()
    assert torch.allclose(cross_entropy_loss(logits, target, CLASS_WEIGHT, sample_weight=s), expected)


def test_without_sample_weights_dice_is_the_unchanged_class_balanced_formula():
    target, logits = _three_images(seed=3)
    probs = logits.softmax(1)
    onehot = F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    inter, total = (probs * onehot).sum((0, 2, 3)), probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    dice = (2 * inter + 1e-6) / (total + 1e-6)
    present = (onehot.sum((0, 2, 3)) > 0).float()
    assert torch.equal(dice_loss(logits, target), 1.0 - (present * dice).sum() / present.sum().clamp(min=1e-6))


def test_total_loss_weights_only_the_supervised_parts():
    target, logits = _three_images()
    unlabelled = _random_logits((2, 3, 4, 4), seed=5)
    ref = label_histogram([t.numpy() for t in target], 3)
    kwargs = dict(unlabelled_logits=unlabelled, reference_hist=ref, class_weight=CLASS_WEIGHT)
    plain, plain_parts = total_loss(logits, target, SegLossWeights(), 9, 10, **kwargs)
    ones, _ = total_loss(logits, target, SegLossWeights(), 9, 10, sample_weight=torch.ones(3), **kwargs)
    assert torch.allclose(ones, plain)
    _, parts = total_loss(logits, target, SegLossWeights(), 9, 10, sample_weight=torch.tensor([1.0, 0.0, 1.0]), **kwargs)
    assert parts["ce"] != plain_parts["ce"]
    assert parts["hist"] == plain_parts["hist"] and parts["entropy"] == plain_parts["entropy"]


def test_bad_sample_weights_are_refused():
    target, logits = _three_images()
    with pytest.raises(ValueError, match="sample weights"):
        cross_entropy_loss(logits, target, sample_weight=torch.ones(2))
    with pytest.raises(ValueError, match="negative"):
        focal_loss(logits, target, sample_weight=torch.tensor([1.0, -1.0, 1.0]))


def test_class_balance_and_reference_histogram_count_each_map_by_its_weight():
    maps = [np.array([[0, 0, 1, 1]]), np.array([[0, 0, 0, 2]])]
    assert torch.allclose(class_weights(maps, 3, sample_weight=[1.0, 0.0]), class_weights(maps[:1], 3))
    assert torch.allclose(class_weights(maps, 3, sample_weight=[1.0, 1.0]), class_weights(maps, 3))
    got = label_histogram(maps, 3, sample_weight=[3.0, 1.0])
    assert torch.allclose(got, torch.tensor([0.75 * 0.5 + 0.25 * 0.75, 0.75 * 0.5, 0.25 * 0.25]))
    assert torch.allclose(label_histogram(maps, 3, sample_weight=[1.0, 1.0]), label_histogram(maps, 3))
    with pytest.raises(ValueError):
        label_histogram(maps, 3, sample_weight=[0.0, 0.0])
    with pytest.raises(ValueError):
        class_weights(maps, 3, sample_weight=[1.0])
