"""Fixtures shared by the method tests."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.methods.lgst import settings as lgst_settings
from pipeline.methods.segmentation import settings as seg_settings


def _shrink(monkeypatch, cls, **changes) -> None:
    """Make ``cls.for_profile`` return its quick profile with ``changes``; its own keyword
    arguments (``fit --set`` among them) still win."""
    original = cls.for_profile.__func__

    def small(klass, profile, *args, **overrides):
        kept = {k: v for k, v in changes.items() if k not in overrides}
        return dataclasses.replace(original(klass, profile, *args, **overrides), **kept)

    monkeypatch.setattr(cls, "for_profile", classmethod(small))


@pytest.fixture()
def tiny_profiles(monkeypatch):
    """Segmenter and LGST shrunk to seconds: 96/64 px inputs, a few channels, a few steps."""
    _shrink(monkeypatch, seg_settings.SegmentationSettings, image_size=96, epochs=3, batch_size=4,
            aspp_channels=16, decoder_channels=16, low_channels=8)
    _shrink(monkeypatch, lgst_settings.LgstSettings, image_size=64, grid=16, channels=16, local_width=(8, 16),
            global_width=8, steps=6, batch_size=2, checkpoint_every=3)
