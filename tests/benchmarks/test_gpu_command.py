"""The one-command GPU benchmark: refuses clearly without CUDA, and its code runs end to end on CPU
tensors (so the minutes of a lent GPU are not lost to a crash)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from nnts_ray.benchmarks import gpu


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_refuses_in_one_line_without_cuda():
    proc = subprocess.run([sys.executable, "-m", "nnts_ray.benchmarks.gpu"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "no CUDA device" in proc.stderr


def test_dry_run_on_cpu_tensors_reports_every_method_equal(capsys):
    gpu.main(["--device", "cpu", "--n", "1500", "--d", "16", "--block", "500", "--repeat", "1", "--check", "64",
              "--quick"])
    out = capsys.readouterr().out
    assert out.count("nnts_ray search") == 3 and "DIFFERENT" not in out and "100.0000% of words equal" in out
