"""``textured_plate``: a close-up of brushed metal filling the whole frame, no discrete parts.

Imitates texture categories of real benchmarks (a photographed sheet-metal surface): fine
directional brushing streaks over a faint isotropic grain and mottle, lit by a slow gradient and
the stripe-shaped sheen of brushed metal. Every photo shows a different patch of the same
material under slightly different light, so good images differ the way real ones do.

There are no rules and no logical anomalies (a surface has no layout to get wrong); the
generator writes no logical test images for it. Structural anomalies are subtle surface defects
(``surface_defects.py``). The component map is one class, ``plate`` (1), on every pixel: the plate
fills the frame, there is no background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.synth.render import Rendered
from pipeline.data.synth.spec import CategorySpec
from pipeline.data.synth.surface_defects import DEFECTS

PLATE = 1
CLASSES = {PLATE: "plate"}
RULES: tuple[str, ...] = ()
LOGICAL: tuple[str, ...] = ()
STRUCTURAL = tuple(DEFECTS)


@dataclass(frozen=True)
class PlateLook:
    """Ranges of the normal variation between photos of the plate (each drawn uniformly).

    Attributes:
        level: mean grey level of the plate (exposure and the sheet's own brightness).
        texture_contrast: relative standard deviation of the surface texture.
        brushing_angle: largest turn of the brushing direction from horizontal, in degrees
            (the sheet lies slightly rotated under the camera).
        streak_length: standard deviation of a brushing streak along its direction, in image widths.
        gradient: peak-to-peak relative brightness change of the linear lighting gradient
            (its direction is uniform).
        sheen: strength of the bright band across the brushing (anisotropic specular reflection).
        tint: per-channel colour jitter around the slightly cool steel grey.
        noise_sigma: Gaussian sensor noise standard deviation, in 8-bit levels.
    """

    level: tuple[float, float] = (118.0, 165.0)
    texture_contrast: tuple[float, float] = (0.05, 0.075)
    brushing_angle: float = 4.0
    streak_length: tuple[float, float] = (0.06, 0.14)
    gradient: tuple[float, float] = (0.05, 0.2)
    sheen: tuple[float, float] = (0.0, 0.14)
    tint: float = 0.015
    noise_sigma: tuple[float, float] = (1.2, 2.5)


LOOK = PlateLook()
STEEL = (0.98, 1.0, 1.03)
"""Steel reads as a slightly cool grey; the image is stored RGB like every other category."""

TEXTURE_LAYERS = (("streaks", 1.0), ("coarse_streaks", 0.55), ("grain", 0.35), ("mottle", 0.25))
"""Relative amplitude of each texture layer (each normalised to unit variance first)."""


def _gaussian_spectrum(fx: np.ndarray, fy: np.ndarray, angle: float, along: float, across: float) -> np.ndarray:
    """Frequency response of a Gaussian blur with std ``along`` px in direction ``angle`` (radians)
    and ``across`` px perpendicular to it, scaled so filtered white noise has unit variance."""
    u = fx * np.cos(angle) + fy * np.sin(angle)
    v = -fx * np.sin(angle) + fy * np.cos(angle)
    response = np.exp(-2 * np.pi**2 * ((along * u) ** 2 + (across * v) ** 2))
    # Parseval: unit white noise filtered by H has variance mean(H^2).
    return response / np.sqrt(np.mean(response**2))


def _texture(rng: np.random.Generator, size: int, angle: float, streak: float) -> np.ndarray:
    """Unit-variance brushed-metal texture: all layers in one FFT of one white-noise field.

    Independent layers add their power spectra, so one filter with the summed power gives the
    same statistics as filtering separate noise fields, at a quarter of the cost.
    """
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :]
    layers = {
        "streaks": _gaussian_spectrum(fx, fy, angle, streak * size, 0.5),
        "coarse_streaks": _gaussian_spectrum(fx, fy, angle, 0.5 * streak * size, 2.5),
        "grain": _gaussian_spectrum(fx, fy, 0.0, 0.8, 0.8),
        "mottle": _gaussian_spectrum(fx, fy, 0.0, 0.05 * size, 0.05 * size),
    }
    power = sum(weight**2 * layers[name] ** 2 for name, weight in TEXTURE_LAYERS)
    white = rng.standard_normal((size, size))
    texture = np.fft.ifft2(np.fft.fft2(white) * np.sqrt(power)).real
    return (texture / texture.std()).astype(np.float32)


def _light(rng: np.random.Generator, size: int, angle: float) -> np.ndarray:
    """Relative illumination: a linear gradient and the sheen band, which on brushed metal runs
    across the brushing (the streaks spread the reflection perpendicular to themselves)."""
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    xx, yy = grid[None, :], grid[:, None]
    phi = rng.uniform(0, 2 * np.pi)
    ramp = (xx * np.cos(phi) + yy * np.sin(phi)) * rng.uniform(*LOOK.gradient)
    along = xx * np.cos(angle) + yy * np.sin(angle)
    band = np.exp(-((along - rng.uniform(-0.6, 0.6)) ** 2) / (2 * rng.uniform(0.15, 0.35) ** 2))
    return 1 + ramp + rng.uniform(*LOOK.sheen) * band


@dataclass(frozen=True)
class Plate:
    """A defect-free plate before sensor noise, and the noise drawn for it.

    Attributes:
        rgb: float32 ``(size, size, 3)`` noiseless image in 0..255 levels.
        noise: float32 ``(size, size, 3)`` sensor noise added after any defect.
    """

    rgb: np.ndarray
    noise: np.ndarray


def plate(rng: np.random.Generator, size: int) -> Plate:
    """One good plate. Draws the same numbers whatever the anomaly, so a defect rendered from the
    same seed lands on exactly this plate (the tests compare the two)."""
    angle = np.deg2rad(rng.uniform(-LOOK.brushing_angle, LOOK.brushing_angle))
    texture = _texture(rng, size, angle, rng.uniform(*LOOK.streak_length))
    grey = rng.uniform(*LOOK.level) * _light(rng, size, angle) * (1 + rng.uniform(*LOOK.texture_contrast) * texture)
    tint = np.asarray(STEEL) * (1 + rng.uniform(-LOOK.tint, LOOK.tint, size=3))
    noise = rng.normal(0.0, rng.uniform(*LOOK.noise_sigma), size=(size, size, 3))
    return Plate((grey[..., None] * tint.astype(np.float32)).astype(np.float32), noise.astype(np.float32))


def render(rng: np.random.Generator, size: int, anomaly: str | None) -> Rendered:
    """Draw one plate; ``anomaly`` is ``None`` or one of ``STRUCTURAL``."""
    if anomaly not in (None, *STRUCTURAL):
        raise ValueError(f"textured_plate has no anomaly {anomaly!r}")
    good = plate(rng, size)
    rgb, masks = good.rgb, ()
    if anomaly is not None:
        defect = DEFECTS[anomaly](rng, size)
        rgb, masks = defect.apply(rgb), (defect.mask,)
    image = np.clip(rgb + good.noise, 0, 255).round().astype(np.uint8)
    return Rendered(image, np.full((size, size), PLATE, dtype=np.uint8), masks)


SPEC = CategorySpec("textured_plate", CLASSES, RULES, LOGICAL, STRUCTURAL, render)
