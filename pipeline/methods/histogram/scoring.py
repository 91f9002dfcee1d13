"""Patch histogram scorer (SPEC §5 step 7, thesis §4.5): pure NumPy on label maps, no training.

A label map (0 = background, 1..C = component classes) is described per *region*: region 0 is
the whole image, regions 1..P² the cells of a P×P grid in raster order (top-left first). Each
region gets class-area fractions over ``K = C + 1`` labels (summing to 1) and the number of
components of each class (8-connected, each component counted in the cell holding its centroid).
Fractions are scored by a Mahalanobis distance to the training maps (eq. 4.7) with a Ledoit–Wolf
shrinkage covariance: fractions of a region sum to 1, so the raw covariance is always singular,
and with fewer images than features it is rank-deficient anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from scipy import ndimage
from sklearn.covariance import LedoitWolf

from pipeline.errors import MissingFileError
from pipeline.methods.base import NamedRegion

_EIGHT = np.ones((3, 3), dtype=bool)

COUNT_FLOOR = 0.5
"""Least count spread used by ``explain``: with a constant count in training, one part off gives 2."""

FRACTION_FLOOR = 0.005
"""Least area-fraction spread used by ``explain``, so pixel noise on a stable class is not "unusual"."""

_NAMED_GRIDS = {
    1: ("whole",),
    2: ("top-left", "top-right", "bottom-left", "bottom-right"),
    3: ("top-left", "top-centre", "top-right", "middle-left", "centre", "middle-right",
        "bottom-left", "bottom-centre", "bottom-right"),
}


@dataclass(frozen=True)
class HistogramModel:
    """Statistics of the training label maps; ``R = 1 + grid²`` regions, ``K = n_classes + 1`` labels.

    Attributes:
        n_classes: component classes ``C`` (labels 1..C; 0 is the background).
        grid: cells per side ``P``.
        min_component_fraction: components smaller than this fraction of the image are not counted.
        n_train: number of training maps.
        global_mean, global_precision: ``(K,)`` mean and ``(K, K)`` inverse shrunk covariance of
            the whole-image fractions.
        grid_mean, grid_precision: the same for the concatenated cell fractions ``(P²·K,)``.
        fraction_median, fraction_std: ``(R, K)`` per-region area-fraction median and std.
        count_median, count_std: ``(R, C)`` per-region component-count median and std (class c at
            column c - 1).
    """

    n_classes: int
    grid: int
    min_component_fraction: float
    n_train: int
    global_mean: np.ndarray
    global_precision: np.ndarray
    grid_mean: np.ndarray
    grid_precision: np.ndarray
    fraction_median: np.ndarray
    fraction_std: np.ndarray
    count_median: np.ndarray
    count_std: np.ndarray


@dataclass(frozen=True)
class Deviation:
    """How one class in one region differs from the training maps.

    Attributes:
        region: ``"whole image"`` or the cell's name (``"top-left"``, ``"row 2, column 3"``).
        cell: ``(row, column)`` of the cell from 0, or ``None`` for the whole image.
        class_id: label value 1..C.
        class_name: the class's display name.
        observed_count, expected_count: components in this image vs the training median.
        observed_fraction, expected_fraction: area fraction of the region vs the training median.
        unusualness: ``hypot`` of the count and area-fraction deviations, each divided by its
            training spread (floored by ``COUNT_FLOOR`` / ``FRACTION_FLOOR``).
        sentence: e.g. ``"grid cell top-left: class 'pin' count 0, expected 1; ..."``.
    """

    region: str
    cell: tuple[int, int] | None
    class_id: int
    class_name: str
    observed_count: int
    expected_count: float
    observed_fraction: float
    expected_fraction: float
    unusualness: float
    sentence: str


def cell_names(grid: int) -> tuple[str, ...]:
    """Names of the P×P cells in raster order."""
    return _NAMED_GRIDS.get(grid) or tuple(f"row {r + 1}, column {c + 1}" for r in range(grid) for c in range(grid))


def region_features(
    label_maps: Sequence[np.ndarray], n_classes: int, grid: int = 2, min_component_fraction: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Fractions ``(N, R, K)`` float64 and component counts ``(N, R, C)`` int64 of each map."""
    if grid < 1:
        raise ValueError(f"grid must be at least 1, got {grid}")
    fractions, counts = [], []
    for m in label_maps:
        m = np.asarray(m)
        if m.ndim != 2 or m.size == 0:
            raise ValueError(f"label maps must be 2-D and non-empty, got shape {m.shape}")
        if m.min() < 0 or m.max() > n_classes:
            raise ValueError(f"labels must lie in [0, {n_classes}], got [{m.min()}, {m.max()}]")
        fractions.append(_fractions(m.astype(np.int64), n_classes, grid))
        counts.append(_counts(m, n_classes, grid, min_component_fraction))
    if not fractions:
        raise ValueError("at least one label map is needed")
    return np.stack(fractions), np.stack(counts)


