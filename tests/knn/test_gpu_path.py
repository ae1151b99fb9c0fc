"""The GPU search paths, run where CI can run them: torch's GEMM + top-k on CPU tensors against the CPU
path (ties and duplicates included), the backend choice per device, and on CUDA (marker `gpu`) the
real device path against the CPU one."""

from __future__ import annotations

import numpy as np
import pytest

from nnts_ray.knn.exact import FAISS_CPU_K_LIMIT, GPU_FAISS_K_LIMIT, backend, knn_rows
from tests.reference import brute_force_knn


def _grid(n: int = 500, seed: int = 0) -> np.ndarray:
    """Integer grid points: masses of exact ties and duplicates, distances exact in float32."""
    return np.random.default_rng(seed).integers(0, 4, size=(n, 3)).astype(np.float32)


@pytest.mark.parametrize("k", [12, FAISS_CPU_K_LIMIT + 40])  # the FAISS and the blocked CPU paths
@pytest.mark.parametrize("refine", [128, 0])
def test_torch_path_on_cpu_tensors_equals_the_cpu_path_ties_included(k, refine):
    x = _grid()
    cpu = knn_rows(x, k, refine_ranks=refine, query_block=128)
    torch_path = knn_rows(x, k, refine_ranks=refine, query_block=128, force_backend="torch")
    np.testing.assert_array_equal(torch_path.rows, cpu.rows)  # (distance, id) order, ties by id
    np.testing.assert_allclose(torch_path.distance, cpu.distance, rtol=1e-6, atol=1e-6)
    ref_rows, _ = brute_force_knn(x, k)
    np.testing.assert_array_equal(torch_path.rows, ref_rows)


def test_torch_path_on_real_valued_data_matches_the_reference():
    x = np.random.default_rng(1).standard_normal((400, 24)).astype(np.float32) + 5.0  # cancellation-prone
    got = knn_rows(x, 30, force_backend="torch", shards=2, query_block=100)
    ref_rows, ref_dist = brute_force_knn(x, 30)
    np.testing.assert_array_equal(got.rows, ref_rows)
    np.testing.assert_allclose(got.distance, ref_dist, rtol=1e-5)


def test_each_device_gets_its_path():
    import faiss

    assert backend("cpu", FAISS_CPU_K_LIMIT) == "faiss" and backend("cpu", FAISS_CPU_K_LIMIT + 1) == "blocked"
    gpu_small = "faiss_gpu" if hasattr(faiss, "knn_gpu") else "torch"
    assert backend("cuda", 15) == gpu_small and backend("cuda:1", GPU_FAISS_K_LIMIT) == gpu_small
    assert backend("cuda", GPU_FAISS_K_LIMIT + 1) == "torch"  # beyond faiss-gpu's k cap


@pytest.mark.gpu
@pytest.mark.parametrize("k", [15, GPU_FAISS_K_LIMIT + 100])
def test_cuda_path_equals_the_cpu_path(k):
    x = np.random.default_rng(2).standard_normal((6000, 32)).astype(np.float32)
    x[100:140] = x[0]  # duplicates: exact ties
    cpu = knn_rows(x, k, query_block=1024)
    gpu = knn_rows(x, k, query_block=1024, device="cuda")
    head = min(k, 128)  # the leading ranks are re-scored exactly on both: identical order
    np.testing.assert_array_equal(gpu.rows[:, :head], cpu.rows[:, :head])
    overlap = np.mean([len(set(a) & set(b)) / k for a, b in zip(gpu.rows, cpu.rows)])
    assert overlap > 0.9999  # beyond them GEMM rounding differs by device: only near-ties may swap
