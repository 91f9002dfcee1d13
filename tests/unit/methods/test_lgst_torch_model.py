"""LGST networks: the attention global student's reach, the local student's locality, the teacher."""

from __future__ import annotations

import pytest
import torch

from pipeline.methods.lgst.attention import SelfAttention2d, sinusoidal_positions
from pipeline.methods.lgst.global_student import GlobalStudent
from pipeline.methods.lgst.local_student import AveragePool2x2, LocalStudent, receptive_field
from pipeline.methods.lgst.settings import LgstSettings
from pipeline.methods.lgst.teacher import Teacher, seeded_projection
from pipeline.methods.lgst.torch_model import LgstNet
from pipeline.models.backbones import build_backbone

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE, GRID = 128, 32


def _change_far_corner(x: torch.Tensor) -> torch.Tensor:
    """Same input except a 24 px block in the bottom-right corner."""
    changed = x.clone()
    changed[..., -24:, -24:] = torch.randn_like(changed[..., -24:, -24:]) * 3
    return changed


def _top_left_change(net, x: torch.Tensor) -> float:
    """Largest output change at the top-left 4×4 grid cells when only the far corner changes."""
    with torch.no_grad():
        before, after = net(x), net(_change_far_corner(x))
    before, after = (before[0], after[0]) if isinstance(before, tuple) else (before, after)
    return float((before - after)[..., :4, :4].abs().max())


def test_attention_global_student_reaches_across_the_image_and_keeps_resolution():
    torch.manual_seed(0)
    student = GlobalStudent(out_channels=16, image_size=SIZE, grid=GRID, width=8, attention=True).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    out = student(x)
    assert out.shape == (1, 16, GRID, GRID)  # the teacher grid, never pooled to 1×1
    assert student.encode(x).shape[-2:] == (SIZE // 32, SIZE // 32)
    assert _top_left_change(student, x) > 1e-4  # a change ~100 px away reaches the top-left output


def test_local_student_sees_only_its_33_pixel_neighbourhood():
    torch.manual_seed(0)
    student = LocalStudent(out_channels=16, widths=(8, 16), grid=GRID).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    teacher_like, global_like = student(x)
    assert teacher_like.shape == global_like.shape == (1, 16, GRID, GRID)
    assert receptive_field() == 33
    assert _top_left_change(student, x) == 0.0  # the far corner is outside the receptive field


@pytest.mark.parametrize("side", [9, 10])
def test_average_pool_equals_torch_padded_average_pool_values_and_gradients(side):
    torch.manual_seed(0)
    x = torch.randn(2, 5, side, side, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    weights = torch.randn(2, 5, side // 2 + 1, side // 2 + 1)
    out, ref = AveragePool2x2(5)(x), torch.nn.AvgPool2d(2, 2, padding=1)(x_ref)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-6)
    (out * weights).sum().backward()
    (ref * weights).sum().backward()
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-6)


def test_local_student_checkpoint_holds_only_its_convolutions():
    state = LocalStudent(out_channels=16, widths=(8, 16), grid=GRID).state_dict()
    # the pooling weights are fixed, not saved: checkpoints from before the pooling change still load
    convolutions = [f"trunk.{i}" for i in (0, 3, 6, 8, 10)] + ["teacher_head", "global_head"]
    assert sorted(state) == sorted(f"{name}.{p}" for name in convolutions for p in ("weight", "bias"))


def test_csad_variant_squeezes_the_middle_to_one_by_one():
    torch.manual_seed(0)
    student = GlobalStudent(out_channels=16, image_size=SIZE, grid=GRID, width=8, attention=False).eval()
    x = torch.randn(1, 3, SIZE, SIZE)
    assert student.encode(x).shape[-2:] == (1, 1)
    assert student(x).shape == (1, 16, GRID, GRID)
    assert not hasattr(student, "enc_attn")


def test_self_attention_mixes_every_position_with_a_residual():
    torch.manual_seed(0)
    block = SelfAttention2d(channels=16).eval()
    x = torch.randn(2, 16, 6, 6)
    y = block(x)
    assert y.shape == x.shape
    weights = block.attention_weights(x)
    assert weights.shape == (2, 36, 36)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 36))
    changed = x.clone()
    changed[:, :, 5, 5] += 5.0  # one token changes: every output token moves
    delta = (block(changed) - y).abs().amax(dim=1)[0]
    assert (delta > 0).all()
    with torch.no_grad():
        for layer in (block.out,):
            layer.weight.zero_()
            layer.bias.zero_()
    torch.testing.assert_close(block(x), x)  # zero output projection: exactly the residual


def test_position_code_tells_positions_apart():
    code = sinusoidal_positions(16, 4, 5)
    assert code.shape == (1, 16, 4, 5)
    tokens = code[0].flatten(1).T
    assert torch.cdist(tokens, tokens).fill_diagonal_(1.0).min() > 1e-3  # no two positions share a code


def test_projection_is_seeded_and_keeps_distances():
    a, b = seeded_projection(40, 24, seed=3), seeded_projection(40, 24, seed=3)
    assert a.shape == (24, 40, 1, 1)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, seeded_projection(40, 24, seed=4))
    rows = a[:, :, 0, 0]
    torch.testing.assert_close(rows @ rows.T, torch.eye(24), atol=1e-5, rtol=0)  # orthonormal rows


def test_teacher_is_frozen_and_normalised_on_its_fitting_images():
    torch.manual_seed(0)
    teacher = Teacher(build_backbone("efficientnet_lite0", checkpoint=None), ("s8", "s16"), 24, GRID, seed=0)
    assert not [p for p in teacher.parameters() if p.requires_grad]
    batches = [torch.randn(2, 3, SIZE, SIZE) for _ in range(2)]
    teacher.fit_normalisation(batches)
    features = torch.cat([teacher(x) for x in batches])
    assert features.shape == (4, 24, GRID, GRID)
    torch.testing.assert_close(features.mean(dim=(0, 2, 3)), torch.zeros(24), atol=1e-4, rtol=0)
    torch.testing.assert_close(features.std(dim=(0, 2, 3), unbiased=False), torch.ones(24), atol=1e-3, rtol=0)


def test_lgst_net_loss_and_maps_shapes_and_state_round_trip():
    torch.manual_seed(0)
    settings = LgstSettings.for_profile("quick", image_size=SIZE, grid=GRID, channels=16,
                                        local_width=(8, 16), global_width=8)
    backbone = build_backbone("efficientnet_lite0", checkpoint=None)  # random: both nets need the same one
    net = LgstNet(backbone, settings)
    x = torch.randn(3, 3, SIZE, SIZE)
    x_aug = x.clone()
    x_aug[1] = torch.randn(3, SIZE, SIZE)
    loss, parts = net(x, x_aug, torch.tensor([False, True, False]))
    assert set(parts) == {"loss_local", "loss_global", "loss_fusion"} and loss.requires_grad
    loss.backward()
    assert all(p.grad is not None for p in net.student_parameters())
    maps = net.maps(x)
    assert {k: tuple(v.shape) for k, v in maps.items()} == {k: (3, GRID, GRID) for k in ("local", "global", "teacher_global")}
    other = LgstNet(backbone, settings)
    other.load_student_state_dict(net.student_state_dict())
    for name, value in other.maps(x).items():
        torch.testing.assert_close(value, maps[name])
