"""The instant detector end to end on tiny synthetic data: separation, round trip, anomaly keys."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.data.discover import load_category
from pipeline.data.images import load_mask, load_rgb
from pipeline.methods.instant.depth_check import defect_check_images, separation
from pipeline.methods.instant.model import (
    InstantDetector, InstantSettings, add_anomaly_keys, build_embedder, fit_instant, load_instant, save_instant,
)
from pipeline.metrics.auroc import image_auroc_by_kind

CPU = torch.device("cpu")
SETTINGS = InstantSettings(image_size=256, max_bank=4096)
TWO_BANKS = replace(SETTINGS, two_depth="always")


@pytest.fixture(scope="module")
def pin_tray(tiny_synth: Path):
    return load_category(tiny_synth / "pin_tray")


@pytest.fixture(scope="module")
def embedder():
    return build_embedder(SETTINGS, CPU).eval()


@pytest.fixture(scope="module")
def fitted(pin_tray, embedder):
    train = [load_rgb(s.path) for s in pin_tray.select("train", "good")]
    validation = [load_rgb(s.path) for s in pin_tray.select("validation", "good")]
    return fit_instant(train, SETTINGS, embedder, CPU, validation_images=validation)


@pytest.fixture(scope="module")
def two_banks(pin_tray, embedder):
    train = [load_rgb(s.path) for s in pin_tray.select("train", "good")]
    validation = [load_rgb(s.path) for s in pin_tray.select("validation", "good")]
    return fit_instant(train, TWO_BANKS, embedder, CPU, validation_images=validation)


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


@pytest.mark.parametrize("which", ["fitted", "two_banks"])
def test_save_load_round_trip_is_identical(tmp_path, pin_tray, embedder, which, request):
    fitted = request.getfixturevalue(which)
    files = save_instant(fitted, tmp_path)
    assert (tmp_path / files["bank"]).is_file()
    loaded = load_instant(tmp_path)
    assert loaded.settings == fitted.settings
    assert torch.equal(loaded.good_bank, fitted.good_bank)
    assert torch.equal(loaded.anomaly_bank, fitted.anomaly_bank)
    assert loaded.depth_check == fitted.depth_check
    if which == "two_banks":
        assert torch.equal(loaded.deep.good_bank, fitted.deep.good_bank)
        assert (loaded.deep.fine_scale, loaded.deep.deep_scale) == (fitted.deep.fine_scale, fitted.deep.deep_scale)
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


def test_anomaly_keys_without_mask_take_the_most_distant_patches(pin_tray, embedder, two_banks):
    bad = pin_tray.select("test", "structural")[0]
    with_keys = add_anomaly_keys(two_banks, [load_rgb(bad.path)], [None], [bad.key], embedder, CPU)
    n_patches = (SETTINGS.image_size // 8) ** 2
    expected = max(1, round(SETTINGS.anomaly_key_fraction * n_patches))
    assert with_keys.anomaly_bank.shape[0] == expected
    deep_expected = max(1, round(SETTINGS.anomaly_key_fraction * (SETTINGS.image_size // 16) ** 2))
    assert with_keys.deep.anomaly_bank.shape[0] == deep_expected


def test_a_kept_deep_bank_is_scaled_on_validation_goods(pin_tray, embedder, two_banks):
    fitted = two_banks
    assert fitted.settings.deep_layers == ("s16", "s32")
    assert fitted.deep.good_bank.shape[1] == embedder.deep_channels == 112 + 320
    validation = [load_rgb(s.path) for s in pin_tray.select("validation", "good")]
    detector = InstantDetector(fitted, embedder, CPU)
    # the unit is the good validation images' typical peak: their scores are about 1 in it
    scores = np.array([p.score for p in detector.predict(validation)])
    assert 0.9 <= scores.mean() < 1.5, scores
    assert fitted.deep.fine_scale[1] > 0 and fitted.deep.deep_scale[1] > 0
    train = [load_rgb(s.path) for s in pin_tray.select("train", "good")]
    rescaled = fit_instant(train, TWO_BANKS, embedder, CPU, validation_images=validation[:2])
    assert rescaled.deep.fine_scale != fitted.deep.fine_scale  # different reference images, different scale


def test_single_bank_fit_and_older_models_keep_distance_units(pin_tray):
    single = InstantSettings(image_size=128, max_bank=200, coreset="random", deep_layers=())
    embedder = build_embedder(single, CPU).eval()
    train = [load_rgb(s.path) for s in pin_tray.select("train", "good")[:4]]
    model = fit_instant(train, single, embedder, CPU)
    assert model.deep is None and embedder.deep_layers == ()
    image = load_rgb(pin_tray.select("test", "good")[0].path)
    pred = InstantDetector(model, embedder, CPU).predict([image])[0]
    assert pred.score > 0  # a distance, not a z-score
    older = {k: v for k, v in asdict(single).items() if k not in ("deep_layers", "max_aspect")}
    assert InstantSettings.from_dict(older).deep_stage_names == ()
    assert InstantSettings.from_dict(older).max_aspect == 1.0


def test_fit_without_images_is_a_clear_error(embedder):
    with pytest.raises(ValueError, match="at least one good training image"):
        fit_instant([], SETTINGS, embedder, CPU)


def test_auto_keeps_the_deep_bank_only_where_it_separates_synthetic_defects_better(fitted, two_banks):
    single, two = fitted.depth_check
    assert 0.0 <= single <= 1.0 and 0.0 <= two <= 1.0
    assert (fitted.deep is not None) == (two > single)
    assert (fitted.settings.deep_layers == ()) == (fitted.deep is None)
    assert two_banks.depth_check is None  # "always": not checked


def test_synthetic_defects_change_a_small_region_only(pin_tray):
    image = load_rgb(pin_tray.select("validation", "good")[0].path)
    check, defective = defect_check_images([image], seed=0)
    assert defective == [False, True, True]
    np.testing.assert_array_equal(check[0], image)
    for copy in check[1:]:
        changed = np.abs(copy.astype(int) - image.astype(int)).max(axis=2) > 0
        assert 0 < changed.mean() < 0.05
    again, _ = defect_check_images([image], seed=0)
    np.testing.assert_array_equal(again[1], check[1])
    assert separation([0.1, 0.9, 0.5], [False, True, True]) == 1.0
    assert separation([0.5, 0.5], [False, True]) == 0.5
