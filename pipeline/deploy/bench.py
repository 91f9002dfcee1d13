"""``python -m pipeline bench``: per-stage speed and memory of the methods beside reference models.

Every figure comes from one process and one run, so the ratios compare like with like. Models
have random weights and neutral statistics (each method's ``random_model``, ``references``): no
workspace is needed and the timings are those of the real inference code (``LgstDetector.predict``
etc.). What a method times is its own (``MethodSpec.bench``, in ``pipeline/methods/<method>/bench.py``);
this module runs them, the references, and the ratios between them.
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
from pipeline.methods import bench_method_names, get_method

METHODS = bench_method_names()
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
    """One bench run's inputs, options and timing policy; what a method's bench stages get
    (``pipeline.methods.base.BenchRun``)."""

    def __init__(self, options: BenchOptions, device: torch.device, log: Callable[[str], None]) -> None:
        self.options, self.device, self.log = options, device, log
        self.policy = Policy(options.budget_s, options.repeats)
        self.images = {1: _images(1, options.seed), THROUGHPUT_BATCH: _images(THROUGHPUT_BATCH, options.seed + 1)}
        self.profile, self.seed = options.profile, options.seed
        self.n_train, self.training = options.n_train, options.training

    def random_images(self, n: int, seed: int) -> list[np.ndarray]:
        return _images(n, seed)

    def measure(self, fn: Callable[[], object], budget_share: float = 1.0) -> dict:
        """One timing of ``fn`` within ``budget_share`` of the per-figure budget (fixed repeats win)."""
        return measure(fn, self.device, Policy(self.policy.budget_s * budget_share, self.options.repeats))

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
        if name in METHODS:
            stages = get_method(name).bench
            results[name], det = stages.measure(run, shared)
            if stages.headline:
                profile_ops = _op_profile(det, run.images[1], device)
            del det
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
    for name in results:
        if name in METHODS and get_method(name).bench.headline:
            _headline(out, name, results[name], ratios, profile_ops)
    out["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    return out


def _headline(out: dict, name: str, entry: dict, ratios: dict, profile_ops: list[dict] | None) -> None:
    """The headline method's figures at the top of the JSON: the speed target (end to end within
    3× EfficientAD-M), its attention share and its heaviest operators."""
    e2e = entry["end_to_end"]["batch1"]["median_s"]
    out["target"] = {f"{name}_over_efficientad_m_max": 3.0, "met": ratios.get(f"{name}_over_efficientad_m", 99) <= 3.0}
    if "attention" in entry:
        out["attention_share_of_lgst"] = entry["attention"]["share_of_lgst"]
    out[f"{name}_profile_top_ops"] = profile_ops
    out[f"{name}_end_to_end_batch1_s"] = e2e


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
