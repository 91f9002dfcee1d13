"""Device choice and reproducibility switches shared by training, inference and the CLI."""

from __future__ import annotations

import random

import numpy as np
import torch

from pipeline.errors import UserError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")
"""What ``resolve_device`` accepts, as shown in error messages and help texts."""


class DeviceError(UserError, RuntimeError):
    """A device name that cannot be used here; the message says why and what is accepted."""


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turn a user-facing device name into a ``torch.device`` that exists on this machine.

    ``auto`` picks the first CUDA device when one is usable, else the CPU. Asking for CUDA
    where there is none is an error rather than a silent CPU fallback: a run that was meant
    for the GPU would otherwise take hours without anyone noticing why.
    """
    text = str(name).strip().lower()
    if text == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        return _cuda_device(text)
    raise DeviceError(f"Unknown device {name!r}; choose one of: {', '.join(DEVICE_CHOICES)}.")


def _cuda_device(text: str) -> torch.device:
    if not torch.cuda.is_available():
        raise DeviceError(
            f"CUDA requested but not available: {_cuda_reason()}. "
            "Use --device cpu (or auto) on this machine."
        )
    index_text = text.partition(":")[2] or "0"
    if not index_text.isdigit():
        raise DeviceError(f"Bad CUDA device {text!r}; write cuda or cuda:N with N a number.")
    index, count = int(index_text), torch.cuda.device_count()
    if index >= count:
        raise DeviceError(f"CUDA requested but not available: cuda:{index} asked, {count} device(s) present.")
    return torch.device("cuda", index)


def _cuda_reason() -> str:
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) found no usable GPU or driver"


def cuda_summary() -> str:
    """One line on CUDA for diagnostics: usable devices, or why there are none."""
    if not torch.cuda.is_available():
        return f"not available ({_cuda_reason()})"
    count = torch.cuda.device_count()
    return f"available: {count} device(s), CUDA {torch.version.cuda}, torch {torch.__version__}"


def describe_device(device: torch.device | str) -> str:
    """Human-readable device line, e.g. ``cpu (2 threads)`` or ``cuda:0 (NVIDIA H100, 79 GiB)``."""
    device = torch.device(device)
    if device.type != "cuda":
        return f"{device.type} ({torch.get_num_threads()} threads)"
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"


def set_determinism(seed: int) -> None:
    """Seed Python, NumPy and torch and switch off the GPU's non-reproducible fast paths.

    TF32 matmuls/convolutions and cuDNN autotuning make GPU results drift between runs and
    machines (SPEC §5 end); they are turned off even on CPU so the call is the same everywhere.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.set_float32_matmul_precision("highest")
