"""Shared fixtures: the real sample data (skipped cleanly when absent) and one small demo world per
test session (generated once, in a temporary folder, in the real on-disk formats)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tests are small; two threads keep them quick on the 2-core CI machine without oversubscription.
# HSI_TEST_THREADS sets another count: CI runs the suite a second time at one thread (and an emulated
# AVX2 CPU), since reductions split across threads round differently.
torch.set_num_threads(int(os.environ.get("HSI_TEST_THREADS") or min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def shared_root() -> Path:
    from hsi_core.paths import shared_data_root

    root = shared_data_root()
    if root is None:
        pytest.skip("../shared/data is absent (a fresh clone): real-data tests skipped")
    return root


@pytest.fixture(scope="session")
def demo_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo world, generated once per session."""
    from hsi_core import demo

    root = tmp_path_factory.mktemp("demo")
    demo.generate_demo(root, seed=0)
    return root


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "gpu_check: a paper-scale code path (training, generation, XAI, log-gabor, evaluation) run at tiny "
        "sizes; on CUDA when available, else on the CPU. `pytest -m gpu_check` is the project's GPU check "
        "(benchmarks/gpu_check.py runs it and the GPU timings).",
    )


@pytest.fixture(scope="session")
def device() -> str:
    """The device a gpu_check test runs on: CUDA when available, else the CPU (never required)."""
    return "cuda" if torch.cuda.is_available() else "cpu"
