"""AeCSAD/CSAD's part of ``python -m pipeline bench`` (``MethodSpec.bench``): each inference
stage of a random-weight detector of the profile's shapes (``random_model``) at batch 1 and the
throughput batch, end to end, the self-attention blocks' share of the LGST time, and one training
step of the students and of the segmenter."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from pipeline.methods.aecsad.method import LgstDetector
from pipeline.methods.aecsad.random_model import random_lgst_detector
from pipeline.methods.base import BenchRun
from pipeline.methods.histogram.method import cell_map, predicted_maps
from pipeline.methods.histogram.scoring import explain, mahalanobis_scores
from pipeline.methods.lgst.attention import SelfAttention2d
from pipeline.methods.lgst.maps import raw_maps, score_maps
from pipeline.methods.lgst.torch_model import LgstNet
from pipeline.methods.segmentation.data import resize_image
from pipeline.methods.segmentation.losses import total_loss
from pipeline.methods.segmentation.settings import SegmentationSettings
from pipeline.methods.segmentation.torch_model import SegmentationNet
from pipeline.models.preprocess import to_tensor_batch


def _tensor(images: list[np.ndarray], size: int, device: torch.device) -> torch.Tensor:
    return to_tensor_batch(images, size).to(device)


def lgst_bench(run: BenchRun, method: str, attention: bool, shared: dict) -> tuple[dict, LgstDetector]:
    """The AeCSAD (``attention``) or CSAD entry of the bench: each stage, end to end, the attention
    blocks' share and (``run.training``) one training step of the students and of the segmenter
    (``shared["segmenter_step"]``: measured once for both methods)."""
    device = run.device
    det = random_lgst_detector(run.profile, attention=attention, device=device, seed=run.seed)
    net, hist = det.net, det.hist
    lgst_size, seg_size = net.settings.image_size, hist.size
    xs = {b: _tensor(run.images[b], lgst_size, device) for b in run.images}
    xseg = {b: _tensor([resize_image(im, seg_size) for im in run.images[b]], seg_size, device) for b in run.images}
    with torch.inference_mode():
        label_maps = {b: predicted_maps(hist.net, run.images[b], seg_size) for b in run.images}
        hist_preds = {b: hist.predict(run.images[b]) for b in run.images}
        raws = {b: raw_maps(net, run.images[b], blur_sigma=det.blur_sigma) for b in run.images}
        retrieved = {b: det.retrieval.predict(run.images[b]) if det.retrieval else [None] * len(run.images[b])
                     for b in run.images}

    def histogram(b):
        maps = label_maps[b]

        def go():
            mahalanobis_scores(hist.model, maps)
            for m in maps:
                cell_map(explain(hist.model, m, hist.class_names), m.shape, hist.model.grid)
        return go

    stages = {
        "preprocess": lambda b: lambda: (_tensor(run.images[b], lgst_size, device),
                                         _tensor([resize_image(im, seg_size) for im in run.images[b]], seg_size, device)),
        "teacher": lambda b: lambda: net.teacher(xs[b]),
        "local_student": lambda b: lambda: net.local(xs[b]),
        "global_student": lambda b: lambda: net.global_student(xs[b]),
        "segmenter": lambda b: lambda: hist.net(xseg[b]).argmax(dim=1).cpu(),
        "histogram": histogram,
        "fusion": lambda b: lambda: [det.combine(h, score_maps(r, det.norm), p)
                                     for h, r, p in zip(hist_preds[b], raws[b], retrieved[b])],
    }
    if det.retrieval is not None:  # patch embedding + nearest memory-bank rows
        stages["retrieval"] = lambda b: lambda: det.retrieval.predict(run.images[b])
    run.log(f"{method} ({run.profile} profile: local student {net.settings.local_width}, global width "
            f"{net.settings.global_width}, {net.settings.out_channels} teacher channels, segmenter head "
            f"{hist.net.head.aspp.project[0][0].out_channels} channels)")
    result = {"kind": "method", "profile": run.profile, "stages": {}, "settings": {
        "local_width": list(net.settings.local_width), "global_width": net.settings.global_width,
        "channels": net.settings.out_channels, "attention": net.settings.attention, "image_size": lgst_size,
        "segmenter_image_size": seg_size, "backbone": net.settings.backbone}}
    for name, make in stages.items():
        result["stages"][name] = run.time(f"{method} {name}", make)
    result["end_to_end"] = run.time(f"{method} end to end", lambda b: lambda: det.predict(run.images[b]), memory=True)
    lgst = sum(result["stages"][s]["batch1"]["median_s"] for s in ("teacher", "local_student", "global_student"))
    result["lgst_batch1_s"] = lgst
    if net.settings.attention:
        result["attention"] = _attention_share(run, net, xs, lgst, result["stages"]["global_student"])
    if run.training:
        result["training"] = {"lgst_step": _lgst_training(run, net)}
        if "segmenter_step" not in shared:
            shared["segmenter_step"] = _segmenter_training(run, hist.net, run.profile)
        result["training"]["segmenter_step"] = shared["segmenter_step"]
    return result, det


def _attention_share(run: BenchRun, net, xs, lgst_s: float, global_timing: dict) -> dict:
    """Time of the self-attention blocks (each on the input it gets in a real forward pass)
    as a share of the LGST time (teacher + both students) and of the global student's."""
    blocks = [(name, m) for name, m in net.global_student.named_modules() if isinstance(m, SelfAttention2d)]
    out = {"blocks": {}}
    for batch in run.images:
        captured = {}
        hooks = [m.register_forward_pre_hook(lambda mod, args, name=name: captured.__setitem__(name, args[0]))
                 for name, m in blocks]
        with torch.inference_mode():
            net.global_student(xs[batch])
        for hook in hooks:
            hook.remove()
        total = 0.0
        for name, module in blocks:
            with torch.inference_mode():
                timing = run.measure(lambda m=module, x=captured[name]: m(x), budget_share=0.25)
            out["blocks"].setdefault(name, {})[f"batch{batch}"] = {"median_s": timing["median_s"], "n": timing["n"],
                                                                   "input": list(captured[name].shape)}
            total += timing["median_s"]
        out[f"batch{batch}_s"] = total
    out["lgst_batch1_s"] = lgst_s
    out["share_of_lgst"] = out["batch1_s"] / lgst_s if lgst_s > 0 else None
    out["share_of_global_student"] = out["batch1_s"] / global_timing["batch1"]["median_s"]
    out["target_share"] = 0.25
    run.log(f"  attention: {1e3 * out['batch1_s']:.1f} ms of {1e3 * lgst_s:.1f} ms LGST at batch 1 "
            f"= {100 * out['share_of_lgst']:.1f}% (target < 25%)")
    return out


