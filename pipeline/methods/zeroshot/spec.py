"""The zero-shot CLIP scorer's ``MethodSpec`` (method name ``zeroshot``).

Light on purpose: the registry and the CLI's parser import it without torch; each callable
imports the heavy module it needs when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.methods.base import Detector, FitContext, MethodSpec
from pipeline.methods.zeroshot.settings import METHOD

if TYPE_CHECKING:
    import torch


def _fit(ctx: FitContext) -> dict[str, str]:
    from pipeline.methods.zeroshot import method

    return method.fit(ctx)


def _load(folder: Path, device: "torch.device") -> Detector:
    from pipeline.methods.zeroshot import method

    return method.load(folder, device)


ZEROSHOT = MethodSpec(
    name=METHOD,
    title="Zero-shot (CLIP text prompts)",
    summary=(
        "Compares each image patch with CLIP text anchors for a flawless vs a damaged object "
        "(prompt ensembles); nothing is trained, good images only set the threshold. Needs local "
        "CLIP weights (python -m pipeline doctor says where to put them)."
    ),
    fit=_fit,
    load=_load,
)
