"""LGST checkpoints: safetensors holding the students, the teacher's projection and statistics,
the Adam state and, as metadata, the settings, step, loss history and data fingerprint (no pickle)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.lgst.torch_model import LgstNet
from pipeline.methods.segmentation.checkpoint import flatten_optimizer
from pipeline.models.backbones import build_backbone
from pipeline.workspace.files import atomic_save_safetensors

FORMAT = "lgst-checkpoint-v1"


@dataclass(frozen=True)
class LgstCheckpoint:
    """What a checkpoint file holds.

    Attributes:
        model: ``LgstNet.student_state_dict()`` (students, teacher projection, mean and std).
        optimizer: flattened Adam state; empty in a final export.
        settings: the settings of the run.
        steps_done: optimizer steps finished; training resumes there.
        history: loss records (``step``, ``loss`` and its parts, ``lr``).
        data_fingerprint: ``LgstData.fingerprint()`` of the training data.
        planned_steps: steps the run trains in total (a time budget may plan fewer than
            ``settings.steps``); 0 in checkpoints written before budgets = ``settings.steps``.
        train_seconds: training seconds spent up to ``steps_done``, over every (resumed) run.
    """

    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    settings: LgstSettings
    steps_done: int
    history: tuple[dict, ...]
    data_fingerprint: str = ""
    planned_steps: int = 0
    train_seconds: float = 0.0

    @property
    def finished(self) -> bool:
        """Whether the run trained all the steps it planned."""
        return self.steps_done >= (self.planned_steps or self.settings.steps)


def save_lgst_checkpoint(path: Path, net: LgstNet, optimizer: torch.optim.Optimizer | None, steps_done: int,
                         history: list[dict], data_fingerprint: str = "", *, planned_steps: int = 0,
                         train_seconds: float = 0.0) -> None:
    """Write atomically: a kill during the write leaves the previous checkpoint intact."""
    tensors = {f"model.{k}": v for k, v in net.student_state_dict().items()}
    if optimizer is not None:
        tensors.update({f"opt.{k}": v for k, v in flatten_optimizer(optimizer).items()})
    metadata = {
        "format": FORMAT, "settings": json.dumps(net.settings.to_dict()), "steps_done": str(int(steps_done)),
        "history": json.dumps(history), "data_fingerprint": data_fingerprint,
        "planned_steps": str(int(planned_steps)), "train_seconds": str(float(train_seconds)),
    }
    atomic_save_safetensors(path, tensors, metadata)


def load_lgst_checkpoint(path: Path) -> LgstCheckpoint:
    """Read a checkpoint; a file of another kind gets a clear ``ValueError``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not an LGST checkpoint (format {meta.get('format')!r})")
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    return LgstCheckpoint(
        model={k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
        optimizer={k[4:]: v for k, v in tensors.items() if k.startswith("opt.")},
        settings=LgstSettings.from_dict(json.loads(meta["settings"])),
        steps_done=int(meta["steps_done"]),
        history=tuple(json.loads(meta["history"])),
        data_fingerprint=meta.get("data_fingerprint", ""),
        planned_steps=int(meta.get("planned_steps", 0)),
        train_seconds=float(meta.get("train_seconds", 0.0)),
    )


def build_lgst(checkpoint: LgstCheckpoint, device: torch.device | str = "cpu") -> LgstNet:
    """The trained network of a checkpoint, in eval mode on ``device``."""
    net = LgstNet(build_backbone(checkpoint.settings.backbone, device=device), checkpoint.settings)
    net.load_student_state_dict(checkpoint.model)
    return net.to(device).eval()
