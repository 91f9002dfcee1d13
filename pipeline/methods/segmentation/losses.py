"""Losses of the component segmentation network (thesis eq. 4.1–4.6, SPEC §5 step 6).

Pure functions on logits ``(N, K, H, W)`` and integer label maps ``(N, H, W)`` where
``K = n_classes + 1`` and label 0 is the background. Sums of the thesis equations become means
over pixels (and images) so the loss scale does not depend on the input resolution or batch size.

The supervised losses take an optional ``sample_weight`` ``(N,)`` (the pseudo-label confidence,
``pipeline.pseudolabels.confidence``): each image's pixels count with its weight in the sums and
in their normalisers, so a weight-0 image contributes nothing and all-1 weights give the
unweighted loss. ``None`` runs the unweighted code exactly as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.errors import SettingsError

HIST_FORMS = ("l2", "l1")
"""``l2``: thesis eq. 4.4 (squared differences); ``l1``: the public CSAD code (absolute differences)."""


@dataclass(frozen=True)
class SegLossWeights:
    """Weights λ1..λ5 of eq. 4.6 and the form of the histogram term.

    Attributes:
        ce: λ1, class-weighted cross-entropy on ``D_L``.
        dice: λ2, soft multi-class Dice on ``D_L``.
        focal: λ3, focal loss on ``D_L``.
        hist: λ4, histogram matching on ``D_U`` (only after the stage boundary).
        entropy: λ5, entropy minimisation on ``D_U`` (only after the stage boundary).
        hist_form: ``"l2"`` or ``"l1"`` (see ``HIST_FORMS``).
    """

    ce: float = 1.0
    dice: float = 0.5
    focal: float = 0.5
    hist: float = 0.3
    entropy: float = 0.1
    hist_form: str = "l2"

    def __post_init__(self) -> None:
        if self.hist_form not in HIST_FORMS:
            raise SettingsError(f"hist_form must be one of {HIST_FORMS}, got {self.hist_form!r}")

    @classmethod
    def thesis(cls) -> "SegLossWeights":
        """Eq. 4.6 defaults: λ = (1, 0.5, 0.5, 0.3, 0.1), squared histogram differences."""
        return cls()

    @classmethod
    def csad(cls) -> "SegLossWeights":
        """Thesis §5.3 / public CSAD code: 0.5·CE + 1·Dice + 10·Focal, then 10·Hist + 1·Entropy.

        CSAD's histogram term is the L1 form; its squared form would be ~100× smaller for typical
        class fractions (0.01–0.1), so the weight 10 only makes sense with L1.
        """
        return cls(ce=0.5, dice=1.0, focal=10.0, hist=10.0, entropy=1.0, hist_form="l1")


def class_weights(
    label_maps: Sequence[np.ndarray] | np.ndarray | torch.Tensor, n_labels: int, max_weight: float | None = None,
    sample_weight: Sequence[float] | None = None,
) -> torch.Tensor:
    """Inverse-frequency class weights ``(n_labels,)`` from the label maps of ``D_L`` (eq. 4.1 ``w_c``).

    ``w_c = P / (K_present · n_c)`` with ``P`` pixels in total and ``n_c`` of class ``c`` (sklearn's
    "balanced" rule), so the pixel-weighted mean weight is 1 and CE keeps its usual scale.
    Classes absent from every map get weight 0: they never occur as a target, so their weight
    is never used. ``max_weight`` optionally caps the weight of very rare classes.
    ``sample_weight`` (one per map) scales each map's pixel counts (confidence weighting).
    """
    counts = torch.zeros(n_labels, dtype=torch.float64)
    maps = [label_maps] if isinstance(label_maps, (np.ndarray, torch.Tensor)) else list(label_maps)
    scales = [1.0] * len(maps) if sample_weight is None else [float(w) for w in sample_weight]
    if len(scales) != len(maps):
        raise ValueError(f"{len(scales)} sample weights for {len(maps)} label maps")
    for m, scale in zip(maps, scales):
        flat = torch.as_tensor(np.asarray(m)).reshape(-1).long()
        if flat.numel() and (flat.min() < 0 or flat.max() >= n_labels):
            raise ValueError(f"labels must lie in [0, {n_labels}), got [{int(flat.min())}, {int(flat.max())}]")
        bins = torch.bincount(flat, minlength=n_labels).double()
        counts += bins if sample_weight is None else scale * bins
    present = counts > 0
    if not present.any():
        raise ValueError("class_weights needs at least one labelled pixel")
    weights = torch.zeros(n_labels, dtype=torch.float64)
    weights[present] = counts.sum() / (int(present.sum()) * counts[present])
    if max_weight is not None:
        weights = weights.clamp(max=max_weight)
    return weights.float()


def cross_entropy_loss(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None,
                       sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 4.1: class-weighted pixel cross-entropy, the weighted mean over pixels.

    Args:
        logits: ``(N, K, H, W)`` raw scores.
        target: ``(N, H, W)`` int64 labels in ``[0, K)``.
        weights: ``(K,)`` class weights (``class_weights``) or ``None`` for uniform.
        sample_weight: ``(N,)`` per-image weights or ``None`` (see the module docstring).
    """
    w = None if weights is None else weights.to(logits.device, logits.dtype)
    if sample_weight is None:
        return F.cross_entropy(logits, target, weight=w)
    pixel = F.cross_entropy(logits, target, weight=w, reduction="none")  # already w[target] · (-log p)
    norm = _pixel_weights(target, sample_weight, logits, w)
    return pixel.mul(_per_image(sample_weight, logits)).sum() / norm.sum().clamp(min=torch.finfo(logits.dtype).tiny)


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, alpha: torch.Tensor | None = None,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 4.3: ``-α_c (1 - p_t)^γ log p_t``, normalised like ``cross_entropy_loss``.

    With ``alpha`` the sum is divided by the sum of the pixels' ``α`` (as PyTorch's weighted CE
    does), so ``gamma=0`` gives exactly ``cross_entropy_loss(logits, target, alpha)``; with
    ``sample_weight`` (``(N,)``) each image's pixels count that much in the sum and the divisor.
    """
    log_p = F.log_softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    modulating = (1.0 - log_p.exp()).clamp(min=0.0) ** gamma if gamma != 0 else 1.0
    loss = -modulating * log_p
    if sample_weight is not None:
        a = None if alpha is None else alpha.to(logits.device, logits.dtype)
        norm = _pixel_weights(target, sample_weight, logits, a)
        return (norm * loss).sum() / norm.sum().clamp(min=torch.finfo(logits.dtype).tiny)
    if alpha is None:
        return loss.mean()
    a = alpha.to(logits.device, logits.dtype)[target]
    return (a * loss).sum() / a.sum().clamp(min=torch.finfo(logits.dtype).tiny)


def dice_loss(
    logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None, eps: float = 1e-6,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 4.2 made class-balanced: ``1 - mean_c 2|Y_c ∩ Ŷ_c| / (|Y_c| + |Ŷ_c|)`` over the batch.

    Eq. 4.2 as printed pools all classes into one ratio, which with softmax outputs reduces to the
    mean probability of the true class and is dominated by the background. The per-class mean
    gives small parts the same say (thesis §5.3: "class-balanced Dice"). Classes absent from the
    target batch are left out of the mean: their Dice is undefined, and probability they wrongly
    receive already lowers the overlap of the classes that are present.

    Args:
        weights: optional ``(K,)`` weights of the per-class Dice terms (renormalised over the
            present classes).
        sample_weight: optional ``(N,)``: each image's probabilities and labels count that much in
            the pooled overlaps; a class present only in weight-0 images is left out.
    """
    probs = logits.softmax(dim=1)
    onehot = F.one_hot(target, num_classes=logits.shape[1]).permute(0, 3, 1, 2).to(probs.dtype)
    predicted = probs
    if sample_weight is not None:  # weight each image once: s·p·y in the overlap, s·p + s·y in the total
        scale = _per_image(sample_weight, logits).unsqueeze(1)
        predicted, onehot = probs * scale, onehot * scale
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    total = predicted.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    dice = (2.0 * inter + eps) / (total + eps)
    present = onehot.sum(dim=(0, 2, 3)) > 0
    w = present.to(probs.dtype)
    if weights is not None:
        w = w * weights.to(probs.device, probs.dtype)
    return 1.0 - (w * dice).sum() / w.sum().clamp(min=eps)


