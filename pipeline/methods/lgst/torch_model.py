"""The LGST network: frozen teacher, local student, global student, and their anomaly maps.

Pure network maths; the training loop is in ``train.py`` and scoring of whole images in
``maps.py``. Maps are per grid position, mean over channels of the squared difference
(SPEC §5 step 8):

- ``local``: teacher vs the local student's teacher head (structural: what a 33 px patch cannot
  explain);
- ``global``: global student vs the local student's second head (logical: where the image-wide
  reconstruction and the local one disagree);
- ``teacher_global``: teacher vs the global student (thesis eq. 4.11, the thesis' "global anomaly
  map"): what the image-wide reconstruction cannot reproduce. AeCSAD fuses its maximum as a branch
  of its own (``aecsad/method.py``).
"""

from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.methods.lgst.global_student import GlobalStudent
from pipeline.methods.lgst.local_student import LocalStudent
from pipeline.methods.lgst.losses import lgst_losses
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.lgst.teacher import Teacher
from pipeline.models.backbones import Backbone

MAP_NAMES = ("local", "global", "teacher_global")


class LgstNet(nn.Module):
    """Teacher + students built from ``LgstSettings``; only the students have parameters."""

    def __init__(self, backbone: Backbone, settings: LgstSettings) -> None:
        super().__init__()
        c, grid = settings.out_channels, settings.grid
        self.settings = settings
        self.teacher = Teacher(backbone, settings.stages, c, grid, settings.seed)
        self.local = LocalStudent(c, settings.local_width, grid, settings.local_norm)
        self.global_student = GlobalStudent(c, settings.image_size, grid, settings.global_width,
                                            settings.attention, settings.attention_dim)

    def student_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.local.parameters()
        yield from self.global_student.parameters()

    def student_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything that is not the backbone: students, projection and teacher statistics."""
        state = {f"local.{k}": v for k, v in self.local.state_dict().items()}
        state.update({f"global_student.{k}": v for k, v in self.global_student.state_dict().items()})
        state.update({f"teacher.{k}": getattr(self.teacher, k) for k in ("projection", "mean", "std")})
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}

    def load_student_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.local.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("local.")})
        self.global_student.load_state_dict({k[15:]: v for k, v in state.items() if k.startswith("global_student.")})
        for name in ("projection", "mean", "std"):
            getattr(self.teacher, name).copy_(state[f"teacher.{name}"])

    def forward(self, x: torch.Tensor, x_aug: torch.Tensor, augmented: torch.Tensor | None = None,
                teacher: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Training loss of a batch: plain images ``x`` and their twins ``x_aug`` (LSA applied where
        ``augmented``, a bool ``(N,)``; elsewhere ``x_aug`` equals ``x``). The teacher and the local
        student run once on ``x`` plus the augmented rows only, which saves up to half their work;
        ``teacher``, the plain images' teacher features when already known, saves more.
        """
        n = x.shape[0]
        if augmented is None:
            augmented = torch.ones(n, dtype=torch.bool, device=x.device)
        extra = x_aug[augmented]
        both = torch.cat([x, extra]) if extra.shape[0] else x
        aug_rows = torch.arange(n, device=x.device)
        aug_rows[augmented] = n + torch.arange(extra.shape[0], device=x.device)
        with torch.no_grad():
            if teacher is None:
                teacher_all = self.teacher(both)
            else:
                teacher_all = torch.cat([teacher, self.teacher(extra)]) if extra.shape[0] else teacher
        local_teacher, local_global = self.local(both)
        global_aug = self.global_student(x_aug)
        s = self.settings
        return lgst_losses(teacher_all[:n], local_teacher[:n], teacher_all[aug_rows], global_aug,
                           local_global[aug_rows], s.loss, s.hard_fraction)

    @torch.no_grad()
    def maps(self, x: torch.Tensor, blur_sigma: float = 0.0) -> dict[str, torch.Tensor]:
        """Raw maps ``(N, grid, grid)`` by name (``MAP_NAMES``) of a normalised batch, each blurred
        by a Gaussian of ``blur_sigma`` grid cells (0: none, see ``blur_maps``)."""
        teacher = self.teacher(x)
        local_teacher, local_global = self.local(x)
        global_out = self.global_student(x)
        return {
            "local": blur_maps((teacher - local_teacher).pow(2).mean(dim=1), blur_sigma),
            "global": blur_maps((global_out - local_global).pow(2).mean(dim=1), blur_sigma),
            "teacher_global": blur_maps((teacher - global_out).pow(2).mean(dim=1), blur_sigma),
        }


def blur_maps(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(N, g, g)`` maps convolved with a separable Gaussian of ``sigma`` cells (radius 2σ, edge
    padding). A defect lights several neighbouring cells while the students' noise on good parts is
    mostly single cells, so the blurred maximum separates them better (measured in the issue notes)."""
    if sigma <= 0:
        return maps
    radius = max(1, int(round(2 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = F.pad(maps[:, None], (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    return F.conv2d(x, kernel.view(1, 1, -1, 1))[:, 0]
