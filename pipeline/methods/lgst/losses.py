"""LGST training losses (thesis eq. 4.13–4.16, SPEC §5 step 8): pure functions of tensors."""

from __future__ import annotations

import torch

from pipeline.methods.lgst.settings import LgstLossWeights


def hard_mse(target: torch.Tensor, prediction: torch.Tensor, fraction: float) -> torch.Tensor:
    """Mean of the largest ``fraction`` of the squared errors (EfficientAD's hard mining:
    ``fraction=0.001`` keeps those at or above the 99.9th percentile). ``fraction >= 1`` is the
    plain MSE."""
    squared = (target - prediction).pow(2)
    if fraction >= 1:
        return squared.mean()
    flat = squared.flatten()
    k = max(1, int(round(fraction * flat.numel())))
    return torch.topk(flat, k, sorted=False).values.mean()


def lgst_losses(
    teacher: torch.Tensor, local: torch.Tensor, teacher_aug: torch.Tensor, global_aug: torch.Tensor,
    local_global_aug: torch.Tensor, weights: LgstLossWeights, hard_fraction: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(total, parts)`` of one batch, all tensors ``(N, C, g, g)``.

    Args:
        teacher: teacher features of the plain images; ``local`` the local student's teacher head.
        teacher_aug: teacher features of the LSA-augmented images the global student sees.
        global_aug: the global student's output on them; ``local_global_aug`` the local student's
            second head on the same images.

    ``L_local`` is hard-mined; ``L_global`` and ``L_fusion`` are plain MSE. The fusion term pulls
    both students towards each other (no detach, as in the EfficientAD and CSAD reference code):
    the thesis' "mutual consistency".
    """
    parts = {
        "loss_local": hard_mse(teacher, local, hard_fraction),
        "loss_global": (teacher_aug - global_aug).pow(2).mean(),
        "loss_fusion": (global_aug - local_global_aug).pow(2).mean(),
    }
    total = (weights.local * parts["loss_local"] + weights.global_ * parts["loss_global"]
             + weights.fusion * parts["loss_fusion"])
    return total, parts
