"""The project's GPU check: the paper-scale code paths on the device, then the GPU speed benchmarks.

    python benchmarks/gpu_check.py            # on a machine with CUDA (also runs, smaller, on a CPU)
    python benchmarks/gpu_check.py --tests-only

1. ``pytest -m gpu_check``: HSI Tables 1-3 at paper settings for one epoch with and without CLIP
   weights, the pseudo-label cache, generation, GBP/Grad-CAM/RISE on a ResNet-50, the log-gabor
   reconstruction of UNISAL, streaming evaluation; each on CUDA when available (tests/conftest.py's
   ``device`` fixture), at tiny sizes. CI runs the same tests on its CPU.
2. The benchmarks with a GPU mode, each in its own process, each writing its JSON to
   ``benchmarks/results/``: training step and reproduction-time estimate, generation end to end,
   RISE against the classifier's forward rate, single-image HSI latency, log-gabor on UNISAL,
   dataset evaluation of 5,000 maps. On a CPU they are skipped (they would take hours).
Exit status 1 when any part fails; the summary names it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

GPU_BENCHMARKS = [
    ["benchmarks/bench_hsi_training.py", "--device", "cuda"],
    ["benchmarks/bench_generation.py", "--device", "cuda", "--images", "4096", "--batch-size", "256",
     "--num-workers", "14"],
    ["benchmarks/bench_rise.py", "--device", "cuda", "--n-masks", "4000", "--images", "4", "--batch-size", "500"],
    ["benchmarks/bench_hsi_inference.py"],
    ["benchmarks/bench_loggabor.py", "--device", "cuda", "--size", "288", "384"],
    ["benchmarks/bench_evaluation.py", "--device", "cuda", "--n-maps", "5000", "--batch-size", "256"],
    ["benchmarks/bench_models.py", "--device", "cuda"],
]


def run(command: list[str], timeout: int) -> tuple[bool, float]:
    print(f"\n$ {' '.join(command)}", flush=True)
    start = time.perf_counter()
    try:
        ok = subprocess.run(command, cwd=REPO, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        print(f"timed out after {timeout} s", flush=True)
        ok = False
    return ok, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests-only", action="store_true")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per part")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}; CUDA available: {cuda}"
          + (f" ({torch.cuda.get_device_name(0)})" if cuda else " (the checks run on the CPU)"), flush=True)
    results = {"pytest -m gpu_check": run([sys.executable, "-m", "pytest", "-m", "gpu_check", "-q",
                                           "-p", "no:cacheprovider"], args.timeout)}
    if cuda and not args.tests_only:
        for command in GPU_BENCHMARKS:
            results[command[0]] = run([sys.executable, *command], args.timeout)
    elif not args.tests_only:
        print("\nno CUDA device: the GPU benchmarks are skipped", flush=True)
    print("\nsummary:")
    for name, (ok, seconds) in results.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name} ({seconds:.0f} s)")
    return 0 if all(ok for ok, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
