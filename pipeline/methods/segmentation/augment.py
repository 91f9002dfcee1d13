"""Training augmentation of (image, label map) pairs for the segmentation network (thesis §5.3).

Geometric steps (flips, 90° rotations) are applied identically to the image and its labels;
photometric steps (colour jitter, Gaussian noise) touch the image only. Everything works on the
uint8 arrays before ``to_tensor_batch``, so the one resizer of the project stays the only one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 luma, as PIL/torchvision


@dataclass(frozen=True)
class AugmentSettings:
    """Probabilities and strengths of the training augmentation.

    Attributes:
        hflip: probability of a left-right flip.
        vflip: probability of an up-down flip.
        rot90: whether to rotate by a uniformly drawn multiple of 90° (0° included).
        brightness: factor drawn from ``[1 - b, 1 + b]`` multiplying the image.
        contrast: factor drawn from ``[1 - c, 1 + c]`` scaling around the mean gray level.
        saturation: factor drawn from ``[1 - s, 1 + s]`` scaling away from each pixel's gray.
        noise_probability: probability of adding Gaussian noise.
        noise_std: maximum noise standard deviation as a fraction of 255 (drawn uniformly).
    """

    hflip: float = 0.5
    vflip: float = 0.5
    rot90: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    noise_probability: float = 0.5
    noise_std: float = 0.03


def augment_pair(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, settings: AugmentSettings = AugmentSettings()
) -> tuple[np.ndarray, np.ndarray]:
    """Randomly augment an RGB uint8 image ``(H, W, 3)`` and its label map ``(H, W)``.

    Returns new arrays (inputs untouched); with a 90°/270° turn the shapes become ``(W, H)``.
    All randomness comes from ``rng``, drawn in a fixed order, so a seed fixes the result.
    """
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {labels.shape} differ in size")
    image, labels = geometric(image, labels, rng, settings)
    return photometric(image, rng, settings), labels


def geometric(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, settings: AugmentSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Flips and 90° rotations, identical for image and labels (exact: no interpolation)."""
    flip_h, flip_v = rng.random() < settings.hflip, rng.random() < settings.vflip
    turns = int(rng.integers(4)) if settings.rot90 else 0
    if flip_h:
        image, labels = image[:, ::-1], labels[:, ::-1]
    if flip_v:
        image, labels = image[::-1], labels[::-1]
    if turns:
        image, labels = np.rot90(image, turns, axes=(0, 1)), np.rot90(labels, turns, axes=(0, 1))
    return np.ascontiguousarray(image), np.ascontiguousarray(labels)


def photometric(image: np.ndarray, rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    """Brightness, contrast, saturation jitter and optional Gaussian noise; uint8 in, uint8 out."""
    x = image.astype(np.float32)
    b, c, s = (1.0 + rng.uniform(-v, v) for v in (settings.brightness, settings.contrast, settings.saturation))
    x = x * b
    mean_gray = float((x @ _GRAY).mean())
    x = (x - mean_gray) * c + mean_gray
    gray = (x @ _GRAY)[..., None]
    x = gray + (x - gray) * s
    if rng.random() < settings.noise_probability:
        sigma = rng.uniform(0.0, settings.noise_std) * 255.0
        x = x + rng.normal(0.0, sigma, size=x.shape).astype(np.float32)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
