"""Streaming dataset scoring at scale: maps per second and peak memory, against the per-image code.

``--n-maps`` (default 5,000) maps of 480x640 at SALICON's fixation density (about 4,500 fixated
pixels per image) are scored through ``evaluation.iter_scores`` (a DataLoader, the whole metric set
CC, KL, SIM, NSS, AUC-Judd, MAE and the default pysaliency sAUC, whose negatives are every other
image's fixations). The process's resident memory is sampled every ``--every`` maps: it must stay
flat (constant memory) while the rate per segment stays flat (O(N) time).

In the same run, on the first ``--reference-maps`` maps with the same negatives: the per-image
vectorised numpy version and the MIT code ported (``tests/mit_reference.py``), scaled linearly to
the whole set (their cost per map is constant), and our kernel alone (``metrics.metric_set``) on
the same arrays: the streaming rate includes the DataLoader and building each image's negatives,
the kernel ratio compares like with like (the numpy version's sAUC uses the binarised pool, ours
the weighted one, slightly more work). Results go to ``benchmarks/results/evaluation.json``.

    python benchmarks/bench_evaluation.py [--n-maps 5000] [--device cpu|cuda] [--batch-size 16]

The maps: a bank of ``--bank`` blurred-noise predictions and ground-truth maps reused cyclically
(so generating data costs little and holds constant memory); each image's fixations are drawn
from its own seed, centre-biased, so the pool of negatives is real work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import mit_reference as ref  # noqa: E402
from bench_metrics import run_numpy_vectorised  # noqa: E402

from hsi_core import evaluation, metrics  # noqa: E402
from hsi_core.fixations import gaussian_blur  # noqa: E402
from hsi_core.io import atomic_write_json  # noqa: E402

H, W = 480, 640


class SyntheticMaps(torch.utils.data.Dataset):
    """``n`` items of 480x640: prediction and saliency from a small bank, fixations per index."""

    def __init__(self, n: int, bank: int = 16, n_fix: int = 4500) -> None:
        gen = torch.Generator().manual_seed(0)
        self.n, self.n_fix = n, n_fix
        self.pred = gaussian_blur(torch.rand((bank, H, W), generator=gen), 8.0)
        self.gt = gaussian_blur((torch.rand((bank, H, W), generator=gen) > 0.985).float(), 19.0)

    def __len__(self) -> int:
        return self.n

    def fixation_part(self, j: int):
        rng = np.random.default_rng(j)
        rows = np.clip(rng.normal(H / 2, H / 5, self.n_fix), 0, H - 1).astype(np.int32)
        cols = np.clip(rng.normal(W / 2, W / 5, self.n_fix), 0, W - 1).astype(np.int32)
        return rows, cols, np.ones(self.n_fix, np.float32), H, W

    def __getitem__(self, i: int) -> dict:
        rows, cols, weights, _, _ = self.fixation_part(i)
        counts = torch.from_numpy(np.bincount(rows * W + cols, weights, minlength=H * W).reshape(H, W).astype(np.float32))
        k = i % len(self.pred)
        return {"image": self.pred[k].unsqueeze(0), "saliency": self.gt[k], "fixations": counts > 0,
                "fixation_counts": counts, "index": i}


def rss_mb() -> float:
    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-maps", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--every", type=int, default=500, help="maps between memory / rate samples")
    parser.add_argument("--reference-maps", type=int, default=6)
    parser.add_argument("--numpy-maps", type=int, default=50)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "evaluation.json"))
    args = parser.parse_args()
    data = SyntheticMaps(args.n_maps)
    predict = lambda x: x[:, 0]  # noqa: E731  the "image" is the prediction: scoring alone is timed
    rss_start = rss_mb()
    samples = []
    start = time.perf_counter()
    last = start
    means = {}
    for k, row in enumerate(evaluation.iter_scores(predict, data, batch_size=args.batch_size, device=args.device), 1):
        for name, value in row.items():
            means[name] = means.get(name, 0.0) + value
        if k % args.every == 0 or k == args.n_maps:
            now = time.perf_counter()
            samples.append({"maps": k, "seconds": now - start, "segment_maps_per_s": args.every / (now - last),
                            "rss_mb": rss_mb()})
            last = now
            print(f"{k:6d} maps  {now - start:8.1f} s  {samples[-1]['segment_maps_per_s']:7.1f} maps/s (segment)  "
                  f"RSS {samples[-1]['rss_mb']:7.0f} MB", flush=True)
    total = time.perf_counter() - start
    rate = args.n_maps / total
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # the per-image baselines on the first maps, with the same maps and the same negatives
    pool = evaluation.FixationPool.from_dataset(data)
    def sample(n: int):
        items = [data[i] for i in range(n)]
        pred = np.stack([it["image"][0].double().numpy() for it in items])
        gt = np.stack([it["saliency"].double().numpy() for it in items])
        fix = np.stack([it["fixations"].numpy() for it in items])
        other = np.stack([pool.negatives(i, (H, W)) for i in range(n)])
        return pred, gt, fix, other

    timings = {}
    kernel = lambda pred, gt, fix, other: metrics.metric_set(pred, gt, fix, other)  # noqa: E731
    numpy_binary = lambda pred, gt, fix, other: run_numpy_vectorised(pred, gt, fix, other > 0)  # noqa: E731
    for name, fn, n in (("metric_set kernel (ours), per image", kernel, args.numpy_maps),
                        ("vectorised numpy, per image", numpy_binary, args.numpy_maps),
                        ("MIT code ported, per image", None, args.reference_maps)):
        pred, gt, fix, other = sample(n)
        t0 = time.perf_counter()
        if fn is not None:
            fn(pred, gt, fix, other)
        else:
            for p, g, f, o in zip(pred, gt, fix, other):
                ref.cc(p, g), ref.kldiv(p, g), ref.similarity(p, g), ref.nss(p, f)
                ref.auc_judd(p, f), ref.auc_exact(p, f, o > 0), ref.mae(p, g)
        timings[name] = (time.perf_counter() - t0) / n
    result = {
        "maps": args.n_maps, "size": [H, W], "batch_size": args.batch_size, "device": args.device,
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg()[0],
        "metrics": "CC, KL, SIM, NSS, AUC-Judd (no jitter), sAUC (pysaliency: all other images' fixations), MAE",
        "seconds": total, "maps_per_second": rate, "rss_start_mb": rss_start, "peak_rss_mb": peak_mb,
        "samples": samples,
        "rate_last_over_first_segment": samples[-1]["segment_maps_per_s"] / samples[0]["segment_maps_per_s"],
        "rss_last_minus_first_sample_mb": samples[-1]["rss_mb"] - samples[0]["rss_mb"],
        "per_image_seconds": timings,
        "speedup_vs_numpy_per_image": timings["vectorised numpy, per image"] * rate,
        "kernel_speedup_vs_numpy_per_image": timings["vectorised numpy, per image"]
        / timings["metric_set kernel (ours), per image"],
        "kernel_speedup_vs_mit_code": timings["MIT code ported, per image"]
        / timings["metric_set kernel (ours), per image"],
        "speedup_vs_mit_code": timings["MIT code ported, per image"] * rate,
        "mean_scores": {k: v / args.n_maps for k, v in means.items() if k != "index"},
    }
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
