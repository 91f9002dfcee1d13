"""The embedded EfficientNet-Lite0 weights are real ImageNet weights: the proof is a photo."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from pipeline.models.backbones import build_classifier
from pipeline.models.imagenet import imagenet_labels, top_labels


@pytest.fixture(scope="module")
def classifier():
    return build_classifier()


def test_labels_are_the_1000_imagenet_classes_by_index():
    labels = imagenet_labels()
    assert len(labels) == 1000
    assert labels[967] == "espresso"
    assert labels[0] == "tench"  # first synonym only, not "tench, Tinca tinca"


def test_embedded_weights_see_an_espresso_in_the_coffee_photo(classifier):
    top = top_labels(classifier, data.coffee(), k=5)
    assert top[0][0] == "espresso"
    assert top[0][1] > 0.5
    probabilities = [p for _, p in top]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0 + 1e-6


def test_random_weights_do_not_find_the_espresso():
    # Guards the test above: a model that ignores its weights would not fail it otherwise.
    top = top_labels(build_classifier(checkpoint=None), data.coffee(), k=1)
    assert not (top[0][0] == "espresso" and top[0][1] > 0.5)


def test_classifier_is_frozen_and_in_eval(classifier):
    assert not classifier.training
    assert not any(p.requires_grad for p in classifier.parameters())
    assert len(top_labels(classifier, np.zeros((10, 20, 3), np.uint8), k=3)) == 3
