"""Model bundles: round trip to the same scores, and tampered bundles refused."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import torch
import pytest

from pipeline.__main__ import main
from pipeline.deploy.bundle import (
    BundleError, detector_parts, load_bundle_detector, read_bundle, write_bundle,
)
from pipeline.methods.aecsad.random_model import random_lgst_detector
from pipeline.methods.instant.random_model import random_instant_detector
from pipeline.methods.segmentation.settings import SegmentationSettings

from .conftest import CATEGORY

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_SEG = dict(image_size=64, aspp_channels=8, decoder_channels=8, low_channels=8)
TINY_LGST = dict(image_size=64, grid=16, channels=16, local_width=(8, 16), global_width=8)


def _images(n=2, side=80):
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (side, side + 8, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    detector = random_lgst_detector("quick", seg_overrides=TINY_SEG, lgst_overrides=TINY_LGST)
    config, tensors = detector_parts(detector, SegmentationSettings.for_profile("quick", **TINY_SEG))
    path = tmp_path_factory.mktemp("bundle") / "tiny.bundle"
    write_bundle(path, config, tensors, category="demo", threshold=1.25, display_range=(0.0, 2.0))
    return path, detector


def test_random_detector_round_trip_gives_identical_predictions(tiny_bundle):
    path, detector = tiny_bundle
    bundle = read_bundle(path)
    assert bundle.threshold == 1.25 and bundle.method == "aecsad"
    assert set(bundle.manifest["parts"]) == {"config.json", "weights.safetensors"}
    assert {"torch", "numpy", "safetensors", "python"} <= set(bundle.manifest["versions"])
    loaded = load_bundle_detector(bundle)
    assert loaded.fusion == detector.fusion and loaded.fusion.top_k == 3  # the retrieval branch and top-3 fusion
    assert torch.equal(loaded.retrieval.model.good_bank, detector.retrieval.model.good_bank)
    assert len({b["prefix"] for b in bundle.config["backbones"].values()}) == 1  # one copy for the three roles
    for a, b in zip(detector.predict(_images()), loaded.predict(_images())):
        assert a.score == b.score and a.branch_scores == b.branch_scores
        np.testing.assert_array_equal(a.anomaly_map, b.anomaly_map)
        assert a.explanations == b.explanations


def test_instant_round_trip(tmp_path):
    detector = random_instant_detector("quick", n_train=2)
    config, tensors = detector_parts(detector)
    write_bundle(tmp_path / "i.bundle", config, tensors)
    loaded = load_bundle_detector(read_bundle(tmp_path / "i.bundle"))
    assert [p.score for p in detector.predict(_images(1))] == [p.score for p in loaded.predict(_images(1))]


def _rewrite(src, dst, change):
    with zipfile.ZipFile(src) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    dst.write_bytes(buffer.getvalue())


def _flip_weight_byte(members):
    data = bytearray(members["weights.safetensors"])
    data[-10] ^= 0x01
    members["weights.safetensors"] = bytes(data)


@pytest.mark.parametrize("change, message", [
    (_flip_weight_byte, "tampered with or damaged: weights.safetensors"),
    (lambda m: m.__setitem__("config.json", m["config.json"].replace(b'"threshold": 1.25', b'"threshold": 99.0')),
     "tampered with or damaged: config.json"),
    (lambda m: m.__setitem__("extra.py", b"print('hi')"), "unexpected members ['extra.py']"),
    (lambda m: m.pop("config.json"), "missing ['config.json']"),
])
def test_tampered_bundle_is_refused(tiny_bundle, tmp_path, change, message):
    bad = tmp_path / "bad.bundle"
    _rewrite(tiny_bundle[0], bad, change)
    with pytest.raises(BundleError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_bundle(bad)


def test_not_a_bundle_is_refused(tmp_path):
    (tmp_path / "x.bundle").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="not a readable model bundle"):
        read_bundle(tmp_path / "x.bundle")


def test_cli_refuses_tampered_bundle_with_one_line(tiny_bundle, tmp_path, capsys):
    bad = tmp_path / "bad.bundle"
    _rewrite(tiny_bundle[0], bad, _flip_weight_byte)
    image = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(_images(1)[0]).save(image)
    assert main(["predict", "--bundle", str(bad), str(image), "--out", str(tmp_path / "out"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "tampered" in err and "refusing to load it" in err and "\n" not in err
    assert not (tmp_path / "out" / "scores.jsonl").exists()


def test_workspace_bundle_predict_equals_workspace_predict(fitted_workspace, tmp_path):
    data, ws = fitted_workspace
    images = sorted((data / CATEGORY / "test").glob("*/*.png"))[:3]
    bundle = tmp_path / "model.bundle"
    assert main(["export", "--workspace", str(ws), "--category", CATEGORY, "--method", "aecsad",
                 "--format", "bundle", "--out", str(bundle)]) == 0
    assert main(["predict", "--workspace", str(ws), "--category", CATEGORY, "--method", "aecsad", "--device", "cpu",
                 *map(str, images), "--out", str(tmp_path / "ws_out")]) == 0
    assert main(["predict", "--bundle", str(bundle), *map(str, images), "--out", str(tmp_path / "b_out"),
                 "--device", "cpu"]) == 0
    rows = [[json.loads(line) for line in (tmp_path / d / "scores.jsonl").read_text().splitlines()]
            for d in ("ws_out", "b_out")]
    assert len(rows[0]) == len(rows[1]) == 3
    for a, b in zip(*rows):
        assert a["score"] == b["score"] and a["threshold"] == b["threshold"] and a["verdict"] == b["verdict"]
        assert a["branch_scores"] == b["branch_scores"]
        assert a.get("explanations") == b.get("explanations")
    heatmaps = sorted(p.name for p in (tmp_path / "ws_out").glob("*.png"))
    assert len(heatmaps) == 3 and heatmaps == sorted(p.name for p in (tmp_path / "b_out").glob("*.png"))
    for name in heatmaps:  # the heat maps too, byte for byte
        assert (tmp_path / "ws_out" / name).read_bytes() == (tmp_path / "b_out" / name).read_bytes()


def test_predict_needs_a_workspace_or_a_bundle(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "a.png"), "--out", str(tmp_path / "o")]) == 2
    assert "--workspace and --category, or --bundle" in capsys.readouterr().err


def test_export_refuses_onnx_of_a_method_without_the_lgst_graph(tmp_path):
    from pipeline.deploy.onnx_export import export_onnx

    with pytest.raises(ValueError, match="aecsad and csad"):
        export_onnx(random_instant_detector("quick", n_train=1), tmp_path / "x.onnx")
