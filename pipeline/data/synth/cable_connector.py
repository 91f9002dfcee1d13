"""``cable_connector``: a connector block on a mat, one cable, two mounting screws.

Rules: the connector size dictates the cable colour (small/4 contacts -> red, large/7 contacts ->
blue); exactly one cable; exactly two screws, one in each mounting ear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.synth import defects
from pipeline.data.synth.render import (RGB, Canvas, Lighting, Rendered, bezier, ellipse, jitter_rgb, random_pose,
                                        rect)
from pipeline.data.synth.spec import CategorySpec

CONNECTOR, CABLE, SCREW = 1, 2, 3
CLASSES = {CONNECTOR: "connector", CABLE: "cable", SCREW: "screw"}
RULES = (
    "a small connector (4 contacts) has a red cable, a large connector (7 contacts) a blue cable",
    "exactly one cable, leaving the bottom of the connector",
    "exactly two screws, one in each mounting ear",
)
LOGICAL = ("wrong_cable_colour", "missing_cable", "extra_screw", "missing_screw")
STRUCTURAL = ("cut_cable", "broken_connector", "stain")

MAT, BODY, RECESS, GOLD, BOOT, STEEL = ((64, 92, 84), (198, 198, 192), (58, 58, 64), (214, 172, 62),
                                        (72, 72, 78), (118, 124, 134))
CABLE_COLOURS: dict[bool, RGB] = {False: (198, 40, 36), True: (38, 74, 190)}
"""Cable colour by ``large``."""
STAIN_COLOURS: tuple[RGB, ...] = ((30, 28, 25), (236, 232, 220), (214, 122, 40))
CENTRE_Y, EAR_W, EAR_H, SCREW_R, CABLE_W = 0.34, 0.1, 0.12, 0.034, 0.05
LIGHTING = Lighting()


@dataclass(frozen=True)
class Layout:
    """Where everything of one image goes (object frame)."""

    cx: float
    large: bool
    cable: np.ndarray
    screw_angles: tuple[float, float]

    @property
    def body(self) -> tuple[float, float]:
        return (0.46, 0.2) if self.large else (0.3, 0.18)

    def ear_centres(self) -> list[tuple[float, float]]:
        w = self.body[0]
        return [(self.cx - w / 2 - EAR_W / 2 + 0.01, CENTRE_Y), (self.cx + w / 2 + EAR_W / 2 - 0.01, CENTRE_Y)]

    def outline(self) -> list[np.ndarray]:
        """Polygons covering the connector (body and ears)."""
        w, h = self.body
        return [rect(self.cx, CENTRE_Y, w, h), *(rect(x, y, EAR_W, EAR_H) for x, y in self.ear_centres())]


def _layout(rng: np.random.Generator) -> Layout:
    cx = 0.5 + rng.uniform(-0.03, 0.03)
    large = bool(rng.integers(2))
    h = 0.2 if large else 0.18
    start = np.array([cx, CENTRE_Y + h / 2 + 0.03])
    end = np.array([cx + rng.uniform(-0.2, 0.2), 1.08])
    c1 = start + (rng.uniform(-0.1, 0.1), 0.22)
    c2 = np.array([end[0] + rng.uniform(-0.15, 0.15), 0.8])
    return Layout(cx, large, bezier(start, c1, c2, end, n=64), tuple(rng.uniform(0, 180, size=2)))


def _draw_cable(canvas: Canvas, path: np.ndarray, colour: RGB) -> None:
    canvas.stroke(path, CABLE_W, colour, cls=CABLE)
    shine = tuple(min(255, int(v * 1.3) + 25) for v in colour)
    canvas.stroke(path + (-CABLE_W / 4, 0), CABLE_W / 5, shine, alpha=0.6)


def _draw_connector(canvas: Canvas, lay: Layout, rng: np.random.Generator) -> None:
    w, h = lay.body
    body = jitter_rgb(rng, BODY, 0.04)
    for x, y in lay.ear_centres():
        canvas.fill(rect(x, y, EAR_W, EAR_H), tuple(int(v * 0.92) for v in body), cls=CONNECTOR)
        canvas.fill(ellipse(x, y, SCREW_R / 2), RECESS, cls=CONNECTOR)
    canvas.fill(rect(lay.cx, CENTRE_Y, w, h), body, cls=CONNECTOR)
    canvas.fill(rect(lay.cx, CENTRE_Y + h / 2 + 0.02, 0.09, 0.05), jitter_rgb(rng, BOOT, 0.05), cls=CONNECTOR)
    n = 7 if lay.large else 4
    canvas.fill(rect(lay.cx, CENTRE_Y, n * 0.05 + 0.02, 0.09), RECESS)
    gold = jitter_rgb(rng, GOLD, 0.05)
    for k in range(n):
        canvas.fill(rect(lay.cx + (k - (n - 1) / 2) * 0.05, CENTRE_Y, 0.022, 0.06), gold)


def _draw_screw(canvas: Canvas, x: float, y: float, angle: float, rng: np.random.Generator) -> None:
    steel = jitter_rgb(rng, STEEL, 0.06)
    canvas.fill(ellipse(x, y, SCREW_R), steel, cls=SCREW)
    canvas.fill(ellipse(x - SCREW_R / 4, y - SCREW_R / 4, SCREW_R * 0.55), tuple(min(255, v + 30) for v in steel))
    canvas.fill(rect(x, y, SCREW_R * 1.5, 0.009, angle), tuple(int(v * 0.35) for v in steel))


def _loose_screw_spot(rng: np.random.Generator, lay: Layout) -> tuple[float, float]:
    """A free spot on the mat, clear of the connector and the cable."""
    for _ in range(200):
        spot = rng.uniform((0.1, 0.6), (0.9, 0.9))
        if np.min(np.linalg.norm(lay.cable - spot, axis=1)) > CABLE_W / 2 + SCREW_R + 0.04:
            return float(spot[0]), float(spot[1])
    raise RuntimeError("no free spot for the extra screw")


def render(rng: np.random.Generator, size: int, anomaly: str | None) -> Rendered:
    """Draw one connector; ``anomaly`` is ``None`` or one of ``LOGICAL + STRUCTURAL``."""
    if anomaly not in (None, *LOGICAL, *STRUCTURAL):
        raise ValueError(f"cable_connector has no anomaly {anomaly!r}")
    lay = _layout(rng)
    canvas = Canvas(size, jitter_rgb(rng, MAT, 0.05), random_pose(rng, 4.0, 0.03))
    colour = jitter_rgb(rng, CABLE_COLOURS[lay.large != (anomaly == "wrong_cable_colour")], 0.06)
    if anomaly == "cut_cable":
        _cut_cable(canvas, lay, colour, rng)
    elif anomaly == "missing_cable":
        canvas.mark_stroke(lay.cable, CABLE_W + canvas.px(6), canvas.new_mask())
    else:
        _draw_cable(canvas, lay.cable, colour)
    _draw_connector(canvas, lay, rng)
    _screws(canvas, lay, anomaly, rng)
    if anomaly == "wrong_cable_colour":
        mask = canvas.new_mask()
        canvas.mark_stroke(lay.cable, CABLE_W + canvas.px(4), mask)
        for poly in lay.outline():
            canvas.mark(poly, mask, grow=canvas.px(2))
    elif anomaly == "broken_connector":
        w, h = lay.body
        centre = (lay.cx + rng.uniform(-w / 2 + 0.09, w / 2 - 0.09), CENTRE_Y - h / 2)
        defects.bite(canvas, rng, centre, float(rng.uniform(0.05, 0.065)), MAT, CONNECTOR)
    elif anomaly == "stain":
        defects.stain(canvas, rng, (0.15, 0.2, 0.85, 0.9), STAIN_COLOURS)
    return canvas.finish(rng, LIGHTING)


def _screws(canvas: Canvas, lay: Layout, anomaly: str | None, rng: np.random.Generator) -> None:
    skip = int(rng.integers(2)) if anomaly == "missing_screw" else -1
    for k, ((x, y), angle) in enumerate(zip(lay.ear_centres(), lay.screw_angles)):
        if k == skip:
            canvas.mark(ellipse(x, y, SCREW_R), canvas.new_mask(), grow=canvas.px(2))
        else:
            _draw_screw(canvas, x, y, angle, rng)
    if anomaly == "extra_screw":
        x, y = _loose_screw_spot(rng, lay)
        _draw_screw(canvas, x, y, float(rng.uniform(0, 180)), rng)
        canvas.mark(ellipse(x, y, SCREW_R), canvas.new_mask(), grow=canvas.px(2))


def _cut_cable(canvas: Canvas, lay: Layout, colour: RGB, rng: np.random.Generator) -> None:
    """The cable is severed: a gap with frayed copper strands at both ends."""
    path = lay.cable
    start = int(rng.integers(18, 40))
    stop = start + int(rng.integers(9, 13))
    _draw_cable(canvas, path[:start + 1], colour)
    _draw_cable(canvas, path[stop:], colour)
    copper = jitter_rgb(rng, (206, 124, 62), 0.06)
    for end, inward in ((path[start], path[start + 1] - path[start]), (path[stop], path[stop - 1] - path[stop])):
        inward = inward / np.linalg.norm(inward)
        for _ in range(4):
            side = np.array([-inward[1], inward[0]]) * rng.uniform(-0.4, 0.4) * CABLE_W
            tip = end + side + (inward + rng.normal(0, 0.4, 2)) * rng.uniform(0.01, 0.02)
            canvas.stroke(np.array([end + side, tip]), 0.006, copper, cls=CABLE)
    canvas.mark_stroke(path[start - 1:stop + 2], CABLE_W + canvas.px(4), canvas.new_mask())


SPEC = CategorySpec("cable_connector", CLASSES, RULES, LOGICAL, STRUCTURAL, render)
