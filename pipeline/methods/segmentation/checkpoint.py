"""Segmentation checkpoints: safetensors holding the head, the optimizer state and, as metadata,
the settings, class names, finished epochs and loss history that made them (never pickle)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.methods.segmentation.torch_model import SegmentationNet
from pipeline.models.backbones import build_backbone
from pipeline.workspace.files import atomic_save_safetensors

FORMAT = "segmentation-checkpoint-v1"


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint file holds.

    Attributes:
        head: the head's state dict (weights and BatchNorm statistics).
        optimizer: flattened Adam state (``opt.<param index>.<name>``); empty in a final export.
        settings: the settings of the run.
        class_names: cluster id -> name.
        epochs_done: epochs finished; training resumes at this epoch index.
        history: one dict per finished epoch (losses, holdout mean IoU, learning rate, seconds).
        data_fingerprint: ``SegmentationData.fingerprint()`` of the training data.
    """

    head: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor]
    settings: SegmentationSettings
    class_names: dict[int, str]
    epochs_done: int
    history: tuple[dict, ...]
    data_fingerprint: str = ""


def save_checkpoint(path: Path, net: SegmentationNet, optimizer: torch.optim.Optimizer | None, settings: SegmentationSettings,
                    class_names: dict[int, str], epochs_done: int, history: list[dict], data_fingerprint: str = "") -> None:
    """Write atomically: a kill during the write leaves the previous checkpoint intact."""
    tensors = {f"head.{k}": v for k, v in net.head_state_dict().items()}
    if optimizer is not None:
        tensors.update({f"opt.{k}": v for k, v in flatten_optimizer(optimizer).items()})
    metadata = {
        "format": FORMAT,
        "settings": json.dumps(settings.to_dict()),
        "class_names": json.dumps({str(k): v for k, v in class_names.items()}),
        "epochs_done": str(int(epochs_done)),
        "history": json.dumps(history),
        "data_fingerprint": data_fingerprint,
    }
    atomic_save_safetensors(path, tensors, metadata)


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint; a file of another kind gets a clear ``ValueError``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a segmentation checkpoint (format {meta.get('format')!r})")
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    return Checkpoint(
        head={k[5:]: v for k, v in tensors.items() if k.startswith("head.")},
        optimizer={k[4:]: v for k, v in tensors.items() if k.startswith("opt.")},
        settings=SegmentationSettings.from_dict(json.loads(meta["settings"])),
        class_names={int(k): v for k, v in json.loads(meta["class_names"]).items()},
        epochs_done=int(meta["epochs_done"]),
        history=tuple(json.loads(meta["history"])),
        data_fingerprint=meta.get("data_fingerprint", ""),
    )


def build_network(checkpoint: Checkpoint, device: torch.device | str = "cpu") -> SegmentationNet:
    """The trained network of a checkpoint, in eval mode on ``device``."""
    backbone = build_backbone(checkpoint.settings.backbone, device=device)
    net = SegmentationNet(backbone, max(checkpoint.class_names, default=1), checkpoint.settings)
    net.head.load_state_dict(checkpoint.head)
    return net.to(device).eval()


def flatten_optimizer(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Adam's per-parameter state as flat tensors; the hyper-parameters come from the settings."""
    state = optimizer.state_dict()["state"]
    return {f"{index}.{name}": torch.as_tensor(value) for index, values in state.items() for name, value in values.items()}


def restore_optimizer(optimizer: torch.optim.Optimizer, flat: dict[str, torch.Tensor]) -> None:
    """Inverse of ``flatten_optimizer`` into an optimizer built over the same parameters."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    current = optimizer.state_dict()
    current["state"] = state
    optimizer.load_state_dict(current)
