"""Score image files with a detector and write what ``predict`` leaves behind: a heat-map PNG per
image and one ``scores.jsonl`` row each (from a workspace model or a model bundle alike)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from pipeline.data.images import ImageReadError
from pipeline.evaluation.check import check_file
from pipeline.evaluation.verdict import VerdictScale
from pipeline.metrics.colour_scale import heat_overlay
from pipeline.workspace.files import atomic_save_png, atomic_write_text


def heatmap_names(images: list[Path]) -> dict[Path, str]:
    """A distinct file name per image: the stem, prefixed by as many parent folders as needed.

    ``test/good/000.png`` and ``test/structural_anomalies/000.png`` become ``good_000_heatmap.png``
    and ``structural_anomalies_000_heatmap.png`` instead of overwriting each other.
    """
    unique = list(dict.fromkeys(images))
    for depth in range(1, max((len(p.parts) for p in unique), default=1) + 1):
        stems = {p: "_".join(p.with_suffix("").parts[-depth:]) for p in unique}
        if len(set(stems.values())) == len(unique) or depth == len(unique[0].parts):
            break
    if len(set(stems.values())) < len(unique):  # same stem even with every folder: number them
        stems = {p: f"{i:04d}_{p.stem}" for i, p in enumerate(unique)}
    return {p: f"{stem.lstrip('_/')}_heatmap.png" for p, stem in stems.items()}


def _ignore(_text: str) -> None:
    """Default sink of ``write_predictions``' lines."""


def write_predictions(detector, images: list[Path], out: Path, scale: VerdictScale, display: tuple[float, float],
                      extra: dict | None = None, on_row: Callable[[str], None] = _ignore,
                      on_skip: Callable[[ImageReadError], None] = _ignore) -> int:
    """Score ``images`` one by one: a heat-map PNG each and one ``scores.jsonl`` row each (score,
    threshold, verdict, its margin in good-score spreads and whether it is borderline, branch
    scores, explanations, plus ``extra``). Each image goes through ``check.check_file``, as the
    Inspect page's photo check does, so both give the same numbers. Each row's JSON goes to
    ``on_row`` as it is written (the CLI prints it), each unreadable image's error to ``on_skip``;
    returns how many were skipped."""
    lines, failures = [], 0
    names = heatmap_names(images)
    for path in tqdm(images, desc="predict", file=sys.stderr, leave=False):
        try:
            check = check_file(detector, path, scale)
        except ImageReadError as err:
            on_skip(err)
            failures += 1
            continue
        heat_path = out / names[path]
        atomic_save_png(heat_path, heat_overlay(check.rgb, check.anomaly_map, *display, boxes=check.boxes))
        lines.append(json.dumps({"image": str(path), **check.row(), "heatmap": str(heat_path), **(extra or {})}))
        on_row(lines[-1])
    atomic_write_text(out / "scores.jsonl", "".join(line + "\n" for line in lines))
    return failures
