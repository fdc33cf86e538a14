"""The project's GPU check, in parts ordered by value, each capped so the whole fits one lent GPU.

    python benchmarks/gpu_check.py --plan --budget 420     # print the plan; exit 1 when it does not fit
    python benchmarks/gpu_check.py --budget 420            # run it (on a machine with CUDA)
    python benchmarks/gpu_check.py --tests-only            # the gpu_check tests only (CI runs them on the CPU)

Parts, in order of value (``PARTS``; planned seconds are caps, measured start-up included):
1. HSI step rates at 224 px, pretraining (HSI Eq. 11) and finetuning, workers and pinned memory
   (``bench_hsi_training.py``); 2. generation end to end with GPU JPEG decoding; 3. RISE against the
   classifier's forward rate; 4. single-image HSI latency; 5. ``pytest -m gpu_check`` (paper-scale
   code paths at small sizes, HSI at 96 px where maps are not flat); 6. log-gabor at chapter 6's
   size; 7. evaluation of 5,000 maps. A part runs only when its cap fits in what is left of the
   budget; each writes its JSON (``benchmarks/results/``) as soon as it finishes, so a kill keeps what
   was measured. Exit status 1 when a part fails or times out; the summary names it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

#: (name, command, planned seconds): in order of value. The caps are what each part may take.
PARTS: list[tuple[str, list[str], int]] = [
    ("hsi step rates (224 px)", ["benchmarks/bench_hsi_training.py", "--device", "cuda", "--image-size", "224",
                                 "--batch-size", "64", "--steps", "20"], 150),
    ("generation (GPU decoding)", ["benchmarks/bench_generation.py", "--device", "cuda", "--images", "1024",
                                   "--batch-size", "256", "--num-workers", "14", "--decode", "gpu"], 90),
    ("RISE vs forward rate", ["benchmarks/bench_rise.py", "--device", "cuda", "--n-masks", "4000", "--images", "4",
                              "--batch-size", "500"], 60),
    ("HSI single-image latency", ["benchmarks/bench_hsi_inference.py", "--repeats", "3"], 45),
    ("pytest -m gpu_check", ["-m", "pytest", "-m", "gpu_check", "-q", "-p", "no:cacheprovider"], 240),
    ("log-gabor (288x384)", ["benchmarks/bench_loggabor.py", "--device", "cuda", "--size", "288", "384",
                             "--batch", "4", "--repeats", "1"], 90),
    ("evaluation (5,000 maps)", ["benchmarks/bench_evaluation.py", "--device", "cuda", "--n-maps", "5000",
                                 "--batch-size", "256"], 90),
]
#: The parts that a 420 s budget must cover (issue 18).
MUST_FIT_420 = ("hsi step rates (224 px)", "generation (GPU decoding)", "RISE vs forward rate")


def plan(budget: float, parts: list[tuple[str, list[str], int]] = PARTS) -> list[tuple[str, list[str], int]]:
    """The parts that fit in ``budget`` seconds, taken in order of value (a part that does not fit is
    skipped; later, smaller ones may still fit)."""
    chosen, left = [], budget
    for part in parts:
        if part[2] <= left:
            chosen.append(part)
            left -= part[2]
    return chosen


def run(name: str, command: list[str], timeout: float) -> dict:
    print(f"\n[{name}] $ {' '.join(command)}  (cap {timeout:.0f} s)", flush=True)
    start = time.perf_counter()
    try:
        ok = subprocess.run([sys.executable, *command], cwd=REPO, timeout=timeout).returncode == 0
        status = "ok" if ok else "FAIL"
    except subprocess.TimeoutExpired:
        status = "TIMEOUT"
    return {"part": name, "status": status, "seconds": round(time.perf_counter() - start, 1), "cap_s": timeout}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests-only", action="store_true", help="only pytest -m gpu_check (CPU in CI)")
    parser.add_argument("--budget", type=float, default=420, help="seconds for all parts together")
    parser.add_argument("--plan", action="store_true", help="print the plan for --budget and exit (1: does not fit)")
    args = parser.parse_args(argv)
    chosen = plan(args.budget)
    if args.plan:
        for name, command, seconds in PARTS:
            print(f"  {'run ' if (name, command, seconds) in chosen else 'skip'} {seconds:4d} s  {name}")
        total = sum(p[2] for p in chosen)
        names = {p[0] for p in chosen}
        fits = total <= args.budget and (args.budget < 420 or all(n in names for n in MUST_FIT_420))
        print(f"total {total} s of a {args.budget:.0f} s budget: {'fits' if fits else 'DOES NOT FIT'}")
        return 0 if fits else 1
    import torch

    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}; CUDA available: {cuda}"
          + (f" ({torch.cuda.get_device_name(0)})" if cuda else " (the checks run on the CPU)"), flush=True)
    if args.tests_only or not cuda:
        if not cuda and not args.tests_only:
            print("no CUDA device: only the gpu_check tests run (on the CPU)", flush=True)
        results = [run("pytest -m gpu_check", PARTS[4][1], 3600)]
    else:
        results, deadline = [], time.monotonic() + args.budget
        for name, command, seconds in chosen:
            left = deadline - time.monotonic()
            if left < seconds * 0.5:
                results.append({"part": name, "status": "SKIPPED (budget spent)", "seconds": 0, "cap_s": seconds})
                continue
            results.append(run(name, command, min(seconds, left)))
            RESULTS.mkdir(parents=True, exist_ok=True)
            (RESULTS / "gpu_check_summary.json").write_text(json.dumps(results, indent=1))
    print("\nsummary:")
    for r in results:
        print(f"  {r['status']:<8} {r['part']} ({r['seconds']:.0f} s of {r['cap_s']:.0f})")
    return 0 if all(r["status"] == "ok" for r in results if not r["status"].startswith("SKIPPED")) else 1


if __name__ == "__main__":
    sys.exit(main())
