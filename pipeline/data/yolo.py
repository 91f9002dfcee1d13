"""YOLO segmentation labels: parse ``class x1 y1 x2 y2 ...`` lines and rasterise the polygons.

Coordinates are fractions of the image width and height, so a polygon is drawn at the image's
own size; the result is a 0/255 mask like every other ground truth in the project.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.errors import UserError

Polygon = tuple[tuple[float, float], ...]
"""Polygon vertices ``(x, y)`` as fractions of the image width and height."""

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

_TOLERANCE = 1e-3
"""Exporters round to a few decimals, so 1.0004 is still "normalised"; 523 means pixels."""


class LabelError(UserError, ValueError):
    """A label file that cannot be used.

    Attributes:
        path: the label file.
        reason: why, in plain words.
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def _line_polygon(path: Path, number: int, fields: list[str]) -> Polygon:
    """One label line as a polygon; raises ``LabelError`` saying which line and why."""
    if not all(_NUMBER.fullmatch(f) for f in fields):
        raise LabelError(path, f"line {number} is not 'class x1 y1 x2 y2 ...' numbers")
    coords = [float(f) for f in fields[1:]]
    if len(coords) == 4:
        raise LabelError(path, f"line {number} is a box (class cx cy w h), not a segmentation polygon")
    if len(coords) < 6 or len(coords) % 2:
        raise LabelError(path, f"line {number} has {len(coords)} coordinates; a polygon needs x y pairs, at least 3")
    if min(coords) < -_TOLERANCE or max(coords) > 1 + _TOLERANCE:
        raise LabelError(
            path, f"line {number} has coordinates outside [0, 1] (up to {max(coords):g}); YOLO labels "
            "are normalised by the image size, not in pixels"
        )
    clipped = [min(max(c, 0.0), 1.0) for c in coords]
    return tuple(zip(clipped[0::2], clipped[1::2]))


def read_yolo_label(path: Path) -> tuple[Polygon, ...]:
    """The polygons of one label file; an empty file gives ``()`` (a good image).

    Raises ``LabelError`` for a line that is not a normalised polygon.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except PermissionError:
        raise LabelError(path, "no permission to read the file") from None
    # Undecodable bytes become U+FFFD, which the number check then reports with its line.
    text = data.decode("utf-8", errors="replace")
    polygons = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if fields:
            polygons.append(_line_polygon(path, number, fields))
    return tuple(polygons)


def rasterise_polygons(polygons: tuple[Polygon, ...], width: int, height: int) -> np.ndarray:
    """Filled polygons as a uint8 ``(height, width)`` mask, 255 inside (outline included).

    A vertex at fraction ``x`` lands on pixel coordinate ``x * width``, as Ultralytics draws them.
    """
    canvas = Image.new("L", (int(width), int(height)), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        draw.polygon([(x * width, y * height) for x, y in polygon], fill=255, outline=255)
    return np.asarray(canvas, dtype=np.uint8).copy()
