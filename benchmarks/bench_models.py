"""LG Table IV in one run: parameters and inference time per image of every saliency model, on one device.

Times are medians over repeated single-image calls after a warm-up, gradients off; each is also
given as a ratio to CMRNet measured in the same run (the paper claims CMRNet is the fastest).

    python benchmarks/bench_models.py [--size 240 320] [--device cpu] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch

from hsi_core import baselines, evaluation, loggabor
from hsi_core.experiments import saliency_models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=[240, 320])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--explainable", action="store_true", help="also time the explainable CMRNet (slow)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    image = torch.rand(1, 3, *args.size, device=args.device)
    models = {name: saliency_models.build_model(name).to(args.device).eval() for name in saliency_models.DEEP_MODELS}
    timed = {**models, "ITTI": baselines.itti_koch, "Spectral residual": baselines.spectral_residual}
    if args.explainable:
        layers = saliency_models.explainable_layers(models["CMRNet"], tuple(args.size))
        timed["Explainable CMRNet"] = lambda x: loggabor.explainable_saliency(models["CMRNet"], x, layers)
    times = {name: evaluation.inference_time(fn, image, repeats=args.repeats) for name, fn in timed.items()}
    print(f"device {args.device} ({torch.get_num_threads()} threads), input {args.size[0]}x{args.size[1]}, "
          f"median of {args.repeats}")
    print(f"{'model':<22}{'params (M)':>12}{'s / image':>12}{'x CMRNet':>10}")
    for name, fn in timed.items():
        print(f"{name:<22}{evaluation.count_parameters(fn) / 1e6:>12.3f}{times[name]:>12.4f}{times[name] / times['CMRNet']:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
