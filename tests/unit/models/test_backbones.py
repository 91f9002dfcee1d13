"""Backbones: loading the embedded weights by position, stage shapes, and staying frozen."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision

from pipeline.models.backbones import (
    build_backbone,
    build_classifier,
    load_efficientnet_lite0_state,
    load_state_file,
)
from pipeline.models.weights import IncompatibleWeightsError, MissingWeightsError, resolve_weights

LITE0_SHAPES_64 = {"s4": (24, 16, 16), "s8": (40, 8, 8), "s16": (112, 4, 4), "s32": (320, 2, 2)}
WRN_SHAPES_64 = {"layer1": (256, 16, 16), "layer2": (512, 8, 8), "layer3": (1024, 4, 4), "layer4": (2048, 2, 2)}


@pytest.fixture(scope="module")
def wheel_state() -> dict[str, torch.Tensor]:
    return load_state_file(resolve_weights("efficientnet_lite0"))


@pytest.fixture(scope="module")
def lite0():
    return build_backbone("efficientnet_lite0")


def _weights_only(state):
    return [key for key in state if not key.endswith("num_batches_tracked")]


def test_every_wheel_tensor_lands_in_the_same_shaped_timm_tensor(wheel_state):
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    load_efficientnet_lite0_state(model, resolve_weights("efficientnet_lite0"))
    loaded = model.state_dict()
    pairs = list(zip(_weights_only(wheel_state), _weights_only(loaded), strict=True))
    assert len(pairs) == 247
    assert pairs[0] == ("_conv_stem.weight", "conv_stem.weight")
    assert pairs[-1] == ("_fc.bias", "classifier.bias")
    for source_key, timm_key in pairs:
        assert torch.equal(wheel_state[source_key], loaded[timm_key]), (source_key, timm_key)


def test_mismatched_state_dicts_raise_a_clear_error(wheel_state, tmp_path):
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    reshaped = dict(wheel_state)
    reshaped["_blocks.3._depthwise_conv.weight"] = torch.zeros(144, 1, 3, 3)
    torch.save(reshaped, tmp_path / "reshaped.pth")
    with pytest.raises(IncompatibleWeightsError, match=r"_blocks\.3\._depthwise_conv\.weight.*blocks\.2\.0\.conv_dw"):
        load_efficientnet_lite0_state(model, tmp_path / "reshaped.pth")

    truncated = dict(wheel_state)
    del truncated["_fc.bias"]
    torch.save(truncated, tmp_path / "truncated.pth")
    with pytest.raises(IncompatibleWeightsError, match="246 tensors"):
        load_efficientnet_lite0_state(model, tmp_path / "truncated.pth")

    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(IncompatibleWeightsError, match="cannot be read"):
        load_efficientnet_lite0_state(model, tmp_path / "garbage.pth")


def test_lite0_stages_match_timm_feature_extraction(lite0, wheel_state):
    x = torch.randn(2, 3, 64, 64)
    features = lite0(x)
    assert {name: tuple(f.shape[1:]) for name, f in features.items()} == LITE0_SHAPES_64
    assert lite0.info.channels == (24, 40, 112, 320) and lite0.info.strides == (4, 8, 16, 32)
    # timm's own multi-scale extractor with the same weights must see exactly the same features.
    reference = timm.create_model("efficientnet_lite0", pretrained=False, features_only=True, out_indices=(1, 2, 3, 4))
    full = build_classifier().state_dict()
    reference.load_state_dict({key: full[key] for key in reference.state_dict()})
    with torch.no_grad():
        expected = reference.eval()(x)
    for name, tensor in zip(lite0.info.stage_names, expected):
        torch.testing.assert_close(features[name], tensor)


def test_lite0_random_init_and_stage_subset():
    backbone = build_backbone("efficientnet_lite0", checkpoint=None)
    x = torch.randn(1, 3, 64, 64)
    features = backbone(x)
    assert {name: tuple(f.shape[1:]) for name, f in features.items()} == LITE0_SHAPES_64
    only = backbone(x, stages=["s8"])
    assert list(only) == ["s8"]
    torch.testing.assert_close(only["s8"], features["s8"])
    with pytest.raises(KeyError, match="s64"):
        backbone(x, stages=["s64"])


def test_backbone_is_frozen_and_train_is_a_no_op(lite0):
    assert not any(p.requires_grad for p in lite0.parameters())
    returned = lite0.train()
    assert returned is lite0
    assert not any(module.training for module in lite0.modules())
    wrapper = torch.nn.Sequential(lite0).train()
    assert wrapper.training and not lite0.training


def test_wide_resnet50_2_loads_an_explicit_checkpoint(tmp_path):
    with torch.device("meta"):
        shapes = torchvision.models.wide_resnet50_2(weights=None).state_dict()
    # Zero weights are enough to check loading and shapes, and skip a second of random init.
    state = {key: torch.zeros(v.shape, dtype=v.dtype) for key, v in shapes.items()}
    state["conv1.weight"] = torch.randn(state["conv1.weight"].shape)
    state["layer4.2.bn3.bias"] = torch.ones(2048)
    path = tmp_path / "wrn.pth"
    torch.save(state, path)
    backbone = build_backbone("wide_resnet50_2", checkpoint=path)
    assert torch.equal(backbone.stem[0].weight, state["conv1.weight"])
    assert all(t.device.type == "cpu" for t in backbone.state_dict().values())
    features = backbone(torch.randn(1, 3, 64, 64))
    assert {name: tuple(f.shape[1:]) for name, f in features.items()} == WRN_SHAPES_64
    assert all(torch.isfinite(f).all() for f in features.values())
    assert torch.all(features["layer4"] > 0)  # the loaded BatchNorm bias reaches the output
    assert backbone.info.channels == (256, 512, 1024, 2048)
    assert not any(p.requires_grad for p in backbone.parameters())


def test_wide_resnet50_2_default_weights_missing_is_explained(isolated_weights):
    with pytest.raises(MissingWeightsError, match="WORKBENCH_WRN50_WEIGHTS"):
        build_backbone("wide_resnet50_2")


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(KeyError, match="efficientnet_lite0"):
        build_backbone("vgg16")
