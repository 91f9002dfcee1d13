"""LGST losses, map normalisation and score fusion on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.methods.fusion import Fusion, TrimmedZ
from pipeline.methods.lgst.losses import hard_mse, lgst_losses
from pipeline.methods.lgst.maps import MapNormalisation, QuantileRange, fit_map_normalisation, score_maps
from pipeline.methods.lgst.settings import LgstLossWeights, LgstSettings


def test_hard_mse_averages_only_the_largest_squared_errors():
    target = torch.zeros(1, 1, 2, 2)
    prediction = torch.tensor([0.0, 1.0, 2.0, 3.0]).view(1, 1, 2, 2)  # squared errors 0, 1, 4, 9
    assert float(hard_mse(target, prediction, 0.5)) == pytest.approx((9 + 4) / 2)
    assert float(hard_mse(target, prediction, 0.25)) == pytest.approx(9.0)
    assert float(hard_mse(target, prediction, 1.0)) == pytest.approx(14 / 4)
    assert float(hard_mse(target, target, 0.001)) == 0.0  # a perfect student has no loss


def test_lgst_losses_weight_the_three_terms():
    t = torch.zeros(1, 2, 2, 2)
    ones = torch.ones(1, 2, 2, 2)
    total, parts = lgst_losses(t, ones, t, 2 * ones, ones, LgstLossWeights(1.0, 0.5, 2.0), hard_fraction=1.0)
    assert float(parts["loss_local"]) == pytest.approx(1.0)
    assert float(parts["loss_global"]) == pytest.approx(4.0)
    assert float(parts["loss_fusion"]) == pytest.approx(1.0)
    assert float(total) == pytest.approx(1.0 + 0.5 * 4.0 + 2.0 * 1.0)


def test_quantile_range_maps_start_to_zero_and_end_to_a_tenth():
    q = QuantileRange(2.0, 4.0)
    np.testing.assert_allclose(q(np.array([2.0, 4.0, 6.0])), [0.0, 0.1, 0.2])
    np.testing.assert_allclose(QuantileRange(1.0, 1.0)(np.array([3.0])), [2.0])  # flat: shifted, not blown up


def test_map_normalisation_uses_validation_quantiles_and_scores_the_maximum():
    rng = np.random.default_rng(0)
    maps = [{"local": rng.random((4, 4)), "global": 10 * rng.random((4, 4)), "teacher_global": np.zeros((4, 4))}
            for _ in range(5)]
    norm = fit_map_normalisation(maps, (0.5, 0.9))
    pixels = np.concatenate([m["global"].ravel() for m in maps])
    assert norm.global_.start == pytest.approx(np.quantile(pixels, 0.5))
    assert norm.global_.end == pytest.approx(np.quantile(pixels, 0.9))
    scored = score_maps(maps[0], norm)
    np.testing.assert_allclose(scored.combined, norm.local(maps[0]["local"]) + norm.global_(maps[0]["global"]), rtol=1e-6)
    assert scored.score == pytest.approx(float(scored.combined.max()))
    assert MapNormalisation.from_dict(norm.to_dict()) == norm


def test_trimmed_z_and_fusion_match_a_hand_computation():
    scores = [0.0, 1, 2, 3, 4, 5, 6, 7, 8, 100]
    z = TrimmedZ.fit(scores)
    kept = [2.0, 3, 4, 5, 6, 7]  # the 20th (1.8) to 80th (7.2) percentile
    assert z.mean == pytest.approx(np.mean(kept)) and z.std == pytest.approx(np.std(kept))
    assert TrimmedZ.fit([5.0] * 6) == TrimmedZ(5.0, 1.0)  # spread < 1e-3: std 1 (SPEC §5 step 9)
    fusion = Fusion.fit({"a": scores, "b": [1.0] * 10})
    fused = fusion({"a": 10.0, "b": 3.0})
    assert fused == pytest.approx((10 - z.mean) / z.std + (3.0 - 1.0) / 1.0)
    assert Fusion.from_dict(fusion.to_dict()) == fusion


def test_top_k_fusion_sums_the_largest_z_scores_of_each_image():
    fusion = Fusion({name: TrimmedZ(0.0, 1.0) for name in "abcd"}, top_k=2)
    assert fusion({"a": 3.0, "b": -5.0, "c": 1.0, "d": 2.0}) == pytest.approx(3.0 + 2.0)
    assert fusion({"a": -1.0, "b": -2.0, "c": -3.0, "d": -4.0}) == pytest.approx(-1.0 - 2.0)
    assert Fusion(fusion.branches, top_k=0).summed == 4 and Fusion(fusion.branches, top_k=9).summed == 4
    assert Fusion(fusion.branches, top_k=9)({"a": 1.0, "b": 1.0, "c": 1.0, "d": -1.0}) == pytest.approx(2.0)
    assert Fusion.from_dict(fusion.to_dict(), 2) == fusion


def test_settings_round_trip_and_profiles():
    quick = LgstSettings.for_profile("quick", attention=False, seed=4)
    assert quick.method == "csad" and quick.seed == 4 and quick.steps < LgstSettings.for_profile("paper").steps
    assert LgstSettings.from_dict(quick.to_dict()) == quick
    assert LgstSettings(backbone="wide_resnet50_2").stages == ("layer2", "layer3")
    assert LgstSettings(backbone="wide_resnet50_2").out_channels == 512
    with pytest.raises(ValueError, match="unknown LGST settings"):
        LgstSettings.from_dict({**quick.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="unknown profile"):
        LgstSettings.for_profile("fast")


def test_map_blur_keeps_flat_maps_and_lowers_a_lone_cell_more_than_a_blob():
    from pipeline.methods.lgst.torch_model import blur_maps

    flat = torch.full((1, 8, 8), 0.3)
    torch.testing.assert_close(blur_maps(flat, 1.0), flat)  # the kernel sums to 1, edges are padded
    assert blur_maps(flat, 0.0) is flat
    spike, blob = torch.zeros(1, 9, 9), torch.zeros(1, 9, 9)
    spike[0, 4, 4] = 1.0
    blob[0, 3:6, 3:6] = 1.0
    kernel_1d = torch.exp(-0.5 * torch.arange(-2.0, 3.0) ** 2)
    centre = float(1 / kernel_1d.sum()) ** 2  # the centre weight of the normalised 5×5 kernel
    assert float(blur_maps(spike, 1.0).max()) == pytest.approx(centre, rel=1e-5)
    assert float(blur_maps(blob, 1.0).max()) > 3 * float(blur_maps(spike, 1.0).max())  # noise falls, defects stay
