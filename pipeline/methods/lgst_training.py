"""Training a category's LGST students (local + global) on their own (``train-lgst``), outside a fit.

The students land in the method folder (``<workspace>/categories/<category>/<method>/``) with the
settings ``fit --method aecsad|csad`` builds, so a later fit with the same profile, seed and
backbone reuses them instead of training again (other ``steps`` make them other settings).

Also runs as one rank of a distributed run: ``torchrun --nproc_per_node N -m pipeline train-lgst ...``
(DDP over N GPUs with NCCL, or N CPU processes with gloo); rank 0 alone reports and writes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from pipeline.data.registered import load_workspace_category
from pipeline.device import resolve_device
from pipeline.distributed import describe_processes, main_rank_only, setup_distributed, teardown
from pipeline.errors import SettingsError
from pipeline.methods import get_method, lgst_method_names
from pipeline.methods.aecsad.method import reliable_label_maps
from pipeline.methods.base import FitContext
from pipeline.methods.lgst.data import LgstData, load_lgst_data
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.lgst.train import LgstTrainingResult, log_every, train_lgst
from pipeline.methods.segmentation.data import NoPseudoLabelsError
from pipeline.models.backbones import choose_backbone
from pipeline.progress import TqdmProgress, no_progress
from pipeline.pseudolabels import store
from pipeline.workspace import Workspace

LOSS_PARTS = ("loss_local", "loss_global", "loss_fusion")
LINES_PER_RUN = 10
"""Log lines per run: one every ~10% of the steps."""


@dataclass(frozen=True)
class LgstInputs:
    """What a ``train-lgst`` run trains on, and where it writes.

    Attributes:
        data: all good training images; the reliable pseudo-labelled ones carry their label map.
        settings: ``fit``'s LGST settings for the method/profile/seed/backbone (plus ``--steps``).
        out_dir: the method folder ``fit`` reads ``lgst.safetensors`` from.
        fit_steps: the steps ``fit`` would train (the profile's); differs from
            ``settings.steps`` when ``--steps`` overrides it.
    """

    data: LgstData
    settings: LgstSettings
    out_dir: Path
    fit_steps: int


def lgst_inputs(
    ws: Workspace, category: str, method: str, profile: str, seed: int, backbone: str, steps: int | None = None,
) -> LgstInputs:
    """The data, settings and folder ``fit --method <method>`` would use (the same calls, so a
    checkpoint trained here passes its settings-and-data check); ``steps`` overrides the profile's."""
    if method not in lgst_method_names():
        raise SettingsError(f"method {method!r} has no LGST students; choose one of: {', '.join(lgst_method_names())}")
    if steps is not None and steps < 1:
        raise SettingsError(f"--steps must be at least 1, got {steps}")
    data = load_workspace_category(ws, category)  # a clear error for an unknown category
    _require_pseudo_labels(ws, category)
    settings = LgstSettings.for_profile(profile, attention=get_method(method).attention, seed=seed,
                                        backbone=choose_backbone(backbone, profile))
    out_dir = ws.method_dir(category, method)
    ctx = FitContext(data=data, out_dir=out_dir, profile=profile, device=torch.device("cpu"), seed=seed,
                     backbone=backbone, workspace=ws, category=category)  # only its workspace and category are read
    images = load_lgst_data(data.select("train", "good"), settings.image_size, reliable_label_maps(ctx))
    run_settings = replace(settings, steps=steps) if steps else settings
    return LgstInputs(images, run_settings, out_dir, settings.steps)


def _require_pseudo_labels(ws: Workspace, category: str) -> None:
    """Refuse a category without pseudo-labels: ``fit`` would make them first, and its LGST data
    (with their label maps) would then differ from ours and it would train the students again."""
    if not store.load_state(ws, category).label_maps:
        raise NoPseudoLabelsError(
            f"category {category!r} has no pseudo-labels yet; run `python -m pipeline pseudo-labels "
            f"--workspace {ws.path} --category {category} --data ...` (or the Masks page) first: LSA moves "
            "their parts, and fit would make them and then train the students again"
        )


def train_standalone(
    inputs: LgstInputs, method: str, profile: str, device: str, restart: bool = False,
    say: Callable[[str], None] = print,
) -> LgstTrainingResult:
    """Train (or resume, unless ``restart``) the students of ``inputs`` in one process or as one
    torchrun rank; ``say`` hears what is trained, the losses every ~10% and whether fit reuses them."""
    settings = inputs.settings
    dist, torch_device = setup_distributed(resolve_device(device))  # one process unless torchrun started us
    say = main_rank_only(say, dist)
    try:
        say(f"device: {describe_processes(torch_device, dist)}; {_describe_run(inputs, method)}")
        progress = TqdmProgress() if dist.is_main else None
        log = StepLog(settings.steps, log_every(settings), progress.write if progress else say)
        try:
            result = train_lgst(inputs.data, settings, inputs.out_dir, torch_device, resume=not restart,
                                progress=progress or no_progress, report=log, dist_ctx=dist)
        finally:
            if progress:
                progress.close()
    finally:
        teardown(dist)
    if result.resumed_from:
        say(f"resumed after step {result.resumed_from} of {result.steps}")
    say(_trained_line(result.steps, result.seconds, settings))
    say(f"checkpoint: {result.checkpoint}")
    say(_reuse_note(inputs, method, profile))
    return result


def _describe_run(inputs: LgstInputs, method: str) -> str:
    """``6 training images (4 with reliable pseudo-labels for LSA); aecsad students on efficientnet_lite0, ...``."""
    s, data = inputs.settings, inputs.data
    with_maps = sum(m is not None for m in data.label_maps)
    length = f"{s.steps} steps"
    if s.time_budget_s > 0:
        length = f"up to {length} ({s.time_budget_s / 60:g} min of training)"
    return (f"{len(data.images)} training images ({with_maps} with reliable pseudo-labels for LSA); {method} "
            f"students on {s.backbone}, {length} of {s.batch_size} images at {s.image_size} px")


def _trained_line(steps: int, seconds: float, settings: LgstSettings) -> str:
    """``trained 1870 of up to 2300 steps in 22.0 min (the time budget)``."""
    if settings.time_budget_s > 0 and steps < settings.steps:
        return f"trained {steps} of up to {settings.steps} steps in {seconds / 60:.1f} min (the time budget)"
    return f"trained {steps} steps in {seconds / 60:.1f} min"


def _reuse_note(inputs: LgstInputs, method: str, profile: str) -> str:
    """Whether ``fit`` will reuse these students (only with the profile's own number of steps)."""
    if inputs.settings.steps == inputs.fit_steps:
        return f"fit --method {method} --profile {profile} (same seed and backbone) reuses these students"
    return (f"note: {inputs.settings.steps} steps instead of the {profile} profile's {inputs.fit_steps}: "
            f"fit --method {method} will train its own students")


class StepLog:
    """``report`` sink of ``train_lgst``: one line every ~10% of the steps (and at the end), the
    loss and its parts averaged over the records since the previous line."""

    def __init__(self, steps: int, record_every: int, write: Callable[[str], None]) -> None:
        self.steps, self.record_every, self.write = steps, record_every, write
        self.interval = max(1, steps // LINES_PER_RUN)
        self._pending: list[dict] = []

    def __call__(self, record: dict) -> None:
        self._pending.append(record)
        step = int(record["step"])
        # Records come every ``record_every`` steps: the first one at or past each mark prints.
        if step % self.interval < self.record_every or step >= self.steps:
            self.write(format_step(_average(self._pending), self.steps))
            self._pending = []


def _average(records: list[dict]) -> dict:
    """The last record with its loss values replaced by their means over ``records``."""
    merged = dict(records[-1])
    for name in ("loss", *LOSS_PARTS):
        values = [r[name] for r in records if name in r]
        if values:
            merged[name] = sum(values) / len(values)
    return merged


def format_step(record: dict, steps: int) -> str:
    """``step 120/500  loss 3.214 (local 1.204 global 1.010 fusion 1.000)  lr 1.0e-03  42.1 s``."""
    parts = " ".join(f"{name[5:]} {record[name]:.3f}" for name in LOSS_PARTS if name in record)
    return (f"step {record['step']}/{steps}  loss {record['loss']:.3f} ({parts})  lr {record['lr']:.1e}  "
            f"{record['seconds']:.1f} s")
