"""Synthetic benchmark generator: LOCO-layout categories with known rules, both defect kinds,
ground-truth masks and true component maps. The default demo data and the test data.

Categories: ``pin_tray``, ``cable_connector``, ``fastener_kit``, ``bottle`` (scenes of parts, both
defect kinds; the default set) and ``textured_plate`` (a bare brushed-metal surface, structural
defects only; opt-in).

Usage::

    from pipeline.data.synth import SynthSettings, generate
    roots = generate(SynthSettings(out=Path("demo/synth")))
"""

from pipeline.data.synth.generator import (
    CATEGORIES,
    DEFAULT_CATEGORIES,
    ImageJob,
    SynthSettings,
    category_spec,
    generate,
    generate_category,
    image_rng,
    plan,
)
from pipeline.data.synth.spec import CategorySpec

__all__ = [
    "CATEGORIES",
    "CategorySpec",
    "DEFAULT_CATEGORIES",
    "ImageJob",
    "SynthSettings",
    "category_spec",
    "generate",
    "generate_category",
    "image_rng",
    "plan",
]
