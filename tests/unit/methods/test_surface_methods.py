"""Surfaces (no separate parts): pseudo-labels say so, and histogram, aecsad and csad still fit,
with the branches that apply (``pipeline.pseudolabels.surface``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.__main__ import main
from pipeline.data.images import load_rgb
from pipeline.data.synth import SynthSettings, generate
from pipeline.methods.fusion import TrimmedZ
from pipeline.methods.histogram.surface import SurfaceDetector
from pipeline.methods.runner import fit_method, load_detector
from pipeline.pseudolabels import store
from pipeline.pseudolabels.surface import SURFACE_MESSAGE, is_surface
from pipeline.pseudolabels.types import Clustering
from pipeline.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATEGORY = "textured_plate"


@pytest.fixture()
def plate(tmp_path):
    data = tmp_path / "data"
    generate(SynthSettings(out=data, categories=(CATEGORY,), n_train=6, n_validation=3, n_test_good=2,
                           n_logical=0, n_structural=3, size=96))
    return data


def test_pseudo_labels_on_a_surface_say_so_in_one_line(plate, tmp_path, capsys):
    ws = tmp_path / "ws"
    args = ["pseudo-labels", "--data", str(plate), "--category", CATEGORY, "--workspace", str(ws), "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count(SURFACE_MESSAGE) == 1
    assert is_surface(Workspace.open(ws), CATEGORY)


def test_histogram_on_a_surface_scores_by_patch_retrieval(plate, tiny_profiles, tmp_path, capsys):
    ws = tmp_path / "ws"
    common = ["--data", str(plate), "--category", CATEGORY, "--workspace", str(ws), "--device", "cpu"]
    assert main(["fit", *common, "--method", "histogram"]) == 0
    assert SURFACE_MESSAGE in capsys.readouterr().out
    workspace = Workspace.open(ws)
    detector = load_detector(workspace, CATEGORY, "histogram", "cpu")
    assert isinstance(detector, SurfaceDetector)
    validation = [load_rgb(p) for p in sorted((plate / CATEGORY / "validation" / "good").glob("*.png"))]
    z = TrimmedZ.fit([p.score for p in detector.retrieval.predict(validation)])
    image = load_rgb(next((plate / CATEGORY / "test" / "structural_anomalies").glob("*.png")))
    [prediction] = detector.predict([image])
    assert prediction.score == pytest.approx(float(z(prediction.branch_scores["retrieval"])))
    assert SURFACE_MESSAGE in prediction.explanations[0]
    report = tmp_path / "ev.json"
    assert main(["evaluate", *common, "--method", "histogram", "--out", str(report)]) == 0
    assert 0.0 <= json.loads(report.read_text())["auroc"]["structural"] <= 1.0


@pytest.mark.parametrize("method", ["aecsad", "csad"])
def test_students_and_retrieval_fit_a_surface_without_the_part_branches(method, plate, tiny_profiles, tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ws.add_category(CATEGORY, plate / CATEGORY, "loco")
    summary = fit_method(ws, CATEGORY, method, device="cpu", settings_changes={"fusion": {"surface_check": False}})
    assert summary.notes == (SURFACE_MESSAGE,)
    folder = ws.method_dir(CATEGORY, method)
    stats = json.loads((folder / "lgst_fusion.json").read_text())
    assert stats["surface"] is True
    assert set(stats["fusion"]) == {"lgst", "lgst_teacher_global", "retrieval"}
    assert stats["surface_branch_check"] == {}
    assert not (folder / "segmentation.safetensors").exists()  # no parts: no segmenter trained
    detector = load_detector(ws, CATEGORY, method, "cpu")
    image = load_rgb(next((plate / CATEGORY / "test" / "structural_anomalies").glob("*.png")))
    [prediction] = detector.predict([image])
    z = sorted((prediction.branch_scores[f"z_{b}"] for b in stats["fusion"]), reverse=True)
    assert prediction.score == pytest.approx(sum(z[:3]))
    assert set(prediction.branch_maps) == {"local", "global", "teacher_global", "retrieval"}
    assert all(m.shape == prediction.anomaly_map.shape for m in prediction.branch_maps.values())
    assert np.isfinite(prediction.anomaly_map).all()
    assert prediction.explanations == (SURFACE_MESSAGE,)


def test_on_a_surface_the_branches_that_best_separate_synthetic_defects_are_fused(plate, tiny_profiles, tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ws.add_category(CATEGORY, plate / CATEGORY, "loco")
    fit_method(ws, CATEGORY, "aecsad", device="cpu")
    folder = ws.method_dir(CATEGORY, "aecsad")
    stats = json.loads((folder / "lgst_fusion.json").read_text())
    check = stats["surface_branch_check"]
    assert list(stats["fusion"]) == check["kept"]
    assert len(check["separation"]) == 7  # every non-empty subset of three branches
    assert check["separation"]["+".join(check["kept"])] == max(check["separation"].values())
    detector = load_detector(ws, CATEGORY, "aecsad", "cpu")
    image = load_rgb(next((plate / CATEGORY / "test" / "structural_anomalies").glob("*.png")))
    [prediction] = detector.predict([image])
    assert prediction.score == pytest.approx(sum(prediction.branch_scores[f"z_{b}"] for b in check["kept"]))
    assert ("retrieval" in prediction.branch_maps) == ("retrieval" in check["kept"])


def test_one_part_class_that_covers_the_image_is_a_surface_and_a_small_one_is_not(tmp_path):
    """One class over most of the image is the surface itself; one small part on a backdrop still
    has counts to compare."""
    ws = Workspace.create(tmp_path / "ws")
    keys = [f"train/good/{i}.png" for i in range(3)]

    def one_class(covered: slice) -> bool:
        label = np.zeros((20, 20), np.uint8)
        label[covered] = 1
        for key in keys:
            store.save_label_map(ws, "c", key, label)
        store.save_clustering(ws, "c", Clustering(image_keys=tuple(keys), component_ids=np.ones(3, np.int32),
                                                  labels=np.ones(3, np.int32), names={1: "part"}))
        return is_surface(ws, "c")

    assert one_class(slice(0, 18)) is True
    assert one_class(slice(0, 4)) is False
