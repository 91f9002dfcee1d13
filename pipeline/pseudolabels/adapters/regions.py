"""Region adjacency graph of a label map, for merging regions one at a time (the classic segmenter).

Graph partitions (felzenszwalb) cut anti-aliased edges, outlines and shading lines into strips
a pixel or two wide. Merging them all at once chains: a pin's core strip joins its outline
strip while the outline joins the floor, and the pin vanishes. Merged one at a time, thickest
strip first, the core and its outline form a region thick enough to stay. The graph keeps
each region's pixel count, mean colour, thickness and shared boundary lengths, so a merge
costs one local distance transform instead of a pass over the image.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import find_boundaries

_CROSS = ndimage.generate_binary_structure(2, 1)


class RegionGraph:
    """Regions of an int label map ``(H, W)`` with their colours ``(H, W, C)`` (e.g. CIELAB)."""

    def __init__(self, labels: np.ndarray, colours: np.ndarray) -> None:
        self.ids, self.index = _compact(labels)
        count = len(self.ids)
        flat = self.index.ravel()
        self.area = np.bincount(flat, minlength=count).astype(np.float64)
        self.colour_sum = np.stack([np.bincount(flat, weights=colours[..., c].ravel(), minlength=count)
                                    for c in range(colours.shape[-1])], 1)
        self.thickness = _initial_thickness(self.index)
        self.owner = np.arange(count)  # original region -> region it was merged into
        # find_objects skips label 0, hence + 1; every index 0..R-1 occurs, so no box is None.
        self.boxes = list(ndimage.find_objects(self.index + 1))
        self.adjacency = _adjacency(self.index)

    def alive(self) -> list[int]:
        """Indices of the regions not merged away, in id order."""
        return [r for r in range(len(self.ids)) if self.owner[r] == r]

    def mean_colour(self, region: int) -> np.ndarray:
        return self.colour_sum[region] / max(self.area[region], 1.0)

    def neighbours(self, region: int) -> dict[int, int]:
        """Adjacent region -> number of 4-neighbour pixel pairs they share."""
        return self.adjacency[region]

    def merge(self, source: int, target: int) -> None:
        """Merge region ``source`` into ``target`` (``target`` keeps its id)."""
        self.area[target] += self.area[source]
        self.colour_sum[target] += self.colour_sum[source]
        self.owner[self.owner == source] = target
        edges, self.adjacency[source] = self.adjacency[source], {}
        for other, length in edges.items():
            self.adjacency[other].pop(source, None)
            if other != target:
                self.adjacency[target][other] = self.adjacency[target].get(other, 0) + length
                self.adjacency[other][target] = self.adjacency[other].get(target, 0) + length
        self.boxes[target] = _union_box(self.boxes[target], self.boxes[source])

    def update_thickness(self, region: int) -> float:
        """Recompute (and return) a region's thickness after merges, in its bounding box only."""
        box = _grow(self.boxes[region], self.index.shape)
        mask = self.owner[self.index[box]] == region
        self.thickness[region] = _thickness(mask)
        return float(self.thickness[region])

    def labels(self) -> np.ndarray:
        """The merged label map: every pixel carries the id of the region it ended in."""
        return self.ids[self.owner[self.index]]


def absorb_thin_regions(labels: np.ndarray, colours: np.ndarray, min_thickness: float,
                        colour_scale: float = 5.0) -> np.ndarray:
    """Merge every region whose largest inscribed radius is below ``min_thickness`` pixels into
    the neighbour maximising shared boundary / (1 + ΔE / ``colour_scale``), thickest first.

    Thickest first, one at a time: a strip merges while its neighbours are still there to be
    chosen, and a merge that makes a region thick enough (a pin core plus its outline) ends
    that region's absorption. Returns a label map with a subset of the input's ids.
    """
    graph = RegionGraph(labels, colours)
    thin = {r for r in graph.alive() if graph.thickness[r] < min_thickness}
    while thin:
        source = max(thin, key=lambda r: (graph.thickness[r], -r))
        thin.discard(source)
        target = best_neighbour(graph, source, colour_scale)
        if target is None:
            continue  # alone in the image: nothing to merge into
        graph.merge(source, target)
        if target in thin and graph.update_thickness(target) >= min_thickness:
            thin.discard(target)
    return graph.labels()


