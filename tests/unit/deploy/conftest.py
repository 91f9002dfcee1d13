"""A tiny fitted aecsad workspace, made once for the deploy tests (about 30 s on 2 CPU cores)."""

from __future__ import annotations

import dataclasses

import pytest

CATEGORY = "pin_tray"


def _shrink(mp: pytest.MonkeyPatch, cls, **changes) -> None:
    original = cls.for_profile.__func__

    def small(klass, profile, *args, **overrides):
        return dataclasses.replace(original(klass, profile, *args, **overrides), **changes)

    mp.setattr(cls, "for_profile", classmethod(small))


@pytest.fixture(scope="session")
def fitted_workspace(tmp_path_factory):
    """``(data_root, workspace_path)`` with ``aecsad`` fitted on a 96 px synthetic ``pin_tray``
    (segmenter at 96 px, LGST at 64 px: the two input sides differ, the harder export case)."""
    import torch

    from pipeline.__main__ import main
    from pipeline.data.synth import SynthSettings, generate
    from pipeline.methods.lgst import settings as lgst_settings
    from pipeline.methods.segmentation import settings as seg_settings

    root = tmp_path_factory.mktemp("deploy")
    data, ws = root / "data", root / "ws"
    generate(SynthSettings(out=data, categories=(CATEGORY,), n_train=6, n_validation=3, n_test_good=2,
                           n_logical=2, n_structural=2, size=96))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            _shrink(mp, seg_settings.SegmentationSettings, image_size=96, epochs=3, batch_size=4,
                    aspp_channels=16, decoder_channels=16, low_channels=8)
            _shrink(mp, lgst_settings.LgstSettings, image_size=64, grid=16, channels=16, local_width=(8, 16),
                    global_width=8, steps=6, batch_size=2, checkpoint_every=3)
            assert main(["fit", "--data", str(data), "--category", CATEGORY, "--workspace", str(ws),
                         "--method", "aecsad", "--device", "cpu"]) == 0
    finally:
        torch.set_num_threads(threads)
    return data, ws
