"""Drawing helpers shared by the synthetic categories: shapes, a supersampled canvas, lighting.

Geometry is in normalised image coordinates (0..1 on both axes, y down) so a category draws the
same scene at any output size. The canvas keeps the colour image, the component-class map and the
defect masks aligned because every primitive goes through the same pose and scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw

SUPERSAMPLE = 2
"""Scenes are drawn at this multiple of the output size and box-filtered down (anti-aliasing)."""

RGB = tuple[int, int, int]


def rect(cx: float, cy: float, w: float, h: float, angle: float = 0.0) -> np.ndarray:
    """Corners of a ``w`` x ``h`` rectangle centred on ``(cx, cy)``, rotated by ``angle`` degrees."""
    pts = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], dtype=float) / 2
    return rotate(pts, angle) + (cx, cy)


def ellipse(cx: float, cy: float, rx: float, ry: float | None = None, angle: float = 0.0,
            n: int = 40) -> np.ndarray:
    """Polygon approximating an ellipse (a circle when ``ry`` is omitted)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pts = np.stack([rx * np.cos(t), (rx if ry is None else ry) * np.sin(t)], axis=1)
    return rotate(pts, angle) + (cx, cy)


def ngon(cx: float, cy: float, r: float, sides: int, angle: float = 0.0) -> np.ndarray:
    """Regular polygon with circumradius ``r``."""
    return ellipse(cx, cy, r, r, angle, n=sides)


def rotate(pts: np.ndarray, angle: float, about: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Rotate points by ``angle`` degrees (counter-clockwise on screen) about ``about``."""
    a = np.deg2rad(angle)
    # y points down on screen, so a screen-counter-clockwise turn uses -sin in the x row.
    m = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    centre = np.asarray(about, dtype=float)
    return (np.asarray(pts, dtype=float) - centre) @ m.T + centre


def bezier(p0, p1, p2, p3, n: int = 32) -> np.ndarray:
    """``n`` points along a cubic Bezier curve."""
    t = np.linspace(0, 1, n)[:, None]
    p = [np.asarray(q, dtype=float) for q in (p0, p1, p2, p3)]
    return ((1 - t) ** 3) * p[0] + 3 * ((1 - t) ** 2) * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]


def blob(rng: np.random.Generator, cx: float, cy: float, r: float, roughness: float = 0.25,
         n: int = 40) -> np.ndarray:
    """Irregular closed outline (a stain, a chipped-off chunk): a circle with random harmonics."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radius = np.ones(n)
    # Decaying harmonics give an organic outline; high ones alone would look like a polygon.
    for k in (2, 3, 4):
        radius += roughness * 2 / k * rng.uniform(-1, 1) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    radius = r * np.clip(radius, 0.5, 1.6)
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)


def jitter_rgb(rng: np.random.Generator, rgb: RGB, amount: float = 0.06) -> RGB:
    """Colour variation of one part: a shared brightness change plus a smaller per-channel one."""
    scale = 1 + rng.uniform(-amount, amount) + rng.uniform(-amount / 2, amount / 2, size=3)
    return tuple(int(v) for v in np.clip(np.asarray(rgb) * scale, 0, 255).round())


@dataclass(frozen=True)
class Pose:
    """Placement of a whole object on the image: rotation about the image centre, then shift.

    Attributes:
        angle: rotation in degrees.
        dx: horizontal shift in image widths.
        dy: vertical shift in image heights.
    """

    angle: float = 0.0
    dx: float = 0.0
    dy: float = 0.0

    def apply(self, pts: np.ndarray) -> np.ndarray:
        return rotate(pts, self.angle, (0.5, 0.5)) + (self.dx, self.dy)


def random_pose(rng: np.random.Generator, max_angle: float, max_shift: float) -> Pose:
    """Uniform jitter of a whole object's placement."""
    return Pose(float(rng.uniform(-max_angle, max_angle)),
                float(rng.uniform(-max_shift, max_shift)), float(rng.uniform(-max_shift, max_shift)))


@dataclass(frozen=True)
class Lighting:
    """Image-wide normal variation applied after drawing.

    Attributes:
        gain: range of the global brightness factor.
        gradient: peak-to-peak relative brightness change of the soft linear lighting gradient.
        texture: strength of the low-frequency multiplicative surface texture.
        white_balance: per-channel gain jitter (camera white balance).
        noise_sigma: range of the Gaussian sensor noise standard deviation, in 8-bit levels.
    """

    gain: tuple[float, float] = (0.88, 1.12)
    gradient: float = 0.16
    texture: float = 0.04
    white_balance: float = 0.03
    noise_sigma: tuple[float, float] = (1.5, 4.0)


def apply_lighting(image: np.ndarray, rng: np.random.Generator, lighting: Lighting) -> np.ndarray:
    """Float RGB ``(h, w, 3)`` in 0..255 -> uint8 with gain, gradient, texture and noise."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    phi = rng.uniform(0, 2 * np.pi)
    ramp = ((xx / w - 0.5) * np.cos(phi) + (yy / h - 0.5) * np.sin(phi)) * lighting.gradient
    coarse = Image.fromarray(rng.normal(size=(6, 6)).astype(np.float32))
    texture = np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    factor = rng.uniform(*lighting.gain) * (1 + ramp) * (1 + lighting.texture * texture)
    balance = 1 + rng.uniform(-lighting.white_balance, lighting.white_balance, size=3)
    out = image * factor[..., None] * balance.astype(np.float32)
    out += rng.normal(0, rng.uniform(*lighting.noise_sigma), size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).round().astype(np.uint8)


@dataclass(frozen=True)
class Rendered:
    """One synthetic image with its truth.

    Attributes:
        image: RGB uint8 ``(size, size, 3)``.
        components: uint8 ``(size, size)`` component-class map, 0 = background.
        masks: defect masks, uint8 0/255 ``(size, size)``; empty for good images.
    """

    image: np.ndarray
    components: np.ndarray
    masks: tuple[np.ndarray, ...] = ()


def _thick_line(draw: ImageDraw.ImageDraw, xy: list[tuple[float, float]], width: int, fill) -> None:
    """PIL's wide lines leave pinholes at the joints of curved paths; discs at the vertices fill them."""
    draw.line(xy, fill=fill, width=width)
    r = width / 2
    for x, y in xy:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


