"""Frozen ImageNet backbones that return multi-scale feature maps (SPEC §4).

``build_backbone`` builds the architecture with random weights (no library ever downloads
anything here), then loads the file the weight registry resolves. ``checkpoint=None`` keeps the
random weights, which is what the tests use to exercise the real code on tiny inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import timm
import torch
import torchvision
from torch import nn

from pipeline.errors import SettingsError
from pipeline.models.weights import IncompatibleWeightsError, resolve_weights, weight_status

DEFAULT = "default"
"""``checkpoint`` value meaning: whatever the weight registry resolves for this backbone."""


@dataclass(frozen=True)
class BackboneInfo:
    """Shape facts about a backbone's feature stages.

    Attributes:
        name: backbone name as passed to ``build_backbone``.
        stage_names: keys of the dict ``Backbone.forward`` returns, shallow to deep.
        channels: channel count of each stage, same order.
        strides: downsampling factor of each stage relative to the input, same order.
    """

    name: str
    stage_names: tuple[str, ...]
    channels: tuple[int, ...]
    strides: tuple[int, ...]


class Backbone(nn.Module):
    """A frozen feature extractor: a stem followed by stages whose outputs are returned by name.

    It is always in eval mode (``train()`` does not change that) so BatchNorm statistics never
    drift, and its parameters never require gradients.
    """

    def __init__(self, stem: nn.Module, stages: Sequence[nn.Module], info: BackboneInfo) -> None:
        super().__init__()
        if len(stages) != len(info.stage_names):
            raise ValueError("one module per stage name is needed")
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.info = info
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> Backbone:
        """Ignore ``mode``: a frozen backbone stays in eval mode even inside a training module."""
        return super().train(False)

    def forward(self, x: torch.Tensor, stages: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Feature maps of a normalised batch ``(N, 3, H, W)`` by stage name.

        Args:
            stages: only these stages (default: all); the forward pass stops after the deepest
                one asked for, which saves most of the compute when only mid-level stages are used.
        """
        wanted = self.info.stage_names if stages is None else tuple(stages)
        unknown = set(wanted) - set(self.info.stage_names)
        if unknown:
            raise KeyError(f"unknown stages {sorted(unknown)}; {self.info.name} has {self.info.stage_names}")
        last = max(self.info.stage_names.index(name) for name in wanted)
        features: dict[str, torch.Tensor] = {}
        x = self.stem(x)
        for name, stage in zip(self.info.stage_names[: last + 1], self.stages):
            x = stage(x)
            if name in wanted:
                features[name] = x
        return features


EMBEDDED = "efficientnet_lite0"
PAPER = "wide_resnet50_2"
AUTO = "auto"


def choose_backbone(requested: str = AUTO, profile: str = "quick") -> str:
    """The backbone a fit uses: ``auto`` is WRN50-2 for the ``paper`` profile when its weights
    are present (SPEC §4), else the embedded EfficientNet-Lite0. A named backbone is used as is
    (``build_backbone`` then names the missing file if its weights are absent)."""
    if requested != AUTO:
        if requested not in BACKBONES:
            raise SettingsError(f"unknown backbone {requested!r}; choose auto or one of: {', '.join(BACKBONES)}")
        return requested
    if profile == "paper" and weight_status(PAPER).found:
        return PAPER
    return EMBEDDED


def build_backbone(
    name: str = "efficientnet_lite0",
    checkpoint: Path | str | None = DEFAULT,
    device: torch.device | str = "cpu",
) -> Backbone:
    """Build a frozen backbone by name (see ``BACKBONES``).

    Args:
        checkpoint: ``"default"`` resolves the weights through the registry (may raise
            ``MissingWeightsError``); a path loads that file; ``None`` keeps random weights.
        device: where the returned module lives.
    """
    if name not in BACKBONES:
        raise KeyError(f"Unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}")
    return BACKBONES[name](checkpoint).to(device)


def build_classifier(
    checkpoint: Path | str | None = DEFAULT, device: torch.device | str = "cpu"
) -> nn.Module:
    """The full EfficientNet-Lite0 ImageNet classifier (1000 logits), frozen, in eval mode."""
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    path = _checkpoint_path("efficientnet_lite0", checkpoint)
    if path is not None:
        load_efficientnet_lite0_state(model, path)
    model.requires_grad_(False)
    return model.eval().to(device)


