"""The histogram method's ``MethodSpec`` (method name ``histogram``).

Light on purpose: the registry and the CLI's parser import it without torch; each callable
imports the heavy module it needs when called.
"""

from __future__ import annotations

from pipeline.methods.base import MethodSpec, deferred_bundle
from pipeline.methods.histogram.branches import SEGMENTATION_MAP
from pipeline.methods.instant.spec import RETRIEVAL_MAP


def _method():
    from pipeline.methods.histogram import method

    return method


def _export():
    from pipeline.methods.histogram import export

    return export


HISTOGRAM = MethodSpec(
    name="histogram",
    title="Histogram (component counts and areas)",
    summary=(
        "Segments each image into the pseudo-labelled part classes and compares class areas and part "
        "counts, over the image and a 2×2 grid, with the good training images: catches missing, extra "
        "and misplaced parts and says which. Needs pseudo-labels (built automatically if missing)."
    ),
    fit=lambda ctx: _method().fit(ctx),
    load=lambda folder, device: _method().load(folder, device),
    trains=("segmentation", "retrieval"),  # retrieval: the surface fallback's memory bank
    segments=True,
    branch_maps=(SEGMENTATION_MAP, RETRIEVAL_MAP),  # retrieval: a surface model's only map
    bundle=deferred_bundle(_export),
)