def _per_image(sample_weight: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``(N, 1, 1)`` weights on the logits' device and dtype, checked against the batch."""
    w = torch.as_tensor(sample_weight).to(logits.device, logits.dtype).reshape(-1)
    if w.shape[0] != logits.shape[0]:
        raise ValueError(f"{w.shape[0]} sample weights for a batch of {logits.shape[0]}")
    if (w < 0).any():
        raise ValueError("sample weights must not be negative")
    return w.reshape(-1, 1, 1)


def _pixel_weights(target: torch.Tensor, sample_weight: torch.Tensor, logits: torch.Tensor,
                   class_weight: torch.Tensor | None) -> torch.Tensor:
    """``(N, H, W)`` weight of each pixel: its image's weight times its class weight (if any)."""
    per_image = _per_image(sample_weight, logits).expand(target.shape)
    return per_image if class_weight is None else per_image * class_weight[target]


def soft_histogram(logits: torch.Tensor) -> torch.Tensor:
    """Predicted class-area fractions ``(N, K)``: the softmax averaged over each image's pixels."""
    return logits.softmax(dim=1).mean(dim=(2, 3))


def label_histogram(label_maps: Sequence[np.ndarray] | torch.Tensor, n_labels: int,
                    sample_weight: Sequence[float] | None = None) -> torch.Tensor:
    """Mean class-area fractions ``(n_labels,)`` of label maps, each image weighted equally (or by
    ``sample_weight``, one per map: the confidence-weighted mean).

    This is the reference of the histogram loss: the typical histogram of ``D_L``.
    """
    maps = label_maps if isinstance(label_maps, torch.Tensor) else [torch.as_tensor(np.asarray(m)) for m in label_maps]
    if len(maps) == 0:
        raise ValueError("label_histogram needs at least one label map")
    if any(m.min() < 0 or m.max() >= n_labels for m in maps):
        raise ValueError(f"labels must lie in [0, {n_labels})")
    hists = torch.stack([torch.bincount(m.reshape(-1).long(), minlength=n_labels).double() / m.numel() for m in maps])
    if sample_weight is None:
        return hists.mean(dim=0).float()
    w = torch.as_tensor([float(x) for x in sample_weight], dtype=torch.float64)
    if w.shape[0] != hists.shape[0] or (w < 0).any() or w.sum() <= 0:
        raise ValueError("label_histogram needs one non-negative weight per map, not all zero")
    return ((w.unsqueeze(1) * hists).sum(dim=0) / w.sum()).float()


def histogram_loss(logits: torch.Tensor, reference: torch.Tensor, form: str = "l2") -> torch.Tensor:
    """Eq. 4.4 on unlabelled images: predicted soft class fractions vs the mean ``D_L`` histogram.

    ``D_U`` has no labels, so the ``y`` term of eq. 4.4 is the reference histogram
    (``label_histogram`` of ``D_L``). Summed over classes, averaged over images.

    Args:
        logits: ``(N, K, H, W)`` of ``D_U`` images.
        reference: ``(K,)`` fractions summing to 1.
        form: ``"l2"`` (eq. 4.4) or ``"l1"`` (CSAD code).
    """
    diff = soft_histogram(logits) - reference.to(logits.device, logits.dtype).unsqueeze(0)
    if form == "l2":
        return (diff**2).sum(dim=1).mean()
    if form == "l1":
        return diff.abs().sum(dim=1).mean()
    raise ValueError(f"form must be one of {HIST_FORMS}, got {form!r}")


def entropy_loss(logits: torch.Tensor) -> torch.Tensor:
    """Eq. 4.5: mean per-pixel entropy ``-Σ_c p log p`` of the softmax (nats; max ``log K``)."""
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1).mean()