def patch_histograms(
    label_maps: Sequence[np.ndarray], n_classes: int, grid: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Class-area fractions: global ``(N, K)`` and grid ``(N, P²·K)`` (cells in raster order)."""
    fractions, _ = region_features(label_maps, n_classes, grid)
    return fractions[:, 0], fractions[:, 1:].reshape(len(fractions), -1)


def component_counts(
    label_maps: Sequence[np.ndarray], n_classes: int, grid: int = 2, min_component_fraction: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Components per class 1..C: global ``(N, C)`` and grid ``(N, P²·C)`` (cells in raster order)."""
    _, counts = region_features(label_maps, n_classes, grid, min_component_fraction)
    return counts[:, 0], counts[:, 1:].reshape(len(counts), -1)


def cell_bounds(length: int, grid: int) -> np.ndarray:
    """Pixel edges of ``grid`` cells along a side of ``length`` (the ONNX graph cuts the same cells)."""
    return np.linspace(0, length, grid + 1).round().astype(int)


def _fractions(m: np.ndarray, n_classes: int, grid: int) -> np.ndarray:
    k = n_classes + 1
    rows, cols = cell_bounds(m.shape[0], grid), cell_bounds(m.shape[1], grid)
    out = [np.bincount(m.ravel(), minlength=k) / m.size]
    for r in range(grid):
        for c in range(grid):
            cell = m[rows[r]:rows[r + 1], cols[c]:cols[c + 1]]
            out.append(np.bincount(cell.ravel(), minlength=k) / max(cell.size, 1))
    return np.stack(out)


def _counts(m: np.ndarray, n_classes: int, grid: int, min_fraction: float) -> np.ndarray:
    counts = np.zeros((1 + grid * grid, n_classes), dtype=np.int64)
    rows, cols = cell_bounds(m.shape[0], grid), cell_bounds(m.shape[1], grid)
    for cls in range(1, n_classes + 1):
        regions, n = ndimage.label(m == cls, structure=_EIGHT)
        if n == 0:
            continue
        index = np.arange(1, n + 1)
        areas = ndimage.sum_labels(np.ones_like(regions), regions, index)
        centres = np.array(ndimage.center_of_mass(np.ones_like(regions), regions, index)).reshape(-1, 2)
        keep = areas >= min_fraction * m.size
        r = np.clip(np.searchsorted(rows, centres[keep, 0], side="right") - 1, 0, grid - 1)
        c = np.clip(np.searchsorted(cols, centres[keep, 1], side="right") - 1, 0, grid - 1)
        counts[0, cls - 1] = int(keep.sum())
        np.add.at(counts[:, cls - 1], 1 + r * grid + c, 1)
    return counts


def fit_histogram_model(
    label_maps: Sequence[np.ndarray], n_classes: int, grid: int = 2,
    min_component_fraction: float = 1e-4, ridge: float = 1e-10,
) -> HistogramModel:
    """Fit the scorer on the training images' (predicted) label maps.

    ``ridge`` is added to the shrunk covariance's diagonal; it only matters when every training
    map is identical (Ledoit–Wolf then has nothing to shrink towards).
    """
    fractions, counts = region_features(label_maps, n_classes, grid, min_component_fraction)
    flat_grid = fractions[:, 1:].reshape(len(fractions), -1)
    g_mean, g_prec = _gaussian(fractions[:, 0], ridge)
    c_mean, c_prec = _gaussian(flat_grid, ridge)
    return HistogramModel(
        n_classes=n_classes, grid=grid, min_component_fraction=min_component_fraction, n_train=len(fractions),
        global_mean=g_mean, global_precision=g_prec, grid_mean=c_mean, grid_precision=c_prec,
        fraction_median=np.median(fractions, axis=0), fraction_std=fractions.std(axis=0),
        count_median=np.median(counts, axis=0).astype(np.float64), count_std=counts.std(axis=0),
    )


def _gaussian(x: np.ndarray, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    cov = LedoitWolf().fit(x).covariance_ if len(x) > 1 else np.zeros((x.shape[1], x.shape[1]))
    cov = cov + ridge * np.eye(x.shape[1])
    return mean, np.linalg.inv(cov)


def mahalanobis(features: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Row-wise ``sqrt((x - μ)ᵀ P (x - μ))`` of ``features (N, D)``; eq. 4.7 with ``P = Σ⁻¹``."""
    d = np.atleast_2d(features) - mean
    return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", d, precision, d), 0.0))


def mahalanobis_scores(model: HistogramModel, label_maps: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-image ``(global_score (N,), grid_score (N,))``; higher means a more unusual layout."""
    fractions, _ = region_features(label_maps, model.n_classes, model.grid, model.min_component_fraction)
    flat_grid = fractions[:, 1:].reshape(len(fractions), -1)
    return (mahalanobis(fractions[:, 0], model.global_mean, model.global_precision),
            mahalanobis(flat_grid, model.grid_mean, model.grid_precision))


def explain(
    model: HistogramModel, label_map: np.ndarray, class_names: Mapping[int, str] | Sequence[str]
) -> list[Deviation]:
    """Every (region, class) of one map compared with training, most unusual first.

    Args:
        class_names: ``{class_id: name}``, or a sequence naming classes 1..C in order (no
            background entry). Unnamed classes are called ``"class <id>"``.
    """
    fractions, counts = region_features([label_map], model.n_classes, model.grid, model.min_component_fraction)
    regions = ("whole image",) + cell_names(model.grid)
    out = []
    for r, region in enumerate(regions):
        for cls in range(1, model.n_classes + 1):
            out.append(_deviation(model, r, region, cls, _name(class_names, cls), fractions[0], counts[0]))
    return sorted(out, key=lambda d: -d.unusualness)  # stable: ties keep region, then class order


def _name(class_names: Mapping[int, str] | Sequence[str], cls: int) -> str:
    if isinstance(class_names, Mapping):
        return str(class_names.get(cls, f"class {cls}"))
    return str(class_names[cls - 1]) if cls - 1 < len(class_names) else f"class {cls}"


def _deviation(model, r, region, cls, name, fractions, counts) -> Deviation:
    obs_n, exp_n = int(counts[r, cls - 1]), float(model.count_median[r, cls - 1])
    obs_f, exp_f = float(fractions[r, cls]), float(model.fraction_median[r, cls])
    z_count = abs(obs_n - exp_n) / max(float(model.count_std[r, cls - 1]), COUNT_FLOOR)
    z_frac = abs(obs_f - exp_f) / max(float(model.fraction_std[r, cls]), FRACTION_FLOOR)
    where, area = ("whole image", "image") if r == 0 else (f"grid cell {region}", "cell")
    sentence = (f"{where}: class '{name}' count {obs_n}, expected {exp_n:g}; "
                f"area {obs_f:.1%} of the {area}, typically {exp_f:.1%}")
    cell = None if r == 0 else divmod(r - 1, model.grid)
    # Root sum of squares of the two standardised deviations: a missing part (count and area off)
    # outranks a mere area change of the surface it lay on (area off only).
    return Deviation(region, cell, cls, name, obs_n, exp_n, obs_f, exp_f, float(np.hypot(z_count, z_frac)), sentence)



def named_regions(deviations: Sequence[Deviation], grid: int, above: float) -> tuple[NamedRegion, ...]:
    """One box per grid cell with a deviation of at least ``above`` spreads, named by its most
    unusual class (``deviations`` most unusual first, as ``explain`` returns them)."""
    out: dict[tuple[int, int], NamedRegion] = {}
    for d in deviations:
        if d.cell is None or d.unusualness < above or d.cell in out:
            continue
        row, col = d.cell
        name = f"grid cell {d.region}: '{d.class_name}' count {d.observed_count}, expected {d.expected_count:g}"
        out[d.cell] = NamedRegion(name, (row / grid, col / grid, (row + 1) / grid, (col + 1) / grid))
    return tuple(out.values())

MODEL_ARRAYS = ("global_mean", "global_precision", "grid_mean", "grid_precision",
                "fraction_median", "fraction_std", "count_median", "count_std")
"""The ``HistogramModel`` fields stored as float64 arrays (model files and bundles)."""
MODEL_SCALARS = ("n_classes", "grid", "min_component_fraction", "n_train")
"""The ``HistogramModel`` fields stored as JSON scalars."""
WEIGHTS_FILE = "histogram_model.safetensors"
SETTINGS_FILE = "histogram_model.json"


def save_histogram_model(model: HistogramModel, folder: Path) -> dict[str, str]:
    """Write the model as float64 safetensors plus a JSON of its scalars; returns ``{role: file}``."""
    import torch

    from pipeline.workspace.files import atomic_save_safetensors, atomic_write_json

    scalars = {name: getattr(model, name) for name in MODEL_SCALARS}
    tensors = {name: torch.from_numpy(np.ascontiguousarray(getattr(model, name), dtype=np.float64)) for name in MODEL_ARRAYS}
    atomic_save_safetensors(Path(folder) / WEIGHTS_FILE, tensors, {"scalars": json.dumps(scalars)})
    atomic_write_json(Path(folder) / SETTINGS_FILE, scalars)
    return {"model": WEIGHTS_FILE, "settings": SETTINGS_FILE}


def load_histogram_model(folder: Path) -> HistogramModel:
    """Inverse of ``save_histogram_model``: the same arrays bit for bit."""
    from pipeline.workspace.files import load_safetensors

    path = Path(folder) / WEIGHTS_FILE
    if not path.exists():
        raise MissingFileError(f"no histogram model in {folder} (expected {WEIGHTS_FILE})")
    tensors, meta = load_safetensors(path)
    scalars = json.loads(meta["scalars"])
    return HistogramModel(**scalars, **{name: tensors[name].numpy() for name in MODEL_ARRAYS})
