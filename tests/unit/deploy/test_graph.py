"""The deployable graph computes what the workspace detector computes, part colours included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.deploy.graph import DetectorGraph, graph_inputs
from pipeline.deploy.random_models import random_lgst_detector

from .test_bundle import TINY_LGST, TINY_SEG, _images

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_graph_branch_scores_equal_the_detector_with_the_part_colour_branch():
    detector = random_lgst_detector("quick", seg_overrides=TINY_SEG, lgst_overrides=TINY_LGST)
    graph = DetectorGraph(detector).eval()
    assert graph.branches == ("histogram_global", "histogram_grid", "part_colour", "lgst", "lgst_teacher_global")
    images = _images(3, side=64)[:3]
    images = [im[:, :64] for im in images]  # the networks' side: no resampler in the comparison
    with torch.no_grad():
        score, *_, branch, z = graph(*graph_inputs(graph, images))
    for i, p in enumerate(detector.predict(images)):
        assert score[i].item() == pytest.approx(p.score, rel=1e-5, abs=1e-5)
        for j, name in enumerate(graph.branches):
            assert branch[i, j].item() == pytest.approx(p.branch_scores[name], rel=1e-5, abs=1e-5), name
    assert np.ptp(branch[:, 2].numpy()) > 0  # the colour distance depends on the image


def test_a_model_fitted_before_part_colours_and_teacher_global_exports_three_branches():
    detector = random_lgst_detector("quick", seg_overrides=TINY_SEG, lgst_overrides=TINY_LGST)
    detector.hist.colours = detector.hist.colour_z = None
    newer = ("part_colour", "lgst_teacher_global")
    detector.fusion = type(detector.fusion)({k: v for k, v in detector.fusion.branches.items() if k not in newer})
    graph = DetectorGraph(detector).eval()
    assert graph.branches == ("histogram_global", "histogram_grid", "lgst")
    images = [im[:, :64] for im in _images(2, side=64)]
    with torch.no_grad():
        score = graph(*graph_inputs(graph, images))[0]
    np.testing.assert_allclose(score.numpy(), [p.score for p in detector.predict(images)], rtol=1e-5, atol=1e-5)
