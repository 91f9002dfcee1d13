"""``fastener_kit``: a kit of loose fasteners on a plate, like MVTec LOCO's screw bag.

Rule: exactly 2 bolts, 2 nuts and 1 washer, anywhere on the plate, not touching each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.synth import defects
from pipeline.data.synth.parts import bar, direction, place_apart
from pipeline.data.synth.render import (RGB, Canvas, Lighting, Rendered, ellipse, jitter_rgb, ngon, random_pose,
                                        rect)
from pipeline.data.synth.spec import CategorySpec

BOLT, NUT, WASHER = 1, 2, 3
CLASSES = {BOLT: "bolt", NUT: "nut", WASHER: "washer"}
KIT = (BOLT, BOLT, NUT, NUT, WASHER)
RULES = (
    "exactly 2 bolts, 2 nuts and 1 washer",
    "parts lie anywhere on the plate without touching each other",
)
LOGICAL = ("missing_part", "extra_part", "swapped_part")
STRUCTURAL = ("broken_bolt", "scratch", "stain")

TABLE, PLATE = (52, 52, 56), (92, 108, 130)
COLOURS: dict[int, RGB] = {BOLT: (178, 180, 186), NUT: (196, 180, 116), WASHER: (210, 212, 216)}
RADIUS = {BOLT: 0.135, NUT: 0.058, WASHER: 0.07}
"""Bounding-circle radius of each part, for non-overlapping placement."""
STAIN_COLOURS: tuple[RGB, ...] = ((40, 30, 22), (214, 120, 40), (232, 226, 210))
HALF_BOLT, HEAD_LEN, HEAD_W, SHAFT_W = 0.13, 0.05, 0.085, 0.042
NUT_R, NUT_HOLE, WASHER_R, WASHER_HOLE = 0.055, 0.024, 0.068, 0.03
PLATE_BOX = (0.06, 0.06, 0.94, 0.94)
LIGHTING = Lighting()


@dataclass(frozen=True)
class Part:
    """One fastener: class, centre, orientation in degrees, colour."""

    cls: int
    cx: float
    cy: float
    angle: float
    colour: RGB

    def bolt_axis(self) -> tuple[np.ndarray, np.ndarray]:
        """Head end and tip of a bolt."""
        c, u = np.array([self.cx, self.cy]), direction(self.angle)
        return c - u * HALF_BOLT, c + u * HALF_BOLT

    def outline(self) -> list[np.ndarray]:
        """Polygons covering the part (for masks)."""
        if self.cls == BOLT:
            head, tip = self.bolt_axis()
            u = direction(self.angle)
            return [bar(head, head + u * HEAD_LEN, HEAD_W), bar(head, tip, SHAFT_W)]
        return [ellipse(self.cx, self.cy, NUT_R if self.cls == NUT else WASHER_R)]


def _place(rng: np.random.Generator, kinds: list[int]) -> list[Part]:
    box = (PLATE_BOX[0] + 0.02, PLATE_BOX[1] + 0.02, PLATE_BOX[2] - 0.02, PLATE_BOX[3] - 0.02)
    centres = place_apart(rng, [RADIUS[k] for k in kinds], box, gap=0.03)
    return [Part(k, float(c[0]), float(c[1]), float(rng.uniform(0, 360)), jitter_rgb(rng, COLOURS[k], 0.06))
            for k, c in zip(kinds, centres)]


def _layout(rng: np.random.Generator, anomaly: str | None) -> tuple[list[Part], list[Part]]:
    """Parts to draw and the parts to mark in the ground truth (logical anomalies)."""
    kinds = list(KIT)
    rng.shuffle(kinds)
    if anomaly == "missing_part":
        parts = _place(rng, kinds)
        return parts[1:], parts[:1]
    if anomaly == "extra_part":
        parts = _place(rng, kinds + [int(rng.choice([BOLT, NUT, WASHER]))])
        return parts, parts[-1:]
    if anomaly == "swapped_part":
        kinds[0] = int(rng.choice([k for k in (BOLT, NUT, WASHER) if k != kinds[0]]))
        parts = _place(rng, kinds)
        return parts, parts[:1]
    return _place(rng, kinds), []


def _draw_threads(canvas: Canvas, start: np.ndarray, end: np.ndarray, colour: RGB) -> None:
    """Slanted dark grooves along a shaft from ``start`` to ``end``."""
    length = float(np.linalg.norm(end - start))
    u = (end - start) / length
    n = np.array([-u[1], u[0]]) * SHAFT_W / 2
    dark = tuple(int(v * 0.62) for v in colour)
    for t in np.arange(0.02, length - 0.01, 0.017):
        p = start + u * t
        canvas.stroke(np.array([p - n * 0.9, p + n * 0.9 + u * 0.008]), 0.004, dark)


def _draw_broken_shaft(canvas: Canvas, part: Part, shaft_start: np.ndarray, tip: np.ndarray,
                       rng: np.random.Generator) -> None:
    """A cracked, kinked shaft: the outer piece tilted at a dark jagged fracture line.

    The two pieces still touch, so the bolt stays one component (the counts rule holds).
    """
    keep = float(rng.uniform(0.3, 0.55))
    stub, _ = defects.broken_bar(shaft_start, tip, SHAFT_W, keep, rng)
    tilt = float(rng.choice([-1, 1]) * rng.uniform(10, 18))
    piece, axis = defects.snapped_off_piece(shaft_start, tip, SHAFT_W, keep, rng, 0.0, tilt)
    canvas.fill(piece, part.colour, cls=BOLT)
    canvas.fill(stub, part.colour, cls=BOLT)
    length = float(np.linalg.norm(tip - shaft_start))
    u = (tip - shaft_start) / length
    _draw_threads(canvas, shaft_start, shaft_start + u * (length * keep - SHAFT_W * 0.5), part.colour)
    _draw_threads(canvas, axis[0] + (axis[1] - axis[0]) * 0.1, axis[1], part.colour)
    fracture = stub[1:-1]  # the jagged edge of the stub
    canvas.stroke(fracture, 0.006, tuple(int(v * 0.35) for v in part.colour))
    mask = canvas.new_mask()
    # Defective: the fracture zone and the kinked piece.
    cut = shaft_start + u * length * keep
    angle = -np.degrees(np.arctan2(u[1], u[0]))
    canvas.mark(rect(cut[0], cut[1], SHAFT_W * 1.6, SHAFT_W * 1.6, angle), mask, grow=canvas.px(2))
    canvas.mark(piece, mask, grow=canvas.px(2))


def _draw_bolt(canvas: Canvas, part: Part, rng: np.random.Generator, broken: bool) -> None:
    head, tip = part.bolt_axis()
    u = direction(part.angle)
    shaft_start = head + u * HEAD_LEN
    if broken:
        _draw_broken_shaft(canvas, part, shaft_start, tip, rng)
    else:
        canvas.fill(bar(shaft_start, tip, SHAFT_W), part.colour, cls=BOLT)
        _draw_threads(canvas, shaft_start, tip, part.colour)
    dark = tuple(int(v * 0.62) for v in part.colour)
    n = np.array([-u[1], u[0]]) * SHAFT_W / 2
    canvas.fill(bar(head, shaft_start, HEAD_W), tuple(int(v * 0.9) for v in part.colour), cls=BOLT)
    canvas.stroke(np.array([head + u * HEAD_LEN / 2 - n * 1.6, head + u * HEAD_LEN / 2 + n * 1.6]), 0.005, dark)


def _draw_ring(canvas: Canvas, part: Part, plate: RGB) -> None:
    if part.cls == NUT:
        canvas.fill(ngon(part.cx, part.cy, NUT_R, 6, part.angle), part.colour, cls=NUT)
        canvas.fill(ellipse(part.cx, part.cy, NUT_HOLE * 1.45), tuple(int(v * 0.85) for v in part.colour))
        canvas.fill(ellipse(part.cx, part.cy, NUT_HOLE), plate, cls=0)
    else:
        canvas.fill(ellipse(part.cx, part.cy, WASHER_R), part.colour, cls=WASHER)
        canvas.fill(ellipse(part.cx, part.cy, WASHER_R * 0.8), tuple(int(v * 0.93) for v in part.colour))
        canvas.fill(ellipse(part.cx, part.cy, WASHER_HOLE), plate, cls=0)


def render(rng: np.random.Generator, size: int, anomaly: str | None) -> Rendered:
    """Draw one kit; ``anomaly`` is ``None`` or one of ``LOGICAL + STRUCTURAL``."""
    if anomaly not in (None, *LOGICAL, *STRUCTURAL):
        raise ValueError(f"fastener_kit has no anomaly {anomaly!r}")
    parts, marked = _layout(rng, anomaly)
    canvas = Canvas(size, jitter_rgb(rng, TABLE, 0.05), random_pose(rng, 2.0, 0.01))
    plate = jitter_rgb(rng, PLATE, 0.05)
    x0, y0, x1, y1 = PLATE_BOX
    canvas.fill(rect((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0), plate)
    bolts = [i for i, p in enumerate(parts) if p.cls == BOLT]
    broken = bolts[int(rng.integers(len(bolts)))] if anomaly == "broken_bolt" else -1
    for i, part in enumerate(parts):
        if part.cls == BOLT:
            _draw_bolt(canvas, part, rng, broken=i == broken)
        else:
            _draw_ring(canvas, part, plate)
    for part in marked:
        mask = canvas.new_mask()
        for poly in part.outline():
            canvas.mark(poly, mask, grow=canvas.px(2))
    if anomaly == "scratch":
        defects.scratch(canvas, rng, PLATE_BOX, (228, 230, 232))
    elif anomaly == "stain":
        defects.stain(canvas, rng, PLATE_BOX, STAIN_COLOURS)
    return canvas.finish(rng, LIGHTING)


SPEC = CategorySpec("fastener_kit", CLASSES, RULES, LOGICAL, STRUCTURAL, render)
