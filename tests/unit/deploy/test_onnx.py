"""ONNX export: ONNX Runtime's outputs equal PyTorch's within 1e-4, and the graph is the detector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.__main__ import main
from pipeline.data.images import load_rgb
from pipeline.deploy.graph import OUTPUTS, DetectorGraph, graph_inputs
from pipeline.deploy.onnx_export import onnx_session, run_onnx
from pipeline.methods.runner import load_detector
from pipeline.workspace import Workspace

from .conftest import CATEGORY

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOLERANCE = 1e-4


def test_onnx_export_matches_pytorch_and_the_detector(fitted_workspace, tmp_path):
    data, ws = fitted_workspace
    out = tmp_path / "aecsad.onnx"
    assert main(["export", "--workspace", str(ws), "--category", CATEGORY, "--method", "aecsad",
                 "--format", "onnx", "--out", str(out)]) == 0
    detector = load_detector(Workspace.open(ws), CATEGORY, "aecsad", "cpu")
    graph = DetectorGraph(detector).eval()
    assert graph.input_names == ("image", "image_lgst")  # 96 px segmenter, 64 px LGST in this workspace
    assert graph.branches[-1] == "retrieval" and graph.summed == 3
    paths = sorted((data / CATEGORY / "test").glob("*/*.png"))[:4]
    images = [load_rgb(p) for p in paths]
    inputs = graph_inputs(graph, images)
    session = onnx_session(out)
    with torch.no_grad():
        expected = dict(zip(OUTPUTS, (t.numpy() for t in graph(*inputs))))
    got = run_onnx(session, inputs)
    assert set(got) == set(OUTPUTS)
    np.testing.assert_array_equal(got["label_map"], expected["label_map"])
    for name in OUTPUTS:
        # The z-scores divide float32 rounding (~1e-7 of the raw LGST score) by the validation
        # spread, tiny after a 6-step fit: ×560 here. They, and the score summing them, are
        # compared within 1e-4 relative; every map and raw score within 1e-4 absolute.
        relative = TOLERANCE if name in ("score", "z_scores") else 0.0
        np.testing.assert_allclose(got[name], expected[name], rtol=relative, atol=TOLERANCE, err_msg=name)

    # batch size is dynamic: one image alone gives the same row
    single = run_onnx(session, tuple(t[:1] for t in inputs))
    np.testing.assert_allclose(single["score"], got["score"][:1], rtol=TOLERANCE, atol=TOLERANCE)

    # the graph computes what the workspace detector computes
    predictions = detector.predict(images)
    for i, p in enumerate(predictions):
        assert got["score"][i] == pytest.approx(p.score, rel=TOLERANCE, abs=TOLERANCE)
        for j, name in enumerate(graph.branches):
            assert got["branch_scores"][i, j] == pytest.approx(p.branch_scores[name], abs=TOLERANCE)
        np.testing.assert_array_equal(got["label_map"][i], p.branch_maps["segmentation"].astype(np.int64))
