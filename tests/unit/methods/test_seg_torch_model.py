import json

import numpy as np
import pytest
import torch

from pipeline.methods.segmentation.losses import SegLossWeights, cross_entropy_loss
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.methods.segmentation.torch_model import (
    SegmentationNet,
    labels_to_tensor,
    predict_labels,
    resize_labels,
)
from pipeline.models.backbones import build_backbone

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = SegmentationSettings(aspp_channels=16, low_channels=8, decoder_channels=16)


@pytest.fixture(scope="module")
def lite0():
    return build_backbone("efficientnet_lite0", checkpoint=None)


def test_logits_have_input_size_and_one_channel_per_class_plus_background(lite0):
    net = SegmentationNet(lite0, n_classes=3, settings=TINY)
    assert net.stage_names == ("s4", "s16") and net.n_labels == 4
    out = net(torch.randn(2, 3, 64, 48))
    assert out.shape == (2, 4, 64, 48)


def test_only_the_head_trains_and_the_backbone_stays_in_eval_mode(lite0):
    torch.manual_seed(0)
    net = SegmentationNet(lite0, n_classes=2, settings=TINY)
    net.train()
    assert net.head.training and not net.backbone.training
    assert not any(p.requires_grad for p in net.backbone.parameters())
    head = set(map(id, net.head_parameters()))
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    assert trainable == head and len(head) > 0
    stats = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is None for p in net.backbone.parameters())
    assert all(p.grad is not None for p in net.head_parameters())
    # BatchNorm running statistics of the backbone did not move in a training-mode forward
    assert all(torch.equal(stats[k], v) for k, v in net.backbone.state_dict().items())
    assert set(net.head_state_dict()) == set(net.head.state_dict())


def test_head_learns_a_tiny_segmentation(lite0):
    torch.manual_seed(0)
    net = SegmentationNet(lite0, n_classes=1, settings=TINY)
    x = torch.randn(2, 3, 32, 32)
    target = torch.zeros(2, 32, 32, dtype=torch.long)
    target[:, 8:24, 8:24] = 1
    optimizer = torch.optim.Adam(net.head_parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = cross_entropy_loss(net(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_predict_labels_returns_uint8_maps_at_each_images_resolution(lite0):
    net = SegmentationNet(lite0, n_classes=3, settings=TINY)
    net.train()
    images = [np.zeros((50, 70, 3), np.uint8), np.full((32, 32, 3), 200, np.uint8), np.zeros((20, 30, 3), np.uint8)]
    maps = predict_labels(net, images, size=32, batch_size=2)
    assert [m.shape for m in maps] == [(50, 70), (32, 32), (20, 30)]
    assert all(m.dtype == np.uint8 and m.max() <= 3 for m in maps)
    assert net.training  # mode restored


def test_predicted_labels_are_the_argmax_resized_with_nearest():
    small = torch.tensor([[0, 1], [2, 3]])
    big = resize_labels(small, (4, 6))
    assert big.dtype == np.uint8
    assert np.array_equal(big, np.array([[0] * 3 + [1] * 3] * 2 + [[2] * 3 + [3] * 3] * 2))


def test_labels_to_tensor_is_nearest_and_never_invents_labels():
    labels = np.zeros((10, 14), np.uint8)
    labels[:, 7:] = 5
    t = labels_to_tensor([labels, np.full((16, 16), 2, np.uint8)], 16)
    assert t.shape == (2, 16, 16) and t.dtype == torch.long
    assert set(t[0].unique().tolist()) == {0, 5} and (t[0, :, :8] == 0).all() and (t[0, :, 8:] == 5).all()
    assert (t[1] == 2).all()


def test_unknown_stage_is_rejected_with_the_stages_available(lite0):
    with pytest.raises(ValueError, match="s16"):
        SegmentationNet(lite0, 2, SegmentationSettings(deep_stage="layer3"))


def test_wide_resnet_uses_layer1_and_layer3():
    backbone = build_backbone("wide_resnet50_2", checkpoint=None)
    settings = SegmentationSettings(backbone="wide_resnet50_2", aspp_channels=16, low_channels=8, decoder_channels=16)
    net = SegmentationNet(backbone, 2, settings)
    assert net.stage_names == ("layer1", "layer3")
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_profiles_follow_the_thesis_and_spec():
    paper = SegmentationSettings.for_profile("paper", seed=3)
    assert (paper.epochs, paper.batch_size, paper.lr, paper.min_lr, paper.image_size) == (120, 16, 1e-4, 1e-6, 256)
    assert paper.aspp_rates == (6, 12, 18) and paper.low_channels == 48 and paper.seed == 3
    assert round(paper.stage_start * paper.epochs) == 40
    quick = SegmentationSettings.for_profile("quick")
    assert quick.epochs < paper.epochs and quick.backbone == "efficientnet_lite0"
    assert SegmentationSettings.for_profile("quick", loss=SegLossWeights.csad()).loss.focal == 10.0
    with pytest.raises(ValueError):
        SegmentationSettings.for_profile("fast")


def test_settings_round_trip_through_json():
    settings = SegmentationSettings.for_profile("quick", seed=5, loss=SegLossWeights.csad(), max_class_weight=10.0)
    raw = json.loads(json.dumps(settings.to_dict()))
    assert SegmentationSettings.from_dict(raw) == settings
    with pytest.raises(ValueError, match="bogus"):
        SegmentationSettings.from_dict({**raw, "bogus": 1})
