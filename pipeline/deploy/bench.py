"""``python -m pipeline bench``: per-stage speed and memory of the methods beside reference models.

Every figure comes from one process and one run, so the ratios compare like with like. Models
have random weights and neutral statistics (``random_models``, ``references``): no workspace is
needed and the timings are those of the real inference code (``LgstDetector.predict`` etc.).
Inputs are random RGB uint8 images of 256×256 (the methods' input side: no input resize).

Per method: each stage at batch 1 (latency) and batch 8 (throughput), end to end
(``detector.predict`` from uint8 images to ``Prediction`` objects with maps and explanations),
peak memory during the end-to-end runs, and one training step of the segmenter and LGST.
References (EfficientAD-S/M, PatchCore): stages at batch 1, end to end at batch 1 and 8.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from pipeline.deploy.timing import PeakMemory, Policy, measure
from pipeline.errors import SettingsError

METHODS = ("aecsad", "csad", "instant")
REFERENCES = ("efficientad_s", "efficientad_m", "patchcore")
ALL = METHODS + REFERENCES
SIZE = 256
THROUGHPUT_BATCH = 8
RATIO_TO = ("efficientad_s", "efficientad_m", "patchcore")


@dataclass(frozen=True)
class BenchOptions:
    device: str = "auto"
    methods: tuple[str, ...] | None = None
    profile: str = "quick"
    repeats: int | None = None
    budget_s: float = 3.0
    training: bool = True
    n_train: int = 200
    threads: int | None = None
    seed: int = 0


def _images(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(n)]


class _Runner:
    def __init__(self, options: BenchOptions, device: torch.device, log: Callable[[str], None]) -> None:
        self.options, self.device, self.log = options, device, log
        self.policy = Policy(options.budget_s, options.repeats)
        self.images = {1: _images(1, options.seed), THROUGHPUT_BATCH: _images(THROUGHPUT_BATCH, options.seed + 1)}

    def time(self, label: str, make: Callable[[int], Callable[[], object]], batches: tuple[int, ...] | None = None,
             memory: bool = False) -> dict:
        """``{"batch1": timing, "batch8": timing}``; ``make(batch)`` returns the call to time."""
        out: dict = {}
        single = None
        for batch in batches or (1, THROUGHPUT_BATCH):
            fn = make(batch)
            # A batch-8 call that would take many budgets skips its warm-up: the batch-1 runs
            # have primed the same kernels, and one more minute-long call buys nothing.
            warmup = 0 if single is not None and single * batch > 5 * self.policy.budget_s else None
            with torch.inference_mode():
                if memory:
                    with PeakMemory(self.device) as peak:
                        timing = measure(fn, self.device, self.policy, warmup=warmup, images=batch)
                    timing["peak_memory_mb"] = round(peak.peak_bytes / 2**20, 1)
                else:
                    timing = measure(fn, self.device, self.policy, warmup=warmup, images=batch)
            single = timing["median_s"] / batch
            out[f"batch{batch}"] = timing
            self.log(f"  {label:<28} batch {batch}: {1e3 * timing['median_s']:9.1f} ms "
                     f"(±{1e3 * timing['mad_s']:.1f}, n={timing['n']})")
        return out


def _tensor(images, size, device):
    from pipeline.models.preprocess import to_tensor_batch

    return to_tensor_batch(images, size).to(device)


def _lgst_method(run: _Runner, method: str, shared: dict) -> dict:
    from pipeline.deploy.random_models import random_lgst_detector
    from pipeline.methods.histogram.method import cell_map, predicted_maps
    from pipeline.methods.histogram.scoring import explain, mahalanobis_scores
    from pipeline.methods.lgst.maps import raw_maps, score_maps
    from pipeline.methods.segmentation.data import _resize_image

    o, device = run.options, run.device
    det = random_lgst_detector(o.profile, attention=(method == "aecsad"), device=device, seed=o.seed)
    net, hist = det.net, det.hist
    lgst_size, seg_size = net.settings.image_size, hist.size
    xs = {b: _tensor(run.images[b], lgst_size, device) for b in run.images}
    xseg = {b: _tensor([_resize_image(im, seg_size) for im in run.images[b]], seg_size, device) for b in run.images}
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
                                         _tensor([_resize_image(im, seg_size) for im in run.images[b]], seg_size, device)),
        "teacher": lambda b: lambda: net.teacher(xs[b]),
        "local_student": lambda b: lambda: net.local(xs[b]),
        "global_student": lambda b: lambda: net.global_student(xs[b]),
        "segmenter": lambda b: lambda: hist.net(xseg[b]).argmax(dim=1).cpu(),
        "histogram": histogram,
        "fusion": lambda b: lambda: [det._combine(h, score_maps(r, det.norm), p)
                                     for h, r, p in zip(hist_preds[b], raws[b], retrieved[b])],
    }
    if det.retrieval is not None:  # patch embedding + nearest memory-bank rows
        stages["retrieval"] = lambda b: lambda: det.retrieval.predict(run.images[b])
    run.log(f"{method} ({o.profile} profile: local student {net.settings.local_width}, global width "
            f"{net.settings.global_width}, {net.settings.out_channels} teacher channels, segmenter head "
            f"{hist.net.head.aspp.project[0][0].out_channels} channels)")
    result = {"kind": "method", "profile": o.profile, "stages": {}, "settings": {
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
    if o.training:
        result["training"] = {"lgst_step": _lgst_training(run, net)}
        if "segmenter_step" not in shared:
            shared["segmenter_step"] = _segmenter_training(run, hist.net, o.profile)
        result["training"]["segmenter_step"] = shared["segmenter_step"]
    return result, det


def _attention_share(run: _Runner, net, xs, lgst_s: float, global_timing: dict) -> dict:
    """Time of the self-attention blocks (each on the input it gets in a real forward pass)
    as a share of the LGST time (teacher + both students) and of the global student's."""
    from pipeline.methods.lgst.attention import SelfAttention2d

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
                timing = measure(lambda m=module, x=captured[name]: m(x), run.device, Policy(run.policy.budget_s / 4, run.options.repeats))
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


