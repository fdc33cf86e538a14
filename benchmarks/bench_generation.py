"""HSI map generation end to end (JPEG files in, PNG maps + manifest out): ``hsi_core.generation`` against
today's one-image-at-a-time loop, in one run on one device.

The folder holds ``--images`` JPEGs at ImageNet's typical 500x375, named in the one-per-class layout. The
generator decodes and resizes in ``--num-workers`` DataLoader workers (or ``--decode gpu``), runs the model
at ``--batch-size`` (bf16 + channels_last on CUDA unless ``--no-amp``) and writes maps on threads. The loop
reads, predicts and writes one image at a time (``predict_saliency`` at batch 1, ``save_map``), as
``hsi generate`` did before issue #11; it is timed on ``--loop-images`` images. The model's forward-only
rate at the same batch and precision is measured too, as the ceiling. Goal on one H100: >= 2,000 img/s.

    python benchmarks/bench_generation.py [--images 64] [--batch-size 16] [--device cpu]
    python benchmarks/bench_generation.py --images 4096 --batch-size 256 --device cuda --num-workers 14

Writes ``benchmarks/results/generation_<device>.json`` (atomic) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hsi_core import generation
from hsi_core.datasets import HSB_CLASSES
from hsi_core.io import atomic_write_json, save_image
from hsi_core.predict import autocast, predict_saliency, prepare_model, save_map, use_amp


def make_folder(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` smooth random 500x375 JPEGs (a smooth image compresses like a photo, unlike white noise)."""
    rng = np.random.default_rng(seed)
    base = [np.kron(rng.integers(0, 255, (24, 32, 3)), np.ones((16, 16, 1)))[:375, :500].astype(np.uint8)
            for _ in range(8)]
    for k in range(n):
        label = HSB_CLASSES[k % len(HSB_CLASSES)].replace(" ", "_")
        noise = rng.integers(0, 16, (375, 500, 3), dtype=np.uint8)
        save_image(root / f"n{10000000 + k:08d}_{label}.JPEG", base[k % 8] + noise)
    return root


def forward_rate(model: torch.nn.Module, batch: int, device: torch.device, amp: bool, repeats: int) -> float:
    x = torch.rand(batch, 3, model.image_size, model.image_size, device=device)
    ids = torch.arange(batch, device=device) % len(model.labels)
    if amp and device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.no_grad(), autocast(device, amp):
        model(x, ids)
        sync()
        t0 = time.perf_counter()
        for _ in range(repeats):
            model(x, ids)
        sync()
    return batch * repeats / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--loop-images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--decode", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--no-amp", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    from hsi_core.models.hsi import HSI

    device = torch.device(args.device)
    amp = use_amp(device, False if args.no_amp else None)
    torch.manual_seed(0)
    model = prepare_model(HSI(None), device, amp)
    tmp = Path(tempfile.mkdtemp(prefix="bench_gen_"))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    try:
        t0 = time.perf_counter()
        folder = make_folder(tmp / "images", args.images)
        make_seconds = time.perf_counter() - t0
        items = generation.list_imagenet_images(folder)
        # warm-up (cuDNN autotuning, worker start-up code paths) on a few images, not timed
        generation.generate_hsi_maps(model, folder, tmp / "warm", items=items[:args.batch_size],
                                     batch_size=args.batch_size, device=device, progress=False, amp=amp,
                                     num_workers=args.num_workers, decode=args.decode)
        sync()
        t0 = time.perf_counter()
        manifest = generation.generate_hsi_maps(model, folder, tmp / "batched", items=items,
                                                batch_size=args.batch_size, device=device, progress=False,
                                                amp=amp, num_workers=args.num_workers, decode=args.decode)
        sync()
        t_batched = time.perf_counter() - t0
        loop_items = items[:args.loop_images]
        t0 = time.perf_counter()
        for it in loop_items:
            m = predict_saliency(model, [it.path], [it.class_name], batch_size=1, device=device, amp=False)
            save_map(m[0].numpy(), tmp / "loop" / f"{it.path.stem}.png")
        sync()
        t_loop = time.perf_counter() - t0
        ceiling = forward_rate(model, args.batch_size, device, amp, repeats=max(2, 2048 // args.batch_size)
                               if device.type == "cuda" else 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rate = args.images / t_batched
    loop_rate = len(loop_items) / t_loop
    result = {"what": "HSI maps end to end: 500x375 JPEG files in, 224x224 PNG maps + manifest out",
              "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
              else "cpu", "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "images": args.images, "batch_size": args.batch_size,
              "num_workers": manifest["rank0"]["num_workers"], "decode": args.decode, "amp_bf16_channels_last": amp,
              "generation_seconds": t_batched, "generation_images_per_second": rate,
              "loop_images": len(loop_items), "loop_seconds": t_loop, "loop_images_per_second": loop_rate,
              "speedup_vs_loop": rate / loop_rate, "model_forward_images_per_second": ceiling,
              "share_of_model_rate": rate / ceiling, "goal_h100_images_per_second": 2000,
              "folder_write_seconds": make_seconds}
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / f"generation_{device.type}.json"
    atomic_write_json(out, result)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