def load_efficientnet_lite0_state(model: nn.Module, path: Path | str) -> None:
    """Load an EfficientNet-Lite0 weight file into timm's ``efficientnet_lite0``.

    The embedded file uses efficientnet_pytorch key names (``_blocks.0._bn1.weight``) that
    correspond by position to timm's (247 tensors besides the BatchNorm counters, same order,
    same shapes), so tensors are matched by position and every shape is checked. A file that
    already uses timm's names is loaded by name.

    Raises:
        IncompatibleWeightsError: the file does not fit the model; the message says where.
    """
    source = load_state_file(path)
    target = model.state_dict()
    if set(source) == set(target):
        _load_strict(model, source, path)
        return
    src_keys, dst_keys = _counted_keys(source), _counted_keys(target)
    if len(src_keys) != len(dst_keys):
        raise IncompatibleWeightsError(
            f"{path}: {len(src_keys)} tensors, but efficientnet_lite0 has {len(dst_keys)}; "
            "this is not an EfficientNet-Lite0 ImageNet file"
        )
    mapped = {}
    for position, (src, dst) in enumerate(zip(src_keys, dst_keys)):
        if source[src].shape != target[dst].shape:
            raise IncompatibleWeightsError(
                f"{path}: tensor {position} {src!r} has shape {tuple(source[src].shape)}, but "
                f"efficientnet_lite0's {dst!r} needs {tuple(target[dst].shape)}"
            )
        mapped[dst] = source[src]
    model.load_state_dict(mapped, strict=False)  # only the BatchNorm step counters are left out


def load_state_file(path: Path | str) -> dict[str, torch.Tensor]:
    """A plain ``{name: tensor}`` weight file, read without running pickled code.

    Raises:
        IncompatibleWeightsError: unreadable (truncated, not a torch file) or not a state dict.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncation and foreign formats fail in many different ways
        raise IncompatibleWeightsError(f"{path} cannot be read as a PyTorch weight file: {error}") from error
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise IncompatibleWeightsError(f"{path} is not a plain state dict of tensors")
    return state


def _load_strict(
    model: nn.Module, state: dict[str, torch.Tensor], path: Path | str, assign: bool = False
) -> None:
    try:
        model.load_state_dict(state, assign=assign)
    except RuntimeError as error:
        raise IncompatibleWeightsError(f"{path} does not fit {type(model).__name__}: {error}") from error


def _counted_keys(state: dict[str, torch.Tensor]) -> list[str]:
    # BatchNorm step counters are bookkeeping, not weights, and files disagree on keeping them.
    return [key for key in state if not key.endswith("num_batches_tracked")]


def _checkpoint_path(key: str, checkpoint: Path | str | None) -> Path | None:
    if checkpoint is None:
        return None
    if str(checkpoint) == DEFAULT:
        return resolve_weights(key)
    return resolve_weights(key, explicit=checkpoint)


def _efficientnet_lite0(checkpoint: Path | str | None) -> Backbone:
    model = build_classifier(checkpoint)
    blocks = model.blocks
    # timm's feature_info puts strides 4/8/16/32 after blocks 1, 2, 4 and 6.
    stages = [blocks[0:2], blocks[2:3], blocks[3:5], blocks[5:7]]
    info = BackboneInfo(
        name="efficientnet_lite0",
        stage_names=("s4", "s8", "s16", "s32"),
        channels=(24, 40, 112, 320),
        strides=(4, 8, 16, 32),
    )
    return Backbone(nn.Sequential(model.conv_stem, model.bn1), stages, info)


def _wide_resnet50_2(checkpoint: Path | str | None) -> Backbone:
    path = _checkpoint_path("wide_resnet50_2", checkpoint)  # a missing file fails before any work
    if path is None:
        model = torchvision.models.wide_resnet50_2(weights=None)
    else:
        state = {
            key: value.float() if value.is_floating_point() else value
            for key, value in load_state_file(path).items()
        }
        with torch.device("meta"):
            # Random init of 69M parameters takes a second and would be overwritten anyway.
            model = torchvision.models.wide_resnet50_2(weights=None)
        _load_strict(model, state, path, assign=True)
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    info = BackboneInfo(
        name="wide_resnet50_2",
        stage_names=("layer1", "layer2", "layer3", "layer4"),
        channels=(256, 512, 1024, 2048),
        strides=(4, 8, 16, 32),
    )
    return Backbone(stem, [model.layer1, model.layer2, model.layer3, model.layer4], info)


BACKBONES: dict[str, Callable[[Path | str | None], Backbone]] = {
    "efficientnet_lite0": _efficientnet_lite0,
    "wide_resnet50_2": _wide_resnet50_2,
}
"""Backbone builders by name; each takes the ``checkpoint`` argument of ``build_backbone``."""
