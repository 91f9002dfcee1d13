import json

import numpy as np
import pytest

from pipeline.methods.histogram.scoring import (
    cell_names,
    component_counts,
    explain,
    fit_histogram_model,
    load_histogram_model,
    mahalanobis_scores,
    patch_histograms,
    save_histogram_model,
)

PLATE, PIN = 1, 2
NAMES = {PLATE: "plate", PIN: "pin"}
CORNERS = {"top-left": (10, 10), "top-right": (10, 42), "bottom-left": (42, 10), "bottom-right": (42, 42)}


def _map(rng: np.random.Generator, pins=tuple(CORNERS.values())) -> np.ndarray:
    """64×64: a plate bar across the middle and one pin square per quadrant, slightly jittered."""
    m = np.zeros((64, 64), np.uint8)
    m[29:35, 4:60] = PLATE
    for y, x in pins:
        dy, dx, size = rng.integers(-2, 3), rng.integers(-2, 3), rng.integers(8, 10)
        m[y + dy:y + dy + size, x + dx:x + dx + size] = PIN
    return m


def _maps(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [_map(rng) for _ in range(n)]


@pytest.fixture(scope="module")
def model():
    return fit_histogram_model(_maps(12, seed=0), n_classes=2, grid=2)


def test_histograms_are_fractions_per_region_on_a_hand_case():
    m = np.array([[0, 0, 1, 1], [0, 2, 1, 1], [0, 0, 0, 0], [2, 2, 0, 1]])
    global_, grid = patch_histograms([m], n_classes=2, grid=2)
    assert np.allclose(global_[0], [8 / 16, 5 / 16, 3 / 16])
    assert np.allclose(grid[0], [3 / 4, 0, 1 / 4, 0, 1, 0, 2 / 4, 0, 2 / 4, 3 / 4, 1 / 4, 0])
    assert np.allclose(grid.reshape(1, 4, 3).sum(-1), 1.0)
    counts_global, counts_grid = component_counts([m], n_classes=2, grid=2, min_component_fraction=0)
    assert counts_global.tolist() == [[2, 2]]  # class 1: two blobs, class 2: two blobs
    # cells in raster order, columns (plate, pin); each blob counted once, in its centroid's cell
    assert counts_grid.reshape(4, 2).tolist() == [[0, 1], [1, 0], [0, 1], [1, 0]]
    # specks below the size threshold are not counted
    assert component_counts([m], 2, 2, min_component_fraction=2 / 16)[0].tolist() == [[1, 1]]


def test_missing_part_scores_higher_than_every_typical_map(model):
    typical_g, typical_c = mahalanobis_scores(model, _maps(8, seed=1))
    rng = np.random.default_rng(2)
    missing = _map(rng, pins=[CORNERS[k] for k in ("top-right", "bottom-left", "bottom-right")])
    extra = _map(rng, pins=list(CORNERS.values()) + [(20, 28)])
    bad_g, bad_c = mahalanobis_scores(model, [missing, extra])
    assert (bad_g > typical_g.max()).all() and (bad_c > typical_c.max()).all()
    assert np.isfinite(typical_g).all() and np.isfinite(typical_c).all()


def test_grid_score_sees_a_part_in_the_wrong_cell_that_the_global_score_misses(model):
    rng = np.random.default_rng(3)
    typical_g, typical_c = mahalanobis_scores(model, _maps(8, seed=4))
    moved = _map(rng, pins=[CORNERS["top-right"], (10, 52), CORNERS["bottom-left"], CORNERS["bottom-right"]])
    moved_g, moved_c = mahalanobis_scores(model, [moved])
    assert moved_c[0] > 2 * typical_c.max()
    assert moved_g[0] < moved_c[0] / 2  # same parts, same areas: globally unremarkable


def test_shrinkage_keeps_scores_finite_with_three_maps_and_twenty_features():
    rng = np.random.default_rng(5)
    maps = []
    for _ in range(3):
        m = _map(rng)
        m[50:54, 28:36] = 3
        m[2:6, 28:36] = 4
        maps.append(m)
    _, grid = patch_histograms(maps, n_classes=4, grid=2)
    assert grid.shape == (3, 20) and np.linalg.matrix_rank(np.cov(grid.T)) <= 2  # raw covariance singular
    model = fit_histogram_model(maps, n_classes=4, grid=2)
    train_g, train_c = mahalanobis_scores(model, maps)
    odd = maps[0].copy()
    odd[odd == PIN] = 0
    odd_g, odd_c = mahalanobis_scores(model, [odd])
    scores = np.concatenate([train_g, train_c, odd_g, odd_c])
    assert np.isfinite(scores).all()
    assert odd_c[0] > train_c.max() and odd_g[0] > train_g.max()


def test_identical_training_maps_still_give_a_finite_score():
    maps = [_map(np.random.default_rng(0))] * 3
    model = fit_histogram_model(maps, n_classes=2)
    g, c = mahalanobis_scores(model, maps + [np.zeros((64, 64), np.uint8)])
    assert np.isfinite(g).all() and np.isfinite(c).all()
    assert g[:3].max() < 1e-3 < g[3]


def test_explain_names_the_cell_and_class_of_a_missing_part(model):
    rng = np.random.default_rng(6)
    missing = _map(rng, pins=[CORNERS[k] for k in ("top-right", "bottom-left", "bottom-right")])
    deviations = explain(model, missing, NAMES)
    top = deviations[0]
    assert (top.region, top.cell, top.class_name) == ("top-left", (0, 0), "pin")
    assert (top.observed_count, top.expected_count) == (0, 1.0)
    assert top.sentence.startswith("grid cell top-left: class 'pin' count 0, expected 1;")
    whole = next(d for d in deviations if d.region == "whole image" and d.class_id == PIN)
    assert "whole image: class 'pin' count 3, expected 4" in whole.sentence
    assert [d.unusualness for d in deviations] == sorted((d.unusualness for d in deviations), reverse=True)
    assert len(deviations) == 5 * 2  # (whole image + 4 cells) × 2 classes
    typical = explain(model, _maps(1, seed=7)[0], ["plate", "pin"])
    assert typical[0].unusualness < top.unusualness / 2


def test_cell_names():
    assert cell_names(2) == ("top-left", "top-right", "bottom-left", "bottom-right")
    assert cell_names(3)[4] == "centre"
    assert cell_names(4)[5] == "row 2, column 2"


def test_save_load_round_trip_is_identical(model, tmp_path):
    files = save_histogram_model(model, tmp_path)
    assert set(files.values()) <= {p.name for p in tmp_path.iterdir()}
    assert json.loads((tmp_path / files["settings"]).read_text())["n_classes"] == 2
    loaded = load_histogram_model(tmp_path)
    for name, value in vars(model).items():
        other = getattr(loaded, name)
        if isinstance(value, np.ndarray):
            assert other.dtype == value.dtype and np.array_equal(other, value), name
        else:
            assert other == value, name
    maps = _maps(3, seed=8)
    for a, b in zip(mahalanobis_scores(model, maps), mahalanobis_scores(loaded, maps)):
        assert np.array_equal(a, b)
    with pytest.raises(FileNotFoundError):
        load_histogram_model(tmp_path / "missing")


def test_bad_label_maps_are_rejected():
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        patch_histograms([np.full((4, 4), 3)], n_classes=2)
    with pytest.raises(ValueError):
        patch_histograms([], n_classes=2)
