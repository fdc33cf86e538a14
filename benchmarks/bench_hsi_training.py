"""HSI training throughput: images per second of one finetuning step (Eq. 12: forward, loss, backward, Adam).

Three settings, measured in the same run on the same synthetic batch:
- ``full``: the whole model trains (CLIP RN50 image encoder + decoder + label table), float32;
- ``full + AMP``: the same with bfloat16 autocast and channels-last tensors (CUDA only);
- ``head``: the image encoder frozen and run once per image beforehand (``training.HSIHead`` on cached
  features), the demo-scale recipe of the book; the time to encode an image is reported beside it.
Ratios are against ``full`` float32. Random-init weights (the speed does not depend on them).

    python benchmarks/bench_hsi_training.py                      # CPU, 96 px
    python benchmarks/bench_hsi_training.py --device cuda --image-size 224 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from hsi_core import training
from hsi_core.models.hsi import HSI


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(net: torch.nn.Module, batch: dict, device: torch.device, steps: int, warmup: int,
                      amp: bool = False) -> float:
    """Training images per second of ``steps`` optimiser steps on one batch, after ``warmup`` steps."""
    optimizer = training.adam(1e-4)([p for p in net.parameters() if p.requires_grad])
    net.train()
    n = len(batch["label"])
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = training.hsi_finetune_loss_fn(net, batch, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(device)
    return steps * n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--image-size", type=int, default=None, help="default: 224 on CUDA, 96 on the CPU")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 32 on CUDA, 8 on the CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 on CUDA, 3 on the CPU)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    size = args.image_size or (224 if gpu else 96)
    bs = args.batch_size or (32 if gpu else 8)
    steps = args.steps or (20 if gpu else 3)
    warmup = 3 if gpu else 1
    torch.manual_seed(0)
    model = HSI(None, image_size=size).to(device)
    g = torch.Generator().manual_seed(0)
    sal = torch.rand(bs, size, size, generator=g)
    batch = {"image": torch.rand(bs, 3, size, size, generator=g), "label": torch.randint(0, 20, (bs,), generator=g),
             "saliency": sal, "fixations": sal > 0.98}
    batch = training.move_batch(batch, device)
    results = {"device": torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)",
               "image_size": size, "batch_size": bs, "steps": steps}

    full = training.HSIFull(model)
    results["full fp32 img/s"] = images_per_second(full, batch, device, steps, warmup)
    if gpu:
        model.to(memory_format=torch.channels_last)
        cl = training.move_batch(batch, device, channels_last=True)
        results["full AMP(bf16)+channels_last img/s"] = images_per_second(full, cl, device, steps, warmup, amp=True)
        model.to(memory_format=torch.contiguous_format)

    model.eval()
    with torch.no_grad():
        _sync(device)
        start = time.perf_counter()
        enc = model.encode_image(batch["image"])
        _sync(device)
    results["encode once img/s"] = bs / (time.perf_counter() - start)
    head = training.HSIHead(model).to(device)
    cached = {**{k: v for k, v in batch.items() if k != "image"}, "enc": {k: enc[k] for k in ("u4p", "u5", "z")}}
    results["head (frozen encoder, cached) img/s"] = images_per_second(head, cached, device, steps * 5, warmup)
    if gpu:
        results["head AMP(bf16) img/s"] = images_per_second(head, cached, device, steps * 5, warmup, amp=True)

    base = results["full fp32 img/s"]
    print(f"HSI training throughput on {results['device']}, {size}x{size} images, batch {bs}")
    for key, value in results.items():
        if key.endswith("img/s"):
            print(f"  {key:42s} {value:9.1f}   x{value / base:.1f} vs full fp32")
    if args.json:
        from hsi_core.io import atomic_write_json

        atomic_write_json(args.json, results)


if __name__ == "__main__":
    main()
