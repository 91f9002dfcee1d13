"""The instant detector's part of ``python -m pipeline bench`` (``MethodSpec.bench``)."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.methods.base import BenchRun
from pipeline.methods.instant.model import InstantDetector, score_embeddings
from pipeline.methods.instant.random_model import random_instant_detector
from pipeline.models.preprocess import to_tensor_batch


def _tensor(images: list[np.ndarray], size: int, device: torch.device) -> torch.Tensor:
    return to_tensor_batch(images, size).to(device)


def instant_bench(run: BenchRun, shared: dict) -> tuple[dict, InstantDetector]:
    """The instant entry of the bench: preprocessing, patch embedding, nearest memory-bank rows
    and end to end, on a memory bank of the size a fit on ``run.n_train`` images keeps."""
    det = random_instant_detector(run.profile, run.device, run.n_train, seed=run.seed)
    s = det.model.settings
    xs = {b: _tensor(run.images[b], s.image_size, run.device) for b in run.images}
    with torch.inference_mode():
        emb = {b: det.embedder.forward_both(xs[b]) for b in run.images}
    bank = det.model.good_bank
    deep_rows = 0 if det.model.deep is None else int(det.model.deep.good_bank.shape[0])
    run.log(f"instant ({run.profile} profile: memory bank {tuple(bank.shape)}, deep bank rows {deep_rows})")
    result = {"kind": "method", "profile": run.profile,
              "settings": {"bank_rows": int(bank.shape[0]), "dim": int(bank.shape[1]), "deep_bank_rows": deep_rows},
              "stages": {
                  "preprocess": run.time("instant preprocess", lambda b: lambda: _tensor(run.images[b], s.image_size, run.device)),
                  "embed": run.time("instant embed", lambda b: lambda: det.embedder.forward_both(xs[b])),
                  "knn": run.time("instant knn", lambda b: lambda: score_embeddings(det.model, *emb[b])),
              }}
    result["end_to_end"] = run.time("instant end to end", lambda b: lambda: det.predict(run.images[b]), memory=True)
    return result, det
