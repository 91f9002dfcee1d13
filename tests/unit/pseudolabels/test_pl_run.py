"""run_pseudo_labels on a tiny synthetic category with the offline fallbacks: caching, crash
recovery, determinism and the label-map export."""

from __future__ import annotations

import dataclasses
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.data.registered import register_category
from pipeline.data.synth import SynthSettings, generate
from pipeline.pseudolabels import chain, store
from pipeline.pseudolabels import features as feature_stage
from pipeline.pseudolabels.export import export_label_maps, export_names, label_maps_zip
from pipeline.pseudolabels.run import PseudoLabelSummary, run_pseudo_labels, seed_of, with_seed
from pipeline.pseudolabels.settings import PseudoLabelSettings
from pipeline.workspace import Workspace

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CATEGORY = "pin_tray"
N_TRAIN = 6
DEFAULTS = PseudoLabelSettings()
FAST = dataclasses.replace(DEFAULTS, features=dataclasses.replace(DEFAULTS.features, variants=False, crop_size=32))
"""One small crop per component instead of 8 rotated/flipped 64 px ones: these tests are about caching, not quality."""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pl_run_data")
    generate(SynthSettings(out=out, categories=(CATEGORY,), n_train=N_TRAIN, n_validation=2, n_test_good=2,
                           n_logical=2, n_structural=2, size=128))
    return out


def _workspace(path: Path, data: Path) -> Workspace:
    ws = Workspace.create(path)
    register_category(ws, data, CATEGORY)
    return ws


def _run(ws: Workspace, settings: PseudoLabelSettings = FAST, **kwargs) -> PseudoLabelSummary:
    return run_pseudo_labels(ws, CATEGORY, settings, detector="none", segmenter="classic", device="cpu", **kwargs)


