import torch

from pipeline.methods.instant.torch_model import (
    PatchEmbedder,
    flatten_patches,
    gaussian_blur,
    greedy_coreset,
    nearest_distances,
    patch_scores,
    two_depth_map,
)
from pipeline.models.backbones import build_backbone


def test_nearest_distances_match_brute_force_across_chunks():
    gen = torch.Generator().manual_seed(0)
    q, bank = torch.randn(50, 7, generator=gen), torch.randn(30, 7, generator=gen)
    brute = torch.cdist(q, bank).min(dim=1).values
    assert torch.allclose(nearest_distances(q, bank, chunk=8), brute)
    assert torch.isinf(nearest_distances(q, bank[:0])).all()


def test_greedy_coreset_covers_separated_clusters_that_random_could_miss():
    gen = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0], [100, 0], [0, 100], [100, 100]])
    # 97% of points in one cluster: a random 4-subset almost never hits all four
    counts = [970, 10, 10, 10]
    pts = torch.cat([c + torch.randn(n, 2, generator=gen) for c, n in zip(centres, counts)])
    idx = greedy_coreset(pts, 4, seed=0, projection_dim=128)
    chosen = pts[idx]
    nearest_centre = torch.cdist(chosen, centres).argmin(dim=1)
    assert sorted(nearest_centre.tolist()) == [0, 1, 2, 3]
    assert torch.equal(idx, greedy_coreset(pts, 4, seed=0))


def test_gaussian_blur_keeps_constant_maps_and_spreads_a_peak():
    flat = torch.full((1, 9, 9), 3.0)
    assert torch.allclose(gaussian_blur(flat, 1.5), flat)
    peak = torch.zeros((1, 9, 9))
    peak[0, 4, 4] = 1.0
    out = gaussian_blur(peak, 1.0)
    assert out[0, 4, 4] < 1.0 and out[0, 4, 5] > 0 and abs(out.sum().item() - 1.0) < 1e-4
    assert torch.equal(gaussian_blur(peak, 0.0), peak)


def test_patch_scores_are_distances_and_anomaly_keys_raise_only_matching_patches():
    emb = torch.zeros(1, 2, 1, 2)
    emb[0, :, 0, 1] = torch.tensor([10.0, 0.0])  # second patch is far from the good bank
    good = torch.zeros(1, 2)
    none = torch.zeros(0, 2)
    plain = patch_scores(emb, good, none, anomaly_weight=1.0)
    assert plain.shape == (1, 1, 2) and plain[0, 0, 0] == 0 and plain[0, 0, 1] == 10
    keys = torch.tensor([[10.0, 0.0]])
    boosted = patch_scores(emb, good, keys, anomaly_weight=1.0)
    assert boosted[0, 0, 0] == 0 and boosted[0, 0, 1] == 20


def test_patch_embedder_shapes_on_random_backbone():
    backbone = build_backbone("efficientnet_lite0", checkpoint=None)
    embedder = PatchEmbedder(backbone, ("s8", "s16"))
    out = embedder(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, embedder.channels, 8, 8)
    assert flatten_patches(out).shape == (128, embedder.channels)


def test_two_depth_map_places_the_deep_evidence_where_the_fine_map_peaks():
    fine = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    deep = torch.tensor([[[20.0]]])  # one deep pixel covers the whole fine grid
    out = two_depth_map(fine, deep, fine_scale=(1.0, 1.0), deep_scale=(8.0, 2.0))
    # fine in its units: 0, 1, 2, 3 (gate 0, 1/3, 2/3, 1); deep: (20 - 8) / 2 = 6 everywhere
    assert torch.allclose(out, torch.tensor([[[0.0, 2.0], [4.0, 6.0]]]))
    weak = two_depth_map(fine, torch.tensor([[[10.0]]]), fine_scale=(1.0, 1.0), deep_scale=(8.0, 2.0))
    assert torch.allclose(weak, torch.tensor([[[0.0, 1.0], [2.0, 3.0]]]))  # deep 1 * gate < fine: the fine map