class Canvas:
    """A scene being drawn: colour layer, component-class layer and defect-mask layers.

    Every drawing call takes normalised coordinates in the object's own frame; the canvas applies
    ``pose`` (unless ``posed=False``) and the supersampled scale.
    """

    def __init__(self, size: int, background: RGB, pose: Pose = Pose()):
        self.size = size
        self.pose = pose
        self._side = size * SUPERSAMPLE
        self.rgb = Image.new("RGB", (self._side, self._side), background)
        self.cls = Image.new("L", (self._side, self._side), 0)
        self.masks: list[Image.Image] = []
        self._draw_rgb = ImageDraw.Draw(self.rgb)
        self._draw_cls = ImageDraw.Draw(self.cls)

    def px(self, n: float) -> float:
        """Length in normalised units of ``n`` output pixels (defects are sized in pixels)."""
        return n / self.size

    def _xy(self, pts: np.ndarray, posed: bool = True) -> list[tuple[float, float]]:
        pts = self.pose.apply(pts) if posed else np.asarray(pts, dtype=float)
        return [tuple(p) for p in (pts * self._side).tolist()]

    def _width(self, width: float) -> int:
        return max(1, int(round(width * self._side)))

    def fill(self, poly: np.ndarray, rgb: RGB, cls: int | None = None, alpha: float = 1.0,
             posed: bool = True) -> None:
        """Fill a polygon; ``cls`` also paints the class map (``None`` leaves it untouched)."""
        xy = self._xy(poly, posed)
        if alpha >= 1.0:
            self._draw_rgb.polygon(xy, fill=rgb)
        else:
            layer = Image.new("L", self.rgb.size, 0)
            ImageDraw.Draw(layer).polygon(xy, fill=int(round(255 * alpha)))
            self.rgb.paste(rgb, (0, 0, *self.rgb.size), layer)
        if cls is not None:
            self._draw_cls.polygon(xy, fill=cls)

    def stroke(self, path: np.ndarray, width: float, rgb: RGB, cls: int | None = None,
               alpha: float = 1.0, posed: bool = True) -> None:
        """Draw a polyline of normalised ``width`` with round joints and caps."""
        xy, w = self._xy(path, posed), self._width(width)
        if alpha >= 1.0:
            _thick_line(self._draw_rgb, xy, w, rgb)
        else:
            layer = Image.new("L", self.rgb.size, 0)
            _thick_line(ImageDraw.Draw(layer), xy, w, int(round(255 * alpha)))
            self.rgb.paste(rgb, (0, 0, *self.rgb.size), layer)
        if cls is not None:
            _thick_line(self._draw_cls, xy, w, cls)

    def new_mask(self) -> int:
        """Start a separate ground-truth mask (one file per separate defect)."""
        self.masks.append(Image.new("L", self.rgb.size, 0))
        return len(self.masks) - 1

    def mark(self, poly: np.ndarray, mask: int, grow: float = 0.0, within_cls: int | None = None,
             posed: bool = True) -> None:
        """Add a polygon (optionally grown by ``grow`` and clipped to one class) to a mask."""

        def paint(draw: ImageDraw.ImageDraw, xy: list[tuple[float, float]]) -> None:
            draw.polygon(xy, fill=255)
            if grow > 0:
                # PIL draws wide polygon outlines inward; a round-jointed closed line grows outward.
                _thick_line(draw, xy + xy[:1], self._width(2 * grow), 255)

        self._mark(paint, self._xy(poly, posed), mask, within_cls)

    def mark_stroke(self, path: np.ndarray, width: float, mask: int, posed: bool = True) -> None:
        """Add a thick polyline to a mask."""
        w = self._width(width)
        self._mark(lambda d, xy: _thick_line(d, xy, w, 255),
                   self._xy(path, posed), mask, None)

    def _mark(self, paint, xy, mask: int, within_cls: int | None) -> None:
        layer = Image.new("L", self.rgb.size, 0)
        paint(ImageDraw.Draw(layer), xy)
        if within_cls is not None:
            keep = (np.asarray(self.cls) == within_cls).astype(np.uint8) * 255
            layer = ImageChops.multiply(layer, Image.fromarray(keep))
        self.masks[mask] = ImageChops.lighter(self.masks[mask], layer)

    def finish(self, rng: np.random.Generator, lighting: Lighting) -> Rendered:
        """Downsample, apply lighting and noise, and return image, class map and masks."""
        out = (self.size, self.size)
        image = np.asarray(self.rgb.resize(out, Image.Resampling.BOX), dtype=np.float32)
        components = np.asarray(self.cls.resize(out, Image.Resampling.NEAREST), dtype=np.uint8)
        # Any coverage counts: a thin scratch must not vanish from its own ground truth.
        masks = tuple((np.asarray(m.resize(out, Image.Resampling.BOX)) > 0).astype(np.uint8) * 255
                      for m in self.masks)
        masks = tuple(m for m in masks if m.any())
        return Rendered(apply_lighting(image, rng, lighting), components.copy(), masks)