def unsupervised_active(epoch: int, n_epochs: int, stage_start: float = 1 / 3) -> bool:
    """Whether the ``D_U`` terms are on at 0-based ``epoch``: from ``round(stage_start·n_epochs)`` on.

    120 epochs with ``stage_start=1/3`` gives epochs 0–39 supervised only, as in thesis §5.3.
    """
    if not 0.0 <= stage_start <= 1.0:
        raise SettingsError(f"stage_start must lie in [0, 1], got {stage_start}")
    return epoch >= int(math.floor(stage_start * n_epochs + 0.5))


def total_loss(
    labelled_logits: torch.Tensor,
    labels: torch.Tensor,
    weights: SegLossWeights,
    epoch: int,
    n_epochs: int,
    *,
    unlabelled_logits: torch.Tensor | None = None,
    reference_hist: torch.Tensor | None = None,
    class_weight: torch.Tensor | None = None,
    gamma: float = 2.0,
    stage_start: float = 1 / 3,
    sample_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 4.6 with the staged schedule: supervised terms always, ``D_U`` terms after the boundary.

    Args:
        labelled_logits, labels: a ``D_L`` batch ``(N, K, H, W)`` and its labels ``(N, H, W)``.
        class_weight: ``(K,)`` weights for CE and focal α (``class_weights`` of ``D_L``).
        unlabelled_logits: a ``D_U`` batch; ``None`` (or an empty ``D_U``) skips its terms.
        reference_hist: ``(K,)`` mean ``D_L`` histogram; needed when the ``D_U`` terms are on.
        sample_weight: ``(N,)`` confidence of each labelled image for CE, Dice and focal; None =
            every image counts fully (the hard ``D_L``/``D_U`` split).

    Returns:
        The scalar loss to back-propagate, and its parts (detached, unweighted) by name:
        ``ce``, ``dice``, ``focal`` and, when active, ``hist`` and ``entropy``.
    """
    parts = {
        "ce": cross_entropy_loss(labelled_logits, labels, class_weight, sample_weight=sample_weight),
        "dice": dice_loss(labelled_logits, labels, sample_weight=sample_weight),
        "focal": focal_loss(labelled_logits, labels, gamma, class_weight, sample_weight=sample_weight),
    }
    total = weights.ce * parts["ce"] + weights.dice * parts["dice"] + weights.focal * parts["focal"]
    has_unlabelled = unlabelled_logits is not None and unlabelled_logits.shape[0] > 0
    if has_unlabelled and unsupervised_active(epoch, n_epochs, stage_start):
        if reference_hist is None:
            raise ValueError("the histogram loss needs reference_hist (label_histogram of D_L)")
        parts["hist"] = histogram_loss(unlabelled_logits, reference_hist, weights.hist_form)
        parts["entropy"] = entropy_loss(unlabelled_logits)
        total = total + weights.hist * parts["hist"] + weights.entropy * parts["entropy"]
    return total, {name: value.detach() for name, value in parts.items()}
