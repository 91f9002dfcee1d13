"""The whole AeCSAD/CSAD inference as one ``nn.Module`` with every statistic baked in.

``DetectorGraph(detector)`` computes, from images already resized to the networks' input side,
what ``LgstDetector.predict`` computes (same modules, same arithmetic): the segmenter's label map,
the class-area fractions of the whole image and of the 2×2 grid, their Mahalanobis distances,
the part colours (mean RGB per class) and their distance,
the LGST maps (teacher, local and global students), their quantile normalisation, the patch
retrieval distance to the instant detector's memory bank (when the model fuses it), the trimmed-z
fusion (the sum of the largest ``Fusion.top_k`` z-scores) and the fused image score. It is what
``onnx_export`` traces, so an exported model returns the score *and* the maps, not a score only.

Left out of the graph, on purpose (done by ``bundle.prediction_from_outputs`` in NumPy, the same
code the workspace detector runs):

- component **counts** (8-connected components per class and cell, ``scipy.ndimage.label``):
  there is no connected-component operator in ONNX and an iterative label propagation would
  need an unbounded loop. Counts never enter the image score (the Mahalanobis distances use area
  fractions only); they feed the explanation sentences and the histogram cell map, which are
  computed from the exported label map.
- resizing the maps to the label map's (display) size, and the input resize itself: the graph
  takes ``S×S`` images (``S`` = the segmenter's side; the LGST input gets its own side when the
  two differ) so the export is the arithmetic of the networks, not of a resampler.

Inputs are float32 RGB ``(N, 3, S, S)`` in 0..255 (a uint8 image cast to float); the ImageNet
normalisation is inside the graph.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.methods.aecsad.method import BRANCHES, RETRIEVAL, TEACHER_GLOBAL, LgstDetector
from pipeline.methods.histogram.colours import ARRAYS as COLOUR_ARRAYS
from pipeline.methods.histogram.method import COLOUR_BRANCH
from pipeline.methods.histogram.scoring import cell_bounds
from pipeline.methods.instant.torch_model import flatten_patches, gaussian_blur, two_depth_map
from pipeline.models.preprocess import IMAGENET_MEAN, IMAGENET_STD

OUTPUTS = ("score", "anomaly_map", "local", "global", "teacher_global", "label_map", "fractions",
           "branch_scores", "z_scores")
"""Output names, in order. ``anomaly_map``/``local``/``global``/``teacher_global``: ``(N, g, g)``
float32 at the LGST grid; ``label_map``: ``(N, S, S)`` int64; ``fractions``: ``(N, 1 + P², K)``
float64 (region 0 = whole image); ``branch_scores``/``z_scores``: ``(N, B)`` float64 in the order of
``DetectorGraph.branches`` (histogram_global, histogram_grid, part_colour, lgst,
lgst_teacher_global, retrieval; a model fitted before a branch existed, or without it, has no
column for it); ``score``: ``(N,)`` float64."""


def _scale(q) -> float:
    spread = q.end - q.start
    return 0.1 / spread if spread > 1e-6 else 1.0  # as QuantileRange.__call__


class DetectorGraph(nn.Module):
    """``forward(image[, image_lgst])`` → the tuple named by ``OUTPUTS``."""

    def __init__(self, detector: LgstDetector, weights: tuple[float, ...] | None = None) -> None:
        """``weights``: fusion weight per branch in ``BRANCHES`` order (few-shot calibration: the
        weighted sum of every z-score); by default the detector's own fusion, the sum of its
        ``top_k`` largest z-scores."""
        super().__init__()
        hist, net = detector.hist, detector.net
        self.seg, self.lgst = hist.net.eval(), net.eval()
        self.seg_size, self.lgst_size = int(hist.size), int(net.settings.image_size)
        model = hist.model
        self.n_labels, self.grid = model.n_classes + 1, model.grid
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("labels", torch.arange(self.n_labels).view(1, -1, 1, 1))
        for name in ("global_mean", "global_precision", "grid_mean", "grid_precision"):
            self.register_buffer(name, torch.from_numpy(np.asarray(getattr(model, name), np.float64).copy()))
        zs = [hist.global_z, hist.grid_z]
        self.register_buffer("hist_z", torch.tensor([[z.mean, z.std] for z in zs], dtype=torch.float64))
        self.branches = tuple(b for b in BRANCHES if b in detector.fusion.branches)
        self.with_colours = COLOUR_BRANCH in self.branches and hist.colours is not None
        if COLOUR_BRANCH in self.branches and not self.with_colours:
            raise ValueError("the fusion has a part-colour branch but the histogram detector has no colour model")
        if self.with_colours:
            colours = hist.colours
            self.colour_min_fraction = colours.min_fraction
            for name in COLOUR_ARRAYS:
                self.register_buffer(f"colour_{name}", torch.from_numpy(np.asarray(getattr(colours, name), np.float64).copy()))
        self.register_buffer("fusion_z", torch.tensor(
            [[detector.fusion.branches[b].mean, detector.fusion.branches[b].std] for b in self.branches],
            dtype=torch.float64))
        self.register_buffer("fusion_weights", torch.tensor(weights or (1.0,) * len(self.branches), dtype=torch.float64))
        self.summed = len(self.branches) if weights else detector.fusion.summed
        self.with_retrieval = RETRIEVAL in self.branches
        if self.with_retrieval:
            self._add_retrieval(detector)
        norm = detector.norm
        self.blur_sigma = float(detector.blur_sigma)
        self.local_start, self.local_scale = float(norm.local.start), _scale(norm.local)
        self.global_start, self.global_scale = float(norm.global_.start), _scale(norm.global_)

    def _add_retrieval(self, detector: LgstDetector) -> None:
        retrieval = detector.retrieval
        if retrieval is None:
            raise ValueError("the fusion has a retrieval branch but the detector has no instant model")
        settings = retrieval.model.settings
        if int(settings.image_size) != self.lgst_size:
            raise ValueError(f"the retrieval branch's input side ({settings.image_size} px) differs from the LGST "
                             f"input ({self.lgst_size} px): the graph feeds both the same image")
        self.embedder = retrieval.embedder.eval()
        self.retrieval_blur, self.anomaly_weight = float(settings.blur_sigma), float(settings.anomaly_weight)
        model = retrieval.model
        self._add_bank("", model.good_bank, model.anomaly_bank)
        self.bank_scales = None
        if model.deep is not None:
            self._add_bank("deep_", model.deep.good_bank, model.deep.anomaly_bank)
            self.bank_scales = (model.deep.fine_scale, model.deep.deep_scale)

    def _add_bank(self, prefix: str, good: torch.Tensor, bad: torch.Tensor) -> None:
        good, bad = good.float(), bad.float()
        self.register_buffer(f"{prefix}good_bank", good.t().contiguous())
        self.register_buffer(f"{prefix}good_sq", (good * good).sum(1))
        keys = bad.shape[0] > 0 and self.anomaly_weight > 0
        setattr(self, f"{prefix}with_anomaly_keys", keys)
        if keys:
            self.register_buffer(f"{prefix}anomaly_bank", bad.t().contiguous())
            self.register_buffer(f"{prefix}anomaly_sq", (bad * bad).sum(1))

    @staticmethod
    def _nearest(queries: torch.Tensor, bank_t: torch.Tensor, bank_sq: torch.Tensor) -> torch.Tensor:
        """``(N, P, C)`` patches → ``(N, P)`` Euclidean distance to the nearest bank row (``cdist``'s
        matrix-product form, the one it uses for inputs this large)."""
        q_sq = (queries * queries).sum(-1, keepdim=True)
        d2 = (q_sq - 2.0 * (queries @ bank_t) + bank_sq).amin(dim=-1)
        return d2.clamp_min(0.0).sqrt()

    def retrieval_score(self, x: torch.Tensor) -> torch.Tensor:
        """``(N,)`` patch-retrieval image score (as ``instant.model.score_embeddings``) of normalised images."""
        fine, deep = self.embedder.forward_both(x)
        maps = self._bank_map("", fine.float())
        if self.bank_scales is not None:
            maps = two_depth_map(maps, self._bank_map("deep_", deep.float()), *self.bank_scales)
        return maps.amax(dim=(1, 2)).to(torch.float64)

    def _bank_map(self, prefix: str, emb: torch.Tensor) -> torch.Tensor:
        """One bank's blurred distance map (as ``instant.model.bank_maps``)."""
        n, _, h, w = emb.shape
        queries = flatten_patches(emb).reshape(n, h * w, -1)
        scores = self._nearest(queries, getattr(self, f"{prefix}good_bank"), getattr(self, f"{prefix}good_sq"))
        if getattr(self, f"{prefix}with_anomaly_keys"):
            margin = scores - self._nearest(queries, getattr(self, f"{prefix}anomaly_bank"), getattr(self, f"{prefix}anomaly_sq"))
            scores = scores + self.anomaly_weight * margin.clamp_min(0.0)
        return gaussian_blur(scores.reshape(n, h, w), self.retrieval_blur)

    @property
    def input_names(self) -> tuple[str, ...]:
        return ("image",) if self.seg_size == self.lgst_size else ("image", "image_lgst")

    def _normalise(self, image: torch.Tensor) -> torch.Tensor:
        return (image / 255.0 - self.mean) / self.std  # to_tensor_batch's arithmetic, in that order

    def fractions(self, label_map: torch.Tensor) -> torch.Tensor:
        """``(N, S, S)`` labels → ``(N, 1 + P², K)`` float64 area fractions (as ``_fractions``)."""
        onehot = (label_map[:, None] == self.labels).to(torch.float32)  # 0/1: sums below 2^24 are exact
        h, w = label_map.shape[-2:]
        rows, cols = cell_bounds(int(h), self.grid), cell_bounds(int(w), self.grid)
        out = [onehot.sum(dim=(2, 3)).to(torch.float64) / float(h * w)]
        for r in range(self.grid):
            for c in range(self.grid):
                cell = onehot[:, :, int(rows[r]):int(rows[r + 1]), int(cols[c]):int(cols[c + 1])]
                size = max(int(rows[r + 1] - rows[r]) * int(cols[c + 1] - cols[c]), 1)
                out.append(cell.sum(dim=(2, 3)).to(torch.float64) / float(size))
        return torch.stack(out, dim=1)

    def colour_distance(self, image: torch.Tensor, label_map: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
        """``(N,)`` part-colour distance (as ``colours.colour_distances``) of 0..255 images and their labels."""
        n, h, w = label_map.shape
        onehot = (label_map[:, None] == self.labels[:, 1:]).to(torch.float64).reshape(n, -1, h * w)  # (N, C, HW)
        pixels = (image.to(torch.float64) / 255.0).reshape(n, 3, h * w).transpose(1, 2)  # (N, HW, 3)
        counts = onehot.sum(dim=2, keepdim=True)
        means = (onehot @ pixels) / counts.clamp_min(1.0)
        present = counts >= self.colour_min_fraction * float(h * w)
        colours = torch.where(present, means, self.colour_fill.unsqueeze(0))
        features = torch.cat([colours.reshape(n, -1), fractions[:, 0]], dim=1)
        return self._mahalanobis(features, self.colour_mean, self.colour_precision)

    @staticmethod
    def _mahalanobis(x: torch.Tensor, mean: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
        d = x - mean
        return ((d @ precision) * d).sum(dim=1).clamp_min(0.0).sqrt()

    def forward(self, image: torch.Tensor, image_lgst: torch.Tensor | None = None):
        x = self._normalise(image)
        label_map = self.seg(x).argmax(dim=1)
        fractions = self.fractions(label_map)
        n = fractions.shape[0]
        d_global = self._mahalanobis(fractions[:, 0], self.global_mean, self.global_precision)
        d_grid = self._mahalanobis(fractions[:, 1:].reshape(n, -1), self.grid_mean, self.grid_precision)

        y = x if image_lgst is None else self._normalise(image_lgst)
        maps = self.lgst.maps(y, self.blur_sigma)
        local = (maps["local"] - self.local_start) * self.local_scale
        global_ = (maps["global"] - self.global_start) * self.global_scale
        combined = local + global_
        lgst_score = combined.amax(dim=(1, 2)).to(torch.float64)

        scores = {"histogram_global": d_global, "histogram_grid": d_grid, "lgst": lgst_score,
                  TEACHER_GLOBAL: maps["teacher_global"].amax(dim=(1, 2)).to(torch.float64)}
        if self.with_colours:
            scores[COLOUR_BRANCH] = self.colour_distance(image, label_map, fractions)
        if self.with_retrieval:
            scores[RETRIEVAL] = self.retrieval_score(y)
        branch = torch.stack([scores[name] for name in self.branches], dim=1)
        z = (branch - self.fusion_z[:, 0]) / self.fusion_z[:, 1]
        weighted = z * self.fusion_weights
        if self.summed < len(self.branches):
            weighted = weighted.topk(self.summed, dim=1).values
        fused = weighted.sum(dim=1)
        return (fused, combined, local, global_, maps["teacher_global"], label_map, fractions, branch, z)


def graph_inputs(graph: DetectorGraph, images: list[np.ndarray]) -> tuple[torch.Tensor, ...]:
    """The graph's input tensors for RGB uint8 images of any size: each resized the way the
    workspace detector resizes it for that network (PIL bilinear to uint8 for the segmenter, as
    ``predicted_maps``; ``to_tensor_batch``'s float resize for LGST, given to the graph in 0..255)."""
    from pipeline.methods.segmentation.data import resize_image
    from pipeline.models.preprocess import resize_image_tensor as float_resize

    seg = torch.stack([torch.from_numpy(resize_image(im, graph.seg_size)).permute(2, 0, 1).float() for im in images])
    if graph.seg_size == graph.lgst_size and all(im.shape[:2] == (graph.seg_size,) * 2 for im in images):
        return (seg,) if len(graph.input_names) == 1 else (seg, seg)
    lgst = torch.cat([float_resize(im, (graph.lgst_size, graph.lgst_size)) for im in images]) * 255.0
    return (seg,) if len(graph.input_names) == 1 else (seg, lgst)
