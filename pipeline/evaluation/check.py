"""Check one photo with a fitted model: decode it, score it, judge it at the saved threshold.

``predict`` (files on disk) and the Inspect page's "Check new photos" (uploads and camera shots)
both go through ``check_rgb``, so the score, verdict and margin a user reads on the page are the
numbers ``predict`` writes to ``scores.jsonl`` for the same file and model.

A checked photo the user wants to keep is stored, bytes unchanged, under
``<workspace>/categories/<category>/checked/`` with its label recorded as the image label
``checked/<file name>``. It is deliberately not copied into the category's data folder: that folder
is the user's dataset (maybe read-only, maybe a shared benchmark), and a new test image there would
silently change every stored score, AUROC and threshold the next evaluation computes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.images import IMAGE_SUFFIXES, list_image_files, load_rgb, load_rgb_bytes
from pipeline.evaluation.verdict import Verdict, VerdictScale
from pipeline.methods.base import Detector, Prediction
from pipeline.workspace import IMAGE_LABELS, Workspace
from pipeline.workspace.files import atomic_save_png, atomic_write_bytes

MAX_PHOTO_BYTES = 32 * 2**20
"""Largest photo accepted for a check: far above a camera frame, well below what would stall the app."""
CHECKED_FOLDER = "checked"
"""Folder (inside the category's workspace folder) and image-key prefix of kept checked photos."""


@dataclass(frozen=True, eq=False)
class PhotoCheck:
    """One photo scored by one model and judged at its saved threshold.

    Attributes:
        name: the photo's file name (as uploaded, or the path ``predict`` was given).
        rgb: the decoded image, uint8 ``(H, W, 3)``.
        prediction: everything the model says: score, map, branch maps and scores, sentences.
        threshold: the saved threshold (None: not set, so no verdict).
        verdict: anomalous or good, its margin in good-score spreads, borderline or not (None
            without a threshold or stored validation scores).
    """

    name: str
    rgb: np.ndarray
    prediction: Prediction
    threshold: float | None
    verdict: Verdict | None

    @property
    def score(self) -> float:
        return float(self.prediction.score)

    @property
    def margin(self) -> float | None:
        """``(score - threshold) / spread``; None without a verdict."""
        return None if self.verdict is None else self.verdict.margin

    @property
    def anomaly_map(self) -> np.ndarray:
        return self.prediction.anomaly_map

    @property
    def branch_scores(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.prediction.branch_scores.items()}

    @property
    def explanations(self) -> tuple[str, ...]:
        return tuple(self.prediction.explanations)

    def row(self) -> dict:
        """The ``scores.jsonl`` fields of this check (``predict`` adds the image and heat-map paths)."""
        threshold = self.threshold
        row: dict = {"score": self.prediction.score, "threshold": threshold,
                     "verdict": None if threshold is None else ("anomalous" if self.score > threshold else "good")}
        if self.verdict is not None:
            row.update(self.verdict.to_dict())
        if self.prediction.branch_scores:  # e.g. the histogram method's global and grid distances
            row["branch_scores"] = self.branch_scores
        if self.prediction.explanations:
            row["explanations"] = list(self.explanations)
        if self.prediction.regions:  # histogram grid cells whose part counts are off
            row["regions"] = [{"name": r.name, "box": list(r.box)} for r in self.prediction.regions]
        return row

    @property
    def boxes(self) -> tuple[tuple[float, float, float, float], ...]:
        """The named regions' boxes, for ``heat_overlay``."""
        return tuple(r.box for r in self.prediction.regions)


def check_rgb(detector: Detector, rgb: np.ndarray, name: str, scale: VerdictScale) -> PhotoCheck:
    """Score a decoded image and judge the score: the one step ``predict`` and the page share."""
    prediction = detector.predict([rgb])[0]
    return PhotoCheck(name, rgb, prediction, scale.threshold, scale.judge(prediction.score))


def check_file(detector: Detector, path: Path, scale: VerdictScale) -> PhotoCheck:
    """``check_rgb`` of an image file; raises ``ImageReadError`` for a file that is no usable image."""
    return check_rgb(detector, load_rgb(path), str(path), scale)


def check_bytes(detector: Detector, data: bytes, name: str, scale: VerdictScale,
                max_bytes: int = MAX_PHOTO_BYTES) -> PhotoCheck:
    """``check_rgb`` of an upload or camera shot, decoded under the project's image rules (grayscale,
    16-bit and RGBA handled); a corrupt, non-image or too large file raises one ``ImageReadError``
    (a ``UserError``) naming the file, before the model is asked anything."""
    return check_rgb(detector, load_rgb_bytes(data, name, max_bytes), name, scale)


# --- keeping a checked photo -----------------------------------------------------------------

def checked_dir(ws: Workspace, category: str) -> Path:
    """``<workspace>/categories/<category>/checked/``: removed with the category, like its labels."""
    return ws.category_dir(category) / CHECKED_FOLDER


def checked_key(path: Path) -> str:
    """The image-label key of a kept photo: ``checked/<file name>`` (never a dataset key, which
    starts with its split)."""
    return f"{CHECKED_FOLDER}/{Path(path).name}"


def checked_file_name(name: str, data: bytes) -> str:
    """A safe, stable file name: the upload's stem plus a content hash, so the same photo kept twice
    is one file and two photos called ``image.jpg`` stay two."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._") or "photo"
    suffix = Path(name).suffix.lower()
    return f"{stem[:60]}-{hashlib.sha256(data).hexdigest()[:10]}{suffix if suffix in IMAGE_SUFFIXES else '.png'}"


def keep_checked(ws: Workspace, category: str, check: PhotoCheck, data: bytes, label: str | None) -> Path:
    """Store a checked photo (its original bytes; a PNG of the decoded pixels when its format is not
    one the loaders list) and record ``label`` (one of ``IMAGE_LABELS``, None: unlabelled).

    Only call it with the bytes ``check`` was decoded from: nothing unreadable is ever written."""
    if label is not None and label not in IMAGE_LABELS:
        raise ValueError(f"label must be one of {IMAGE_LABELS} or None, got {label!r}")
    path = checked_dir(ws, category) / checked_file_name(check.name, data)
    if Path(check.name).suffix.lower() in IMAGE_SUFFIXES:
        atomic_write_bytes(path, data)
    else:
        atomic_save_png(path, check.rgb)
    ws.set_image_label(category, checked_key(path), label)
    return path


def checked_photos(ws: Workspace, category: str) -> list[Path]:
    """The kept checked photos of a category, by file name."""
    return list_image_files(checked_dir(ws, category))
