"""Image AUROC per anomaly subtype (bent pin, wrong drink, ...) where the data names them.

A kind-level AUROC of 0.89 does not say whether every defect is caught a little late or one
defect type is missed. The synthetic generator writes each test image's subtype into
``synth_info.json``; each subtype is then scored against all good test images, per branch too.
Data without that file (a user's own folders, MVTec LOCO) gets an empty table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.data.samples import Sample
from pipeline.data.synth.writer import INFO_FILE
from pipeline.metrics.auroc import auroc, scored_branches


def load_subtypes(root: Path, samples: Sequence[Sample]) -> list[str | None]:
    """Each sample's subtype from ``root/synth_info.json`` (``None`` for good images, and for
    every image when the file is missing, unreadable or names no images)."""
    path = Path(root) / INFO_FILE
    try:
        named = json.loads(path.read_text(encoding="utf-8")).get("images", {})
    except (OSError, ValueError, AttributeError):
        return [None] * len(samples)
    if not isinstance(named, dict):
        return [None] * len(samples)
    out: list[str | None] = []
    for sample in samples:
        try:
            relative = sample.path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            relative = ""
        subtype = named.get(relative) if sample.kind != "good" else None
        out.append(str(subtype) if subtype else None)
    return out


def subtype_aurocs(kinds: Sequence[str], subtypes: Sequence[str | None], scores: Sequence[float],
                   branch_scores: Sequence[dict[str, float]] = ()) -> dict[str, dict]:
    """``{subtype: {"kind", "n", "auroc", "branches": {branch: auroc}}}``, each subtype's images
    against every good image, sorted by kind then name; empty when no image has a subtype or
    there are no good images. Branches are those present on every image, z-scores left out
    (they rank as their raw scores)."""
    kind_array = np.asarray(kinds, dtype=object)
    sub_array = np.asarray(subtypes, dtype=object)
    score_array = np.asarray(scores, dtype=np.float64)
    if not (kind_array.shape == sub_array.shape == score_array.shape):
        raise ValueError(f"kinds, subtypes and scores differ in length: {kind_array.size}, {sub_array.size}, "
                         f"{score_array.size}")
    good = kind_array == "good"
    named = {(str(k), str(s)) for k, s in zip(kinds, subtypes) if s is not None and k != "good"}
    if not good.any() or not named:
        return {}
    branch_arrays = {n: np.array([float(b[n]) for b in branch_scores]) for n in scored_branches(branch_scores)}
    table: dict[str, dict] = {}
    for kind, subtype in sorted(named):
        chosen = sub_array == subtype
        keep = good | chosen
        labels = chosen[keep]
        table[subtype] = {
            "kind": kind, "n": int(chosen.sum()), "auroc": auroc(labels, score_array[keep]),
            "branches": {n: auroc(labels, values[keep]) for n, values in branch_arrays.items()},
        }
    return table


def weakest_first(table: dict[str, dict]) -> list[tuple[str, dict]]:
    """``subtype_aurocs`` rows ordered by AUROC, lowest first (unscorable ones last)."""
    return sorted(table.items(), key=lambda item: (item[1]["auroc"] is None, item[1]["auroc"] or 0.0, item[0]))


def percent(value: float | None) -> str:
    """``"81.0%"``; ``"n/a"`` for None."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


def weakest_summary(table: dict[str, dict], count: int = 3) -> str:
    """``"bent_pin 81.0% (13 images), ..."``: the lowest-AUROC subtypes, so a miss is not hidden in a kind's mean."""
    scored = [(name, row) for name, row in weakest_first(table) if row["auroc"] is not None]
    return ", ".join(f"{name} {percent(row['auroc'])} ({row['n']} images)" for name, row in scored[:count])
