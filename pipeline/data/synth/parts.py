"""Small geometric building blocks several categories share (bars, rings, placement)."""

from __future__ import annotations

import numpy as np


def bar(p0, p1, width: float, pointed: bool = False) -> np.ndarray:
    """Polygon of a straight bar of ``width`` from ``p0`` to ``p1``, optionally with a point."""
    p0, p1 = np.asarray(p0, dtype=float), np.asarray(p1, dtype=float)
    u = (p1 - p0) / max(float(np.linalg.norm(p1 - p0)), 1e-9)
    n = np.array([-u[1], u[0]]) * width / 2
    tip = [p1 + n, p1 + u * width * 0.9, p1 - n] if pointed else [p1 + n, p1 - n]
    return np.array([p0 - n, p0 + n, *tip])


def direction(angle: float) -> np.ndarray:
    """Unit vector at ``angle`` degrees, counter-clockwise on screen (y down)."""
    a = np.deg2rad(angle)
    return np.array([np.cos(a), -np.sin(a)])


def place_apart(rng: np.random.Generator, radii: list[float], box: tuple[float, float, float, float],
                gap: float, tries: int = 400) -> list[np.ndarray]:
    """Random centres for discs of ``radii`` inside ``box`` with at least ``gap`` between discs.

    Restarts from scratch when a disc does not fit, so the result depends only on the RNG.
    """
    for _ in range(tries):
        centres: list[np.ndarray] = []
        for r in radii:
            for _attempt in range(60):
                c = rng.uniform([box[0] + r, box[1] + r], [box[2] - r, box[3] - r])
                if all(np.linalg.norm(c - o) >= r + ro + gap for o, ro in zip(centres, radii)):
                    centres.append(c)
                    break
            else:
                break
        if len(centres) == len(radii):
            return centres
    raise RuntimeError("could not place parts without overlap; the layout is too crowded")
