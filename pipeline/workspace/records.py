"""Records the workspace store returns, and the values its fields may take."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LAYOUTS = ("loco", "folder")
"""Dataset layouts: MVTec LOCO AD folders, or plain folders of good (and bad) images."""

IMAGE_LABELS = ("good", "bad", "logical", "structural")
"""Labels a user can give an image; ``bad`` is a defect of unknown kind."""

TAG_STATUSES = ("keep", "drop", "background")
"""What the user decided about a suggested component tag."""


@dataclass(frozen=True)
class CategoryRecord:
    """A category registered in the workspace.

    Attributes:
        name: category name; also its folder name under ``<workspace>/categories/``.
        data_root: absolute path of the category's image folder (outside the workspace).
        layout: one of ``LAYOUTS``.
        added_at: ISO-8601 UTC time the category was first added.
    """

    name: str
    data_root: Path
    layout: str
    added_at: str


@dataclass(frozen=True)
class ScoreRow:
    """The anomaly score of one image under one method.

    Attributes:
        image_key: the image's key within its category (``Sample.key``).
        split: dataset split the image belongs to.
        kind: ground-truth kind of the image (``good``, ``logical``, ...).
        score: image anomaly score; higher is more anomalous.
        map_file: its anomaly map file, relative to the workspace folder, if one was saved.
    """

    image_key: str
    split: str
    kind: str
    score: float
    map_file: str | None = None


@dataclass(frozen=True)
class ModelRecord:
    """The fitted model of one method for one category (the latest fit replaces the previous).

    Attributes:
        category: category the model was fitted on.
        method: method name.
        files: role -> file path, relative to the workspace folder (or to the method folder
            where the method says so); absolute paths inside the workspace are stored relative.
        settings: the settings the model was fitted with.
        metrics: fit and evaluation metrics; ``update_model_metrics`` merges into them.
        created_at: ISO-8601 UTC time the model was recorded.
    """

    category: str
    method: str
    files: dict[str, str]
    settings: dict
    metrics: dict
    created_at: str


__all__ = ["IMAGE_LABELS", "LAYOUTS", "TAG_STATUSES", "CategoryRecord", "ModelRecord", "ScoreRow"]
