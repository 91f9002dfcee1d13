"""Structural defects shared by the categories: scratch, stain, chipped-off chunk, broken bar.

Each helper draws the damage on a canvas and records its ground-truth mask. Sizes follow the brief:
clearly visible to a person and roughly 0.3-3% of the image area.
"""

from __future__ import annotations

import numpy as np

from pipeline.data.synth.render import RGB, Canvas, bezier, blob, jitter_rgb, rect

Box = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)`` in the object's normalised frame."""


def scratch(canvas: Canvas, rng: np.random.Generator, box: Box, rgb: RGB,
            length: tuple[float, float] = (0.2, 0.3),
            width_px: tuple[float, float] = (2.0, 4.0)) -> None:
    """A thin, slightly curved line lying entirely inside ``box``."""
    size = rng.uniform(*length)
    a = rng.uniform(0, np.pi)
    half = np.array([np.cos(a), np.sin(a)]) * size / 2
    lo = np.array(box[:2]) + np.abs(half)
    hi = np.maximum(np.array(box[2:]) - np.abs(half), lo)
    centre = rng.uniform(lo, hi)
    p0, p3 = centre - half, centre + half
    normal = np.array([-half[1], half[0]]) * 2
    bend = rng.uniform(-0.12, 0.12, size=2)
    path = bezier(p0, p0 + (p3 - p0) / 3 + bend[0] * normal,
                  p0 + 2 * (p3 - p0) / 3 + bend[1] * normal, p3, n=24)
    width = canvas.px(rng.uniform(*width_px))
    mask = canvas.new_mask()
    canvas.stroke(path, width, jitter_rgb(rng, rgb, 0.05), alpha=0.92)
    canvas.mark_stroke(path, width + canvas.px(2), mask)


def stain(canvas: Canvas, rng: np.random.Generator, box: Box, palette: tuple[RGB, ...],
          radius: tuple[float, float] = (0.035, 0.06)) -> None:
    """A semi-transparent coloured blob centred inside ``box``."""
    r = rng.uniform(*radius)
    cx, cy = rng.uniform(box[0] + r, box[2] - r), rng.uniform(box[1] + r, box[3] - r)
    poly = blob(rng, cx, cy, r)
    rgb = jitter_rgb(rng, palette[int(rng.integers(len(palette)))], 0.08)
    mask = canvas.new_mask()
    canvas.fill(poly, rgb, alpha=float(rng.uniform(0.72, 0.9)))
    canvas.mark(poly, mask)


def bite(canvas: Canvas, rng: np.random.Generator, centre: tuple[float, float], radius: float,
         background: RGB, part_cls: int) -> None:
    """Chip a chunk out of a part: the background shows through where material is missing.

    The mask is clipped to the part, because only the lost material is defective.
    """
    poly = blob(rng, centre[0], centre[1], radius, roughness=0.35)
    mask = canvas.new_mask()
    canvas.mark(poly, mask, within_cls=part_cls)
    canvas.fill(poly, background, cls=0)


def broken_bar(p0: np.ndarray, p1: np.ndarray, width: float, keep: float,
               rng: np.random.Generator, teeth: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A bar from ``p0`` to ``p1`` snapped at fraction ``keep`` of its length.

    Returns the remaining piece (with a jagged fracture end) and the region of the lost piece
    (for the mask).
    """
    p0, p1 = np.asarray(p0, dtype=float), np.asarray(p1, dtype=float)
    length = float(np.linalg.norm(p1 - p0))
    u = (p1 - p0) / length
    n = np.array([-u[1], u[0]])
    cut = p0 + u * length * keep
    across = np.linspace(-width / 2, width / 2, 2 * teeth + 1)
    depth = rng.uniform(0.15, 0.5, size=across.size) * width * np.where(np.arange(across.size) % 2, 1, -1)
    jag = [cut + d * u + s * n for s, d in zip(across, depth)]
    kept = np.array([p0 - n * width / 2, *jag, p0 + n * width / 2])
    lost_start = cut - u * width
    mid, span = (lost_start + p1) / 2, float(np.linalg.norm(p1 - lost_start))
    angle = -np.degrees(np.arctan2(u[1], u[0]))
    return kept, rect(mid[0], mid[1], span, width, angle)


def snapped_off_piece(p0: np.ndarray, p1: np.ndarray, width: float, keep: float, rng: np.random.Generator,
                      gap: float, tilt: float, teeth: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The piece of a bar beyond fraction ``keep`` once snapped off: it lies ``gap`` further out,
    tilted by ``tilt`` degrees about its outer end, with a jagged fracture edge.

    Returns the piece's polygon and its axis ``[start, end]`` (for drawing details along it).
    A bar that keeps its length but shows a fracture line and a kink is visible patch by patch,
    unlike a bar that is merely shorter (which only a count or length rule could tell).
    """
    p0, p1 = np.asarray(p0, dtype=float), np.asarray(p1, dtype=float)
    length = float(np.linalg.norm(p1 - p0))
    u = (p1 - p0) / length
    n = np.array([-u[1], u[0]])
    start = p0 + u * (length * keep + gap)
    end = p1 + u * gap
    across = np.linspace(width / 2, -width / 2, 2 * teeth + 1)
    depth = rng.uniform(0.15, 0.5, size=across.size) * width * np.where(np.arange(across.size) % 2, -1, 1)
    jag = [start + d * u + s * n for s, d in zip(across, depth)]
    piece = np.array([end - n * width / 2, end + n * width / 2, *jag])
    a = np.radians(tilt)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    turn = lambda pts: (np.atleast_2d(pts) - end) @ rot.T + end  # noqa: E731
    return turn(piece), turn(np.array([start, end]))


def crack(canvas: Canvas, rng: np.random.Generator, box: Box, rgb: RGB,
          length: tuple[float, float] = (0.16, 0.24), width_px: tuple[float, float] = (2.0, 3.0)) -> None:
    """A jagged crack (random walk with a drifting heading) starting inside ``box``."""
    steps = 10
    step = rng.uniform(*length) / steps
    heading = rng.uniform(0, 2 * np.pi)
    start = rng.uniform(box[:2], box[2:])
    points = [start]
    for _ in range(steps):
        heading += rng.uniform(-0.7, 0.7)
        nxt = points[-1] + step * np.array([np.cos(heading), np.sin(heading)])
        if not (box[0] <= nxt[0] <= box[2] and box[1] <= nxt[1] <= box[3]):
            heading += np.pi  # turn back rather than leave the part
            nxt = points[-1] + step * np.array([np.cos(heading), np.sin(heading)])
        points.append(nxt)
    path = np.array(points)
    width = canvas.px(rng.uniform(*width_px))
    mask = canvas.new_mask()
    canvas.stroke(path, width, jitter_rgb(rng, rgb, 0.05), alpha=0.9)
    canvas.mark_stroke(path, width + canvas.px(2), mask)
