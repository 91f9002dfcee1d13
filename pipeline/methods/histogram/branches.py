"""How the histogram method's maps are shown (light: the Inspect page and the method registry
read it without torch)."""

from __future__ import annotations

from pipeline.methods.base import BranchMap

EXPLAIN_ABOVE = 2.0
"""A (region, class) deviation is reported when it is this many training spreads off."""

SEGMENTATION_MAP = BranchMap("segmentation", "Predicted segmentation", "part classes the segmentation network sees")
"""The segmenter's label map (the Inspect page adds the class legend)."""
HISTOGRAM_MAP = BranchMap(
    "histogram", "Histogram cells",
    "per grid cell, how far its part counts and areas are from the good "
    f"parts; bright = {2 * EXPLAIN_ABOVE:g} or more training spreads", (0.0, 2 * EXPLAIN_ABOVE),
)
"""The grid-cell deviation map (``method.cell_map``) where AeCSAD/CSAD carry it as a branch."""
