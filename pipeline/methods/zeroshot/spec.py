"""The zero-shot CLIP scorer's ``MethodSpec`` (method name ``zeroshot``).

Light on purpose: the registry and the CLI's parser import it without torch; each callable
imports the heavy module it needs when called.
"""

from __future__ import annotations

from pipeline.methods.base import MethodSpec
from pipeline.methods.zeroshot.settings import METHOD


def _method():
    from pipeline.methods.zeroshot import method

    return method


ZEROSHOT = MethodSpec(
    name=METHOD,
    title="Zero-shot (CLIP text prompts)",
    summary=(
        "Compares each image patch with CLIP text anchors for a flawless vs a damaged object "
        "(prompt ensembles); nothing is trained, good images only set the threshold. Needs local "
        "CLIP weights (python -m pipeline doctor says where to put them)."
    ),
    fit=lambda ctx: _method().fit(ctx),
    load=lambda folder, device: _method().load(folder, device),
)
