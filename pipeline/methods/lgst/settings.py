"""Settings of the local–global student–teacher (LGST) branch, per profile (SPEC §5 step 8, §7)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pipeline.errors import SettingsError
from pipeline.methods.segmentation.lsa import LsaSettings
from pipeline.methods.settings_io import settings_from_dict

TEACHER_STAGES: dict[str, tuple[str, str]] = {
    "efficientnet_lite0": ("s4", "s8"),
    "wide_resnet50_2": ("layer2", "layer3"),
}
"""The two stages the teacher concatenates, per backbone: WRN50-2 layers 2+3 (strides 8, 16) as in
the thesis. For EfficientNet-Lite0 strides 4+8: its stride-16 stage sees ~200 px, far beyond the
local student's 33 px, and in short CPU runs a student regressing it stayed near chance (pin_tray
local-map structural AUROC 0.60 after 400 steps at 128 px vs 0.73 with s4+s8 after 300)."""

TEACHER_CHANNELS: dict[str, int] = {"efficientnet_lite0": 64, "wide_resnet50_2": 512}
"""Default projected teacher channels: 512 for WRN50-2 (thesis); EfficientNet-Lite0's s4 + s8
have 24 + 40 = 64 channels, kept whole (the projection is then a seeded rotation)."""

PROFILES = ("quick", "paper")
QUICK_BUDGET_S = 22 * 60.0
"""Training seconds of the quick profile's students: with the segmenter (~3 min on 2 CPU cores),
the retrieval memory bank (~1–2 min) and the fusion statistics a whole ``fit`` stays under 30
minutes on every synthetic category (fastener_kit, the slowest: 27.0 min with 23 min of students
and no retrieval branch)."""


@dataclass(frozen=True)
class LgstLossWeights:
    """λ of thesis eq. 4.16 (the public CSAD code uses 1, 1, 1)."""

    local: float = 1.0
    global_: float = 1.0
    fusion: float = 1.0


@dataclass(frozen=True)
class LgstSettings:
    """Everything that shapes the LGST networks and their training; saved with checkpoints.

    Attributes:
        backbone: registry name of the frozen teacher backbone.
        teacher_stages: the two stages concatenated; ``()`` = ``TEACHER_STAGES[backbone]``.
        channels: projected teacher channels C; ``0`` = ``TEACHER_CHANNELS[backbone]``.
        image_size: square network input side in px (``to_tensor_batch``).
        grid: side of the common feature grid (64 for a 256 px input, a quarter of it).
        local_width: (first, second) conv widths of the PDN-M-shaped local student (EfficientAD
            PDN-M: 256, 512); the later 1×1/3×3 convs use the second.
        local_norm: GroupNorm after each local-student convolution (PDN has none).
        global_width: base channel count of the global student's encoder–decoder.
        attention: True = AeCSAD (self-attention at 16×16 and 8×8, no 1×1 bottleneck); False = the
            plain CNN autoencoder of CSAD (bottleneck pooled to 1×1).
        attention_dim: query/key width of the attention blocks, as a fraction of their channels.
        steps: optimizer steps (iterations); with a time budget, the most it may train.
        time_budget_s: seconds of training the run may take (0 = none: exactly ``steps``). The
            run plans how many steps fit at the pace it measures, re-planning until the learning
            rate drops; the plan and the seconds spent are saved with checkpoints, so a resumed run
            keeps to the same budget. Which step count was reached depends on the machine's speed.
        batch_size: images per step.
        lr, weight_decay: Adam settings (thesis: 2e-4, 1e-4).
        lr_drop_at: fraction of the steps after which the learning rate drops ×0.1 (step decay).
        hard_fraction: share of the largest squared errors ``L_local`` averages (0.001 = top 0.1%).
        loss: λ of the three losses.
        lsa_probability: probability that a training image the global student sees gets LSA
            (only images with a pseudo-label map can).
        lsa: how LSA moves parts.
        quantiles: (start, end) quantiles of the validation maps each map is normalised with.
        checkpoint_every: steps between checkpoints (and the last step).
        seed: seeds Python, NumPy and torch for the whole run, and the teacher projection.
    """

    backbone: str = "efficientnet_lite0"
    teacher_stages: tuple[str, ...] = ()
    channels: int = 0
    image_size: int = 256
    grid: int = 64
    local_width: tuple[int, int] = (256, 512)
    local_norm: bool = False
    global_width: int = 64
    attention: bool = True
    attention_dim: float = 0.5
    steps: int = 70_000
    time_budget_s: float = 0.0
    batch_size: int = 16
    lr: float = 2e-4
    weight_decay: float = 1e-4
    lr_drop_at: float = 0.95
    hard_fraction: float = 0.001
    loss: LgstLossWeights = field(default_factory=LgstLossWeights)
    lsa_probability: float = 0.5
    lsa: LsaSettings = field(default_factory=lambda: LsaSettings(copy=True))
    quantiles: tuple[float, float] = (0.9, 0.995)
    checkpoint_every: int = 500
    seed: int = 0

    @property
    def stages(self) -> tuple[str, str]:
        """The teacher's two stages with the backbone's defaults filled in."""
        stages = tuple(self.teacher_stages) or TEACHER_STAGES.get(self.backbone, ())
        if len(stages) != 2:
            raise SettingsError(f"no default teacher stages for backbone {self.backbone!r}; set teacher_stages")
        return stages[0], stages[1]

    @property
    def out_channels(self) -> int:
        """Teacher channels C with the backbone's default filled in."""
        return self.channels or TEACHER_CHANNELS.get(self.backbone, 384)

    @property
    def method(self) -> str:
        return "aecsad" if self.attention else "csad"

    @classmethod
    def for_profile(cls, profile: str, attention: bool = True, seed: int = 0, **overrides: Any) -> "LgstSettings":
        """``paper``: thesis §5.4 (PDN-M widths, 512 channels with WRN50-2, batch 16, Adam 2e-4,
        step decay ×0.1 at 95%).

        ``quick``: same code for 2 CPU cores: a PDN-M of an eighth of the width, a 32-channel
        global student, batch 4 with a larger hard-mining share (the top 0.1% alone gives too few
        gradients to converge in so few steps) and a 5× learning rate. The input stays 256 px: at
        128 px (a quarter of the cost) the pin_tray maps stayed at chance level after 900 steps,
        while 256 px reached structural AUROC 0.83 after 300. Up to 2300 steps within
        ``QUICK_BUDGET_S`` of training: more steps keep helping (pin_tray fused structural 0.78
        after 500 steps, 0.875 after 1500, 0.93 after 2300), but a step costs 0.77 s on pin_tray
        and 1.19 s on cable_connector (2 idle cores), so a fixed count either wastes the cheap
        categories' time or pushes the dear ones over 30 minutes.
        """
        if profile == "paper":
            base = cls(seed=seed, attention=attention)
        elif profile == "quick":
            base = cls(
                seed=seed, attention=attention, local_width=(32, 64), global_width=32,
                steps=2300, time_budget_s=QUICK_BUDGET_S, batch_size=4, lr=1e-3, hard_fraction=0.01,
                checkpoint_every=50,
            )
        else:
            raise SettingsError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
        return replace(base, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (nested settings as dicts, tuples as lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "LgstSettings":
        """Inverse of ``to_dict``; unknown keys are an error so a stale file is noticed."""
        nested = {"loss": LgstLossWeights, "lsa": LsaSettings}
        return settings_from_dict(cls, raw, "LGST", nested, tuples=("teacher_stages", "local_width", "quantiles"))
