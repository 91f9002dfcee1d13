"""Soft confidence of the pseudo-label maps: the IQR fence, its overrides and the stored choices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.data.registered import register_category
from pipeline.data.synth import SynthSettings, generate
from pipeline.pseudolabels import confidence, edits, store
from pipeline.pseudolabels.confidence import (
    ConfidenceSettings,
    describe,
    iqr_confidence,
    parse_confidence,
    resolve_confidence,
)
from pipeline.pseudolabels.truth import store_true_labels
from pipeline.workspace import Workspace

_SPREAD = np.linspace(-0.04, 0.04, 8)
TYPICAL = np.stack([0.6 + _SPREAD, 0.3 - _SPREAD, np.full(8, 0.1)], axis=1)
"""Eight evenly spread histograms: the outermost lie 0.75 IQR beyond the quartiles, inside the fence."""


def test_histograms_inside_every_fence_have_full_confidence():
    np.testing.assert_array_equal(iqr_confidence(TYPICAL), np.ones(len(TYPICAL)))


def test_an_image_outside_the_fence_decays_by_its_excess_in_iqrs():
    rows = np.vstack([TYPICAL, [[0.9, 0.0, 0.1]]])  # a part class wiped into the background
    settings = ConfidenceSettings(k=1.5, scale=1.0, min_iqr=1e-6)
    got = iqr_confidence(rows, settings)
    q1, q3 = np.percentile(rows, [25, 75], axis=0)
    iqr = q3 - q1
    excess = np.maximum(q1 - 1.5 * iqr - rows[-1], 0) + np.maximum(rows[-1] - q3 - 1.5 * iqr, 0)
    assert got[-1] == pytest.approx(math.exp(-(excess / np.maximum(iqr, 1e-6)).sum()))
    assert got[-1] < 1e-3 and (got[:-1] == 1.0).all()


def test_confidence_falls_with_the_distance_on_either_side_and_scale_slows_it():
    base = np.repeat([[0.5, 0.5]], 8, axis=0) + np.linspace(-0.02, 0.02, 8)[:, None] * [1, -1]
    near, far, below = [[0.56, 0.44]], [[0.6, 0.4]], [[0.44, 0.56]]
    values = [iqr_confidence(np.vstack([base, x]))[-1] for x in (near, far, below)]
    assert 0 < values[1] < values[0] < 1 and 0 < values[2] < 1
    slower = iqr_confidence(np.vstack([base, far]), ConfidenceSettings(scale=4.0))[-1]
    assert values[1] < slower < 1


def test_a_class_of_constant_area_uses_the_iqr_floor_not_a_division_by_zero():
    rows = np.array([[0.9, 0.1]] * 7 + [[0.9 - 0.002, 0.1 + 0.002]])
    got = iqr_confidence(rows, ConfidenceSettings(min_iqr=0.002))
    assert got[-1] == pytest.approx(math.exp(-2.0))  # one min_iqr of excess in each column
    assert np.isfinite(got).all() and (got[:-1] == 1.0).all()


def test_bad_input_and_settings_are_refused():
    with pytest.raises(ValueError):
        iqr_confidence(np.zeros(3))
    assert iqr_confidence(np.zeros((0, 3))).shape == (0,)
    for bad in ({"scale": 0}, {"k": -1}, {"floor": 1.5}, {"min_iqr": 0}):
        with pytest.raises(ValueError):
            ConfidenceSettings(**bad)


def test_hand_confidence_wins_over_the_reliability_override_which_wins_over_auto():
    keys = ("a", "b", "c", "d")
    got = resolve_confidence(keys, np.array([0.5, 0.5, 0.5, 0.5]), {"a": 0.2, "b": 0.9},
                             {"b": False, "c": False, "d": True})
    np.testing.assert_array_equal(got, [0.2, 0.9, 0.0, 1.0])


def test_typed_overrides_parse_or_say_what_to_type():
    assert parse_confidence("auto") is None and parse_confidence("  ") is None
    assert parse_confidence("0.25") == 0.25 and parse_confidence("0,5") == 0.5 and parse_confidence("1") == 1.0
    for bad in ("1.5", "-0.1", "nan", "high"):
        with pytest.raises(ValueError, match="between 0 and 1"):
            parse_confidence(bad)


def test_describe_counts_full_partial_and_low():
    assert describe(np.array([1.0, 1.0, 0.5, 0.01]), 0.05) == (
        "4 images: 2 at 1.0, 1 in (0.05, 1), 1 below 0.05; median 0.75, min 0.01")


@pytest.fixture()
def ws(tmp_path) -> Workspace:
    """Ten tiny pin trays with their true maps as pseudo-labels; the map of the first is wiped."""
    generate(SynthSettings(out=tmp_path / "data", categories=("pin_tray",), n_train=10, n_validation=1,
                           n_test_good=1, n_logical=1, n_structural=1, size=48))
    workspace = Workspace.create(tmp_path / "ws")
    register_category(workspace, tmp_path / "data", "pin_tray")
    store_true_labels(workspace, "pin_tray")
    split = store.load_reliability(workspace, "pin_tray")
    store.save_label_map(workspace, "pin_tray", split.image_keys[0], np.zeros((48, 48), np.uint8))
    histograms = split.histograms.copy()
    histograms[0] = [1.0] + [0.0] * (histograms.shape[1] - 1)
    store.save_reliability(workspace, "pin_tray", type(split)(split.image_keys, histograms, split.reliable,
                                                              split.automatic, split.distance))
    return workspace


def test_the_wiped_map_gets_low_confidence_and_overrides_persist(ws):
    found = confidence.image_confidence(ws, "pin_tray")
    assert found.automatic[0] < 0.05 and found.automatic[1:].min() > found.automatic[0]
    first, second = found.image_keys[:2]
    confidence.set_confidence_override(ws, "pin_tray", first, 0.7)
    ws.set_setting(edits.OVERRIDES, {second: False}, category="pin_tray")  # as the Clusters page's radio stores it
    again = confidence.image_confidence(Workspace.open(ws.path), "pin_tray")
    assert again.overrides == {first: 0.7}
    assert again.effective[0] == 0.7 and again.effective[1] == 0.0
    np.testing.assert_array_equal(again.automatic, found.automatic)
    confidence.set_confidence_override(ws, "pin_tray", first, None)
    assert confidence.confidence_overrides(ws, "pin_tray") == {}


def test_overrides_of_unknown_images_or_out_of_range_values_are_refused(ws):
    with pytest.raises(ValueError, match="not a pseudo-labelled training image"):
        confidence.set_confidence_override(ws, "pin_tray", "train/good/999.png", 0.5)
    key = confidence.image_confidence(ws, "pin_tray").image_keys[0]
    with pytest.raises(ValueError, match="between 0 and 1"):
        confidence.set_confidence_override(ws, "pin_tray", key, 2.0)
    assert confidence.confidence_overrides(ws, "pin_tray") == {}


def test_weighting_is_off_until_switched_on_per_category(ws):
    assert confidence.weighting_enabled(ws, "pin_tray") is False
    confidence.set_weighting(ws, "pin_tray", True)
    assert confidence.weighting_enabled(Workspace.open(ws.path), "pin_tray") is True
    confidence.set_weighting(ws, "pin_tray", False)
    assert confidence.weighting_enabled(ws, "pin_tray") is False
