"""HSI speed: inference images per second at batch sizes 1 and 16, on CPU and (when present) on a GPU,
in fp32 and with mixed precision + channels_last; with ``--train``, training steps (forward, HSI Eq. 12
loss, backward, Adam) per second as well. Random-init CLIP weights (the speed does not depend on them).

    python benchmarks/bench_hsi_inference.py [--cpu-only] [--train] [--json out.json]

Single-image latency (issue #11: ``hsi predict`` on one image takes a few ms on a GPU after warm-up): the
milliseconds per call, image tensor on the CPU in and map on the CPU out, of ``predict_saliency`` in fp32,
in bf16 + channels_last, and of ``hsi_core.predict.SingleImagePredictor`` (a CUDA graph, fp32) on CUDA.

Speeds are reported as measured, with the mixed-precision speed-up as a ratio against fp32 measured
in the same run on the same device.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from hsi_core import losses
from hsi_core.models.hsi import HSI


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(step, batch: int, device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Throughput: ``warmup`` untimed calls, then the mean over ``repeats`` timed ones."""
    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    _sync(device)
    return batch * repeats / (time.perf_counter() - start)


def bench_device(device: torch.device, batches: list[int], repeats: int, train: bool) -> list[dict]:
    torch.manual_seed(0)
    model = HSI(device=device).eval()
    rows = []
    precisions = ["fp32"] + (["amp"] if device.type == "cuda" else [])
    amp_dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    for precision in precisions:
        if precision == "amp":
            model = model.to(memory_format=torch.channels_last)
        for batch in batches:
            x = torch.rand(batch, 3, 224, 224, device=device)
            ids = torch.arange(batch, device=device) % len(model.labels)
            if precision == "amp":
                x = x.contiguous(memory_format=torch.channels_last)

            def infer() -> None:
                with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=precision == "amp"):
                    model(x, ids)

            rows.append({"device": str(device), "mode": "inference", "precision": precision, "batch": batch,
                         "images_per_s": images_per_second(infer, batch, device, repeats)})
            if train:
                model.train()
                opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
                sal = torch.rand(batch, 224, 224, device=device)
                fix = torch.rand(batch, 224, 224, device=device) > 0.99

                def train_step() -> None:
                    opt.zero_grad(set_to_none=True)
                    with torch.autocast(device.type, dtype=amp_dtype, enabled=precision == "amp"):
                        pred = model(x, ids)["saliency"]
                    losses.finetune_loss(pred.float(), sal, fix).backward()
                    opt.step()

                rows.append({"device": str(device), "mode": "train", "precision": precision, "batch": batch,
                             "images_per_s": images_per_second(train_step, batch, device, max(2, repeats // 2), warmup=1)})
                model.eval()
    return rows


def single_image_latency(device: torch.device, repeats: int) -> list[dict]:
    """Milliseconds per single-image prediction (CPU tensor in, CPU map out), after warm-up."""
    from hsi_core.predict import SingleImagePredictor, predict_saliency

    torch.manual_seed(0)
    model = HSI(device=device).eval()
    image = torch.rand(3, 224, 224)
    label = model.labels[0]
    variants = {"predict_saliency fp32": lambda: predict_saliency(model, image, label, device=device, amp=False),
                "predict_saliency bf16+channels_last": lambda: predict_saliency(model, image, label, device=device,
                                                                                amp=True)}
    if device.type == "cuda":
        graph = SingleImagePredictor(HSI(device=device).eval(), device)
        variants["SingleImagePredictor (CUDA graph, fp32)"] = lambda: graph(image, label)
    rows = []
    for name, call in variants.items():
        rate = images_per_second(call, 1, device, repeats, warmup=3)
        rows.append({"device": str(device), "mode": "single image", "precision": name, "batch": 1,
                     "images_per_s": rate, "ms_per_image": 1000.0 / rate})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpu-only", action="store_true")
    parser.add_argument("--train", action="store_true", help="also time training steps")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args()
    rows = bench_device(torch.device("cpu"), [1, 16], args.repeats, args.train)
    rows += single_image_latency(torch.device("cpu"), args.repeats)
    if torch.cuda.is_available() and not args.cpu_only:
        rows += bench_device(torch.device("cuda"), [1, 16, 64], max(args.repeats, 20), args.train)
        rows += single_image_latency(torch.device("cuda"), max(args.repeats, 50))
    print(f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    print(f"{'device':8} {'mode':10} {'precision':9} {'batch':>5} {'images/s':>10}")
    for r in rows:
        print(f"{r['device']:8} {r['mode']:10} {r['precision']:9} {r['batch']:5d} {r['images_per_s']:10.1f}")
    for r in rows:
        if r["mode"] == "single image":
            print(f"{r['device']} single image, {r['precision']}: {r['ms_per_image']:.2f} ms")
        if r["precision"] == "amp":
            ref = next(q for q in rows if q["device"] == r["device"] and q["mode"] == r["mode"]
                       and q["batch"] == r["batch"] and q["precision"] == "fp32")
            print(f"{r['device']} {r['mode']} batch {r['batch']}: mixed precision + channels_last "
                  f"{r['images_per_s'] / ref['images_per_s']:.2f}x fp32")
    if args.json:
        from hsi_core.io import atomic_write_json

        atomic_write_json(args.json, rows)


if __name__ == "__main__":
    main()
