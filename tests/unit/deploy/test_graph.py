"""The deployable graph computes what the workspace detector computes, part colours included."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.deploy.graph import DetectorGraph, graph_inputs
from pipeline.methods.aecsad.random_model import random_lgst_detector

from .test_bundle import TINY_LGST, TINY_SEG, _images

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_graph_branch_scores_equal_the_detector_with_part_colours_and_retrieval():
    detector = random_lgst_detector("quick", seg_overrides=TINY_SEG, lgst_overrides=TINY_LGST)
    graph = DetectorGraph(detector).eval()
    assert graph.branches == ("histogram_global", "histogram_grid", "part_colour", "lgst", "lgst_teacher_global",
                              "retrieval")
    assert graph.summed == detector.fusion.top_k == 3
    images = _images(3, side=64)[:3]
    images = [im[:, :64] for im in images]  # the networks' side: no resampler in the comparison
    with torch.no_grad():
        score, *_, branch, z = graph(*graph_inputs(graph, images))
    for i, p in enumerate(detector.predict(images)):
        assert score[i].item() == pytest.approx(p.score, rel=1e-5, abs=1e-5)
        for j, name in enumerate(graph.branches):
            assert branch[i, j].item() == pytest.approx(p.branch_scores[name], rel=1e-5, abs=1e-5), name
    assert np.ptp(branch[:, 2].numpy()) > 0  # the colour distance depends on the image
    assert np.ptp(branch[:, 5].numpy()) > 0  # and so does the retrieval distance
    np.testing.assert_allclose(score.numpy(), np.sort(z.numpy(), axis=1)[:, -3:].sum(axis=1), rtol=1e-9)


def test_graph_retrieval_with_anomaly_keys_and_calibrated_weights_equal_the_detector():
    from pipeline.methods.calibrated import CalibratedDetector
    from pipeline.metrics.calibration import FusionCalibration

    detector = random_lgst_detector("quick", seg_overrides=TINY_SEG, lgst_overrides=TINY_LGST)
    model = detector.retrieval.model
    detector.retrieval.model = type(model)(model.settings, model.good_bank, model.good_bank[:5] + 0.5, ("bad",))
    graph = DetectorGraph(detector).eval()
    images = [im[:, :64] for im in _images(2, side=64)]
    with torch.no_grad():
        *_, branch, _ = graph(*graph_inputs(graph, images))
    expected = [p.branch_scores["retrieval"] for p in detector.predict(images)]
    np.testing.assert_allclose(branch[:, 5].numpy(), expected, rtol=1e-5, atol=1e-5)

    weights = (0.5, 1.0, 0.0, 2.0, 1.0, 1.5)
    calibration = FusionCalibration(graph.branches, weights, "calibrated", "test", 10, 5)
    weighted = DetectorGraph(detector, weights).eval()
    assert weighted.summed == 6  # calibrated weights weigh every branch
    with torch.no_grad():
        score = weighted(*graph_inputs(weighted, images))[0]
    calibrated = CalibratedDetector(detector, calibration).predict(images)
    np.testing.assert_allclose(score.numpy(), [p.score for p in calibrated], rtol=1e-5, atol=1e-5)


def test_a_model_fitted_before_part_colours_and_teacher_global_exports_three_branches():
    detector = random_lgst_detector("quick", seg_overrides=TINY_SEG, lgst_overrides=TINY_LGST)
    detector.hist.colours = detector.hist.colour_z = detector.retrieval = None
    newer = ("part_colour", "lgst_teacher_global", "retrieval")
    detector.fusion = type(detector.fusion)({k: v for k, v in detector.fusion.branches.items() if k not in newer})
    graph = DetectorGraph(detector).eval()
    assert graph.branches == ("histogram_global", "histogram_grid", "lgst")
    images = [im[:, :64] for im in _images(2, side=64)]
    with torch.no_grad():
        score = graph(*graph_inputs(graph, images))[0]
    np.testing.assert_allclose(score.numpy(), [p.score for p in detector.predict(images)], rtol=1e-5, atol=1e-5)
