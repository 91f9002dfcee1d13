"""The open_clip side on a tiny random CLIP: configs, local weight files, patch tokens, text anchors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from pipeline.methods.zeroshot.clip import (
    ClipPatchEncoder,
    architecture_config,
    build_clip,
    clip_batch,
    encode_prompts,
    weights_fingerprint,
)
from pipeline.methods.zeroshot.settings import CLIP_MEAN, CLIP_STD, ZeroShotSettings
from pipeline.methods.zeroshot.torch_model import ABNORMAL, NORMAL, text_anchors
from pipeline.models.weights import IncompatibleWeightsError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(n: int = 2, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40 + 7 * i, 52, 3), dtype=np.uint8) for i in range(n)]


def test_architecture_config_reads_names_raw_json_and_open_clip_config_files(tmp_path, tiny_config_file):
    assert architecture_config(str(tiny_config_file))["embed_dim"] == 16
    wrapped = tmp_path / "open_clip_config.json"
    wrapped.write_text(json.dumps({"model_cfg": json.loads(tiny_config_file.read_text()), "preprocess_cfg": {}}))
    assert architecture_config(str(wrapped))["vision_cfg"]["patch_size"] == 8
    assert architecture_config("ViT-B-16")["vision_cfg"]["width"] == 768
    with pytest.raises(FileNotFoundError):
        architecture_config(str(tmp_path / "missing.json"))


@pytest.mark.parametrize("name, reason", [
    ("RN50", "ResNet"),
    ("hf-hub:laion/CLIP-ViT-B-16-laion2B-s34B-b88K", "unknown CLIP architecture"),  # never fetched
    ("coca_ViT-B-32", "CoCa"),
    ("ViT-B-16-SigLIP", "timm"),
])
def test_architectures_that_need_downloads_or_lack_patch_tokens_are_refused(name, reason):
    with pytest.raises(ValueError, match=reason):
        architecture_config(name)


def test_patch_encoder_global_is_encode_image_and_tokens_are_the_projected_last_block(make_clip):
    clip = make_clip(0)
    x = clip_batch(_images(), 32, CLIP_MEAN, CLIP_STD)
    encoder = ClipPatchEncoder(clip.visual, (-1,))
    with torch.no_grad():
        global_features, [tokens] = encoder(x)
        assert encoder.grid == (4, 4) and tokens.shape == (2, 16, 16)
        assert torch.allclose(global_features, clip.encode_image(x), atol=1e-5)
        # The other open_clip route to the same tokens: output_tokens returns them unprojected.
        clip.visual.output_tokens = True
        _, raw = clip.visual(x)
        clip.visual.output_tokens = False
    assert torch.allclose(tokens, raw @ clip.visual.proj, atol=1e-5)


def test_patch_encoder_takes_the_chosen_blocks(make_clip):
    encoder = ClipPatchEncoder(make_clip(0).visual, (0, -1))
    with torch.no_grad():
        _, tokens = encoder(clip_batch(_images(1), 32, CLIP_MEAN, CLIP_STD))
    assert len(tokens) == 2 and not torch.allclose(tokens[0], tokens[1])


def test_clip_batch_uses_the_clip_pixel_statistics():
    white = [np.full((10, 10, 3), 255, np.uint8)]
    x = clip_batch(white, 8, CLIP_MEAN, CLIP_STD)
    expected = (1 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert x.shape == (1, 3, 8, 8)
    assert torch.allclose(x[0, :, 0, 0], expected, atol=1e-5)


def test_weights_load_from_bin_and_safetensors_files(make_clip, tiny_config_file, tiny_weights, tmp_path):
    config = architecture_config(str(tiny_config_file))
    reference = make_clip(0)
    safetensors_file = tmp_path / "open_clip_vit_b_16.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(safetensors_file))
    for path in (tiny_weights, safetensors_file):
        loaded = build_clip(config, path)
        assert weights_fingerprint(loaded) == weights_fingerprint(reference)
        assert torch.equal(loaded.visual.proj, reference.visual.proj)
    assert weights_fingerprint(make_clip(1)) != weights_fingerprint(reference)


def test_weights_trained_at_another_size_get_their_position_embedding_resized(tiny_config_file, tiny_weights):
    clip = build_clip(architecture_config(str(tiny_config_file)), tiny_weights, image_size=48)
    assert clip.visual.grid_size == (6, 6) and clip.visual.positional_embedding.shape == (37, 32)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        build_clip(architecture_config(str(tiny_config_file)), None, image_size=50)


def test_a_file_of_another_architecture_is_incompatible_and_says_what_to_check(tiny_config_file, tmp_path):
    other = json.loads(tiny_config_file.read_text())
    other["vision_cfg"]["width"] = 64
    wrong = tmp_path / "wide.bin"
    torch.manual_seed(0)
    torch.save(build_clip(other, None).state_dict(), wrong)
    with pytest.raises(IncompatibleWeightsError, match="WORKBENCH_CLIP_ARCHITECTURE"):
        build_clip(architecture_config(str(tiny_config_file)), wrong)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(IncompatibleWeightsError):
        build_clip(architecture_config(str(tiny_config_file)), garbage)


def test_text_anchors_differ_for_normal_and_abnormal_prompts(make_clip):
    clip = make_clip(0)
    normal, abnormal = ZeroShotSettings(object_name="pin tray").prompts()
    embeddings = encode_prompts(clip, normal + abnormal)
    assert embeddings.shape == (len(normal) + len(abnormal), 16) and torch.isfinite(embeddings).all()
    anchors = text_anchors(embeddings[:len(normal)], embeddings[len(normal):])
    assert torch.allclose(anchors.norm(dim=1), torch.ones(2))
    assert float(anchors[NORMAL] @ anchors[ABNORMAL]) < 1 - 1e-4
    # Another object word gives other anchors: the prompts really reach the text tower.
    other, _ = ZeroShotSettings(object_name="bottle").prompts()
    assert not torch.allclose(encode_prompts(clip, other), embeddings[:len(normal)])


@pytest.mark.slow
def test_the_default_architecture_builds_with_random_weights_and_yields_a_14x14_grid():
    from pipeline.methods.zeroshot.settings import DEFAULT_ARCHITECTURE

    clip = build_clip(architecture_config(DEFAULT_ARCHITECTURE), checkpoint=None, image_size=224)
    encoder = ClipPatchEncoder(clip.visual, ZeroShotSettings().layers)
    with torch.no_grad():
        global_features, [tokens] = encoder(clip_batch(_images(1), 224, CLIP_MEAN, CLIP_STD))
        text = encode_prompts(clip, ["a photo of a flawless pin tray."])
    assert encoder.grid == (14, 14)
    assert global_features.shape == (1, 512) and tokens.shape == (1, 196, 512) and text.shape == (1, 512)
