"""Network maths of the component segmenter: a DeepLabV3+ head on a frozen backbone (thesis §4.4).

No training loop and no disk access here. Inputs are batches from ``to_tensor_batch`` (resized,
ImageNet-normalised); outputs are logits over ``n_classes + 1`` labels, 0 being the background.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import SettingsError
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.models.backbones import Backbone
from pipeline.models.preprocess import to_tensor_batch


def _conv_bn_relu(cin: int, cout: int, kernel: int, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel - 1) // 2  # keeps the spatial size for odd kernels
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1×1, three atrous 3×3 and image pooling, then a 1×1 projection."""

    def __init__(self, cin: int, cout: int, rates: Sequence[int], dropout: float) -> None:
        super().__init__()
        self.branches = nn.ModuleList([_conv_bn_relu(cin, cout, 1)] + [_conv_bn_relu(cin, cout, 3, r) for r in rates])
        # No BatchNorm after global pooling: a 1×1 map has one value per channel and image, and
        # BatchNorm in training mode fails on a batch of one (the last, partial batch of an epoch).
        self.pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))
        self.project = nn.Sequential(_conv_bn_relu(cout * (len(rates) + 2), cout, 1), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, cin, h, w)`` -> ``(N, cout, h, w)``."""
        pooled = self.pooling(x).expand(-1, -1, *x.shape[-2:])
        return self.project(torch.cat([branch(x) for branch in self.branches] + [pooled], dim=1))


class DeepLabV3PlusHead(nn.Module):
    """ASPP on the deep features, fused with reduced low-level features, then a pixel classifier."""

    def __init__(self, low_channels: int, deep_channels: int, n_outputs: int, settings: SegmentationSettings) -> None:
        super().__init__()
        s = settings
        self.aspp = ASPP(deep_channels, s.aspp_channels, s.aspp_rates, s.dropout)
        self.reduce = _conv_bn_relu(low_channels, s.low_channels, 1)
        self.decoder = nn.Sequential(
            _conv_bn_relu(s.aspp_channels + s.low_channels, s.decoder_channels, 3),
            _conv_bn_relu(s.decoder_channels, s.decoder_channels, 3),
        )
        self.classifier = nn.Conv2d(s.decoder_channels, n_outputs, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, low: torch.Tensor, deep: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        """Low ``(N, cl, H/4, W/4)`` and deep ``(N, cd, h, w)`` features -> logits ``(N, K, *out_size)``."""
        context = F.interpolate(self.aspp(deep), size=low.shape[-2:], mode="bilinear", align_corners=False)
        fused = self.decoder(torch.cat([context, self.reduce(low)], dim=1))
        return F.interpolate(self.classifier(fused), size=out_size, mode="bilinear", align_corners=False)


class SegmentationNet(nn.Module):
    """Frozen backbone + trainable DeepLabV3+ head predicting ``n_classes + 1`` labels (0 = background).

    The backbone stays frozen and in eval mode (``Backbone`` guarantees it); its features are
    computed without autograd, so backward passes and optimizer state cover the head only.
    """

    def __init__(self, backbone: Backbone, n_classes: int, settings: SegmentationSettings) -> None:
        super().__init__()
        if n_classes < 1:
            raise ValueError(f"n_classes must be at least 1, got {n_classes}")
        info = backbone.info
        low, deep = settings.stages
        missing = [name for name in (low, deep) if name not in info.stage_names]
        if missing:
            raise SettingsError(f"backbone {info.name} has no stage {missing}; it has {list(info.stage_names)}")
        self.backbone = backbone
        self.n_classes = n_classes
        self.stage_names = (low, deep)
        channels = dict(zip(info.stage_names, info.channels))
        self.head = DeepLabV3PlusHead(channels[low], channels[deep], n_classes + 1, settings)

    @property
    def n_labels(self) -> int:
        """Output channels: the classes plus the background."""
        return self.n_classes + 1

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen ``(low, deep)`` backbone features of a normalised batch; cacheable by a caller."""
        with torch.no_grad():
            maps = self.backbone(x, stages=self.stage_names)
        return maps[self.stage_names[0]], maps[self.stage_names[1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised batch ``(N, 3, H, W)`` -> logits ``(N, n_classes + 1, H, W)``."""
        low, deep = self.features(x)
        return self.head(low, deep, x.shape[-2:])

    def head_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters (the head's); give these to the optimizer."""
        return list(self.head.parameters())

    def head_state_dict(self) -> dict[str, torch.Tensor]:
        """The head's weights and BatchNorm statistics: all a checkpoint needs besides the settings."""
        return self.head.state_dict()


def labels_to_tensor(label_maps: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """Integer label maps ``(H, W)`` of any sizes -> int64 ``(N, size, size)`` training targets.

    Nearest-neighbour ("nearest-exact", pixel centres aligned like ``to_tensor_batch``) so no
    label is invented between two classes.
    """
    out = []
    for m in label_maps:
        t = torch.from_numpy(np.asarray(m, dtype=np.int64).copy())[None, None].float()
        if t.shape[-2:] != (size, size):
            t = F.interpolate(t, size=(size, size), mode="nearest-exact")
        out.append(t[0, 0].long())
    return torch.stack(out)


def resize_labels(labels: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """One label map ``(h, w)`` -> uint8 ``shape`` (nearest-exact), e.g. back to an image's size."""
    t = labels.detach().to("cpu", torch.float32)[None, None]
    if tuple(t.shape[-2:]) != tuple(shape):
        t = F.interpolate(t, size=tuple(int(v) for v in shape), mode="nearest-exact")
    return t[0, 0].to(torch.uint8).numpy()


def predict_labels(
    net: SegmentationNet, images: Sequence[np.ndarray], size: int, batch_size: int = 8
) -> list[np.ndarray]:
    """Label maps of RGB uint8 images, each uint8 ``(H, W)`` at that image's own resolution.

    The network sees ``size``×``size`` inputs (the one resizer); the arg-max map is brought back
    with nearest-neighbour. The module's train/eval mode is restored afterwards.
    """
    if net.n_labels > 256:
        raise ValueError(f"{net.n_labels} labels do not fit uint8 maps")
    device = next(net.head.parameters()).device
    was_training = net.training
    net.eval()
    out: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = images[start:start + batch_size]
                pred = net(to_tensor_batch(batch, size).to(device)).argmax(dim=1).cpu()
                out.extend(resize_labels(p, img.shape[:2]) for p, img in zip(pred, batch))
    finally:
        net.train(was_training)
    return out
