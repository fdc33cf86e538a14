"""Log-gabor explanations, batched: all UNISAL layers for a batch of images at once vs the first
version of ``hsi_core.loggabor.reconstruct`` (commit a3f75fe, one image at a time, copied below as
``head_reconstruct``), measured in one run.

Both are run with the first version's semantics (``mode="chain"``, maps at the convolution outputs,
``pad=0``: FFT wrap-around), every convolution of UNISAL (random init), on the same images, with
single-image forward passes so that both see identical activation maps; the result must agree to
1e-5. Where the time goes: resizing every candidate to the x2 and x4 scales for the block variances
(Eq. 2), which batching does not reduce on a CPU; the first version also resized every candidate to
each scale and back, we only the 10 chosen per map. Then the default reading (graph mode, activation maps, reflected border) is timed as
well. Writes ``benchmarks/results/loggabor.json``.

    OMP_NUM_THREADS=1 python benchmarks/bench_loggabor.py [--batch 16] [--size 64 96] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from hsi_core import loggabor
from hsi_core.io import atomic_write_text
from hsi_core.models.unisal import UNISAL

HEAD_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


# ---------------------------------------------------------------- the first version (baseline), as committed
def _head_minmax(maps, eps=1e-12):
    flat = maps.flatten(-2)
    lo = flat.amin(-1, keepdim=True).unsqueeze(-1)
    hi = flat.amax(-1, keepdim=True).unsqueeze(-1)
    return (maps - lo) / (hi - lo + eps)


def _head_block_variance(maps, block=8):
    x = maps.unsqueeze(1) if maps.ndim == 3 else maps
    mean = F.avg_pool2d(x, block)
    return (F.avg_pool2d(x * x, block) - mean * mean).clamp_min(0).flatten(1)


def _head_resize(maps, size):
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


def _head_resize_chunks(maps, size, back, chunk):
    return torch.cat([_head_resize(_head_resize(maps[i : i + chunk], size), back) for i in range(0, maps.shape[0], chunk)])


def _head_reconstruct_maps(activations, candidates, top_k=10, scales=HEAD_SCALES, block=8, chunk=64, eps=1e-8):
    n_maps, h, w = activations.shape
    acts = _head_minmax(activations)
    cands = _head_minmax(candidates)
    used = [s for s in scales if min(round(h * s), round(w * s)) >= block]
    k = min(top_k, cands.shape[0])
    fused = torch.zeros_like(acts)
    for s in used:
        size = (round(h * s), round(w * s))
        var_c = torch.cat([_head_block_variance(_head_resize(cands[i : i + chunk], size), block)
                           for i in range(0, cands.shape[0], chunk)])
        cand_back = _head_resize_chunks(cands, size, (h, w), chunk)
        for start in range(0, n_maps, chunk):
            part = slice(start, start + chunk)
            var_a = _head_block_variance(_head_resize(acts[part], size), block)
            mae = torch.cdist(var_a, var_c, p=1) / var_a.shape[1]
            best, idx = torch.topk(mae, k, dim=1, largest=False)
            wts = 1.0 / (best + eps)
            wts = wts / wts.sum(1, keepdim=True)
            fused[part] += torch.einsum("ak,akhw->ahw", wts, cand_back[idx]) ** 2
    return _head_minmax(fused.sqrt())


@torch.no_grad()
def head_reconstruct(model, image, n_keep=10):
    """The committed per-image ``reconstruct`` (every convolution's output, in execution order, each
    layer rebuilt from the previous one's kept reconstructions); returns (saliency, layer MAEs)."""
    x = image.unsqueeze(0)
    captured = {}
    handles = [m.register_forward_hook(lambda _m, _i, out, n=n: captured.setdefault(n, out.detach()))
               for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    banks = {}

    def bank_for(size):
        if size not in banks:
            banks[size] = loggabor.filter_bank(size, device=x.device)
        return banks[size]

    def energy(maps):
        return torch.fft.ifft2(torch.fft.fft2(maps).unsqueeze(1) * bank_for(tuple(maps.shape[-2:])).unsqueeze(0)).abs()

    candidates = energy(x.mean(1))[0]
    maes = []
    for act in captured.values():
        maps = act[0].float()
        recon = _head_reconstruct_maps(maps, candidates)
        mae = (_head_minmax(maps) - recon).abs().flatten(1).mean(1)
        maes.append(mae)
        kept = torch.argsort(mae)[: min(n_keep, len(mae))]
        candidates = energy(recon[kept]).flatten(0, 1)
    saliency = _head_minmax(_head_resize(recon.mean(0, keepdim=True), tuple(x.shape[-2:]))[0])
    return saliency, maes


# ---------------------------------------------------------------- the benchmark
class PerImage(nn.Module):
    """Runs the wrapped model on one image at a time."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.m = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.m(x[i : i + 1]) for i in range(x.shape[0])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, nargs=2, default=[64, 96])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "loggabor.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = UNISAL().eval().to(device)
    images = torch.rand(args.batch, 3, *args.size, device=device)
    n_convs = len(loggabor.conv_layer_names(model))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    # both see the maps of single-image forward passes (a batched convolution rounds differently, which
    # Eq. 3's 1/MAE weights can amplify), so "same result" compares the reconstructions alone
    per_image = PerImage(model)
    sync()
    start = time.perf_counter()
    head = [head_reconstruct(per_image, img) for img in images]
    sync()
    t_head = time.perf_counter() - start
    start = time.perf_counter()
    ours = loggabor.reconstruct(per_image, images, mode="chain", point="conv", pad=0, batch_size=args.batch,
                                repeated="concat")
    sync()
    t_ours = time.perf_counter() - start
    sal_diff = float((torch.stack([h[0] for h in head]) - ours.saliency).abs().max())
    mae_diff = max(float((h[1][d] - layer.mae[b]).abs().max()) for b, h in enumerate(head)
                   for d, layer in enumerate(ours.batched))
    start = time.perf_counter()
    default = loggabor.reconstruct(model, images, batch_size=args.batch, keep_maps=False)
    sync()
    t_default = time.perf_counter() - start
    record = {
        "benchmark": f"UNISAL (random init), all {n_convs} convolutions, batch of {args.batch} images of "
                     f"{args.size[0]}x{args.size[1]}, device {device}",
        "head_per_image_seconds": round(t_head, 2),
        "batched_seconds": round(t_ours, 2),
        "ratio": round(t_head / t_ours, 1),
        "goal_ratio": 10,
        "same_result_max_abs_saliency_difference": sal_diff,
        "same_result_max_abs_layer_mae_difference": mae_diff,
        "same_result_to_1e-5": sal_diff <= 1e-5 and mae_diff <= 1e-5,
        "default_graph_activation_padded_seconds": round(t_default, 2),
        "default_seconds_per_image": round(t_default / args.batch, 3),
        "default_rebuilt_layers": len(default.batched),
        "default_skipped_layers": len(default.skipped),
        "threads": os.environ.get("OMP_NUM_THREADS", str(torch.get_num_threads())),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
    }
    print(json.dumps(record, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
