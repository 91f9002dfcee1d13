"""Repeated timing with warm-up (median and spread) and peak memory of a callable."""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch

MAX_REPEATS = 7
SINGLE_SAMPLE_FACTOR = 5.0
"""A call slower than this many budgets is timed once (its one sample is reported with ``n`` 1)."""


@dataclass(frozen=True)
class Policy:
    """How many runs a figure gets.

    Attributes:
        budget_s: timed runs continue until they add up to this (at least 2 runs, at most
            ``MAX_REPEATS``), unless one run alone exceeds ``SINGLE_SAMPLE_FACTOR`` budgets.
        repeats: a fixed number of timed runs instead (overrides the budget).
        warmup: untimed runs first (allocator, oneDNN primitive caches, cuDNN plans).
    """

    budget_s: float = 3.0
    repeats: int | None = None
    warmup: int = 1


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], device: torch.device, policy: Policy, *, warmup: int | None = None,
            images: int = 1) -> dict:
    """Time ``fn``: ``{"median_s", "min_s", "max_s", "mad_s", "n", "per_image_s", "images_per_s"}``."""
    for _ in range(policy.warmup if warmup is None else warmup):
        fn()
    _sync(device)
    times: list[float] = []
    while True:
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
        total = sum(times)
        if policy.repeats is not None:
            if len(times) >= policy.repeats:
                break
        elif (len(times) >= MAX_REPEATS or (len(times) >= 2 and total >= policy.budget_s)
              or times[-1] > SINGLE_SAMPLE_FACTOR * policy.budget_s):
            break
    median = statistics.median(times)
    return {
        "median_s": median, "min_s": min(times), "max_s": max(times),
        "mad_s": statistics.median(abs(t - median) for t in times), "n": len(times),
        "per_image_s": median / images, "images_per_s": images / median if median > 0 else None,
    }


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``), so the RSS at entry is what
    is live and a run's peak shows what it allocates even when earlier runs left the heap grown."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the figure is then a lower bound
        pass


class PeakMemory:
    """Peak memory above the level at entry, while the ``with`` block runs.

    CPU: resident set size sampled every 2 ms by a thread, freed heap returned to the OS first (``tracemalloc`` does not see torch's
    allocator); the figure is the peak RSS minus the RSS at entry, so it counts what the run
    allocates (activations, temporaries), not the weights already loaded. CUDA:
    ``torch.cuda.max_memory_allocated`` minus the allocated bytes at entry.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = 0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        _release_free_memory()
        self._base = self._peak = _rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._peak = max(self._peak, _rss_bytes())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = max(0, torch.cuda.max_memory_allocated(self.device) - self._base)
            return
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(0, max(self._peak, _rss_bytes()) - self._base)

    @property
    def source(self) -> str:
        return "torch.cuda.max_memory_allocated" if self.device.type == "cuda" else "peak RSS above baseline"