def _lgst_training(run: BenchRun, net: LgstNet) -> dict:
    """One optimizer step of the students as ``train_lgst`` takes it (teacher features cached, as
    the loop does when they fit in memory; half the batch LSA-augmented, the profile's share)."""
    settings = net.settings
    batch = settings.batch_size
    x = _tensor(run.random_images(batch, 7), settings.image_size, run.device)
    x_aug = x.flip(-1)
    augmented = torch.arange(batch, device=run.device) % 2 == 0
    with torch.no_grad():
        teacher = net.teacher(x)
    optimizer = torch.optim.Adam(net.student_parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    timing = _time_training_step(run, net, optimizer, lambda: net(x, x_aug, augmented, teacher)[0], batch)
    run.log(f"  lgst training step (batch {batch}): {1e3 * timing['median_s']:.1f} ms (n={timing['n']})")
    return timing


def _time_training_step(run: BenchRun, module: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        loss_fn: Callable[[], torch.Tensor], batch: int) -> dict:
    """Median seconds of one optimizer step (forward, backward, update) with ``module`` in train mode."""
    def step():
        loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    module.train()
    try:
        timing = run.measure(step)
    finally:
        module.eval()
    timing["batch_size"] = batch
    return timing


def _segmenter_training(run: BenchRun, seg_net: SegmentationNet, profile: str) -> dict:
    """One step of the segmenter's head after the stage boundary (a ``D_L`` and a ``D_U`` batch,
    CE + Dice + focal + histogram + entropy), as ``train_segmentation`` takes it."""
    settings = SegmentationSettings.for_profile(profile)
    batch, size = settings.batch_size, settings.image_size
    x = _tensor(run.random_images(batch, 8), size, run.device)
    u = _tensor(run.random_images(batch, 9), size, run.device)
    generator = torch.Generator().manual_seed(0)
    y = torch.randint(0, seg_net.n_labels, (batch, size, size), generator=generator).to(run.device)
    reference = torch.full((seg_net.n_labels,), 1.0 / seg_net.n_labels, device=run.device)
    optimizer = torch.optim.Adam(seg_net.head_parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    def loss():
        return total_loss(seg_net(x), y, settings.loss, settings.epochs - 1, settings.epochs,
                          unlabelled_logits=seg_net(u), reference_hist=reference, gamma=settings.focal_gamma,
                          stage_start=settings.stage_start)[0]

    timing = _time_training_step(run, seg_net, optimizer, loss, batch)
    run.log(f"  segmenter training step (batch {batch} + {batch} unlabelled): {1e3 * timing['median_s']:.1f} ms")
    return timing
