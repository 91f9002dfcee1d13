from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from pipeline.methods.segmentation.lsa import (
    LsaSettings,
    allowed_area,
    component_counts,
    logical_synthetic_anomaly,
)

SIDE = 128
TABLE, TRAY = (100, 100, 100), (200, 200, 200)
COLOURS = {2: (220, 40, 40), 3: (40, 40, 220)}
EIGHT = np.ones((3, 3), bool)


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """A tray (class 1) on a table with four red bars (class 2) and two blue bars (class 3)."""
    labels = np.zeros((SIDE, SIDE), np.uint8)
    image = np.full((SIDE, SIDE, 3), TABLE, np.uint8)
    labels[16:112, 16:112], image[16:112, 16:112] = 1, TRAY
    for y, x in [(30, 30), (30, 80), (80, 30), (80, 80)]:
        labels[y:y + 10, x:x + 6], image[y:y + 10, x:x + 6] = 2, COLOURS[2]
    for y, x in [(55, 55), (60, 90)]:
        labels[y:y + 5, x:x + 12], image[y:y + 5, x:x + 12] = 3, COLOURS[3]
    return image, labels


def _components(labels: np.ndarray, cls: int) -> list[np.ndarray]:
    regions, n = ndimage.label(labels == cls, structure=EIGHT)
    return [regions == i for i in range(1, n + 1)]


def _moved(before: np.ndarray, after: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(class, old mask, new mask) of each component that is not where it was."""
    out = []
    for cls in (2, 3):
        old = _components(before, cls)
        new = _components(after, cls)
        gone = [m for m in old if not any((m == n).all() for n in new)]
        came = [n for n in new if not any((m == n).all() for m in old)]
        assert len(gone) == len(came)
        out += [(cls, g, c) for g, c in zip(gone, came)]
    return out


def _centre(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).mean(axis=0)


@pytest.mark.parametrize("seed", range(6))
def test_moved_parts_keep_class_and_colour_and_the_hole_becomes_tray(seed):
    image, labels = _scene()
    settings = LsaSettings(fill_noise=False)
    out_img, out_lab, changed = logical_synthetic_anomaly(image, labels, np.random.default_rng(seed), settings)
    moved = _moved(labels, out_lab)
    assert 1 <= len(moved) <= 2
    assert component_counts(out_lab) == component_counts(labels) == {1: 1, 2: 4, 3: 2}
    for cls, old, new in moved:
        # moved pixels carry their class and exactly their colour in the new place
        assert (out_img[new] == COLOURS[cls]).all()
        # the hole is tray again, in the label map and (uniform tray: exactly) in the image
        hole = old & ~new
        assert (out_lab[hole] == 1).all()
        assert (out_img[hole] == TRAY).all()
        assert changed[old].all() and changed[new].all()
    # nothing changed outside the reported mask, in the image or the labels
    assert (out_img[~changed] == image[~changed]).all() and (out_lab[~changed] == labels[~changed]).all()
    # the labels changed only in holes and pasted parts
    assert ((out_lab != labels) <= changed).all()


@pytest.mark.parametrize("seed", range(6))
def test_displacement_is_at_least_the_minimum_and_placement_stays_inside_the_object(seed):
    image, labels = _scene()
    settings = LsaSettings(min_components=1, max_components=1, min_displacement=0.3, border_margin=0.2)
    _, out_lab, _ = logical_synthetic_anomaly(image, labels, np.random.default_rng(seed), settings)
    [(cls, old, new)] = _moved(labels, out_lab)
    assert np.hypot(*(_centre(new) - _centre(old))) >= 0.3 * SIDE
    margin = int(0.2 * SIDE)
    rows, cols = np.nonzero(new)
    assert rows.min() >= margin and cols.min() >= margin
    assert rows.max() < SIDE - margin and cols.max() < SIDE - margin
    assert allowed_area(labels, margin)[new].all()
    # kept clear of the other parts (2 px clearance): never touching another bar
    others = (out_lab >= 2) & ~new
    assert not (ndimage.binary_dilation(new, EIGHT, iterations=2) & others).any()


def test_same_seed_same_result_other_seed_other_result():
    image, labels = _scene()
    a = logical_synthetic_anomaly(image, labels, np.random.default_rng(7))
    b = logical_synthetic_anomaly(image, labels, np.random.default_rng(7))
    c = logical_synthetic_anomaly(image, labels, np.random.default_rng(8))
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[1], c[1])


def test_inputs_are_not_modified_and_dtypes_are_kept():
    image, labels = _scene()
    image0, labels0 = image.copy(), labels.copy()
    out_img, out_lab, changed = logical_synthetic_anomaly(image, labels, np.random.default_rng(0))
    assert np.array_equal(image, image0) and np.array_equal(labels, labels0)
    assert out_img.dtype == np.uint8 and out_lab.dtype == np.uint8 and changed.dtype == bool


def test_copy_mode_adds_exactly_one_component_and_keeps_the_original():
    image, labels = _scene()
    settings = LsaSettings(min_components=1, max_components=1, copy=True)
    out_img, out_lab, changed = logical_synthetic_anomaly(image, labels, np.random.default_rng(3), settings)
    before, after = component_counts(labels), component_counts(out_lab)
    grew = [c for c in before if after[c] == before[c] + 1]
    assert len(grew) == 1 and all(after[c] == before[c] for c in before if c not in grew)
    assert (out_lab[labels >= 2] == labels[labels >= 2]).all()  # every original part still there


def test_nothing_movable_returns_unchanged_copies():
    image, labels = _scene()
    empty = np.zeros_like(labels)
    out_img, out_lab, changed = logical_synthetic_anomaly(image, empty, np.random.default_rng(0))
    assert not changed.any() and np.array_equal(out_img, image) and not out_lab.any()
    # only the tray (too large to move) and no room for parts: nothing happens
    tray_only = np.where(labels == 1, 1, 0).astype(np.uint8)
    out_img, out_lab, changed = logical_synthetic_anomaly(image, tray_only, np.random.default_rng(0))
    assert not changed.any() and np.array_equal(out_lab, tray_only)


def test_hole_fill_continues_a_gradient_surface():
    image, labels = _scene()
    ramp = np.linspace(150, 250, SIDE).astype(np.uint8)
    tray = labels == 1
    image[tray] = np.stack([np.broadcast_to(ramp, (SIDE, SIDE))] * 3, -1)[tray]
    settings = replace(LsaSettings(), min_components=1, max_components=1, fill_noise=False)
    out_img, out_lab, _ = logical_synthetic_anomaly(image, labels, np.random.default_rng(1), settings)
    [(cls, old, new)] = _moved(labels, out_lab)
    hole = old & ~new
    expected = np.broadcast_to(ramp, (SIDE, SIDE))[hole].astype(int)
    assert np.abs(out_img[hole][:, 0].astype(int) - expected).max() <= 6


def test_mismatched_shapes_are_rejected():
    image, labels = _scene()
    with pytest.raises(ValueError):
        logical_synthetic_anomaly(image, labels[:-1], np.random.default_rng(0))
