"""Batched metrics vs a per-image numpy loop (the MIT code ported in tests/mit_reference.py).

500 maps of 480x640 at SALICON's fixation density, the whole metric set (CC, KL, SIM, NSS, AUC-Judd, exact sAUC, MAE), on the CPU.
Both sides are timed in this run; the claim is their ratio (targets: at least 50x the MIT code and
at least as fast as the vectorised numpy version). ``benchmarks/bench_evaluation.py`` times the
streaming dataset path around the same kernel.

    python benchmarks/bench_metrics.py [--n-maps 500] [--reference-maps 20]

The reference loop is slow, so it is timed on ``--reference-maps`` maps and scaled linearly to
``--n-maps`` (its cost per map is constant).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import mit_reference as ref  # noqa: E402

from hsi_core import metrics  # noqa: E402
from hsi_core.fixations import gaussian_blur  # noqa: E402


def make_maps(n: int, h: int = 480, w: int = 640, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    # SALICON density: its real samples hold 6,000-8,500 mouse fixations per 480x640 image, about
    # 4,500 distinct fixated pixels; the other-image map pools several images.
    fix = torch.rand((n, h, w), generator=gen) > 1 - 0.015
    other = torch.rand((n, h, w), generator=gen) > 1 - 0.03
    gt = gaussian_blur(fix.float(), 19.0)
    pred = gaussian_blur(torch.rand((n, h, w), generator=gen), 8.0)
    return pred.double(), gt.double(), fix, other


def run_batched(pred, gt, fix, other) -> None:
    """``metrics.metric_set``: the fastest kernel for the input's device (numpy per map on the CPU)."""
    metrics.metric_set(pred, gt, fix, other)


def run_mit_port(pred, gt, fix, other) -> None:
    """The MIT benchmark's code, one image at a time (AUC loops over thresholds as in MATLAB)."""
    for p, g, f, o in zip(pred, gt, fix, other):
        ref.cc(p, g)
        ref.kldiv(p, g)
        ref.similarity(p, g)
        ref.nss(p, f)
        ref.auc_judd(p, f)
        ref.auc_exact(p, f, o)
        ref.mae(p, g)


def run_numpy_vectorised(pred, gt, fix, other) -> None:
    """Our best per-image numpy: each metric vectorised within the image, a Python loop over images."""
    for p, g, f, o in zip(pred, gt, fix, other):
        np.corrcoef(p.ravel(), g.ravel())
        pn, gn = p / p.sum(), g / g.sum()
        np.sum(gn * np.log(ref.MATLAB_EPS + gn / (pn + ref.MATLAB_EPS)))
        pm = (p - p.min()) / (p.max() - p.min())
        gm = (g - g.min()) / (g.max() - g.min())
        np.minimum(pm / pm.sum(), gm / gm.sum()).sum()
        ((p - p.mean()) / p.std(ddof=1))[f].mean()
        s_sorted = np.sort(p.ravel())
        th = np.sort(p[f])[::-1]
        above = s_sorted.size - np.searchsorted(s_sorted, th, side="left")
        i = np.arange(1, th.size + 1)
        np.trapezoid(np.r_[0, i / th.size, 1], np.r_[0, (above - i) / (s_sorted.size - th.size), 1])
        neg = np.sort(p[o])
        pos = p[f]
        (np.searchsorted(neg, pos, "left") + np.searchsorted(neg, pos, "right")).sum() / 2 / (pos.size * neg.size)
        np.abs(pm - gm).mean()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-maps", type=int, default=500)
    parser.add_argument("--reference-maps", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=50, help="maps per batched call (bounds memory)")
    args = parser.parse_args()
    pred, gt, fix, other = make_maps(args.n_maps)
    start = time.perf_counter()
    for i in range(0, args.n_maps, args.chunk):
        run_batched(pred[i : i + args.chunk], gt[i : i + args.chunk], fix[i : i + args.chunk], other[i : i + args.chunk])
    batched = time.perf_counter() - start
    k = args.reference_maps
    sample = [x[:k].numpy() for x in (pred, gt, fix, other)]
    timings = {}
    for name, fn in (("MIT code ported, per image", run_mit_port), ("vectorised numpy, per image", run_numpy_vectorised)):
        start = time.perf_counter()
        fn(*sample)
        timings[name] = (time.perf_counter() - start) * args.n_maps / k
    print(f"maps: {args.n_maps} x 480x640, whole metric set, torch threads: {torch.get_num_threads()}")
    print(f"metrics.metric_set (hsi_core)   : {batched:8.2f} s")
    for name, seconds in timings.items():
        print(f"{name:32s}: {seconds:8.2f} s (timed on {k} maps, scaled)  ratio {seconds / batched:5.1f}x")
    print("target: >= 50x against the per-image MIT code, >= 1x against the vectorised numpy version")


if __name__ == "__main__":
    main()
