"""Settings of the component segmentation network, per profile (SPEC §7, thesis §5.3)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pipeline.errors import SettingsError
from pipeline.methods.segmentation.augment import AugmentSettings
from pipeline.methods.settings_io import settings_from_dict
from pipeline.methods.segmentation.losses import SegLossWeights
from pipeline.methods.segmentation.lsa import LsaSettings
from pipeline.pseudolabels.settings import ConfidenceSettings

DEFAULT_STAGES: dict[str, tuple[str, str]] = {
    "efficientnet_lite0": ("s4", "s16"),
    "wide_resnet50_2": ("layer1", "layer3"),
}
"""(low-level skip stage, deep ASPP stage) per backbone; both have strides 4 and 16.

Stride 16 is DeepLabV3+'s usual output stride and the thesis' WRN50 ``layer3``. EfficientNet-Lite0's
``s32`` would give an 8×8 map at 256 px: atrous rates 6/12/18 would then only see padding, and
thin parts (pins ~6 px wide) would vanish; ``s16`` (112 channels, 16×16) keeps them.
"""

PROFILES = ("quick", "paper")


@dataclass(frozen=True)
class SegmentationSettings:
    """Everything that shapes a segmentation network and its training; saved with checkpoints.

    Attributes:
        backbone: registry name of the frozen backbone (``pipeline.models.backbones``).
        low_stage: backbone stage of the skip branch; ``""`` = ``DEFAULT_STAGES[backbone][0]``.
        deep_stage: backbone stage fed to ASPP; ``""`` = ``DEFAULT_STAGES[backbone][1]``.
        image_size: square network input side in px (``to_tensor_batch``).
        aspp_rates: dilation rates of the three atrous 3×3 ASPP branches.
        aspp_channels: channels of each ASPP branch and of its projection.
        low_channels: channels the skip features are reduced to (DeepLabV3+: 48).
        decoder_channels: channels of the two 3×3 decoder convolutions.
        dropout: dropout after the ASPP projection (torchvision's DeepLabV3: 0.5).
        epochs: training epochs over ``D_L``.
        batch_size: images per batch, for ``D_L`` and ``D_U`` each.
        lr: initial Adam learning rate.
        min_lr: final learning rate of the cosine schedule.
        weight_decay: Adam weight decay.
        loss: weights λ1..λ5 (``SegLossWeights.thesis()`` or ``.csad()``).
        stage_start: fraction of the epochs after which the ``D_U`` losses start.
        focal_gamma: γ of the focal loss.
        max_class_weight: cap on the inverse-frequency CE weight of rare classes (``None``: none).
        lsa_probability: probability that a ``D_L`` training image gets LSA.
        lsa: how LSA moves parts.
        augment: flips, rotations, jitter and noise.
        holdout_fraction: share of ``D_L`` held out to report mean IoU per epoch.
        confidence_weighting: off (default): the hard ``D_L``/``D_U`` split. On: every
            pseudo-labelled image with confidence at least ``confidence.floor`` takes part in the
            supervised losses, each weighted by its confidence (``pipeline.pseudolabels.confidence``);
            the held-out slice is drawn from the full-confidence images.
        confidence: the IQR fence and floor of the confidence (only used when weighting).
        seed: seeds Python, NumPy and torch for the whole training run.
    """

    backbone: str = "efficientnet_lite0"
    low_stage: str = ""
    deep_stage: str = ""
    image_size: int = 256
    aspp_rates: tuple[int, int, int] = (6, 12, 18)
    aspp_channels: int = 256
    low_channels: int = 48
    decoder_channels: int = 256
    dropout: float = 0.5
    epochs: int = 120
    batch_size: int = 16
    lr: float = 1e-4
    min_lr: float = 1e-6
    weight_decay: float = 0.0
    loss: SegLossWeights = field(default_factory=SegLossWeights)
    stage_start: float = 1 / 3
    focal_gamma: float = 2.0
    max_class_weight: float | None = None
    lsa_probability: float = 0.5
    lsa: LsaSettings = field(default_factory=LsaSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    holdout_fraction: float = 0.1
    confidence_weighting: bool = False
    confidence: ConfidenceSettings = field(default_factory=ConfidenceSettings)
    seed: int = 0

    @property
    def stages(self) -> tuple[str, str]:
        """``(low_stage, deep_stage)`` with the backbone's defaults filled in."""
        default = DEFAULT_STAGES.get(self.backbone, ("", ""))
        low, deep = self.low_stage or default[0], self.deep_stage or default[1]
        if not low or not deep:
            raise SettingsError(f"no default stages for backbone {self.backbone!r}; set low_stage and deep_stage")
        return low, deep

    @property
    def active_confidence(self) -> ConfidenceSettings | None:
        """``confidence`` when weighting is on, else None: what ``load_segmentation_data`` takes."""
        return self.confidence if self.confidence_weighting else None

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0, **overrides: Any) -> "SegmentationSettings":
        """``paper``: thesis §5.3 (120 epochs, batch 16, Adam 1e-4 → 1e-6 cosine, stages from epoch 40).

        ``quick``: same code for 2 CPU cores: 15 epochs, batch 8, a 128-channel head and a
        10× higher learning rate to make up for the shorter schedule (only the head trains).
        Its rare-class CE weights are capped at 1: uncapped inverse-frequency weights (×10–30
        for small parts) made every part a few pixels too fat in so short a schedule (fastener_kit
        true-label test mIoU 0.77 uncapped, 0.88 at a cap of 3, 0.90 at 1; pin_tray 0.89 → 0.92).
        """
        if profile == "paper":
            base = cls(seed=seed)
        elif profile == "quick":
            base = cls(
                seed=seed, epochs=15, batch_size=8, lr=1e-3, min_lr=1e-5,
                aspp_channels=128, decoder_channels=128, max_class_weight=1.0,
            )
        else:
            raise SettingsError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
        return replace(base, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (nested settings as dicts, tuples as lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "SegmentationSettings":
        """Inverse of ``to_dict``; unknown keys are an error so a stale file is noticed."""
        nested = {"loss": SegLossWeights, "lsa": LsaSettings, "augment": AugmentSettings,
                  "confidence": ConfidenceSettings}
        return settings_from_dict(cls, raw, "segmentation", nested, tuples=("aspp_rates",))