def _lgst_training(run: _Runner, net) -> dict:
    """One optimizer step of the students as ``train_lgst`` takes it (teacher features cached, as
    the loop does when they fit in memory; half the batch LSA-augmented, the profile's share)."""
    settings = net.settings
    batch = settings.batch_size
    x = _tensor(_images(batch, 7), settings.image_size, run.device)
    x_aug = x.flip(-1)
    augmented = torch.arange(batch, device=run.device) % 2 == 0
    with torch.no_grad():
        teacher = net.teacher(x)
    optimizer = torch.optim.Adam(net.student_parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    timing = _time_training_step(run, net, optimizer, lambda: net(x, x_aug, augmented, teacher)[0], batch)
    run.log(f"  lgst training step (batch {batch}): {1e3 * timing['median_s']:.1f} ms (n={timing['n']})")
    return timing


def _time_training_step(run: "_Runner", module, optimizer, loss_fn, batch: int) -> dict:
    """Median seconds of one optimizer step (forward, backward, update) with ``module`` in train mode."""
    def step():
        loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    module.train()
    try:
        timing = measure(step, run.device, run.policy)
    finally:
        module.eval()
    timing["batch_size"] = batch
    return timing


def _segmenter_training(run: _Runner, seg_net, profile: str) -> dict:
    """One step of the segmenter's head after the stage boundary (a ``D_L`` and a ``D_U`` batch,
    CE + Dice + focal + histogram + entropy), as ``train_segmentation`` takes it."""
    from pipeline.methods.segmentation.losses import total_loss
    from pipeline.methods.segmentation.settings import SegmentationSettings

    settings = SegmentationSettings.for_profile(profile)
    batch, size = settings.batch_size, settings.image_size
    x = _tensor(_images(batch, 8), size, run.device)
    u = _tensor(_images(batch, 9), size, run.device)
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


def _instant(run: _Runner) -> dict:
    from pipeline.deploy.random_models import random_instant_detector
    from pipeline.methods.instant.model import score_embeddings

    o = run.options
    det = random_instant_detector(o.profile, run.device, o.n_train, seed=o.seed)
    s = det.model.settings
    xs = {b: _tensor(run.images[b], s.image_size, run.device) for b in run.images}
    with torch.inference_mode():
        emb = {b: det.embedder.forward_both(xs[b]) for b in run.images}
    bank = det.model.good_bank
    deep_rows = 0 if det.model.deep is None else int(det.model.deep.good_bank.shape[0])
    run.log(f"instant ({o.profile} profile: memory bank {tuple(bank.shape)}, deep bank rows {deep_rows})")
    result = {"kind": "method", "profile": o.profile,
              "settings": {"bank_rows": int(bank.shape[0]), "dim": int(bank.shape[1]), "deep_bank_rows": deep_rows},
              "stages": {
                  "preprocess": run.time("instant preprocess", lambda b: lambda: _tensor(run.images[b], s.image_size, run.device)),
                  "embed": run.time("instant embed", lambda b: lambda: det.embedder.forward_both(xs[b])),
                  "knn": run.time("instant knn", lambda b: lambda: score_embeddings(det.model, *emb[b])),
              }}
    result["end_to_end"] = run.time("instant end to end", lambda b: lambda: det.predict(run.images[b]), memory=True)
    return result


def _reference(run: _Runner, name: str) -> dict:
    from pipeline.deploy.references import EfficientAD, PatchCore

    o, device = run.options, run.device
    torch.manual_seed(o.seed)
    xs = {b: _tensor(run.images[b], SIZE, device) for b in run.images}
    if name.startswith("efficientad"):
        model = EfficientAD(name[-1]).to(device).eval()
        run.log(f"{name} (PDN-{name[-1].upper()} teacher and student, 384 channels, autoencoder)")
        stages = {"teacher": lambda b: lambda: model.teacher(xs[b]), "student": lambda b: lambda: model.student(xs[b]),
                  "autoencoder": lambda b: lambda: model.autoencoder(xs[b])}
        settings = {"channels": 384, "pdn": name[-1].upper()}
    else:
        side = SIZE // 8
        rows = int(round(0.1 * o.n_train * side * side))
        model = PatchCore(rows).to(device).eval()
        with torch.inference_mode():
            patches = {b: model.features(xs[b]) for b in run.images}
        run.log(f"patchcore (WRN50-2 layer2+3, 1024-d patches, bank {rows} = 10% of {o.n_train} images × {side}²)")
        stages = {"features": lambda b: lambda: model.features(xs[b]),
                  "knn": lambda b: lambda: model.score(patches[b], (SIZE, SIZE))}
        settings = {"bank_rows": rows, "dim": 1024, "backbone": "wide_resnet50_2"}
    result = {"kind": "reference", "settings": settings,
              "stages": {s: run.time(f"{name} {s}", make, batches=(1,)) for s, make in stages.items()}}
    result["end_to_end"] = run.time(f"{name} end to end", lambda b: lambda: model(_tensor(run.images[b], SIZE, device)),
                                    memory=True)
    return result


def _op_profile(det, images, device, top: int = 12) -> list[dict]:
    """torch.profiler's heaviest operators (self time) of one end-to-end batch-1 prediction."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.inference_mode():
        det.predict(images)
        with profile(activities=activities) as prof:
            det.predict(images)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "self_cpu_ms": round(e.self_cpu_time_total / 1e3, 2), "calls": e.count,
             "share": round(e.self_cpu_time_total / total, 3)} for e in events[:top]]


def _ratios(results: dict) -> dict:
    ratios = {}
    for ref in RATIO_TO:
        if ref not in results:
            continue
        ref_e2e = results[ref]["end_to_end"]
        for method, entry in results.items():
            e2e = entry["end_to_end"]
            entry.setdefault("ratio_to", {})[ref] = {
                f"batch{b}": e2e[f"batch{b}"]["per_image_s"] / ref_e2e[f"batch{b}"]["per_image_s"]
                for b in (1, THROUGHPUT_BATCH)}
            for stage in entry["stages"].values():
                for key, timing in stage.items():
                    timing.setdefault("ratio_to", {})[ref] = timing["per_image_s"] / ref_e2e[key]["per_image_s"]
            if method in METHODS:
                ratios[f"{method}_over_{ref}"] = entry["ratio_to"][ref]["batch1"]
                ratios[f"{method}_over_{ref}_batch{THROUGHPUT_BATCH}"] = entry["ratio_to"][ref][f"batch{THROUGHPUT_BATCH}"]
    return ratios


def _check_counts(options: BenchOptions) -> None:
    """Refuse counts no run can honour before any model is built (0 threads means torch's default)."""
    for option, value, low in (("--repeats", options.repeats, 1), ("--threads", options.threads, 0),
                               ("--train-images", options.n_train, 1)):
        if value is not None and value < low:
            raise SettingsError(f"{option} must be at least {low}, got {value}")


def run_bench(options: BenchOptions, log: Callable[[str], None] = lambda line: None) -> dict:
    from pipeline.device import resolve_device

    chosen = options.methods or ALL
    unknown = sorted(set(chosen) - set(ALL))
    if unknown:
        raise SettingsError(f"unknown bench methods {unknown}; choose from {', '.join(ALL)}")
    _check_counts(options)
    if options.threads:
        torch.set_num_threads(options.threads)
    device = resolve_device(options.device)
    started = time.perf_counter()
    run = _Runner(options, device, log)
    results: dict = {}
    shared: dict = {}
    profile_ops = None
    for name in ALL:
        if name not in chosen:
            continue
        if name in ("aecsad", "csad"):
            results[name], det = _lgst_method(run, name, shared)
            if name == "aecsad":
                profile_ops = _op_profile(det, run.images[1], device)
            del det
        elif name == "instant":
            results[name] = _instant(run)
        else:
            results[name] = _reference(run, name)
    ratios = _ratios(results)
    out = {
        "meta": {"device": str(device), "profile": options.profile, "image_size": SIZE,
                 "throughput_batch": THROUGHPUT_BATCH, "threads": torch.get_num_threads(),
                 "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
                 "budget_s": options.budget_s, "repeats": options.repeats, "train_images": options.n_train,
                 "weights": "random (timings do not depend on weight values)",
                 "memory": "torch.cuda.max_memory_allocated" if device.type == "cuda" else "peak RSS above baseline"},
        "ratios": ratios, "methods": results,
    }
    if "aecsad" in results:
        e2e = results["aecsad"]["end_to_end"]["batch1"]["median_s"]
        out["target"] = {"aecsad_over_efficientad_m_max": 3.0, "met": ratios.get("aecsad_over_efficientad_m", 99) <= 3.0}
        if "attention" in results["aecsad"]:
            out["attention_share_of_lgst"] = results["aecsad"]["attention"]["share_of_lgst"]
        out["aecsad_profile_top_ops"] = profile_ops
        out["aecsad_end_to_end_batch1_s"] = e2e
    out["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    return out


def format_table(result: dict) -> str:
    """Plain-text table: one row per stage and end to end, latency, throughput, memory, ratios."""
    refs = [r for r in ("efficientad_m", "patchcore") if r in result["methods"]]
    head = (f"{'model / stage':<30}{'b1 ms':>10}{'±':>7}{'n':>3}{'b8 ms/img':>11}{'img/s':>8}{'peak MB':>9}"
            + "".join(f"{'×' + r[:12]:>15}" for r in refs))
    lines = [f"bench: {result['meta']['device']}, profile {result['meta']['profile']}, "
             f"{result['meta']['image_size']} px, {result['meta']['threads']} threads, "
             f"{result['meta']['seconds']} s", head, "-" * len(head)]

    def row(label, timing_pair, memory=None):
        b1 = timing_pair.get("batch1")
        b8 = timing_pair.get(f"batch{THROUGHPUT_BATCH}")
        cells = f"{label:<30}"
        cells += f"{1e3 * b1['median_s']:>10.1f}{1e3 * b1['mad_s']:>7.1f}{b1['n']:>3}" if b1 else " " * 20
        cells += f"{1e3 * b8['per_image_s']:>11.1f}{b8['images_per_s']:>8.2f}" if b8 else " " * 19
        cells += f"{memory:>9.0f}" if memory is not None else " " * 9
        for r in refs:
            value = (b1 or {}).get("ratio_to", {}).get(r)
            cells += f"{value:>15.2f}" if value is not None else " " * 15
        return cells

    for name, entry in result["methods"].items():
        for stage, pair in entry["stages"].items():
            lines.append(row(f"{name} {stage}", pair))
        e2e = entry["end_to_end"]
        ratio_pair = {k: dict(v, ratio_to={r: entry.get("ratio_to", {}).get(r, {}).get(k) for r in refs})
                      for k, v in e2e.items()}
        lines.append(row(f"{name} END TO END", ratio_pair, e2e["batch1"].get("peak_memory_mb")))
        for step, timing in (entry.get("training") or {}).items():
            lines.append(f"{'  train ' + step + ' (batch ' + str(timing['batch_size']) + ')':<30}"
                         f"{1e3 * timing['median_s']:>10.1f}{1e3 * timing['mad_s']:>7.1f}{timing['n']:>3}  s/iter")
        if "attention" in entry:
            a = entry["attention"]
            lines.append(f"  attention: {1e3 * a['batch1_s']:.1f} ms = {100 * a['share_of_lgst']:.1f}% of LGST "
                         f"({100 * a['share_of_global_student']:.1f}% of the global student)")
    lines.append("ratios (end-to-end per-image latency, batch 1): " + ", ".join(
        f"{k} {v:.2f}" for k, v in result["ratios"].items() if not k.endswith(f"batch{THROUGHPUT_BATCH}")))
    return "\n".join(lines)
