"""The ``zeroshot`` method end to end with a tiny random CLIP given as local weight files:
fit → load → predict, the save/load round trip, the object word, missing and changed weights, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.__main__ import main
from pipeline.data.discover import load_category
from pipeline.data.images import load_rgb
from pipeline.methods import METHODS, FitContext
from pipeline.methods.runner import fit_method, load_detector
from pipeline.methods.zeroshot.method import prompt_word, set_object_word, unavailable_reason
from pipeline.methods.zeroshot.spec import ZEROSHOT
from pipeline.methods.zeroshot.clip import build_clip
from pipeline.methods.zeroshot.model import MODEL_FILE, SETTINGS_FILE, detector_from_clip, fit_zeroshot, load_zeroshot
from pipeline.models.weights import IncompatibleWeightsError, MissingWeightsError
from pipeline.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")
CATEGORY = "pin_tray"


@pytest.fixture(scope="module")
def pin_tray(tiny_synth: Path):
    return load_category(tiny_synth / CATEGORY)


@pytest.fixture
def fitted(clip_env: Path, pin_tray, tmp_path: Path) -> Path:
    out = tmp_path / "zeroshot"
    out.mkdir()
    files = ZEROSHOT.fit(FitContext(data=pin_tray, out_dir=out, profile="quick", device=CPU, category=CATEGORY))
    assert files == {"anchors": MODEL_FILE, "settings": SETTINGS_FILE}
    return out


def _images(data, n: int = 3) -> list[np.ndarray]:
    samples = data.select("test", "good")[:1] + data.select("test", "structural")[:1] + data.select("test", "logical")[:1]
    return [load_rgb(s.path) for s in samples[:n]]


def test_zeroshot_is_registered_with_a_title_and_summary():
    assert METHODS["zeroshot"] is ZEROSHOT
    assert "CLIP" in ZEROSHOT.title and "local CLIP weights" in ZEROSHOT.summary


def test_fit_load_predict_gives_maps_of_the_input_size_and_probability_scores(fitted, pin_tray):
    detector = ZEROSHOT.load(fitted, CPU)
    assert detector.method == "zeroshot"
    images = _images(pin_tray) + [np.zeros((37, 61, 3), np.uint8)]  # any size goes in
    predictions = detector.predict(images)
    assert len(predictions) == len(images)
    size = load_zeroshot(fitted).settings.image_size
    for p in predictions:
        assert p.anomaly_map.shape == (size, size) and p.anomaly_map.dtype == np.float32
        assert np.isfinite(p.anomaly_map).all() and 0 <= p.anomaly_map.min() <= p.anomaly_map.max() <= 1
        assert np.isfinite(p.score) and 0 <= p.score <= 1
        assert set(p.branch_scores) == {"clip_patches", "clip_global"}
    saved = json.loads((fitted / SETTINGS_FILE).read_text())
    assert saved["object_name"] == "pin tray" and saved["model_config"]["embed_dim"] == 16


def test_a_save_load_round_trip_gives_identical_predictions(fitted, pin_tray, clip_env):
    images = _images(pin_tray)
    first = ZEROSHOT.load(fitted, CPU).predict(images)
    again = ZEROSHOT.load(fitted, CPU).predict(images)
    # The model as fit holds it in memory, before anything was written.
    saved = load_zeroshot(fitted)
    clip = build_clip(saved.model_config, clip_env, saved.settings.image_size)
    fresh = fit_zeroshot(saved.settings, saved.model_config, clip)
    assert torch.equal(fresh.anchors, saved.anchors) and fresh.fingerprint == saved.fingerprint
    in_memory = detector_from_clip(fresh, clip, CPU).predict(images)
    for a, b, c in zip(first, again, in_memory):
        assert a.score == b.score and np.array_equal(a.anomaly_map, b.anomaly_map)
        assert a.score == c.score and np.array_equal(a.anomaly_map, c.anomaly_map)
    assert len({round(p.score, 9) for p in first}) > 1  # the images are told apart, not one constant


def test_missing_weights_raise_with_the_env_var_named(isolated_weights, pin_tray, tmp_path):
    reason = unavailable_reason()
    assert reason is not None and "WORKBENCH_CLIP_WEIGHTS" in reason
    with pytest.raises(MissingWeightsError) as caught:
        ZEROSHOT.fit(FitContext(data=pin_tray, out_dir=tmp_path, profile="quick", device=CPU))
    message = str(caught.value)
    assert "WORKBENCH_CLIP_WEIGHTS" in message and "open_clip_vit_b_16.safetensors" in message
    assert "huggingface.co" in message
    assert not (tmp_path / MODEL_FILE).exists()


def test_the_method_is_available_once_the_weights_are_there(clip_env):
    assert unavailable_reason() is None


def test_loading_with_other_weights_is_refused(fitted, make_clip, tmp_path, monkeypatch):
    other = tmp_path / "other.bin"
    torch.save(make_clip(1).state_dict(), other)
    monkeypatch.setenv("WORKBENCH_CLIP_WEIGHTS", str(other))
    with pytest.raises(IncompatibleWeightsError, match="fit it again"):
        ZEROSHOT.load(fitted, CPU)
    monkeypatch.delenv("WORKBENCH_CLIP_WEIGHTS")
    with pytest.raises(MissingWeightsError):
        ZEROSHOT.load(fitted, CPU)


def test_the_workspace_object_word_goes_into_the_prompts(clip_env, tiny_synth, tmp_path):
    ws = Workspace.create(tmp_path / "ws")
    ws.add_category(CATEGORY, tiny_synth / CATEGORY, "loco")
    assert prompt_word(ws, CATEGORY) == "pin tray"
    fit_method(ws, CATEGORY, "zeroshot", device="cpu")
    default_anchors = load_zeroshot(ws.method_dir(CATEGORY, "zeroshot")).anchors
    set_object_word(ws, CATEGORY, "  tray of   pins ")
    assert prompt_word(ws, CATEGORY) == "tray of pins"
    summary = fit_method(ws, CATEGORY, "zeroshot", device="cpu")
    model = load_zeroshot(ws.method_dir(CATEGORY, "zeroshot"))
    assert model.settings.object_name == "tray of pins"
    assert not torch.allclose(model.anchors, default_anchors)
    assert summary.n_validation == 4 and len(ws.scores(CATEGORY, "zeroshot", split="validation")) == 4
    assert load_detector(ws, CATEGORY, "zeroshot", device="cpu").predict(_images(load_category(tiny_synth / CATEGORY), 1))


def test_cli_fit_evaluate_predict(clip_env, tiny_synth, tmp_path):
    ws, data = tmp_path / "ws", tiny_synth
    common = ("--category", "bottle", "--workspace", ws, "--method", "zeroshot", "--device", "cpu")
    assert main([str(a) for a in ("fit", "--data", data, *common)]) == 0
    metrics = tmp_path / "metrics.json"
    assert main([str(a) for a in ("evaluate", "--data", data, *common, "--out", metrics)]) == 0
    result = json.loads(metrics.read_text())
    assert result["method"] == "zeroshot" and result["n"] == {"good": 6, "logical": 4, "structural": 6}
    assert 0 <= result["auroc"]["mean"] <= 1
    image = tiny_synth / "bottle" / "test" / "good" / "000.png"
    out = tmp_path / "heatmaps"
    assert main([str(a) for a in ("predict", *common, image, "--out", out)]) == 0
    assert (out / "000_heatmap.png").exists() and len((out / "scores.jsonl").read_text().splitlines()) == 1


def test_cli_fit_without_weights_is_a_one_line_error(isolated_weights, tiny_synth, tmp_path, capsys):
    code = main(["fit", "--data", str(tiny_synth), "--category", "bottle", "--workspace", str(tmp_path / "ws"),
                 "--method", "zeroshot", "--device", "cpu"])
    assert code != 0
    assert "WORKBENCH_CLIP_WEIGHTS" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fit_and_predict_on_cuda_match_the_cpu(clip_env, pin_tray, tmp_path):
    cuda = torch.device("cuda")
    out = tmp_path / "cuda"
    out.mkdir()
    ZEROSHOT.fit(FitContext(data=pin_tray, out_dir=out, profile="quick", device=cuda, category=CATEGORY))
    images = _images(pin_tray)
    on_gpu = ZEROSHOT.load(out, cuda).predict(images)
    on_cpu = ZEROSHOT.load(out, CPU).predict(images)
    for g, c in zip(on_gpu, on_cpu):
        assert g.score == pytest.approx(c.score, abs=1e-4)
        assert np.allclose(g.anomaly_map, c.anomaly_map, atol=1e-4)
