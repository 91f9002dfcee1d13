"""The zero-shot CLIP scorer behind the common method interface (``MethodSpec``), plus the
helpers the Train page uses (the object word, whether the method can run here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from pipeline.methods.base import FitContext
from pipeline.methods.zeroshot.clip import architecture_config, build_clip
from pipeline.methods.zeroshot.model import ZeroShotDetector, fit_zeroshot, load_detector, save_zeroshot
from pipeline.methods.zeroshot.settings import (
    CLIP_WEIGHTS_KEY,
    OBJECT_SETTING,
    ZeroShotSettings,
    architecture_from_env,
    object_word,
)
from pipeline.models.weights import resolve_weights, weight_status
from pipeline.workspace import Workspace


def stored_object_word(workspace: Workspace | None, category: str) -> str:
    """The object word the user chose for a category, ``""`` when none."""
    if workspace is None or not category:
        return ""
    return str(workspace.get_setting(OBJECT_SETTING, "", category=category) or "").strip()


def set_object_word(workspace: Workspace, category: str, word: str) -> None:
    """Remember the prompt word for a category; ``""`` goes back to the category name."""
    workspace.set_setting(OBJECT_SETTING, " ".join(word.split()), category=category)


def prompt_word(workspace: Workspace | None, category: str) -> str:
    """The word the prompts will use: the stored choice, else the category name made readable."""
    return stored_object_word(workspace, category) or object_word(category)


def unavailable_reason() -> str | None:
    """Why the method cannot run on this installation (package or CLIP weights missing), else None.

    Only looks things up (no import of open_clip, no weights read), so a page can ask on every rerun."""
    try:
        package = importlib.util.find_spec("open_clip") is not None
    except (ImportError, ValueError):
        package = False
    if not package:
        return "The zero-shot method needs the open_clip package: pip install open-clip-torch (see requirements.txt)."
    status = weight_status(CLIP_WEIGHTS_KEY)
    return None if status.found else status.message


def settings_for(ctx: FitContext) -> ZeroShotSettings:
    """Settings of a fit: the architecture of the local weights and the category's object word.

    The profile and seed change nothing: no step is trained and nothing is sampled."""
    category = ctx.category or ctx.data.name
    return ZeroShotSettings(architecture=architecture_from_env(), object_name=prompt_word(ctx.workspace, category))


def fit(ctx: FitContext) -> dict[str, str]:
    settings = settings_for(ctx)
    # Weights first: without them nothing else is worth doing, and the message says what to get.
    weights = resolve_weights(CLIP_WEIGHTS_KEY, settings.weights or None)
    config = architecture_config(settings.architecture)
    ctx.progress("build text anchors", 0, 1)
    clip = build_clip(config, weights, settings.image_size, ctx.device)
    model = fit_zeroshot(settings, config, clip)
    ctx.progress("build text anchors", 1, 1)
    return save_zeroshot(model, ctx.out_dir)


def load(folder: Path, device: torch.device) -> ZeroShotDetector:
    return load_detector(folder, device)

