"""The ``aecsad`` and ``csad`` methods: fit → evaluate → predict end to end, and what they output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pipeline.__main__ import main
from pipeline.data.images import load_rgb
from pipeline.data.synth import SynthSettings, generate
from pipeline.methods import get_method
from pipeline.methods.lgst.checkpoint import load_lgst_checkpoint
from pipeline.methods.runner import load_detector
from pipeline.methods.segmentation.checkpoint import load_checkpoint
from pipeline.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATEGORY = "pin_tray"


def test_both_methods_are_registered():
    assert get_method("aecsad").name == "aecsad" and get_method("csad").name == "csad"


@pytest.mark.parametrize("method", ["aecsad", "csad"])
def test_fit_evaluate_predict_end_to_end(method, tiny_profiles, tmp_path):
    data, ws = tmp_path / "data", tmp_path / "ws"
    generate(SynthSettings(out=data, categories=(CATEGORY,), n_train=6, n_validation=3, n_test_good=2,
                           n_logical=2, n_structural=2, size=96))
    common = ["--data", str(data), "--category", CATEGORY, "--workspace", str(ws), "--method", method,
              "--device", "cpu"]
    # pseudo-labels → segmenter → histogram → LGST → fusion, with two training settings changed
    assert main(["fit", *common, "--set", "lgst.steps=4", "--set", "segmentation.epochs=2"]) == 0
    folder = Workspace.open(ws).method_dir(CATEGORY, method)
    checkpoint = load_lgst_checkpoint(folder / "lgst.safetensors")
    assert checkpoint.settings.attention is (method == "aecsad") and checkpoint.steps_done == 4
    assert load_checkpoint(folder / "segmentation.safetensors").settings.epochs == 2
    record = Workspace.open(ws).model_record(CATEGORY, method)
    assert record.settings["settings_changes"] == {"lgst": {"steps": 4}, "segmentation": {"epochs": 2}}
    stats = json.loads((folder / "lgst_fusion.json").read_text())
    assert set(stats["fusion"]) == {"histogram_global", "histogram_grid", "lgst", "lgst_teacher_global", "retrieval"}
    assert stats["fusion_top_k"] == 3

    report = tmp_path / "ev.json"
    assert main(["evaluate", *common, "--out", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["method"] == method
    assert {"histogram_global", "histogram_grid", "lgst", "lgst_local", "lgst_global",
            "lgst_teacher_global"} <= set(result["branch_auroc"])
    assert all(0.0 <= v["mean"] <= 1.0 for v in result["branch_auroc"].values())

    detector = load_detector(Workspace.open(ws), CATEGORY, method, "cpu")
    image = load_rgb(next((data / CATEGORY / "test" / "structural_anomalies").glob("*.png")))
    [prediction] = detector.predict([image])
    scores = prediction.branch_scores
    z = sorted((scores[f"z_{b}"] for b in stats["fusion"]), reverse=True)
    assert prediction.score == pytest.approx(z[0] + z[1] + z[2])  # the three largest of five
    assert [scores[f"z_{b}"] for b in prediction.fused] == pytest.approx(z[:3])  # named for the Inspect page
    assert scores["lgst"] == pytest.approx(float(prediction.anomaly_map.max()), rel=0.05, abs=0.05)
    teacher_global = prediction.branch_maps["teacher_global"]  # resized from the grid: its maximum can only shrink
    assert 0 < float(teacher_global.max()) <= scores["lgst_teacher_global"] * (1 + 1e-5)
    assert set(prediction.branch_maps) == {"local", "global", "teacher_global", "segmentation", "histogram", "retrieval"}
    assert all(m.shape == prediction.anomaly_map.shape for m in prediction.branch_maps.values())
    assert np.isfinite(prediction.anomaly_map).all()

    assert main(["predict", "--workspace", str(ws), "--category", CATEGORY, "--method", method, "--device", "cpu",
                 str(next((data / CATEGORY / "test" / "good").glob("*.png"))), "--out", str(tmp_path / "pred")]) == 0
    [row] = [json.loads(line) for line in (tmp_path / "pred" / "scores.jsonl").read_text().splitlines()]
    assert {"lgst", "histogram_global"} <= set(row["branch_scores"])


def test_retrieval_branch_is_one_more_fused_branch_and_a_setting_leaves_it_out(tiny_profiles, tmp_path):
    """The instant detector's score, fitted on the LGST input side and z-normalised on the same
    validation images, is a fused branch; its patch map is kept for the Inspect page.
    ``fusion.retrieval=false`` and ``fusion.top_k=0`` give the thesis' sum of the other branches."""
    from pipeline.methods.fusion import TrimmedZ
    from pipeline.methods.runner import fit_method

    data = tmp_path / "data"
    generate(SynthSettings(out=data, categories=(CATEGORY,), n_train=6, n_validation=3, n_test_good=1,
                           n_logical=1, n_structural=1, size=96))
    ws = Workspace.create(tmp_path / "ws")
    ws.add_category(CATEGORY, data / CATEGORY, "loco")
    fit_method(ws, CATEGORY, "aecsad", device="cpu")
    folder = ws.method_dir(CATEGORY, "aecsad")
    detector = load_detector(ws, CATEGORY, "aecsad", "cpu")
    alone = get_method("instant").load(folder / "retrieval", torch.device("cpu"))
    assert alone.model.settings.image_size == 64  # the (shrunk) LGST input, not the instant profile's 256
    validation = [load_rgb(p) for p in sorted((data / CATEGORY / "validation" / "good").glob("*.png"))]
    z = TrimmedZ.fit([p.score for p in alone.predict(validation)])
    image = load_rgb(next((data / CATEGORY / "test" / "structural_anomalies").glob("*.png")))
    [prediction] = detector.predict([image])
    [retrieval] = alone.predict([image])
    scores = prediction.branch_scores
    assert scores["retrieval"] == pytest.approx(retrieval.score)
    assert scores["z_retrieval"] == pytest.approx(float(z(retrieval.score)))
    assert prediction.branch_maps["retrieval"].shape == prediction.anomaly_map.shape

    fit_method(ws, CATEGORY, "aecsad", device="cpu",
               settings_changes={"fusion": {"retrieval": False, "top_k": 0}})
    stats = json.loads((folder / "lgst_fusion.json").read_text())
    assert "retrieval" not in stats["fusion"] and stats["fusion_top_k"] == 0
    assert not (folder / "retrieval").exists()  # the stale bank is gone with the branch
    [prediction] = load_detector(ws, CATEGORY, "aecsad", "cpu").predict([image])
    scores = prediction.branch_scores
    assert "retrieval" not in scores
    assert prediction.score == pytest.approx(sum(scores[f"z_{b}"] for b in stats["fusion"]))
