"""The ``histogram`` method: trimmed z-normalisation, the cell map, and fit/evaluate/predict end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.__main__ import main
from pipeline.data.images import load_rgb
from pipeline.data.registered import register_category
from pipeline.data.synth import SynthSettings, generate
from pipeline.evaluation.evaluate import evaluate_method
from pipeline.methods import get_method
from pipeline.methods.histogram.method import TrimmedZ, cell_map
from pipeline.methods.histogram.scoring import Deviation, named_regions
from pipeline.methods.runner import fit_method, load_detector
from pipeline.methods.segmentation import settings as seg_settings
from pipeline.pseudolabels.truth import store_true_labels
from pipeline.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATEGORY = "pin_tray"


def test_trimmed_z_uses_the_middle_60_percent():
    scores = np.array([0.0, 1, 2, 3, 4, 5, 6, 7, 8, 100])  # the outlier must not set the scale
    z = TrimmedZ.fit(scores)
    middle = scores[(scores >= np.percentile(scores, 20)) & (scores <= np.percentile(scores, 80))]
    assert z.mean == pytest.approx(middle.mean()) and z.std == pytest.approx(middle.std())
    assert z(np.array([z.mean]))[0] == pytest.approx(0.0)
    assert TrimmedZ.fit(np.zeros(5)).std > 0  # constant scores do not divide by zero


def _deviation(cell, unusualness):
    return Deviation("r", cell, 1, "pin", 0, 1.0, 0.0, 0.1, unusualness, "")


def test_cell_map_paints_each_cell_with_its_worst_deviation():
    deviations = [_deviation(None, 2.0), _deviation((0, 1), 5.0), _deviation((0, 1), 1.0), _deviation((1, 0), 3.0)]
    out = cell_map(deviations, (4, 6), grid=2)
    assert out.shape == (4, 6) and out.dtype == np.float32
    np.testing.assert_allclose(out[:2, 3:], 5.0 + 1.0)  # top-right: worst cell value + half the whole image's
    np.testing.assert_allclose(out[2:, :3], 3.0 + 1.0)
    np.testing.assert_allclose(out[:2, :3], 1.0)


def test_named_regions_box_each_unusual_cell_once_by_its_worst_class():
    deviations = [  # most unusual first, as explain() returns them
        Deviation("top-right", (0, 1), 2, "nut", 0, 1.0, 0.0, 0.1, 6.0, ""),
        Deviation("whole image", None, 2, "nut", 1, 2.0, 0.1, 0.2, 5.0, ""),  # no place to box
        Deviation("top-right", (0, 1), 1, "bolt", 2, 1.0, 0.2, 0.1, 4.0, ""),  # same cell: named once
        Deviation("bottom-left", (1, 0), 1, "bolt", 2, 1.0, 0.2, 0.1, 2.5, ""),
        Deviation("bottom-right", (1, 1), 1, "bolt", 1, 1.0, 0.1, 0.1, 1.0, ""),  # below the bar
    ]
    regions = named_regions(deviations, grid=2, above=2.0)
    assert [r.name for r in regions] == ["grid cell top-right: 'nut' count 0, expected 1",
                                         "grid cell bottom-left: 'bolt' count 2, expected 1"]
    assert [r.box for r in regions] == [(0.0, 0.5, 0.5, 1.0), (0.5, 0.0, 1.0, 0.5)]


def test_histogram_is_a_registered_method():
    assert get_method("histogram").name == "histogram"


def _shrink_profile(monkeypatch, **changes) -> None:
    """Make ``SegmentationSettings.for_profile`` return the quick profile with ``changes``."""
    original = seg_settings.SegmentationSettings.for_profile.__func__

    def small(cls, profile, seed=0, **overrides):
        return dataclasses.replace(original(cls, profile, seed=seed, **overrides), **changes)

    monkeypatch.setattr(seg_settings.SegmentationSettings, "for_profile", classmethod(small))


@pytest.fixture()
def tiny_profile(monkeypatch):
    """The quick profile shrunk to a few seconds: 96 px input, a 16-channel head, 6 epochs."""
    _shrink_profile(monkeypatch, image_size=96, epochs=6, batch_size=4, aspp_channels=16,
                    decoder_channels=16, low_channels=8)


@pytest.fixture()
def learning_profile(monkeypatch):
    """Small but enough to segment 128 px fastener kits (held-out mIoU ~0.8) in about 5 s."""
    _shrink_profile(monkeypatch, image_size=128, epochs=20, batch_size=2, lr=1e-2, dropout=0.1,
                    aspp_channels=32, decoder_channels=32, low_channels=16)


def test_fit_evaluate_predict_end_to_end(tiny_profile, tmp_path, capsys):
    data, ws = tmp_path / "data", tmp_path / "ws"
    generate(SynthSettings(out=data, categories=(CATEGORY,), n_train=6, n_validation=3, n_test_good=2,
                           n_logical=2, n_structural=1, size=96))
    common = ["--data", str(data), "--category", CATEGORY, "--workspace", str(ws), "--method", "histogram",
              "--device", "cpu"]
    assert main(["fit", *common]) == 0  # builds the missing pseudo-labels first
    assert (ws / "categories" / CATEGORY / "pseudo_labels").is_dir()
    report = tmp_path / "ev.json"
    assert main(["evaluate", *common, "--out", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["method"] == "histogram" and 0.0 <= result["auroc"]["logical"] <= 1.0

    detector = load_detector(Workspace.open(ws), CATEGORY, "histogram", "cpu")
    image = load_rgb(next((data / CATEGORY / "test" / "logical_anomalies").glob("*.png")))
    [prediction] = detector.predict([image])
    scores = prediction.branch_scores
    assert set(scores) == {"histogram_global", "histogram_grid", "z_histogram_global", "z_histogram_grid"}
    assert prediction.score == pytest.approx(scores["z_histogram_global"] + scores["z_histogram_grid"])
    assert prediction.anomaly_map.ndim == 2 and np.isfinite(prediction.score)
    assert prediction.branch_maps["segmentation"].shape == prediction.anomaly_map.shape
    assert all("class '" in sentence for sentence in prediction.explanations)

    logical = next((data / CATEGORY / "test" / "logical_anomalies").glob("*.png"))
    assert main(["predict", "--workspace", str(ws), "--category", CATEGORY, "--method", "histogram",
                 "--device", "cpu", str(logical), "--out", str(tmp_path / "pred")]) == 0
    [row] = [json.loads(line) for line in (tmp_path / "pred" / "scores.jsonl").read_text().splitlines()]
    assert set(row["branch_scores"]) == set(scores)
    assert row["margin"] < 0 if row["verdict"] == "good" else row["margin"] > 0
    assert row.get("explanations", []) == list(prediction.explanations)  # same image as above


def test_trained_on_true_maps_it_separates_missing_and_extra_parts(learning_profile, tmp_path):
    """fastener_kit (2 bolts, 2 nuts, 1 washer): missing, extra and swapped parts change counts."""
    data = tmp_path / "data"
    generate(SynthSettings(out=data, categories=("fastener_kit",), n_train=10, n_validation=4, n_test_good=6,
                           n_logical=6, n_structural=0, size=128))
    ws = Workspace.create(tmp_path / "ws")
    register_category(ws, data, "fastener_kit")
    store_true_labels(ws, "fastener_kit")  # labels the pseudo-label chain cannot match at 128 px
    fit_method(ws, "fastener_kit", "histogram", device="cpu")
    result = evaluate_method(ws, "fastener_kit", "histogram", device="cpu", save_maps=False)
    assert result.auroc["logical"] >= 0.85

    detector = load_detector(ws, "fastener_kit", "histogram", "cpu")
    logical = sorted((data / "fastener_kit" / "test" / "logical_anomalies").glob("*.png"))
    predictions = detector.predict([load_rgb(p) for p in logical])
    # Most anomalies are explained by a whole-image count that differs from the usual one.
    off = [p for p in predictions if any(_count_is_off(e) for e in p.explanations if e.startswith("whole image"))]
    assert len(off) >= 4
    # Every grid cell a sentence names off is boxed and named, and only those.
    for p in predictions:
        cells = {e.split(":", 1)[0] for e in p.explanations if e.startswith("grid cell")}
        assert {r.name.split(":", 1)[0] for r in p.regions} == cells
    assert sum(bool(p.regions) for p in predictions) >= 2  # a part missing or extra lands in some cell


def _count_is_off(sentence: str) -> bool:
    """``"whole image: class 'bolt' count 3, expected 2; ..."`` -> True."""
    counted = sentence.split(" count ", 1)[1].split(";", 1)[0]  # "3, expected 2"
    observed, expected = counted.split(", expected ")
    return float(observed) != float(expected)


def test_fit_flag_saves_confidence_weighting_and_the_segmenter_trains_with_it(tiny_profile, tmp_path):
    from pipeline.methods.segmentation.checkpoint import load_checkpoint
    from pipeline.methods.segmentation.train import CHECKPOINT
    from pipeline.pseudolabels.confidence import weighting_enabled

    data = tmp_path / "data"
    generate(SynthSettings(out=data, categories=(CATEGORY,), n_train=6, n_validation=2, n_test_good=1,
                           n_logical=1, n_structural=1, size=96))
    ws = Workspace.create(tmp_path / "ws")
    register_category(ws, data, CATEGORY)
    store_true_labels(ws, CATEGORY)
    common = ["fit", "--data", str(data), "--category", CATEGORY, "--workspace", str(ws.path), "--method",
              "histogram", "--device", "cpu"]
    checkpoint = ws.method_dir(CATEGORY, "histogram") / CHECKPOINT
    assert main([*common, "--confidence-weighting"]) == 0
    assert weighting_enabled(ws, CATEGORY) and load_checkpoint(checkpoint).settings.confidence_weighting
    assert main(common) == 0  # no flag: the saved setting stays
    assert load_checkpoint(checkpoint).settings.confidence_weighting
    assert main([*common, "--no-confidence-weighting"]) == 0
    assert not weighting_enabled(ws, CATEGORY) and not load_checkpoint(checkpoint).settings.confidence_weighting
