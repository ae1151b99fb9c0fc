"""Resizing vs padding, told apart from the stored model input alone."""

from __future__ import annotations

import numpy as np

from nnts_ray.data.base import resize
from nnts_ray.reproduction.preprocessing import decisions, on_8bit_grid
from nnts_ray.reproduction.runs import load_run
from tests.reproduction.fakerun import N, write_run


def digits_28(n: int) -> np.ndarray:
    """(n, 1, 28, 28) uint8 images with an empty border, like MNIST's."""
    x = np.zeros((n, 1, 28, 28), np.uint8)
    x[:, :, 4:24, 4:24] = np.random.default_rng(0).integers(0, 256, (n, 1, 20, 20))
    return x


def test_padding_stays_on_the_grid_and_resizing_leaves_it():
    padded = np.pad(digits_28(5), ((0, 0), (0, 0), (2, 2), (2, 2))).astype(np.float32) / 255
    assert on_8bit_grid(padded) == 1.0
    assert on_8bit_grid(resize(digits_28(5), 32)) < 0.5


def test_decisions_report_the_measured_input(tmp_path):
    resized = resize(digits_28(N), 32)
    found = {d.question: d for d in decisions(load_run(write_run(tmp_path / "run", input_values=resized)))}
    assert "interpolated (resized)" in found["28 → 32: resize or pad"].answer
    assert "[0, 1], not standardised" in found["input scaling / normalisation"].answer
    assert "by index" in found["self-exclusion"].answer and "sample_id" in found["ties"].answer
    without = {d.question: d for d in decisions(load_run(write_run(tmp_path / "bare")))}
    assert "not measurable" in without["input scaling, 28 → 32"].answer
