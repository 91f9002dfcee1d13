"""``bottle``: a glass bottle with a cap, a wrap-around label and a coloured drink.

Rules: the label sits at the standard height; the drink's colour matches the label's colour;
the bottle is filled to the shoulder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.synth import defects
from pipeline.data.synth.render import RGB, Canvas, Lighting, Rendered, jitter_rgb, random_pose, rect
from pipeline.data.synth.spec import CategorySpec

GLASS, CAP, LABEL, DRINK = 1, 2, 3, 4
CLASSES = {GLASS: "bottle", CAP: "cap", LABEL: "label", DRINK: "drink"}
RULES = (
    "the drink has the label's colour (orange, green or purple)",
    "the label sits centred at the standard height on the bottle",
    "the bottle is filled up to the shoulder",
)
LOGICAL = ("wrong_drink", "shifted_label", "missing_label", "low_fill")
STRUCTURAL = ("crack", "chipped_cap", "stain")

BACKDROP, GLASS_RGB, CAP_RGB, PAPER = (62, 64, 72), (150, 172, 168), (170, 40, 44), (236, 234, 226)
FLAVOURS: tuple[RGB, ...] = ((232, 140, 40), (84, 172, 60), (134, 62, 154))
"""Drink colour = label colour of each flavour."""
STAIN_COLOURS: tuple[RGB, ...] = ((40, 32, 24), (240, 236, 200), (40, 120, 200))
BODY_X, BODY_TOP, BODY_BOTTOM, SHOULDER_TOP = 0.19, 0.34, 0.92, 0.26
NECK_X, NECK_TOP, CAP_X, CAP_TOP, CAP_BOTTOM = 0.07, 0.14, 0.095, 0.06, 0.15
WALL, FILL_Y, LABEL_Y, LABEL_H = 0.015, 0.42, 0.64, 0.2
LIGHTING = Lighting()


@dataclass(frozen=True)
class Bottle:
    """What varies between bottles: flavour of label and drink, label height, fill level."""

    label_flavour: int
    drink_flavour: int
    label_y: float | None
    fill_y: float


def _layout(rng: np.random.Generator, anomaly: str | None) -> Bottle:
    flavour = int(rng.integers(len(FLAVOURS)))
    label_y = LABEL_Y + rng.uniform(-0.01, 0.01)
    fill_y = FILL_Y + rng.uniform(-0.015, 0.015)
    drink = flavour
    if anomaly == "wrong_drink":
        drink = (flavour + int(rng.integers(1, len(FLAVOURS)))) % len(FLAVOURS)
    elif anomaly == "shifted_label":
        label_y += rng.choice([-1, 1]) * rng.uniform(0.09, 0.13)
    elif anomaly == "low_fill":
        fill_y = float(rng.uniform(0.62, 0.8))
    return Bottle(flavour, drink, None if anomaly == "missing_label" else float(label_y), float(fill_y))


def _glass_outline() -> list[np.ndarray]:
    shoulder = np.array([(0.5 - NECK_X, SHOULDER_TOP), (0.5 + NECK_X, SHOULDER_TOP),
                         (0.5 + BODY_X, BODY_TOP), (0.5 - BODY_X, BODY_TOP)])
    return [rect(0.5, (NECK_TOP + SHOULDER_TOP) / 2 + 0.005, 2 * NECK_X, SHOULDER_TOP - NECK_TOP + 0.01),
            shoulder, rect(0.5, (BODY_TOP + BODY_BOTTOM) / 2, 2 * BODY_X, BODY_BOTTOM - BODY_TOP)]


def _label_poly(y: float) -> np.ndarray:
    return rect(0.5, y, 2 * BODY_X, LABEL_H)


def _draw_label(canvas: Canvas, rng: np.random.Generator, y: float, colour: RGB) -> None:
    # Printed a shade darker than the drink, with dark edges, so a label on its own drink shows.
    ink = tuple(int(v * 0.4) for v in colour)
    canvas.fill(_label_poly(y), ink, cls=LABEL)
    canvas.fill(rect(0.5, y, 2 * BODY_X, LABEL_H - 0.012), tuple(int(v * 0.82) for v in colour))
    canvas.fill(rect(0.5, y, 2 * BODY_X, LABEL_H * 0.36), jitter_rgb(rng, PAPER, 0.03))
    for k in range(int(rng.integers(2, 4))):
        w = rng.uniform(0.08, 0.2)
        canvas.stroke(np.array([(0.5 - w, y - 0.02 + 0.02 * k), (0.5 + w, y - 0.02 + 0.02 * k)]), 0.008, ink)


def _draw_bottle(canvas: Canvas, rng: np.random.Generator, b: Bottle) -> None:
    glass = jitter_rgb(rng, GLASS_RGB, 0.05)
    for poly in _glass_outline():
        canvas.fill(poly, glass, cls=GLASS)
    drink_top, drink_bottom = b.fill_y, BODY_BOTTOM - WALL
    canvas.fill(rect(0.5, (drink_top + drink_bottom) / 2, 2 * (BODY_X - WALL), drink_bottom - drink_top),
                jitter_rgb(rng, FLAVOURS[b.drink_flavour], 0.05), cls=DRINK)
    # A vertical reflection makes the glass read as glass; it does not change the class map.
    canvas.fill(rect(0.5 - BODY_X * 0.6, (BODY_TOP + BODY_BOTTOM) / 2, 0.025, BODY_BOTTOM - BODY_TOP - 0.04),
                (235, 240, 240), alpha=0.35)
    if b.label_y is not None:
        _draw_label(canvas, rng, b.label_y, jitter_rgb(rng, FLAVOURS[b.label_flavour], 0.05))
    cap = jitter_rgb(rng, CAP_RGB, 0.06)
    canvas.fill(rect(0.5, (CAP_TOP + CAP_BOTTOM) / 2, 2 * CAP_X, CAP_BOTTOM - CAP_TOP), cap, cls=CAP)
    for k in range(7):
        x = 0.5 - CAP_X + (k + 1) * 2 * CAP_X / 8
        groove = np.array([(x, CAP_TOP + 0.015), (x, CAP_BOTTOM - 0.01)])
        canvas.stroke(groove, 0.005, tuple(int(v * 0.7) for v in cap))


def _mark_logical(canvas: Canvas, b: Bottle, anomaly: str) -> None:
    mask = canvas.new_mask()
    grow = canvas.px(2)
    if anomaly == "wrong_drink":
        canvas.mark(_glass_outline()[2], mask, within_cls=DRINK)
        if b.label_y is not None:
            canvas.mark(_label_poly(b.label_y), mask, grow=grow)
    elif anomaly in ("shifted_label", "missing_label"):
        canvas.mark(_label_poly(LABEL_Y), mask, grow=grow)
        if b.label_y is not None:
            canvas.mark(_label_poly(b.label_y), mask, grow=grow)
    elif anomaly == "low_fill":
        canvas.mark(rect(0.5, (FILL_Y + b.fill_y) / 2, 2 * (BODY_X - WALL), b.fill_y - FILL_Y), mask)


def render(rng: np.random.Generator, size: int, anomaly: str | None) -> Rendered:
    """Draw one bottle; ``anomaly`` is ``None`` or one of ``LOGICAL + STRUCTURAL``."""
    if anomaly not in (None, *LOGICAL, *STRUCTURAL):
        raise ValueError(f"bottle has no anomaly {anomaly!r}")
    b = _layout(rng, anomaly)
    backdrop = jitter_rgb(rng, BACKDROP, 0.06)
    canvas = Canvas(size, backdrop, random_pose(rng, 2.0, 0.025))
    _draw_bottle(canvas, rng, b)
    if anomaly in LOGICAL:
        _mark_logical(canvas, b, anomaly)
    elif anomaly == "crack":
        box = (0.5 - BODY_X + 0.04, BODY_TOP + 0.03, 0.5 + BODY_X - 0.04, BODY_BOTTOM - 0.04)
        defects.crack(canvas, rng, box, (28, 30, 32))
    elif anomaly == "chipped_cap":
        centre = (0.5 + rng.uniform(-CAP_X + 0.02, CAP_X - 0.02), CAP_TOP)
        defects.bite(canvas, rng, centre, float(rng.uniform(0.045, 0.055)), backdrop, CAP)
    elif anomaly == "stain":
        defects.stain(canvas, rng, (0.5 - BODY_X, BODY_TOP, 0.5 + BODY_X, BODY_BOTTOM), STAIN_COLOURS)
    return canvas.finish(rng, LIGHTING)


SPEC = CategorySpec("bottle", CLASSES, RULES, LOGICAL, STRUCTURAL, render)
