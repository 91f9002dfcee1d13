"""The instant detector end to end on tiny synthetic data: separation, round trip, anomaly keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.data.discover import load_category
from pipeline.data.images import load_mask, load_rgb
from pipeline.evaluation.auroc import image_auroc_by_kind
from pipeline.methods.instant.model import (
    InstantDetector, InstantSettings, add_anomaly_keys, build_embedder, fit_instant,
    load_instant, save_instant,
)

CPU = torch.device("cpu")
SETTINGS = InstantSettings(image_size=256, max_bank=4096)


@pytest.fixture(scope="module")
def pin_tray(tiny_synth: Path):
    return load_category(tiny_synth / "pin_tray")


@pytest.fixture(scope="module")
def embedder():
    return build_embedder(SETTINGS, CPU).eval()


@pytest.fixture(scope="module")
def fitted(pin_tray, embedder):
    train = [load_rgb(s.path) for s in pin_tray.select("train", "good")]
    return fit_instant(train, SETTINGS, embedder, CPU)


def _test_scores(detector: InstantDetector, data) -> tuple[list[str], list[float]]:
    samples = data.select("test")
    preds = detector.predict([load_rgb(s.path) for s in samples])
    return [s.kind for s in samples], [p.score for p in preds]


def test_instant_separates_structural_defects_from_good(pin_tray, embedder, fitted):
    kinds, scores = _test_scores(InstantDetector(fitted, embedder, CPU), pin_tray)
    auroc = image_auroc_by_kind(kinds, scores)
    assert auroc["structural"] >= 0.85, auroc


def test_instant_map_has_input_grid_shape_and_score_is_its_maximum(pin_tray, embedder, fitted):
    image = load_rgb(pin_tray.select("test", "good")[0].path)
    pred = InstantDetector(fitted, embedder, CPU).predict([image])[0]
    assert pred.anomaly_map.ndim == 2 and pred.anomaly_map.dtype == np.float32
    assert pred.score == pytest.approx(float(pred.anomaly_map.max()))


def test_bank_respects_max_bank(pin_tray, embedder):
    train = [load_rgb(s.path) for s in pin_tray.select("train", "good")[:3]]
    small = fit_instant(train, InstantSettings(image_size=128, max_bank=50, coreset="random"), embedder, CPU)
    assert small.good_bank.shape[0] == 50


def test_save_load_round_trip_is_identical(tmp_path, pin_tray, embedder, fitted):
    files = save_instant(fitted, tmp_path)
    assert (tmp_path / files["bank"]).is_file()
    loaded = load_instant(tmp_path)
    assert loaded.settings == fitted.settings
    assert torch.equal(loaded.good_bank, fitted.good_bank)
    assert torch.equal(loaded.anomaly_bank, fitted.anomaly_bank)
    images = [load_rgb(s.path) for s in pin_tray.select("test")[:3]]
    before = InstantDetector(fitted, embedder, CPU).predict(images)
    after = InstantDetector(loaded, embedder, CPU).predict(images)
    for a, b in zip(before, after):
        assert a.score == b.score
        np.testing.assert_array_equal(a.anomaly_map, b.anomaly_map)


def test_load_without_model_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="instant_bank.safetensors"):
        load_instant(tmp_path)


def test_labelled_bad_image_as_anomaly_key_raises_its_score(pin_tray, embedder, fitted):
    bad = pin_tray.select("test", "structural")[0]
    image = load_rgb(bad.path)
    mask = load_mask(bad.mask_paths, image.shape[:2])
    with_keys = add_anomaly_keys(fitted, [image], [mask], [bad.key], embedder, CPU)
    assert with_keys.anomaly_bank.shape[0] > 0
    assert with_keys.anomaly_sources == (bad.key,)
    plain = InstantDetector(fitted, embedder, CPU).predict([image])[0].score
    keyed = InstantDetector(with_keys, embedder, CPU).predict([image])[0].score
    assert keyed > plain


def test_anomaly_keys_without_mask_take_the_most_distant_patches(pin_tray, embedder, fitted):
    bad = pin_tray.select("test", "structural")[0]
    with_keys = add_anomaly_keys(fitted, [load_rgb(bad.path)], [None], [bad.key], embedder, CPU)
    n_patches = (SETTINGS.image_size // 8) ** 2
    expected = max(1, round(SETTINGS.anomaly_key_fraction * n_patches))
    assert with_keys.anomaly_bank.shape[0] == expected


def test_fit_without_images_is_a_clear_error(embedder):
    with pytest.raises(ValueError, match="at least one good training image"):
        fit_instant([], SETTINGS, embedder, CPU)
