"""Device choice and determinism switches."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from pipeline.device import DeviceError, describe_device, resolve_device, set_determinism


def test_auto_picks_cuda_only_when_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present on this machine")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_an_error(name):
    with pytest.raises(DeviceError, match="CUDA requested but not available"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["tpu", "gpu", ""])
def test_unknown_names_list_the_choices(name):
    with pytest.raises(DeviceError, match="auto, cpu, cuda, cuda:N"):
        resolve_device(name)


def test_describe_cpu_mentions_threads():
    text = describe_device(torch.device("cpu"))
    assert text == f"cpu ({torch.get_num_threads()} threads)"


def test_set_determinism_repeats_every_generator_and_disables_tf32():
    def draw():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    set_determinism(7)
    first = draw()
    set_determinism(7)
    assert draw() == first
    set_determinism(8)
    assert draw() != first
    assert not torch.backends.cuda.matmul.allow_tf32
    assert not torch.backends.cudnn.allow_tf32
    assert not torch.backends.cudnn.benchmark
