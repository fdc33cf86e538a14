"""HSI map generation, images per second: ``hsi_core.generation`` (batched, maps + manifest) vs one image at a time.

Both sides run the same HSI (random CLIP RN50 unless ``--weights``) on the same labelled folder in this run; the
baseline calls the model on one image at a time and writes each map, as a naive loop would. The claim is the
throughput of the batched generator and its ratio to the loop.

    python benchmarks/bench_generation.py [--images 32] [--batch-size 16] [--image-size 224] [--device cpu]

Writes ``benchmarks/results/generation.json`` (atomic) and prints it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hsi_core import generation
from hsi_core.demo import HSB_CLASSES
from hsi_core.io import atomic_write_json, save_image


def make_folder(root: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for k in range(n):
        label = HSB_CLASSES[k % len(HSB_CLASSES)].replace(" ", "_")
        save_image(root / f"n{10000000 + k:08d}_{label}.JPEG", rng.integers(0, 255, (375, 500, 3), dtype=np.uint8))
    return root


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--weights", default=None, help="HSI checkpoint (default: random HSI)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "generation.json"))
    args = parser.parse_args(argv)

    from hsi_core.cli import load_model, predict_saliency, save_map
    from hsi_core.models.hsi import HSI

    torch.manual_seed(0)
    model = load_model(args.weights, None, list(HSB_CLASSES)) if args.weights else HSI(None, image_size=args.image_size)
    model = model.to(args.device).eval()
    tmp = Path(tempfile.mkdtemp(prefix="bench_gen_"))
    try:
        folder = make_folder(tmp / "images", args.images)
        predict_saliency(model, [next(folder.iterdir())], [HSB_CLASSES[0]], device=args.device)   # warm-up
        sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
        t0 = time.perf_counter()
        generation.generate_hsi_maps(model, folder, tmp / "batched", batch_size=args.batch_size, device=args.device,
                                     progress=False)
        sync()
        t_batched = time.perf_counter() - t0
        items = generation.list_imagenet_images(folder)
        t0 = time.perf_counter()
        for it in items:
            m = predict_saliency(model, [it.path], [it.class_name], batch_size=1, device=args.device)
            save_map(m[0].numpy(), tmp / "loop" / f"{it.path.stem}.png")
        sync()
        t_loop = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"images": args.images, "batch_size": args.batch_size, "image_size": args.image_size,
              "device": args.device, "torch_threads": torch.get_num_threads(),
              "generation_seconds": t_batched, "generation_images_per_second": args.images / t_batched,
              "loop_seconds": t_loop, "loop_images_per_second": args.images / t_loop, "speedup": t_loop / t_batched}
    atomic_write_json(args.out, result)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
