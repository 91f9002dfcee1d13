"""The segmentation network's training sets: the hard D_L/D_U split and confidence weighting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.data.registered import register_category
from pipeline.data.synth import SynthSettings, generate
from pipeline.methods.segmentation.data import _holdout_indices, load_segmentation_data
from pipeline.pseudolabels import confidence, edits, store
from pipeline.pseudolabels.settings import ConfidenceSettings
from pipeline.pseudolabels.truth import store_true_labels
from pipeline.pseudolabels.types import Reliability
from pipeline.workspace import Workspace

CATEGORY = "pin_tray"
SIDE = 32
WEIGHTED = ConfidenceSettings()


@pytest.fixture()
def ws(tmp_path) -> Workspace:
    """Twelve tiny pin trays with their true maps as labels; image 0's map is wiped (an atypical
    histogram) and the split marks images 0 and 1 unreliable."""
    generate(SynthSettings(out=tmp_path / "data", categories=(CATEGORY,), n_train=12, n_validation=1,
                           n_test_good=1, n_logical=1, n_structural=1, size=48))
    workspace = Workspace.create(tmp_path / "ws")
    register_category(workspace, tmp_path / "data", CATEGORY)
    store_true_labels(workspace, CATEGORY)
    split = store.load_reliability(workspace, CATEGORY)
    store.save_label_map(workspace, CATEGORY, split.image_keys[0], np.zeros((48, 48), np.uint8))
    histograms = split.histograms.copy()
    histograms[0] = np.eye(histograms.shape[1])[0]
    reliable = np.ones(len(split.image_keys), bool)
    reliable[:2] = False
    store.save_reliability(workspace, CATEGORY, Reliability(split.image_keys, histograms, reliable, reliable,
                                                            split.distance))
    return workspace


def test_without_confidence_the_hard_split_is_read_as_before(ws):
    data = load_segmentation_data(ws, CATEGORY, SIDE, holdout_fraction=0.2, seed=3)
    state = store.load_state(ws, CATEGORY)
    held = _holdout_indices(len(state.reliable), 0.2, 3)  # the slice the loader always took
    assert data.keys["holdout"] == tuple(k for i, k in enumerate(state.reliable) if i in held)
    assert data.keys["train"] == tuple(k for i, k in enumerate(state.reliable) if i not in held)
    assert data.keys["unlabelled"] == state.unreliable and len(data.unlabelled_images) == 2
    assert data.train_weights is None


def test_with_confidence_every_typical_image_trains_with_its_weight(ws):
    found = confidence.image_confidence(ws, CATEGORY)
    data = load_segmentation_data(ws, CATEGORY, SIDE, holdout_fraction=0.2, seed=3, confidence=WEIGHTED)
    wiped, doubted = found.image_keys[:2]
    assert found.automatic[0] < WEIGHTED.floor  # the wiped map: left to the unlabelled losses
    assert data.keys["unlabelled"] == (wiped,) and len(data.unlabelled_images) == 1
    assert doubted in data.keys["train"] + data.keys["holdout"]  # HDBSCAN's D_U image is kept
    weights = dict(zip(data.keys["train"], data.train_weights))
    expected = dict(zip(found.image_keys, found.effective))
    assert weights == pytest.approx({k: expected[k] for k in weights})
    assert len(data.train_maps) == len(data.train_weights) == len(data.keys["train"])
    assert all(expected[k] == 1.0 for k in data.keys["holdout"]) and len(data.keys["holdout"]) == 2


def test_overrides_bring_an_image_in_or_take_it_out(ws):
    keys = confidence.image_confidence(ws, CATEGORY).image_keys
    confidence.set_confidence_override(ws, CATEGORY, keys[0], 0.5)
    ws.set_setting(edits.OVERRIDES, {keys[5]: False}, category=CATEGORY)  # forced unreliable by hand
    data = load_segmentation_data(ws, CATEGORY, SIDE, holdout_fraction=0.0, confidence=WEIGHTED)
    weights = dict(zip(data.keys["train"], data.train_weights))
    assert weights[keys[0]] == 0.5 and keys[5] not in weights
    assert data.keys["unlabelled"] == (keys[5],)


def test_weights_are_part_of_the_fingerprint_so_other_weights_start_over(ws):
    data = load_segmentation_data(ws, CATEGORY, SIDE, holdout_fraction=0.0, confidence=WEIGHTED)
    halved = dataclasses.replace(data, train_weights=tuple(w / 2 for w in data.train_weights))
    assert halved.fingerprint() != data.fingerprint()
    unweighted = dataclasses.replace(data, train_weights=None)
    assert unweighted.fingerprint() != data.fingerprint()
