"""RISE speed as a share of the classifier's own forward-only rate, on the same device in one run.

RISE with N masks needs N forward passes per image, so its ceiling is the classifier's forward rate. Both are
measured on the same model (torchvision ResNet-50, random weights: speed does not depend on them), at the same
batch size and precision (bf16 autocast + channels_last on CUDA; fp32 on the CPU, or ``--no-amp``):

    forward-only: images/s of ``model(x)`` on a fixed batch (no masking, no scoring);
    RISE:         masked forwards/s = images * N / seconds of ``hsi_core.xai.rise`` (masks, masking,
                  softmax, RISE Eq. 6 scoring included).

The claim is their ratio (goal: >= 0.90). RISE draws its masks per image by default (``masks="per-image"``:
each image's grids drawn on the CPU from its own seed, up-sampled on the device); the same run also times
``masks="shared"`` (one mask set for all images), so ``per_image_over_shared`` is the cost of per-image masks.

    python benchmarks/bench_rise.py [--device cpu] [--n-masks 64] [--images 1] [--batch-size 32]
    python benchmarks/bench_rise.py --device cuda --n-masks 4000 --images 8 --batch-size 256

Writes ``benchmarks/results/rise_<device>.json`` (atomic) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from hsi_core import xai
from hsi_core.io import atomic_write_json
from hsi_core.models.classifier import ImageNetClassifier


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-masks", type=int, default=64)
    parser.add_argument("--images", type=int, default=1)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--occluder", default="black", choices=("black", "mean"))
    parser.add_argument("--no-amp", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from torchvision.models import resnet50

    device = torch.device(args.device)
    amp = device.type == "cuda" and not args.no_amp
    torch.manual_seed(0)
    model = ImageNetClassifier(resnet50(weights=None)).eval().to(device)
    if amp:
        model = model.to(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    # forward-only rate at the same batch and precision
    x = torch.rand(args.batch_size, 3, args.size, args.size, device=device)
    if amp:
        x = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext()
    repeats = max(2, (args.images * args.n_masks) // args.batch_size)
    with torch.no_grad(), ctx:
        model(x)
        sync()
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(x)
        sync()
    forward_rate = args.batch_size * repeats / (time.perf_counter() - t0)

    images = torch.rand(args.images, 3, args.size, args.size, device=device)
    targets = torch.arange(args.images, device=device) % 1000
    kwargs = dict(n_masks=args.n_masks, batch_size=args.batch_size, amp=amp, occluder=args.occluder)
    xai.rise(model, images[:1], targets[:1], **{**kwargs, "n_masks": args.batch_size})   # warm-up
    seconds = {}
    for mode in ("per-image", "shared"):
        sync()
        t0 = time.perf_counter()
        xai.rise(model, images, targets, masks=mode, **kwargs)
        sync()
        seconds[mode] = time.perf_counter() - t0
    rise_rate = args.images * args.n_masks / seconds["per-image"]
    result = {"model": "torchvision ResNet-50 (random weights)", "device": str(device),
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
              "amp_bf16_channels_last": amp, "size": args.size, "batch_size": args.batch_size,
              "n_masks": args.n_masks, "images": args.images, "occluder": args.occluder,
              "forward_only_images_per_second": forward_rate, "rise_seconds": seconds["per-image"],
              "rise_shared_masks_seconds": seconds["shared"],
              "per_image_over_shared": seconds["per-image"] / seconds["shared"],
              "rise_images_per_second": args.images / seconds["per-image"], "rise_masked_forwards_per_second": rise_rate,
              "rise_share_of_forward_rate": rise_rate / forward_rate, "goal_share": 0.9,
              "load_average": list(os.getloadavg())}
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / f"rise_{device.type}.json"
    atomic_write_json(out, result)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
