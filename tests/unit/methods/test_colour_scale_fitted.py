"""Each method's fitted colour scale: defects coloured apart from good areas, the threshold at its level."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.discover import load_category
from pipeline.data.images import load_mask, load_rgb
from pipeline.data.synth import SynthSettings, generate
from pipeline.methods.runner import fit_method, load_detector
from pipeline.metrics.colour_scale import THRESHOLD_POSITION, MapScale, workspace_display_range
from pipeline.metrics.heatmap import overlay
from pipeline.workspace import Workspace

CATEGORY = "pin_tray"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("colour_scale")
    generate(SynthSettings(out=data, categories=(CATEGORY,), seed=5, n_train=8, n_validation=4, n_test_good=1,
                           n_logical=1, n_structural=3, size=96))
    return data


@pytest.mark.parametrize("method", ["instant", "histogram", "aecsad", "csad"])
def test_a_defect_is_coloured_apart_and_the_threshold_sits_at_its_level(method, tiny_data, tiny_profiles, tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ws.add_category(CATEGORY, tiny_data / CATEGORY, "loco")
    fit_method(ws, CATEGORY, method, device="cpu")
    threshold = ws.get_threshold(CATEGORY, method)
    scale = MapScale.from_dict(ws.model_record(CATEGORY, method).metrics["map_scale"])
    vmin, vmax = workspace_display_range(ws, CATEGORY, method)
    assert vmin == pytest.approx(scale.typical_good)
    assert vmin + THRESHOLD_POSITION * (vmax - vmin) == pytest.approx(scale.level(threshold))
    if method == "instant":  # its score is its map's peak: the level is the threshold itself
        assert scale.level(threshold) == pytest.approx(threshold)

    if method == "histogram":
        return  # at 96 px and 8 training images its class maps do not localise; the scale is checked above
    detector = load_detector(ws, CATEGORY, method, "cpu")
    gaps = []
    for sample in [s for s in load_category(tiny_data / CATEGORY).select("test") if s.mask_paths]:
        rgb = load_rgb(sample.path)
        mask = load_mask(sample.mask_paths, rgb.shape[:2]).astype(bool)
        [pred] = detector.predict([rgb])
        coloured = overlay(np.zeros_like(rgb), pred.anomaly_map, vmin, vmax, opacity=1.0).astype(float)
        gaps.append(np.linalg.norm(coloured[mask].mean(0) - coloured[~mask].mean(0)))
    assert max(gaps) > 20.0, gaps  # RGB distance between the defect's mean colour and the rest's
