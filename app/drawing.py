"""Drawing on an image: boxes and regions with the mouse (``streamlit-drawable-canvas``) or, where
the canvas cannot load, typed pixel coordinates. Everything returned is in the image's own pixels.

The canvas package registers its browser component when imported, which only works inside a
running Streamlit app; it is therefore imported on first use, and any failure falls back to the
typed coordinates instead of breaking the page.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import streamlit as st
from PIL import Image

from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.render import resize_nearest

MOUSE, TYPED = "mouse", "typed"
MODE_LABELS = {MOUSE: "with the mouse", TYPED: "by typing pixel coordinates"}
BOX_COLOUR = "#ff8c00"


def canvas_module() -> tuple[ModuleType | None, str]:
    """``(streamlit_drawable_canvas, "")``, or ``(None, why it cannot be used)``."""
    try:
        import streamlit_drawable_canvas as canvas
    except Exception as err:  # ImportError, or Streamlit refusing the component outside an app
        return None, f"the drawing canvas could not be loaded ({type(err).__name__}: {err})"
    return canvas, ""


def draw_mode(key: str) -> str:
    """The user's way of drawing; typed coordinates only when the canvas is unavailable."""
    canvas, why = canvas_module()
    if canvas is None:
        st.caption(f"Typed coordinates: {why}.")
        return TYPED
    return st.radio("Draw", (MOUSE, TYPED), format_func=MODE_LABELS.get, horizontal=True, key=key)


def typed_rectangle(shape: tuple[int, ...], key: str) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` typed in image pixels; the right/bottom edges are exclusive."""
    height, width = int(shape[0]), int(shape[1])
    cols = st.columns(4)
    x0 = cols[0].number_input("x0 (left)", 0, width - 1, 0, key=f"{key}_x0")
    y0 = cols[1].number_input("y0 (top)", 0, height - 1, 0, key=f"{key}_y0")
    x1 = cols[2].number_input("x1 (right)", 1, width, width, key=f"{key}_x1")
    y1 = cols[3].number_input("y1 (bottom)", 1, height, height, key=f"{key}_y1")
    return int(x0), int(y0), int(x1), int(y1)


def rectangle_mask(shape: tuple[int, ...], rect: tuple[int, int, int, int]) -> np.ndarray:
    """bool ``(H, W)`` true inside ``rect`` (empty when the corners are in the wrong order)."""
    x0, y0, x1, y1 = rect
    mask = np.zeros(shape[:2], bool)
    mask[y0:y1, x0:x1] = True
    return mask


def canvas_boxes(picture: np.ndarray, scale: float, boxes: list[Box], tag: str, key: str) -> list[Box]:
    """Boxes drawn over ``picture`` (the image scaled by ``scale``), starting from ``boxes``;
    returned in image pixels. New boxes are labelled ``tag``."""
    canvas, _ = canvas_module()
    start = [{"label": b.tag, "left": b.x0 * scale, "top": b.y0 * scale,
              "width": (b.x1 - b.x0) * scale, "height": (b.y1 - b.y0) * scale} for b in boxes]
    result = canvas.st_canvas(
        drawing_mode="labeled_rect", label=tag, background_image=Image.fromarray(picture),
        width=picture.shape[1], height=picture.shape[0], stroke_color=BOX_COLOUR, stroke_width=2,
        fill_color="rgba(255, 140, 0, 0.15)", initial_drawing=canvas.boxes_to_drawing(start, stroke_color=BOX_COLOUR),
        key=key,
    )
    size = (picture.shape[1] / scale, picture.shape[0] / scale)
    return boxes_in_image(result.boxes, scale, size, tag)


def boxes_in_image(drawn: list[dict], scale: float, size: tuple[float, float], tag: str) -> list[Box]:
    """Canvas boxes (``{label, left, top, width, height}`` in picture pixels) as image-pixel
    ``Box``es inside the image (``size`` = width, height); empty ones are left out."""
    width, height = size
    out = []
    for b in drawn:
        x0, y0 = max(0.0, b["left"] / scale), max(0.0, b["top"] / scale)  # dragged past the edge
        x1, y1 = min(width, (b["left"] + b["width"]) / scale), min(height, (b["top"] + b["height"]) / scale)
        if x1 > x0 and y1 > y0:
            out.append(Box(round(x0, 1), round(y0, 1), round(x1, 1), round(y1, 1), b["label"] or tag))
    return out


def canvas_region(picture: np.ndarray, shape: tuple[int, ...], key: str) -> np.ndarray | None:
    """A region painted over ``picture`` (free hand, rectangle or polygon), as a bool mask of
    ``shape`` (the image's own size); None while nothing is painted."""
    canvas, _ = canvas_module()
    tool = st.radio("Tool", ("freedraw", "rect", "polygon"), horizontal=True, key=f"{key}_tool",
                    format_func={"freedraw": "brush", "rect": "rectangle", "polygon": "polygon"}.get)
    width = st.slider("Brush width (screen pixels)", 2, 60, 15, key=f"{key}_brush") if tool == "freedraw" else 2
    result = canvas.st_canvas(
        drawing_mode=tool, background_image=Image.fromarray(picture), width=picture.shape[1],
        height=picture.shape[0], stroke_width=width, stroke_color="rgba(255, 0, 0, 0.8)",
        fill_color="rgba(255, 0, 0, 0.4)", return_image_data=True, key=f"{key}_{tool}",
    )
    painted = result.image_data
    if painted is None or painted.ndim != 3 or not (painted[..., 3] > 0).any():
        return None
    return resize_nearest(painted[..., 3] > 0, tuple(shape[:2]))
