"""The oracle map of scripts/pseudo_label_quality.py (segmentation-only ceiling of the ARI)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

from pseudo_label_quality import oracle_map  # noqa: E402


def test_each_component_takes_its_majority_true_class():
    instances = np.array([[1, 1, 2, 0], [1, 1, 2, 2]])
    truth = np.array([[3, 3, 1, 0], [3, 1, 1, 0]])
    np.testing.assert_array_equal(oracle_map(instances, truth), [[3, 3, 1, 0], [3, 3, 1, 1]])


def test_a_component_on_background_only_stays_unlabelled():
    instances = np.array([[1, 2]])
    truth = np.array([[0, 2]])
    np.testing.assert_array_equal(oracle_map(instances, truth), [[0, 2]])
