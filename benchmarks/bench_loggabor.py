"""Log-gabor reconstruction: the vectorised pipeline vs a straightforward loop over maps and filters.

Both compute Eq. 2-4 for one layer (64 activation maps of 56x56 against the 80 input energies, at the
5 scales) on the same input; the loop version computes each (map, filter) MAE on its own, as a direct
reading of the paper would. Also the seconds per image for a whole model (CMRNet, every convolution).

    python benchmarks/bench_loggabor.py
"""

from __future__ import annotations

import time

import torch

from hsi_core import loggabor
from hsi_core.models.cmrnet import CMRNet


def loop_reconstruct(acts: torch.Tensor, cands: torch.Tensor, top_k: int = 10, block: int = 8) -> torch.Tensor:
    acts, cands = loggabor.minmax(acts), loggabor.minmax(cands)
    n, h, w = acts.shape
    fused = torch.zeros_like(acts)
    for s in loggabor.SCALES:
        size = (round(h * s), round(w * s))
        if min(size) < block:
            continue
        for a in range(n):
            va = loggabor.block_variance(loggabor._resize(acts[a : a + 1], size), block)[0]
            maes = []
            for g in range(cands.shape[0]):
                vg = loggabor.block_variance(loggabor._resize(cands[g : g + 1], size), block)[0]
                maes.append(float((va - vg).abs().mean()))
            maes_t = torch.tensor(maes)
            best, idx = torch.topk(maes_t, top_k, largest=False)
            wts = (1 / (best + 1e-8)) / (1 / (best + 1e-8)).sum()
            recon = sum(wt * loggabor._resize(cands[i : i + 1], size)[0] for wt, i in zip(wts, idx))
            fused[a] += loggabor._resize(recon[None], (h, w))[0] ** 2
    return loggabor.minmax(fused.sqrt())


def main() -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 1, 56, 56)
    cands = loggabor.energy(image)[0]
    acts = torch.relu(torch.nn.functional.conv2d(image, torch.randn(64, 1, 5, 5), padding=2))[0]
    def best_of(fn, repeats=3):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - start)
        return min(times), out

    t_fast, (fast, _, _) = best_of(lambda: loggabor.reconstruct_maps(acts, cands))
    t_slow, slow = best_of(lambda: loop_reconstruct(acts, cands))
    print(f"one layer (64 maps of 56x56, 80 candidates, 5 scales), best of 3 runs each, threads {torch.get_num_threads()}")
    print(f"vectorised: {t_fast:.3f} s   loop over maps and filters: {t_slow:.2f} s   ratio {t_slow / t_fast:.0f}x (target >= 30x)")
    print(f"same result: max abs difference {float((fast - slow).abs().max()):.2e}")
    model = CMRNet().eval()
    image = torch.rand(3, 96, 128)
    start = time.perf_counter()
    result = loggabor.reconstruct(model, image)
    print(f"whole CMRNet ({len(result.layers)} convolutions) on one 96x128 image: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
