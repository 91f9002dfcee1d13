"""Whether the deep bank helps on a category, decided without any labelled defect.

Good validation images get small synthetic defects (a thin line, a blob; a few grey levels
brighter or darker, softened edges), and the single-bank and the two-bank scores are compared on
how well they tell the copies from the originals. Measured on the dev sets, this check picks
the way that also wins on their real test defects: two banks on KolektorSDD and textured_plate,
one bank on pin_tray and bottle (where the coarse stages add false alarms), either on MPDD.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DEFECT_KINDS = ("line", "blob")


def synthetic_defect(image: np.ndarray, rng: np.random.Generator, kind: str) -> np.ndarray:
    """A copy of uint8 ``image`` (H, W, 3) with one small defect of ``kind`` away from the border."""
    h, w = image.shape[:2]
    short = min(h, w)
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    x, y = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
    if kind == "line":
        length, angle = rng.uniform(0.1, 0.3) * short, rng.uniform(0, np.pi)
        end = (x + length * np.cos(angle), y + length * np.sin(angle))
        draw.line([(x, y), end], fill=255, width=int(rng.integers(1, 4)))
    elif kind == "blob":
        r = rng.uniform(0.02, 0.05) * short
        draw.ellipse([x - r, y - r * rng.uniform(0.5, 1.5), x + r, y + r * rng.uniform(0.5, 1.5)], fill=255)
    else:
        raise KeyError(kind)
    soft = np.asarray(mask.filter(ImageFilter.GaussianBlur(1)), np.float32)[..., None] / 255.0
    delta = rng.choice([-1.0, 1.0]) * rng.uniform(25.0, 60.0)
    return np.clip(image.astype(np.float32) + delta * soft, 0, 255).astype(np.uint8)


def defect_check_images(images: Sequence[np.ndarray], seed: int) -> tuple[list[np.ndarray], list[bool]]:
    """Each good image, then one copy per ``DEFECT_KINDS``; flags say which are defective."""
    rng = np.random.default_rng(seed)
    out, defective = [], []
    for image in images:
        out.append(image)
        defective.append(False)
        for kind in DEFECT_KINDS:
            out.append(synthetic_defect(image, rng, kind))
            defective.append(True)
    return out, defective


def separation(scores: Sequence[float], defective: Sequence[bool]) -> float:
    """AUROC of ``scores`` for the defective flags (Mann-Whitney; ties count half)."""
    s = np.asarray(scores, np.float64)
    bad, good = s[np.asarray(defective)], s[~np.asarray(defective)]
    if not len(bad) or not len(good):
        return 0.5
    greater = (bad[:, None] > good[None, :]).sum() + 0.5 * (bad[:, None] == good[None, :]).sum()
    return float(greater / (len(bad) * len(good)))


def deep_bank_helps(score_pairs: Callable[[list[np.ndarray]], np.ndarray], images: Sequence[np.ndarray],
                    seed: int) -> tuple[float, float]:
    """``(single-bank AUROC, two-bank AUROC)`` on synthetic defects of ``images``; ``score_pairs``
    maps images to (N, 2) scores: the fine bank's and the two banks' combined."""
    check, defective = defect_check_images(images, seed)
    scores = score_pairs(check)
    return separation(scores[:, 0], defective), separation(scores[:, 1], defective)
