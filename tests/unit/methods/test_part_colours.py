"""Part-colour scorer: exact class colours, a colour combination never seen in training scores far
above every good one, and a save → load round trip is identical."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.methods.histogram.colours import (
    class_colours, class_shares, colour_distances, colour_features, enough_images, feature_count, fit_colour_model,
    load_colour_model, save_colour_model,
)

FLAVOURS = np.array([(232, 140, 40), (84, 172, 60), (134, 62, 154)], np.float64)


def bottle(label: int, drink: int, rng: np.random.Generator, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A toy image: class 1 (label) in the top half, class 2 (drink) in the bottom, on grey background."""
    labels = np.zeros((size, size), np.int64)
    labels[4:14, 6:26], labels[18:30, 6:26] = 1, 2
    image = np.full((size, size, 3), 120.0)
    image[labels == 1] = FLAVOURS[label]
    image[labels == 2] = FLAVOURS[drink] * 0.8
    image += rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), labels


def test_class_colours_are_the_mean_rgb_of_each_class_and_nan_when_absent():
    image = np.zeros((10, 10, 3), np.uint8)
    labels = np.zeros((10, 10), np.int64)
    labels[:5] = 1
    image[:5, :, 0], image[:2, :, 1] = 255, 51  # class 1: red everywhere, green on 2 of its 5 rows
    colours = class_colours(image, labels, n_classes=2)
    np.testing.assert_allclose(colours[0], [1.0, 0.2 * 2 / 5, 0.0])
    assert np.isnan(colours[1]).all()  # class 2 is absent
    fill = np.array([[0.0, 0.0, 0.0], [0.3, 0.4, 0.5]])
    features = colour_features([image], [labels], 2, fill)
    np.testing.assert_allclose(features[0], [1.0, 0.08, 0.0, 0.3, 0.4, 0.5, 0.5, 0.5, 0.0])


def test_stray_pixels_have_no_colour_of_their_own():
    image = np.full((100, 100, 3), 200, np.uint8)
    labels = np.zeros((100, 100), np.int64)
    labels[0, :5] = 1  # 5 px of 10 000: below the 0.1% floor
    assert np.isnan(class_colours(image, labels, 1)).all()
    assert not np.isnan(class_colours(image, labels, 1, min_fraction=1e-4)).any()


def test_an_unseen_colour_combination_scores_above_every_good_image():
    rng = np.random.default_rng(0)
    train = [bottle(f, f, rng) for f in rng.integers(0, 3, size=40)]
    model = fit_colour_model([im for im, _ in train], [m for _, m in train], n_classes=2)
    good = [bottle(f, f, rng) for f in (0, 1, 2, 0, 1, 2)]
    wrong = [bottle(f, (f + 1) % 3, rng) for f in (0, 1, 2)]
    good_d = colour_distances(model, [im for im, _ in good], [m for _, m in good])
    wrong_d = colour_distances(model, [im for im, _ in wrong], [m for _, m in wrong])
    # every colour in the wrong images is common on its own; only the pair is new
    assert wrong_d.min() > 2 * good_d.max()


def test_a_missing_part_is_judged_by_the_areas_not_by_a_made_up_colour():
    rng = np.random.default_rng(1)
    train = [bottle(f, f, rng) for f in rng.integers(0, 3, size=40)]
    model = fit_colour_model([im for im, _ in train], [m for _, m in train], n_classes=2)
    image, labels = bottle(0, 0, rng)
    no_label = labels.copy()
    no_label[labels == 1] = 0
    features = colour_features([image], [no_label], 2, model.fill)
    np.testing.assert_allclose(features[0, :3], model.fill[0])  # the absent class takes its training colour
    good_d = colour_distances(model, [image], [labels])
    assert colour_distances(model, [image], [no_label])[0] > good_d[0]  # its area (0) is still far off


def test_save_and_load_round_trip_is_identical(tmp_path):
    rng = np.random.default_rng(2)
    train = [bottle(f, f, rng) for f in rng.integers(0, 3, size=12)]
    model = fit_colour_model([im for im, _ in train], [m for _, m in train], n_classes=2)
    save_colour_model(model, tmp_path)
    loaded = load_colour_model(tmp_path)
    assert (loaded.n_classes, loaded.min_fraction) == (model.n_classes, model.min_fraction)
    for name in ("fill", "mean", "precision"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert load_colour_model(tmp_path / "elsewhere") is None  # a model fitted before part colours


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="must be"):
        class_colours(np.zeros((4, 4, 3), np.uint8), np.zeros((5, 5), np.int64), 1)
    with pytest.raises(ValueError, match="at least one"):
        fit_colour_model([], [], 1)


def test_a_colour_model_needs_two_training_images_per_feature():
    assert feature_count(4) == 17  # 4 classes × RGB, then 5 area fractions
    assert enough_images(34, 4) and not enough_images(33, 4)


def test_the_class_whose_colour_is_new_carries_the_distance():
    rng = np.random.default_rng(3)
    train = [bottle(f, f, rng) for f in rng.integers(0, 3, size=40)]
    model = fit_colour_model([im for im, _ in train], [m for _, m in train], n_classes=2)
    image, labels = bottle(1, 1, rng)
    image[labels == 2] = (20, 40, 230)  # a blue drink no training image had
    [shares] = class_shares(model, [image], [labels])
    assert shares[1] > 0.5 and shares[1] > shares[0]


def test_an_unusual_colour_is_explained_in_a_sentence():
    from pipeline.methods.histogram.random_model import random_histogram_detector
    from pipeline.methods.fusion import TrimmedZ
    from pipeline.methods.segmentation.settings import SegmentationSettings
    from pipeline.models.backbones import build_backbone

    settings = SegmentationSettings.for_profile("quick", image_size=64, aspp_channels=8, decoder_channels=8, low_channels=8)
    detector = random_histogram_detector(settings, build_backbone("efficientnet_lite0", checkpoint=None))
    image = np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    distance = detector.predict([image])[0].branch_scores["part_colour"]
    detector.colour_z = TrimmedZ(distance + 1.0, 1.0)  # one spread below the good images
    [calm] = detector.predict([image])
    assert not any(s.startswith("part colours") for s in calm.explanations)
    detector.colour_z = TrimmedZ(distance - 10.0, 1.0)  # ten spreads above
    [loud] = detector.predict([image])
    [sentence] = [s for s in loud.explanations if s.startswith("part colours")]
    assert "class 'part" in sentence and "10.0 spreads" in sentence
