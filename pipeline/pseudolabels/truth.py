"""Store the synthetic generator's true component maps as if they were a category's pseudo-labels.

For measurement and tests only: training the segmentation network (and the histogram method) on
perfect labels tells the network's own quality apart from the pseudo-label chain's. Every
training image goes to ``D_L``; the files are the ones ``run_pseudo_labels`` writes, so
``store.load_state`` and the segmentation data loader read them unchanged.
"""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from pipeline.data.registered import load_workspace_category
from pipeline.data.samples import DataError
from pipeline.pseudolabels import store
from pipeline.pseudolabels.types import Clustering, Reliability
from pipeline.workspace import Workspace
from pipeline.workspace.db import now_iso


def store_true_labels(ws: Workspace, category: str) -> int:
    """Write every training image's true map, the class names and an all-reliable split; returns
    the number of images. Raises ``DataError`` when the data has no true maps (not synthetic)."""
    data = load_workspace_category(ws, category)
    samples = data.select("train")
    if not samples or any(s.component_path is None for s in samples):
        raise DataError(f"category {category!r} has no true component maps (only synthetic data has them)")
    info = json.loads((data.root / "synth_info.json").read_text(encoding="utf-8"))
    names = {int(k): str(v) for k, v in info["classes"].items()}
    maps = []
    for sample in samples:
        with Image.open(sample.component_path) as image:
            label_map = np.array(image.convert("L"), np.uint8)
        store.save_label_map(ws, category, sample.key, label_map)
        maps.append(label_map)
    keys = tuple(s.key for s in samples)
    empty = np.zeros(0, np.int32)
    store.save_clustering(ws, category, Clustering((), empty, empty, names), meta={"source": "true maps"})
    counts = np.stack([np.bincount(m.ravel(), minlength=max(names) + 1)[: max(names) + 1] for m in maps])
    flags = np.ones(len(keys), bool)
    store.save_reliability(ws, category, Reliability(keys, (counts / counts.sum(1, keepdims=True)).astype(np.float32),
                                                     flags, flags, np.zeros(len(keys))), inputs="true maps")
    store.write_json(ws, category, "run.json", {
        "detector": "none", "segmenter": "true maps", "n_images": len(keys), "finished_at": now_iso(),
        "images": {s.key: str(s.path) for s in samples},
    })
    return len(keys)