def _counting(monkeypatch, module, name: str, fail_on: int | None = None) -> list[str]:
    """Wrap ``module.name`` to record each call's image key, raising at call number ``fail_on``."""
    original, calls = getattr(module, name), []

    def wrapper(image, key_or_components, *args, **kwargs):
        calls.append(getattr(key_or_components, "image_key", key_or_components))
        if fail_on is not None and len(calls) == fail_on:
            raise RuntimeError("simulated crash")
        return original(image, key_or_components, *args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def _label_maps(ws: Workspace) -> dict[str, np.ndarray]:
    return {key: store.load_label_map(ws, CATEGORY, key) for key in store.load_state(ws, CATEGORY).label_maps}


@pytest.fixture(scope="module")
def done(data, tmp_path_factory) -> tuple[Workspace, PseudoLabelSummary]:
    """A workspace after one run with seed 7 (read-only for the tests; copy it to change it)."""
    ws = _workspace(tmp_path_factory.mktemp("pl_run_done") / "ws", data)
    return ws, _run(ws, with_seed(FAST, 7))


def test_first_run_summary(done):
    ws, summary = done
    assert summary.n_images == N_TRAIN and summary.cached_images == 0 and summary.clustering == "reclustered"
    assert summary.n_components > 0 and summary.cluster_sizes and summary.cluster_names.keys() == summary.cluster_sizes.keys()
    assert sum(summary.cluster_sizes.values()) + summary.dropped == summary.n_components
    assert summary.detector == "none" and summary.segmenter == "classic" and "no detector" in summary.detector_message
    assert summary.tags_source == "vocabulary" and "pin" in summary.tags and 0 <= summary.reliable_fraction <= 1
    state = store.load_state(ws, CATEGORY)
    assert state.done and len(state.label_maps) == N_TRAIN and state.run["segmenter"] == "classic"
    assert state.run["settings"]["features"]["seed"] == 7


def test_rerun_reuses_every_stored_image(done, tmp_path, monkeypatch):
    shutil.copytree(done[0].path, tmp_path / "ws")
    ws = Workspace.open(tmp_path / "ws")
    masks, features = _counting(monkeypatch, chain, "extract_components"), _counting(monkeypatch, feature_stage, "component_features")
    progress: list[tuple[str, int, int]] = []
    again = _run(ws, with_seed(FAST, 7), progress=lambda *step: progress.append(step))
    assert masks == [] and features == [] and again.cached_images == N_TRAIN and again.clustering == "kept"
    assert again.cluster_sizes == done[1].cluster_sizes
    assert [step for step in progress if step[0] == "masks and features"] == [
        ("masks and features", i, N_TRAIN) for i in range(1, N_TRAIN + 1)]

    seeded = with_seed(FAST, 7)
    ws.set_tag(CATEGORY, "pin", "keep")  # prompts are unused without a detector: nothing redone
    assert _run(ws, seeded).cached_images == N_TRAIN and masks == []
    feature_only = dataclasses.replace(seeded, features=dataclasses.replace(seeded.features, crop_padding=0.2))
    assert _run(ws, feature_only).clustering == "reclustered"  # only the features depend on these
    assert masks == [] and len(features) == N_TRAIN
    changed = dataclasses.replace(feature_only, masks=dataclasses.replace(seeded.masks, min_area=60))
    _run(ws, changed)  # new mask settings: every image's masks and features are redone
    assert len(masks) == N_TRAIN and len(features) == 2 * N_TRAIN


def test_a_crash_keeps_the_images_done_before_it(tmp_path, data, monkeypatch):
    ws = _workspace(tmp_path / "ws", data)
    with monkeypatch.context() as patch:
        _counting(patch, chain, "extract_components", fail_on=4)
        with pytest.raises(RuntimeError, match="simulated crash"):
            _run(ws)
    state = store.load_state(ws, CATEGORY)
    assert state.components == tuple(f"train/good/{i:03d}.png" for i in range(3))
    assert state.features == state.components and not state.label_maps
    calls = _counting(monkeypatch, chain, "extract_components")
    summary = _run(ws)
    assert calls == [f"train/good/{i:03d}.png" for i in range(3, N_TRAIN)]
    assert summary.cached_images == 3 and len(store.load_state(ws, CATEGORY).label_maps) == N_TRAIN


def test_same_inputs_and_seed_give_identical_label_maps(done, tmp_path, data):
    other = _workspace(tmp_path / "other", data)
    settings = with_seed(FAST, 7)
    assert seed_of(settings) == 7
    _run(other, settings)
    maps_a, maps_b = _label_maps(done[0]), _label_maps(other)
    assert len(maps_a) == N_TRAIN and maps_a.keys() == maps_b.keys()
    for key in maps_a:
        np.testing.assert_array_equal(maps_a[key], maps_b[key])
    assert any(m.max() > 0 for m in maps_a.values())


def test_export_writes_one_8bit_png_per_training_image(done, tmp_path, data):
    ws, summary = done
    written = export_label_maps(ws, CATEGORY, tmp_path / "out")
    assert sorted(p.name for p in written) == [f"{i:03d}.png" for i in range(N_TRAIN)]
    for path in written:
        with Image.open(path) as image:
            assert image.mode == "L"
            exported = np.array(image)
        stored = store.load_label_map(ws, CATEGORY, f"train/good/{path.name}")
        np.testing.assert_array_equal(exported, stored)
        with Image.open(data / CATEGORY / "train" / "good" / path.name) as source:
            assert exported.shape == (source.height, source.width)
        assert exported.max() <= len(summary.cluster_sizes)


def test_label_maps_zip_holds_the_exported_maps(done, tmp_path):
    ws, _ = done
    written = export_label_maps(ws, CATEGORY, tmp_path / "out")
    with zipfile.ZipFile(io.BytesIO(label_maps_zip(ws, CATEGORY))) as archive:
        assert sorted(archive.namelist()) == sorted(p.relative_to(tmp_path / "out").as_posix() for p in written)
        for path in written:
            assert archive.read(path.relative_to(tmp_path / "out").as_posix()) == path.read_bytes()


def test_export_names_mirror_folders_only_when_names_collide():
    assert export_names(["train/good/a.png", "train/good/b.jpg"]) == {"train/good/a.png": "a.png",
                                                                      "train/good/b.jpg": "b.png"}
    assert export_names(["train/good/a.png", "train/bad/a.png"]) == {"train/good/a.png": "train/good/a.png",
                                                                     "train/bad/a.png": "train/bad/a.png"}


def test_export_before_a_run_is_a_clear_error(tmp_path, data):
    ws = _workspace(tmp_path / "ws", data)
    with pytest.raises(ValueError, match="run pseudo-labels first"):
        export_label_maps(ws, CATEGORY, tmp_path / "out")
