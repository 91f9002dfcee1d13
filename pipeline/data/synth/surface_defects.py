"""Defects of a bare metal surface (the ``textured_plate`` category): scratch, pore, crack, dent, stain.

Unlike ``defects.py``, which paints colours onto a ``Canvas``, each defect here is a relative
shading field: the plate is multiplied by ``1 + shade``. A crack is then darker on a bright part of
the plate than on a dim one, as real damage under the same light is, and the brushing texture
stays visible through a faint stain. Lengths are in image widths (a defect covers the same share of
the plate at any size); line widths and pore diameters are in output pixels, so thin damage stays
about 2 px wide at the default 256 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline.data.synth.render import bezier, blob

SUPERSAMPLE = 4
"""Defects are drawn at this multiple of the output size: a 1-2 px line needs finer coverage steps
than the scenes' 2x, or its brightness would jump from pixel to pixel."""

BOX = (0.1, 0.1, 0.9, 0.9)
"""Where defects may lie (normalised ``x0, y0, x1, y1``): away from the frame edge, where a
defect cut off by the border would be half invisible."""


@dataclass(frozen=True)
class SurfaceDefect:
    """One defect as a change of the plate's shading.

    Attributes:
        shade: float32 ``(size, size)`` relative brightness change, 0 where the plate is untouched.
        mask: uint8 0/255 ``(size, size)`` ground truth of where the defect is.
        tint: per-channel (RGB) weight of ``shade``; ``(1, 1, 1)`` changes brightness only.
    """

    shade: np.ndarray
    mask: np.ndarray
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """The float RGB plate ``(size, size, 3)`` with this defect."""
        return rgb * (1 + self.shade[..., None] * np.asarray(self.tint, dtype=np.float32))


DrawFn = Callable[[ImageDraw.ImageDraw, float], None]
"""Draws on a supersampled ``L`` layer; gets the layer's side in pixels (normalised -> px)."""


def _coverage(size: int, draw: DrawFn) -> np.ndarray:
    """Fraction 0..1 of each output pixel that ``draw`` covers (box-filtered supersampling)."""
    side = size * SUPERSAMPLE
    layer = Image.new("L", (side, side), 0)
    draw(ImageDraw.Draw(layer), float(side))
    return np.asarray(layer.resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255


def _grown_mask(region: np.ndarray, px: int = 1) -> np.ndarray:
    """``region`` grown by ``px`` pixels as a 0/255 mask: a 2 px line's ground truth keeps its
    blurred rim, as the other categories' masks do (``mark_stroke`` adds 2 px)."""
    mask = Image.fromarray(region.astype(np.uint8) * 255)
    return np.asarray(mask.filter(ImageFilter.MaxFilter(2 * px + 1)), dtype=np.uint8).copy()


def _polyline(draw: ImageDraw.ImageDraw, pts: np.ndarray, width: float, values: np.ndarray) -> None:
    """A round-jointed polyline whose segment ``i`` has grey value ``values[i]`` (for tapering)."""
    r = width / 2
    for (p, q), v in zip(zip(pts[:-1], pts[1:]), values):
        draw.line([tuple(p), tuple(q)], fill=int(v), width=max(1, int(round(width))))
        # Discs at the vertices: PIL leaves notches at the joints of wide polylines.
        for x, y in (p, q):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=int(v))


def _centre(rng: np.random.Generator, margin: float = 0.0) -> np.ndarray:
    return rng.uniform(np.array(BOX[:2]) + margin, np.array(BOX[2:]) - margin)


def _walk(rng: np.random.Generator, start: np.ndarray, heading: float, steps: int, step: float,
          turn: float) -> tuple[np.ndarray, np.ndarray]:
    """A jagged random walk (a crack's path) that bounces off the edges of ``BOX``.

    Returns the points and the heading after each step (branches fork off those). Mirroring the
    heading at an edge, rather than reversing it, keeps the path from doubling back on itself
    into a blot."""
    points, headings = [start], []
    for _ in range(steps):
        heading += rng.uniform(-turn, turn)
        nxt = points[-1] + step * np.array([np.cos(heading), np.sin(heading)])
        if not BOX[0] <= nxt[0] <= BOX[2]:
            heading = np.pi - heading
        if not BOX[1] <= nxt[1] <= BOX[3]:
            heading = -heading
        points.append(points[-1] + step * np.array([np.cos(heading), np.sin(heading)]))
        headings.append(heading)
    return np.array(points), np.array(headings)


def scratch(rng: np.random.Generator, size: int) -> SurfaceDefect:
    """A thin (1-2.5 px), slightly curved line 0.15-0.35 image widths long, brighter (burnished
    groove catching the light) or darker, fading out at both ends as a real scratch does.

    It crosses the (near-horizontal) brushing at 15 degrees or more: a scratch along the
    streaks looks like one more streak, invisible even to a person."""
    length, angle = rng.uniform(0.15, 0.35), np.deg2rad(rng.uniform(15, 165))
    half = np.array([np.cos(angle), np.sin(angle)]) * length / 2
    centre = _centre(rng, float(np.abs(half).max()))
    normal = np.array([-half[1], half[0]]) * 2
    bend = rng.uniform(-0.1, 0.1, size=2)
    p0, p3 = centre - half, centre + half
    path = bezier(p0, p0 + (p3 - p0) / 3 + bend[0] * normal, p0 + 2 * (p3 - p0) / 3 + bend[1] * normal, p3, n=24)
    width = rng.uniform(1.0, 2.5)
    fade = 255 * np.clip(np.sin(np.linspace(0.05, np.pi - 0.05, len(path) - 1)) ** 0.5 * 1.2, 0.3, 1.0)
    cov = _coverage(size, lambda d, s: _polyline(d, path * s, width * SUPERSAMPLE, fade))
    strength = rng.uniform(0.16, 0.26) * rng.choice([-1.0, 1.0])
    return SurfaceDefect((strength * cov).astype(np.float32), _grown_mask(cov > 0))


