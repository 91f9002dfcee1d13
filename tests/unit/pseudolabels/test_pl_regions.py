"""Region graph merges of the classic segmenter: thickest strip first, edge-pixel refinement."""

from __future__ import annotations

import numpy as np

from pipeline.pseudolabels.adapters.regions import RegionGraph, absorb_thin_regions, refine_boundaries


def _bar_scene() -> tuple[np.ndarray, np.ndarray]:
    """A 7-px wide bar (ids 1 core, 2 its outline) on a floor (id 0): (labels, grey colours).

    The core alone (5 px wide, thickness 2) and the outline alone (1 px) are thin; together
    they are a 7-px bar (thickness 3), thick enough to stay. Merged all at once the outline
    would join the floor (longer boundary, nearer colour) and carry the core with it.
    """
    labels = np.zeros((30, 30), np.int64)
    labels[5:25, 11:18] = 2  # outline ring ...
    labels[6:24, 12:17] = 1  # ... around the core
    colours = np.zeros((30, 30, 1))
    colours[labels == 1] = 50.0
    colours[labels == 2] = 15.0  # a blend between core (50) and floor (0), nearer the floor
    return labels, colours


def test_thickest_first_keeps_a_bar_made_of_core_and_outline():
    labels, colours = _bar_scene()
    out = absorb_thin_regions(labels, colours, min_thickness=2.5, colour_scale=5.0)
    bar = np.zeros_like(labels, bool)
    bar[5:25, 11:18] = True
    assert len(np.unique(out)) == 2
    assert (out[bar] == out[15, 14]).all() and (out[~bar] == 0).all()


def test_a_one_pixel_strip_joins_the_neighbour_of_its_colour():
    labels = np.zeros((20, 20), np.int64)
    labels[:, 10:] = 2
    labels[:, 9] = 1
    colours = np.zeros((20, 20, 3))
    colours[:, 9:] = 80.0  # the strip has the right-hand region's colour
    out = absorb_thin_regions(labels, colours, min_thickness=2.0)
    assert set(np.unique(out)) == {0, 2} and (out[:, 9] == 2).all()


def test_a_region_with_no_neighbour_stays():
    labels = np.full((4, 30), 7, np.int64)  # one thin region covering the image
    assert (absorb_thin_regions(labels, np.zeros((4, 30, 3)), 5.0) == 7).all()


def test_graph_merge_adds_boundaries_and_colours():
    labels = np.array([[0, 0, 1, 1, 2, 2]] * 3)
    colours = np.array([[0.0, 0.0, 10.0, 10.0, 40.0, 40.0]] * 3)[..., None]
    graph = RegionGraph(labels, colours)
    assert graph.neighbours(1) == {0: 3, 2: 3} and graph.neighbours(0) == {1: 3}
    graph.merge(1, 0)
    assert graph.neighbours(0) == {2: 3} and graph.neighbours(2) == {0: 3}
    assert graph.mean_colour(0)[0] == 5.0 and graph.area[0] == 12
    np.testing.assert_array_equal(graph.labels(), [[0, 0, 0, 0, 2, 2]] * 3)


def test_refine_moves_blended_edge_pixels_to_the_nearer_side():
    labels = np.zeros((6, 8), np.int64)
    labels[:, 4:] = 1
    colours = np.zeros((6, 8, 1))
    colours[:, 4:] = 100.0
    colours[:, 4] = 20.0  # mostly left-hand colour: the left region covers most of this pixel
    out = refine_boundaries(labels, colours, iterations=1)
    assert (out[:, 4] == 0).all() and (out[:, 5:] == 1).all() and (out[:, :4] == 0).all()
    np.testing.assert_array_equal(refine_boundaries(labels, colours, 0), labels)


def test_refine_leaves_interiors_and_clean_edges_alone():
    labels = np.zeros((6, 8), np.int64)
    labels[:, 4:] = 3
    colours = np.where(labels[..., None] == 3, 100.0, 0.0)
    np.testing.assert_array_equal(refine_boundaries(labels, colours, iterations=2), labels)
