"""``pin_tray``: a tray with a 2x3 grid of compartments, one brass pin in each.

Rule: every compartment holds exactly one pin, lying inside it. Logical anomalies move, drop or
add an undamaged pin; structural ones damage a pin or the tray.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pipeline.data.synth import defects
from pipeline.data.synth.parts import bar, direction
from pipeline.data.synth.render import (RGB, Canvas, Lighting, Rendered, ellipse, jitter_rgb, random_pose, rect,
                                        rotate)
from pipeline.data.synth.spec import CategorySpec

TRAY, DIVIDER, PIN = 1, 2, 3
CLASSES = {TRAY: "tray", DIVIDER: "divider", PIN: "pin"}
RULES = (
    "each of the 6 compartments (2 rows x 3 columns) holds exactly one pin",
    "every pin lies completely inside its compartment, not on a divider or the rim",
)
LOGICAL = ("missing_pin", "extra_pin", "misplaced_pin")
STRUCTURAL = ("scratch", "bent_pin", "broken_pin", "stain")

ROWS, COLS = 2, 3
TRAY_W, TRAY_H, RIM, WALL = 0.84, 0.62, 0.03, 0.024
HALF_PIN, SHAFT_W, HEAD_R = 0.07, 0.022, 0.022
TABLE, FLOOR, WALLS, BRASS = (104, 110, 120), (214, 208, 196), (176, 168, 154), (196, 152, 66)
STAIN_COLOURS: tuple[RGB, ...] = ((92, 58, 28), (38, 84, 168), (150, 48, 120))
LIGHTING = Lighting()


@dataclass(frozen=True)
class Pin:
    """One pin: centre, direction from head to tip (degrees), colour."""

    cx: float
    cy: float
    angle: float
    colour: RGB

    def ends(self) -> tuple[np.ndarray, np.ndarray]:
        """Head centre and tip."""
        c, u = np.array([self.cx, self.cy]), direction(self.angle)
        return c - u * HALF_PIN, c + u * HALF_PIN

    def outline(self) -> list[np.ndarray]:
        """Polygons covering the pin (for masks of where it is or should be)."""
        head, tip = self.ends()
        return [bar(head, tip, SHAFT_W, pointed=True), ellipse(head[0], head[1], HEAD_R)]


def _cell_size() -> tuple[float, float]:
    return ((TRAY_W - 2 * RIM - (COLS - 1) * WALL) / COLS,
            (TRAY_H - 2 * RIM - (ROWS - 1) * WALL) / ROWS)


def _cell_centres() -> list[tuple[float, float]]:
    cw, ch = _cell_size()
    x0, y0 = 0.5 - TRAY_W / 2 + RIM, 0.5 - TRAY_H / 2 + RIM
    return [(x0 + c * (cw + WALL) + cw / 2, y0 + r * (ch + WALL) + ch / 2)
            for r in range(ROWS) for c in range(COLS)]


def _pin(rng: np.random.Generator, cx: float, cy: float, spread: float = 20.0) -> Pin:
    """A pin roughly along the compartment's long (vertical) axis, head up or down."""
    angle = 90.0 + 180.0 * int(rng.integers(2)) + rng.uniform(-spread, spread)
    return Pin(cx, cy, float(angle), jitter_rgb(rng, BRASS, 0.07))


def _good_pins(rng: np.random.Generator) -> list[Pin]:
    return [_pin(rng, cx + rng.uniform(-0.03, 0.03), cy + rng.uniform(-0.015, 0.015))
            for cx, cy in _cell_centres()]


def _missing(rng, pins):
    i = int(rng.integers(len(pins)))
    return pins[:i] + pins[i + 1:], [pins[i].outline()]


def _extra(rng, pins):
    """Two parallel pins share one compartment; the added one is the anomaly."""
    i = int(rng.integers(len(pins)))
    cx, cy = _cell_centres()[i]
    side = 1 if rng.integers(2) else -1
    first = replace(_pin(rng, cx - side * 0.055, cy + rng.uniform(-0.01, 0.01), 6.0), colour=pins[i].colour)
    added = _pin(rng, cx + side * 0.055, cy + rng.uniform(-0.01, 0.01), 6.0)
    return pins[:i] + [first, added] + pins[i + 1:], [added.outline()]