def pore(rng: np.random.Generator, size: int) -> SurfaceDefect:
    """A cluster of 2-5 small dark pits, 2-6 px across, scattered up to 4-12 px from the cluster's
    centre (gas porosity), each dark in the middle and soft at the rim."""
    n = int(rng.integers(2, 6))
    spread = rng.uniform(4, 12) / size
    centres = _centre(rng, 0.03) + rng.uniform(-spread, spread, size=(n, 2))
    radii = rng.uniform(1.0, 3.0, size=n) / size

    def draw(d: ImageDraw.ImageDraw, s: float) -> None:
        for (x, y), r in zip(centres * s, radii * s):
            d.ellipse((x - r, y - r, x + r, y + r), fill=255)

    cov = _coverage(size, draw)
    # A half-pixel blur rounds the pits' profile: darkest at the bottom, not a flat disc.
    soft = np.asarray(Image.fromarray((cov * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6)),
                      dtype=np.float32) / 255
    depth = rng.uniform(0.3, 0.5)
    return SurfaceDefect((-depth * np.maximum(cov, soft)).astype(np.float32), _grown_mask(cov > 0))


def crack(rng: np.random.Generator, size: int) -> SurfaceDefect:
    """A thin (1.5-2.5 px) dark jagged crack 0.12-0.22 image widths long with 1-2 thinner branches."""
    steps, length = 14, rng.uniform(0.12, 0.22)
    start = _centre(rng, length / 2)
    main, headings = _walk(rng, start, rng.uniform(0, 2 * np.pi), steps, length / steps, 0.4)
    branches = []
    for _ in range(int(rng.integers(1, 3))):
        i = int(rng.integers(3, steps - 2))
        fork = headings[i] + rng.choice([-1.0, 1.0]) * rng.uniform(0.45, 0.9)
        branches.append(_walk(rng, main[i + 1], fork, int(rng.integers(4, 7)), length / steps, 0.4)[0])
    width = rng.uniform(1.5, 2.5)

    def draw(d: ImageDraw.ImageDraw, s: float) -> None:
        _polyline(d, main * s, width * SUPERSAMPLE, np.full(steps, 255))
        for branch in branches:
            # Branches narrow towards their tips, so they read as cracks spreading, not scribbles.
            values = np.linspace(255, 110, len(branch) - 1)
            _polyline(d, branch * s, max(1.0, 0.7 * width) * SUPERSAMPLE, values)

    cov = _coverage(size, draw)
    return SurfaceDefect((-rng.uniform(0.3, 0.45) * cov).astype(np.float32), _grown_mask(cov > 0))


def dent(rng: np.random.Generator, size: int) -> SurfaceDefect:
    """A shallow round dent (Gaussian depression, sigma 0.022-0.035 image widths): its slopes face
    towards or away from the light, so one side turns brighter and the other darker."""
    sigma = rng.uniform(0.022, 0.035)
    cx, cy = _centre(rng, 3 * sigma)
    theta = rng.uniform(0, 2 * np.pi)
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    dx, dy = (grid[None, :] - cx) / sigma, (grid[:, None] - cy) / sigma
    r2 = dx**2 + dy**2
    height = np.exp(-r2 / 2)
    # Slope along the light direction, scaled so its peak (at r = sigma) is 1.
    slope = (dx * np.cos(theta) + dy * np.sin(theta)) * height / np.exp(-0.5)
    # The window ends the shading at 3 sigma, so nothing changes outside the ground truth's rim.
    window = np.clip(1 - r2 / 9, 0, 1) ** 2
    shade = (rng.uniform(0.12, 0.2) * slope - 0.02 * height) * window
    return SurfaceDefect(shade.astype(np.float32), _grown_mask(r2 <= 2.5**2))


def stain(rng: np.random.Generator, size: int) -> SurfaceDefect:
    """A faint soft-edged blotch (oil, dried coolant): 7-11% darker and yellow-brown,
    irregular outline of radius 0.04-0.075 image widths."""
    r = rng.uniform(0.04, 0.075)
    cx, cy = _centre(rng, 1.5 * r)
    poly = blob(rng, cx, cy, r, roughness=0.3)
    cov = _coverage(size, lambda d, s: d.polygon([tuple(p) for p in poly * s], fill=255))
    soft = Image.fromarray((cov * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(max(1.0, 0.2 * r * size)))
    soft_cov = np.asarray(soft, dtype=np.float32) / 255
    # Blue darkens most: a thin organic film absorbs short wavelengths, so the blotch looks brownish.
    tint = (0.8, 1.0, 1.5)
    # The faint blurred fringe (under a fifth of the full change, about 2 grey levels) is not marked.
    return SurfaceDefect((-rng.uniform(0.07, 0.11) * soft_cov).astype(np.float32), _grown_mask(soft_cov >= 0.2), tint)


DEFECTS: dict[str, Callable[[np.random.Generator, int], SurfaceDefect]] = {
    "scratch": scratch, "pore": pore, "crack": crack, "dent": dent, "stain": stain,
}
"""Every surface defect by subtype name, in the order the generator cycles through them."""
