"""Log-gabor explanations: per-image CPU time of the reconstruction before the speed-up (the library's
``hsi_core/loggabor`` as it was at commit c9323c8, read from git history into a temporary package)
and now, measured in one run, on UNISAL and
CMRNet (seeded random weights) at the chapter's size, every convolution, graph mode.

The changes that make it faster and keep the values: block variances of the x2 / x4 maps in closed
form (``resample.block_variance_of``), "to the scale and back" as one small matrix per axis applied to
the weighted sum of the chosen candidates, the energies' magnitude after cropping the border and
in chunks. "Same values" is checked on the first rebuilt layer with the first version's readings
(``scale_steps="single", tie_rtol=0, weight_floor=0, adds="union", fft_lengths="exact"``): later layers may resolve near-ties
differently under rounding (the ``reconstruct`` module docstring), so they are not compared.
The default reading is timed at several batch sizes (the fastest is the CPU default); it also rebuilds
each addition as a layer (``adds="rebuilt_sum"``), work the first version did not do, and takes the
energies on 5-smooth FFT grids (``fft_lengths="fast"``, ``bank``'s docstring: the same accuracy,
other values at the maps' borders).
Each timing is the fastest of ``--repeats`` runs. Prints the load average: other processes on the
machine slow both sides alike, but not evenly.

    OMP_NUM_THREADS=1 python benchmarks/bench_loggabor.py [--images 4] [--size 32 48] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

BASELINE_COMMIT = "c9323c8"


def baseline_package(commit: str = BASELINE_COMMIT):
    """``hsi_core.loggabor`` as it was at ``commit``, imported as ``loggabor_baseline`` from a
    temporary folder (its modules import each other relatively and nothing else of hsi_core)."""
    import importlib
    import shutil
    import subprocess
    import tempfile

    repo = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None:
        print("bench_loggabor: no git here, no baseline; timing the current code only", flush=True)
        return None
    folder = Path(tempfile.mkdtemp(prefix="loggabor-baseline-")) / "loggabor_baseline"
    folder.mkdir()
    for name in ("__init__", "bank", "graph", "reconstruct"):
        source = subprocess.run(["git", "-C", str(repo), "show", f"{commit}:hsi_core/loggabor/{name}.py"],
                                capture_output=True, text=True)
        if source.returncode != 0:
            # a copy without history (a shallow clone, the GPU machine's working tree): time "now" only
            print(f"bench_loggabor: no baseline, git cannot read {commit}: {source.stderr.strip()[:200]}; "
                  "timing the current code only", flush=True)
            return None
        (folder / f"{name}.py").write_text(source.stdout)
    sys.path.insert(0, str(folder.parent))
    return importlib.import_module("loggabor_baseline")


before = baseline_package()

from hsi_core import loggabor  # noqa: E402
from hsi_core.io import atomic_write_text  # noqa: E402
from hsi_core.models.cmrnet import CMRNet  # noqa: E402
from hsi_core.models.unisal import UNISAL  # noqa: E402


REPEATS = 2


def timed(fn, sync, repeats: int = REPEATS) -> tuple[float, object]:
    """The fastest of ``repeats`` runs (other processes only ever slow a run down) and its output."""
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        sync()
        start = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_model(name: str, model: torch.nn.Module, images: torch.Tensor, batches: list[int], sync,
                repeats: int = REPEATS) -> dict:
    n = images.shape[0]
    load_before = os.getloadavg()[0]
    t_same, same = timed(lambda: [loggabor.reconstruct(model, img, keep_maps=False, scale_steps="single", tie_rtol=0,
                                                       weight_floor=0, adds="union", fft_lengths="exact")
                                  for img in images], sync, repeats)
    if before is not None:
        t_old, old = timed(lambda: [before.reconstruct(model, img, keep_maps=False) for img in images], sync, repeats)
        first_diff = max(float((o.batched[0].mae - s.batched[0].mae).abs().max()) for o, s in zip(old, same))
    else:
        t_old, first_diff = float("nan"), float("nan")
    per_batch = {}
    for b in batches:
        t, _ = timed(lambda b=b: loggabor.reconstruct(model, images, keep_maps=False, batch_size=b), sync, repeats)
        per_batch[b] = t / n
    fastest = min(per_batch, key=per_batch.get)
    sums = len(loggabor.trace(model, images[:1]).terms)
    return {
        "model": name,
        "layers_rebuilt_first_version": len(same[0].batched),
        "additions_rebuilt_as_layers_by_default": sums,
        "before_seconds_per_image": round(t_old / n, 3),
        "now_first_version_readings_seconds_per_image": round(t_same / n, 3),
        "now_default_seconds_per_image_by_batch_size": {str(k): round(v, 3) for k, v in per_batch.items()},
        "fastest_batch_size": fastest,
        "ratio_same_readings": round(t_old / t_same, 2),
        "ratio_default_fastest": round(t_old / n / per_batch[fastest], 2),
        "first_layer_max_abs_mae_difference": first_diff,
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` is empty on Linux)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--size", type=int, nargs=2, default=[32, 48])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="runs per timing; the fastest counts")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "loggabor.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    images = torch.rand(args.images, 3, *args.size, device=device)
    rows = []
    for name, cls in (("UNISAL", UNISAL), ("CMRNet", CMRNet)):
        torch.manual_seed(0)
        model = cls().eval().to(device)
        rows.append(bench_model(name, model, images, args.batches, sync, args.repeats))
        print(json.dumps(rows[-1]), flush=True)
    record = {
        "benchmark": f"log-gabor reconstruction, every convolution, graph mode, {args.images} random images of "
                     f"{args.size[0]}x{args.size[1]}, random-init networks, device {device}; before = commit c9323c8",
        "models": rows,
        "goal_ratio": 2,
        "repeats_per_timing_fastest_counted": max(1, args.repeats),
        "threads": os.environ.get("OMP_NUM_THREADS", str(torch.get_num_threads())),
        "load_average_1min_end": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
    }
    print(json.dumps(record, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
