"""SAM adapter: the real SamPredictor / SamAutomaticMaskGenerator code on a tiny random SAM
(fast), and on the real vit_b architecture with random weights (slow)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch

from pipeline.models.weights import IncompatibleWeightsError, MissingWeightsError
from pipeline.pseudolabels.adapters.base import Box
from pipeline.pseudolabels.adapters.sam import SamSegmenter, SamSettings, build_sam

# Every proposal passes, so random weights still give some (the library defaults drop them all).
LENIENT = SamSettings(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
BOXES = [Box(2, 3, 30, 40, "pin"), Box(40, 10, 79, 47, "tray"), Box(0, 0, 80, 48, "plate", background=True)]


def tiny_sam(img_size: int = 64, dim: int = 32) -> torch.nn.Module:
    """SAM's own modules at toy size: 1-block ViT on 64 px, 4×4 embedding, 32 channels."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(0)
    encoder = ImageEncoderViT(
        img_size=img_size, patch_size=16, embed_dim=dim, depth=1, num_heads=2, mlp_ratio=2, out_chans=dim,
        qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
        global_attn_indexes=(0,), window_size=0,
    )
    side = img_size // 16
    prompts = PromptEncoder(embed_dim=dim, image_embedding_size=(side, side), input_image_size=(img_size, img_size),
                            mask_in_chans=8)
    decoder = MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64,
                          num_heads=2), transformer_dim=dim, iou_head_depth=2, iou_head_hidden_dim=32)
    sam = Sam(image_encoder=encoder, prompt_encoder=prompts, mask_decoder=decoder,
              pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    return sam.eval()


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_sam()


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8)


def count_encodings(model: torch.nn.Module) -> list[int]:
    calls: list[int] = []
    model.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    return calls


def test_one_mask_per_box_in_box_order_at_image_size(model, image):
    masks = SamSegmenter(model).segment_boxes(image, BOXES)
    assert masks.shape == (3, 48, 80) and masks.dtype == bool
    one_by_one = SamSegmenter(model, SamSettings(boxes_per_batch=1)).segment_boxes(image, BOXES)
    np.testing.assert_array_equal(masks, one_by_one)  # batching neither reorders nor changes masks
    single = SamSegmenter(model).segment_boxes(image, BOXES[1:2])
    np.testing.assert_array_equal(single[0], masks[1])
    assert SamSegmenter(model).segment_boxes(image, []).shape == (0, 48, 80)


def test_multimask_keeps_one_mask_per_box(model, image):
    masks = SamSegmenter(model, SamSettings(box_multimask=True)).segment_boxes(image, BOXES)
    assert masks.shape == (3, 48, 80) and masks.dtype == bool


def test_automatic_proposals_follow_the_generator_settings(model, image):
    proposals = SamSegmenter(tiny_sam(), LENIENT).propose(image)
    assert proposals.ndim == 3 and proposals.shape[1:] == (48, 80) and proposals.dtype == bool
    assert len(proposals) >= 1 and proposals.reshape(len(proposals), -1).any(axis=1).all()
    strict = SamSegmenter(tiny_sam(), SamSettings(points_per_side=4, pred_iou_thresh=1.01))
    assert strict.propose(image).shape == (0, 48, 80)
    assert strict.generator.points_per_batch == 64 and strict.generator.pred_iou_thresh == 1.01


def test_boxes_and_proposals_of_one_image_encode_it_once(image):
    model = tiny_sam()
    calls = count_encodings(model)
    segmenter = SamSegmenter(model, LENIENT)
    segmenter.segment_boxes(image, BOXES)
    segmenter.propose(image)
    segmenter.segment_boxes(image, BOXES[:1])
    assert len(calls) == 1
    segmenter.segment_boxes(image[::-1].copy(), BOXES)  # another image is encoded anew
    assert len(calls) == 2


def test_missing_checkpoint_names_the_file(isolated_weights):
    with pytest.raises(MissingWeightsError, match="sam_vit_b_01ec64.pth"):
        build_sam("vit_b")
    with pytest.raises(ValueError, match="vit_b, vit_l, vit_h"):
        build_sam("vit_x", checkpoint=None)


def test_a_file_that_is_not_sam_is_rejected(tmp_path):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "sam_vit_b_01ec64.pth")
    with pytest.raises(IncompatibleWeightsError, match="does not fit SAM vit_b"):
        build_sam("vit_b", checkpoint=tmp_path / "sam_vit_b_01ec64.pth")


@pytest.mark.slow
def test_real_vit_b_architecture_loads_its_file_and_runs_both_modes(tmp_path):
    torch.manual_seed(0)
    source = build_sam("vit_b", checkpoint=None)
    torch.save(source.state_dict(), tmp_path / "sam_vit_b_01ec64.pth")
    model = build_sam("vit_b", checkpoint=tmp_path)  # a folder holding the expected file
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), model.state_dict().values()))
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    segmenter = SamSegmenter(model, SamSettings(points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0))
    masks = segmenter.segment_boxes(image, [Box(4, 4, 40, 40, "pin"), Box(20, 10, 60, 60, "tray")])
    assert masks.shape == (2, 64, 64) and masks.dtype == bool
    proposals = segmenter.propose(image)
    assert proposals.ndim == 3 and proposals.shape[1:] == (64, 64) and proposals.dtype == bool