def _misplaced(rng, pins):
    """A pin of a top/bottom-row compartment lies across the outer rim next to its compartment."""
    i = int(rng.integers(len(pins)))
    cx, cy = _cell_centres()[i]
    rim_y = 0.5 + (-1 if i < COLS else 1) * (TRAY_H / 2 - RIM / 2)
    moved = replace(pins[i], cx=cx + rng.uniform(-0.05, 0.05), cy=rim_y,
                    angle=float(90.0 + 180.0 * int(rng.integers(2)) + rng.uniform(-15, 15)))
    nominal = Pin(cx, cy, 90.0, pins[i].colour)
    return pins[:i] + [moved] + pins[i + 1:], [moved.outline() + nominal.outline()]


_LOGICAL = {"missing_pin": _missing, "extra_pin": _extra, "misplaced_pin": _misplaced}


def _draw_tray(canvas: Canvas, rng: np.random.Generator) -> None:
    canvas.fill(rect(0.5, 0.5, TRAY_W, TRAY_H), jitter_rgb(rng, WALLS, 0.04), cls=DIVIDER)
    floor = jitter_rgb(rng, FLOOR, 0.03)
    cw, ch = _cell_size()
    for cx, cy in _cell_centres():
        canvas.fill(rect(cx, cy, cw, ch), floor, cls=TRAY)
        # A soft shadow under the upper wall gives the compartments depth.
        canvas.fill(rect(cx, cy - ch / 2 + 0.006, cw, 0.012), tuple(int(v * 0.9) for v in floor))


def _draw_pin(canvas: Canvas, pin: Pin, rng: np.random.Generator, damage: str | None) -> None:
    head, tip = pin.ends()
    mid = (head + tip) / 2
    if damage == "bent_pin":
        bent = mid + rotate(tip - mid, rng.choice([-1, 1]) * rng.uniform(40, 60))
        shafts = [bar(head, mid, SHAFT_W), bar(mid, bent, SHAFT_W, pointed=True),
                  ellipse(mid[0], mid[1], SHAFT_W / 2)]
        mask = canvas.new_mask()
        for poly in (bar(mid, tip, SHAFT_W, True), bar(mid, bent, SHAFT_W, True)):
            canvas.mark(poly, mask, grow=canvas.px(2))
    elif damage == "broken_pin":
        kept, lost = defects.broken_bar(head, tip, SHAFT_W, float(rng.uniform(0.25, 0.45)), rng)
        shafts = [kept]
        canvas.mark(lost, canvas.new_mask(), grow=canvas.px(2))
    else:
        shafts = [bar(head, tip, SHAFT_W, pointed=True)]
    for poly in shafts:
        canvas.fill(poly, pin.colour, cls=PIN)
    canvas.fill(ellipse(head[0], head[1], HEAD_R), tuple(int(v * 0.85) for v in pin.colour), cls=PIN)
    shine = tuple(min(255, int(v * 1.25)) for v in pin.colour)
    canvas.fill(ellipse(head[0] - HEAD_R / 3, head[1] - HEAD_R / 3, HEAD_R / 3), shine)


def render(rng: np.random.Generator, size: int, anomaly: str | None) -> Rendered:
    """Draw one tray; ``anomaly`` is ``None`` or one of ``LOGICAL + STRUCTURAL``."""
    if anomaly not in (None, *LOGICAL, *STRUCTURAL):
        raise ValueError(f"pin_tray has no anomaly {anomaly!r}")
    pose = random_pose(rng, 3.0, 0.025)
    pins, marks = _good_pins(rng), []
    if anomaly in _LOGICAL:
        pins, marks = _LOGICAL[anomaly](rng, pins)
    canvas = Canvas(size, jitter_rgb(rng, TABLE, 0.05), pose)
    _draw_tray(canvas, rng)
    damaged = int(rng.integers(len(pins)))
    for i, pin in enumerate(pins):
        _draw_pin(canvas, pin, rng, anomaly if i == damaged and anomaly in ("bent_pin", "broken_pin") else None)
    for group in marks:
        mask = canvas.new_mask()
        for poly in group:
            canvas.mark(poly, mask, grow=canvas.px(2))
    tray_box = (0.5 - TRAY_W / 2, 0.5 - TRAY_H / 2, 0.5 + TRAY_W / 2, 0.5 + TRAY_H / 2)
    if anomaly == "scratch":
        defects.scratch(canvas, rng, tray_box, (48, 42, 38))
    elif anomaly == "stain":
        defects.stain(canvas, rng, tray_box, STAIN_COLOURS)
    return canvas.finish(rng, LIGHTING)


SPEC = CategorySpec("pin_tray", CLASSES, RULES, LOGICAL, STRUCTURAL, render)