def best_neighbour(graph: RegionGraph, region: int, colour_scale: float) -> int | None:
    """The adjacent region sharing the most boundary, discounted by the difference of mean
    colours: a groove joins the ridges beside it, an outline the part it outlines."""
    best, best_score = None, -1.0
    colour = graph.mean_colour(region)
    for other, length in sorted(graph.neighbours(region).items()):
        distance = float(np.linalg.norm(graph.mean_colour(other) - colour))
        score = length / (1.0 + distance / colour_scale)
        if score > best_score:
            best, best_score = other, score
    return best


def _compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, index)``: the distinct labels and each pixel's position among them (0..R-1);
    a bincount, not ``np.unique``, which sorts every pixel."""
    offset = int(labels.min())
    present = np.bincount((labels - offset).ravel()) > 0
    lookup = np.cumsum(present) - 1
    return (np.flatnonzero(present) + offset).astype(labels.dtype), lookup[labels - offset]


def _initial_thickness(index: np.ndarray) -> np.ndarray:
    """Per region, the largest distance (pixels) from a region pixel to its region's inner
    boundary, boundary pixels counting 1 (a one-pixel strip has thickness 1)."""
    edges = find_boundaries(index + 1, mode="inner")  # +1: no region is skimage's background 0
    depth = ndimage.distance_transform_edt(~edges) + edges
    return np.asarray(ndimage.maximum(depth, index, np.arange(index.max() + 1)), np.float64)


def _thickness(mask: np.ndarray) -> float:
    """``_initial_thickness`` of one region given as a bool mask (its box plus a margin)."""
    inner = mask & ~ndimage.binary_erosion(mask, _CROSS, border_value=1)
    depth = ndimage.distance_transform_edt(~inner) + inner
    return float(depth[mask].max()) if mask.any() else 0.0


def _adjacency(index: np.ndarray) -> list[dict[int, int]]:
    """Per region, adjacent region -> number of horizontal and vertical pixel pairs they share."""
    count = int(index.max()) + 1
    a = np.concatenate([index[:, :-1].ravel(), index[:-1, :].ravel()]).astype(np.int64)
    b = np.concatenate([index[:, 1:].ravel(), index[1:, :].ravel()]).astype(np.int64)
    differ = a != b
    a, b = a[differ], b[differ]
    codes, length = np.unique(np.concatenate([a * count + b, b * count + a]), return_counts=True)
    adjacency: list[dict[int, int]] = [{} for _ in range(count)]
    for code, n in zip(codes.tolist(), length.tolist()):
        adjacency[code // count][code % count] = n
    return adjacency


def _union_box(a: tuple[slice, slice], b: tuple[slice, slice]) -> tuple[slice, slice]:
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))


def _grow(box: tuple[slice, slice], shape: tuple[int, ...]) -> tuple[slice, slice]:
    """The box one pixel larger on each side (clipped), so the region's outline is inside it."""
    return tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, shape))


def refine_boundaries(labels: np.ndarray, colours: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Give each pixel on a region boundary to whichever of its own and its 4 neighbours'
    regions has the mean colour nearest its own colour; ``iterations`` passes.

    A region merge moves whole strips, but an anti-aliased edge pixel is a blend of the two
    sides: the side whose colour it is nearer covers more of it (and its centre), which is how
    a true component map samples the edge.
    """
    for _ in range(iterations):
        ids, index = _compact(labels)
        flat = index.ravel()
        area = np.maximum(np.bincount(flat, minlength=len(ids)), 1)
        means = np.stack([np.bincount(flat, weights=colours[..., c].ravel(), minlength=len(ids))
                          for c in range(colours.shape[-1])], 1) / area[:, None]
        candidates = _neighbour_indices(index)  # (5, H, W): own, up, down, left, right
        cost = np.linalg.norm(colours[None] - means[candidates], axis=-1)
        best = np.take_along_axis(candidates, cost.argmin(0)[None], 0)[0]
        if (best == index).all():
            break
        labels = ids[best]
    return labels


def _neighbour_indices(index: np.ndarray) -> np.ndarray:
    """The region index of each pixel and of its 4 neighbours (edges repeat the pixel's own)."""
    padded = np.pad(index, 1, mode="edge")
    height, width = index.shape
    shifts = [(1, 1), (0, 1), (2, 1), (1, 0), (1, 2)]
    return np.stack([padded[dy:dy + height, dx:dx + width] for dy, dx in shifts])
