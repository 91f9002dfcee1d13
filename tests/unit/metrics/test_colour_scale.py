"""The colour scale in map units: threshold translation, its colour, older records."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.metrics.colour_scale import (
    THRESHOLD_POSITION,
    MapScale,
    colour_bar,
    fit_map_scale,
    model_display_range,
    scale_caption,
)
from pipeline.metrics.heatmap import colorize


def test_score_equal_to_map_peak_translates_to_the_same_level_inside_and_beyond_the_range():
    scale = fit_map_scale([np.full((4, 4), 0.1) + np.eye(4) * p for p in (1.0, 2.0, 3.0)], [1.1, 2.1, 3.1])
    assert scale.typical_good == pytest.approx(0.1)
    for threshold in (0.5, 1.1, 2.6, 3.1, 5.0):
        assert scale.level(threshold) == pytest.approx(threshold)


def test_fused_scores_are_matched_to_peaks_by_quantile():
    scale = MapScale(typical_good=2.0, scores=(1.0, 2.0, 3.0), peaks=(10.0, 20.0, 40.0))
    assert scale.level(2.5) == pytest.approx(30.0)  # halfway between the 2nd and 3rd good image
    assert scale.level(4.0) == pytest.approx(60.0)  # the last segment's slope, 20 per score unit
    assert scale.level(0.0) == pytest.approx(0.0)   # the first segment's slope, 10 per score unit
    vmin, vmax = scale.display_range(2.5)
    assert (vmin, vmax) == pytest.approx((2.0, 58.0))  # the level 30 sits in the middle
    assert scale.display_range(None) == pytest.approx((2.0, 78.0))  # without a threshold: the top good peak


def test_the_threshold_level_gets_the_named_colour_and_the_bar_marks_it():
    scale = MapScale(typical_good=0.5, scores=(1.0, 2.0), peaks=(1.0, 2.0))
    vmin, vmax = scale.display_range(1.5)
    middle = colorize(np.array([[vmin + THRESHOLD_POSITION * (vmax - vmin)]]), 0.0, 1.0)
    at_level = colorize(np.array([[scale.level(1.5)]]), vmin, vmax)
    expected = colorize(np.array([[THRESHOLD_POSITION]]), 0.0, 1.0)
    np.testing.assert_array_equal(at_level, expected)
    assert not np.array_equal(middle, colorize(np.array([[0.0]]), 0.0, 1.0))
    bar = colour_bar(vmin, vmax, width=101)
    assert bar.shape == (14, 101, 3) and (bar[:, 50] == 255).all()
    assert "1.5" in scale_caption(vmin, vmax) and "red" in scale_caption(vmin, vmax)


def test_older_records_keep_their_range_and_a_calibration_moves_the_level():
    assert model_display_range({"display_range": [0.2, 3.0]}, 7.0) == (0.2, 3.0)
    record = {"map_scale": MapScale(0.0, (1.0, 2.0), (1.0, 2.0)).to_dict()}
    assert model_display_range(record, 1.5) == pytest.approx((0.0, 3.0))
    # re-fused validation scores, twice as large: the same threshold is a lower map level
    assert model_display_range(record, 3.0, current_scores=[2.0, 4.0]) == pytest.approx((0.0, 3.0))
    assert MapScale.from_dict(record["map_scale"]) == MapScale(0.0, (1.0, 2.0), (1.0, 2.0))
