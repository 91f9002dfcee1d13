"""A tiny CLIP (two 32-wide ViT blocks, 8 px patches, two text blocks) with random weights, and
local weight files of it: every zero-shot code path runs in seconds, nothing is downloaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pipeline.models.weights import CLIP_ARCHITECTURE_ENV

TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "mlp_ratio": 2.0, "patch_size": 8},
    # The vocabulary keeps its real size: the bundled BPE tokenizer emits ids up to 49407.
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2, "mlp_ratio": 2.0},
}
WEIGHTS_ENV = "WORKBENCH_CLIP_WEIGHTS"


def tiny_clip(seed: int = 0, image_size: int | None = None) -> torch.nn.Module:
    """The tiny CLIP with random weights drawn from ``seed``."""
    from pipeline.methods.zeroshot.clip import build_clip

    torch.manual_seed(seed)
    return build_clip(TINY_CONFIG, checkpoint=None, image_size=image_size)


@pytest.fixture(scope="session")
def make_clip():
    """``make_clip(seed, image_size=None)``: a fresh tiny CLIP with random weights."""
    return tiny_clip


@pytest.fixture(scope="session")
def tiny_config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip_config") / "tiny-clip.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return path


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random CLIP's state dict saved as a ``.bin`` file, under the registry's preferred name."""
    path = tmp_path_factory.mktemp("clip_weights") / "open_clip_vit_b_16.bin"
    torch.save(tiny_clip(seed=0).state_dict(), path)
    return path


@pytest.fixture
def clip_env(isolated_weights: Path, tiny_config_file: Path, tiny_weights: Path,
             monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny CLIP as "the user's local weights": both environment variables set; returns the file."""
    monkeypatch.setenv(WEIGHTS_ENV, str(tiny_weights))
    monkeypatch.setenv(CLIP_ARCHITECTURE_ENV, str(tiny_config_file))
    return tiny_weights
