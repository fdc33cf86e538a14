"""HSI training: step rates, data rates, checkpoint cost and the time to reproduce Tables 1-3, from
rates measured in one run (issue #18, item 7).

Part 1, one optimiser step of the whole model (CLIP RN50 image encoder + decoder + label table,
float32; on CUDA also bf16 autocast + channels-last) on a synthetic batch:
- finetuning (HSI Eq. 12): one label per image;
- pretraining (HSI Eq. 11): the decoder runs once per object slot, and a batch is padded to its most
  objects, so the step is timed at 1 slot and at ``--objects`` slots (default: the most objects an
  image kept in the demo world's Algorithm 1 cache) and the cost per extra slot is reported;
- ``head``: the frozen-encoder recipe of the book's demo scale, on cached features.

Part 2, the data pipeline on this machine's CPU, on the demo world's 640x480 SALICON-format scenes:
HSI Algorithm 1 (``pseudo_labels.prepare``) with 1 and 2 worker processes; reading its cache through
the ``DataLoader`` that ``training.fit`` builds (``training.loader_options``) with 0, 1 and 2 workers;
the Table 2 baseline's free-viewing items prepared and read in one process.

Part 3, checkpoints: the time and size of ``training.fit``'s writes for a full 224 px model, weights
only (``best.pt``; ``last.pt`` at the end) and resumable with the Adam state (``last.pt`` every
``resumable_every_minutes``, ``HSITablesConfig``'s default), and the model's construction time.

Part 4, the reproduction-time estimate: pretraining 2 models x 20 epochs x 10,000 SALICON images
(+ 5,000 validation images per epoch), finetuning 3 settings x 5 folds x 20 epochs on HSB (+ the
second Table 3 reading and the final model on all of HSB), Algorithm 1 once over 15,000 images, and
every checkpoint the default policy writes. GPU step rates come from this run on CUDA; otherwise from
issue #11's H100 finetuning rates, with pretraining scaled by the pretraining/finetuning ratio
measured here (labelled as such). The data rates at ``--workers`` workers are extrapolated from the
measured 1- and 2-worker rates (the measured 1 -> 2 efficiency applied per extra worker); every
assumption is printed beside the total and stored in the JSON.

    python benchmarks/bench_hsi_training.py                      # CPU, about 6 minutes on 2 cores
    python benchmarks/bench_hsi_training.py --device cuda        # GPU rates measured here
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from hsi_core import training
from hsi_core.experiments import hsi_tables
from hsi_core.models.hsi import HSI

#: Issue #11, measured on one NVIDIA H100 (torch 2.11, 224 px, random CLIP weights): used for the
#: estimate when no GPU is present, and labelled "from issue #11" in the output.
ISSUE_H100 = {"train_step_bf16_img_per_s": 1199.0, "train_step_fp32_img_per_s": 987.0,
              "forward_bf16_img_per_s": 7382.0}
SALICON_TRAIN, SALICON_VAL, HSB_IMAGES, FOLDS, EPOCHS = 10_000, 5_000, 160, 5, 20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(net: torch.nn.Module, batch: dict, device: torch.device, steps: int, warmup: int,
                      amp: bool = False, loss_fn=hsi_tables.hsi_finetune_loss_fn) -> float:
    """Training images per second of ``steps`` optimiser steps of ``loss_fn`` on one batch, after
    ``warmup`` steps."""
    optimizer = training.adam(1e-4)([p for p in net.parameters() if p.requires_grad])
    net.train()
    n = len(batch["saliency"])
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(net, batch, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(device)
    return steps * n / (time.perf_counter() - start)


@torch.no_grad()
def forward_per_second(model: HSI, images: torch.Tensor, labels: torch.Tensor, device: torch.device, steps: int,
                       amp: bool) -> float:
    model.eval()
    for i in range(steps + 1):
        if i == 1:
            _sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            model(images, labels)
    _sync(device)
    return steps * len(images) / (time.perf_counter() - start)


def finetune_batch(bs: int, size: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    sal = torch.rand(bs, size, size, generator=g)
    return {"image": torch.rand(bs, 3, size, size, generator=g), "label": torch.randint(0, 20, (bs,), generator=g),
            "saliency": sal, "fixations": sal > 0.98}


def pretrain_batch(bs: int, size: int, objects: int, seed: int = 0) -> dict:
    """A ``PseudoLabelCache`` batch padded to ``objects`` slots (the first image fills them all, the
    others hold fewer valid ones, as a collated batch does)."""
    g = torch.Generator().manual_seed(seed)
    batch = finetune_batch(bs, size, seed)
    del batch["label"]
    obj_sal = torch.rand(bs, objects, size, size, generator=g)
    valid = torch.zeros(bs, objects, dtype=torch.bool)
    for b in range(bs):
        valid[b, : max(1, objects - b)] = True
    return {**batch, "obj_saliency": obj_sal, "obj_fixations": obj_sal > 0.98, "valid": valid,
            "obj_labels": torch.randint(0, 20, (bs, objects), generator=g)}


def step_rates(device: torch.device, size: int, bs: int, steps: int, objects: int) -> dict:
    """Images per second of a finetuning step (Eq. 12), a pretraining step (Eq. 11) at 1 and at
    ``objects`` slots, inference, and the frozen-encoder head."""
    gpu = device.type == "cuda"
    warmup = 3 if gpu else 1
    torch.manual_seed(0)
    model = HSI(None, image_size=size).to(device)
    batch = training.move_batch(finetune_batch(bs, size), device)
    out = {"image_size": size, "batch_size": bs, "steps": steps, "objects": objects}
    full = hsi_tables.HSIFull(model)
    out["full fp32 img/s"] = images_per_second(full, batch, device, steps, warmup)
    for slots in sorted({1, objects}):
        pre = training.move_batch(pretrain_batch(bs, size, slots), device)
        out[f"pretrain {slots} slot(s) fp32 img/s"] = images_per_second(
            full, pre, device, steps, warmup, loss_fn=hsi_tables.hsi_pretrain_loss_fn)
    if gpu:
        model.to(memory_format=torch.channels_last)
        cl = training.move_batch(batch, device, channels_last=True)
        out["full AMP(bf16)+channels_last img/s"] = images_per_second(full, cl, device, steps, warmup, amp=True)
        pre = training.move_batch(pretrain_batch(bs, size, objects), device, channels_last=True)
        out[f"pretrain {objects} slot(s) AMP(bf16)+channels_last img/s"] = images_per_second(
            full, pre, device, steps, warmup, amp=True, loss_fn=hsi_tables.hsi_pretrain_loss_fn)
        out["forward AMP(bf16)+channels_last img/s"] = forward_per_second(model, cl["image"], cl["label"], device,
                                                                          steps, True)
        model.to(memory_format=torch.contiguous_format)
    else:
        out["forward fp32 img/s"] = forward_per_second(model, batch["image"], batch["label"], device, steps, False)
    one, many = out["pretrain 1 slot(s) fp32 img/s"], out[f"pretrain {objects} slot(s) fp32 img/s"]
    out["pretrain step time per extra slot (share of 1 slot)"] = ((one / many - 1) / (objects - 1)
                                                                  if objects > 1 else 0.0)
    model.eval()
    with torch.no_grad():
        enc = model.encode_image(batch["image"])
    head = hsi_tables.HSIHead(model).to(device)
    cached = {**{k: v for k, v in batch.items() if k != "image"}, "enc": {k: enc[k] for k in ("u4p", "u5", "z")}}
    out["head (frozen encoder, cached) img/s"] = images_per_second(head, cached, device, steps * 5, warmup)
    return out


def loader_rate(dataset, workers: int, batch_size: int = 8, epochs: int = 3) -> float:
    """Items per second through the ``DataLoader`` ``training.fit`` builds (persistent workers,
    prefetching; no pinning on the CPU), timed after the first batch (worker start-up excluded:
    once per fit, part of the setup)."""
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=False,
                        **training.loader_options("cpu", num_workers=workers))
    items, start = 0, None
    for _ in range(epochs):
        for batch in loader:
            if start is None:
                start = time.perf_counter()
                continue
            items += len(batch["index"])
    return items / (time.perf_counter() - start)


def data_rates(size: int, images: int) -> dict:
    """Items per second on this machine's CPU: HSI Algorithm 1 into the cache with 1 and 2 worker
    processes, reading the cache through the training ``DataLoader`` with 0, 1 and 2 workers, and the
    baseline's free-viewing items in one process, on the demo world's 640x480 SALICON-format scenes."""
    from hsi_core import pseudo_labels
    from hsi_core.demo import ensure_demo

    root = ensure_demo()
    args = (root / "salicon/annotations/fixations_train2014.json", root / "salicon/images/train",
            root / "coco/annotations/instances_train2014.json")
    vocab = hsi_tables.hsi_vocabulary([c["name"] for c in json.loads(args[2].read_text())["categories"]])
    out: dict = {"images": images, "size": size,
                 "source": "demo world, 640x480 SALICON-format scenes, this machine's CPU"}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            start = time.perf_counter()
            cache = pseudo_labels.prepare(*args, Path(tmp) / f"cache{workers}", size=size, t_a=0.01, limit=images,
                                          workers=workers, progress=False)
            seconds = time.perf_counter() - start
            ds = pseudo_labels.PseudoLabelCache(cache, vocabulary=vocab)
            out["images"] = len(ds) + len(ds.skipped)  # what the split holds, at most ``images``
            out[f"prepare images/s, {workers} worker(s)"] = out["images"] / seconds
        out["objects per item (cache's padded slots)"] = int(ds[0]["obj_labels"].shape[0])
        for workers in (0, 1, 2):
            out[f"cache read items/s, {workers} worker(s)"] = loader_rate(ds, workers)
        free = hsi_tables.salicon_free_viewing(root, "train", image_size=size, limit=images)
        start = time.perf_counter()
        fv = hsi_tables.prepare_free_viewing(free, Path(tmp) / "free", progress=False)
        out["baseline free-viewing prepare items/s, 1 process"] = len(free) / (time.perf_counter() - start)
        fv_cache = hsi_tables.FreeViewingCache(fv)
        start = time.perf_counter()
        for _ in range(3):
            for i in range(len(fv_cache)):
                fv_cache[i]
        out["baseline free-viewing cache read items/s, 1 process"] = 3 * len(fv_cache) / (time.perf_counter() - start)
    return out


def checkpoint_costs(size: int = 224) -> dict:
    """Seconds and bytes of ``training.fit``'s two kinds of write for a full model (through the same
    ``io.atomic_save_torch``, fsynced), and the model's construction time."""
    from hsi_core.io import atomic_save_torch

    start = time.perf_counter()
    model = HSI(None, image_size=size)
    build_s = time.perf_counter() - start
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = training.adam(1e-4)(params)
    for p in params:  # one step on zero gradients fills Adam's two moments, as after real training
        p.grad = torch.zeros_like(p)
    optimizer.step()
    out = {"model construction s": build_s}
    with tempfile.TemporaryDirectory() as tmp:
        for name, state in (("weights only", {"model": model.state_dict()}),
                            ("resumable (weights + Adam state)", {"model": model.state_dict(),
                                                                  "optimizer": optimizer.state_dict()})):
            path = Path(tmp) / "last.pt"
            times = []
            for _ in range(3):
                start = time.perf_counter()
                atomic_save_torch(state, path)
                times.append(time.perf_counter() - start)
            out[f"{name} s"] = sorted(times)[1]
            out[f"{name} bytes"] = path.stat().st_size
    return out


def worker_rate(measured: dict, prefix: str, workers: int, linear: bool = False) -> tuple[float, float]:
    """The rate at ``workers`` workers from the measured 1- and 2-worker rates: each worker beyond the
    first adds the measured gain of the second (the 1 -> 2 efficiency, between 0 and 1), or, with
    ``linear``, a whole worker's rate (the upper bound). Returns the rate and the efficiency used."""
    one, two = measured[f"{prefix}, 1 worker(s)"], measured[f"{prefix}, 2 worker(s)"]
    efficiency = 1.0 if linear else min(1.0, max(0.0, two / one - 1.0))
    return one * (1.0 + efficiency * (workers - 1)), efficiency


def fit_checkpoint_seconds(fit_minutes: float, epochs: int, ck: dict, every_minutes: float | None) -> float:
    """``training.fit``'s writes under ``HSITablesConfig``'s default policy: the resumable ``last.pt``
    (weights + Adam state) every ``every_minutes`` of training, ``last.pt`` without the optimiser at
    the end, and at each of those saves ``best.pt`` (weights) when the validation loss improved since
    the last one (counted at every save: the worst case)."""
    resumable = int(fit_minutes // every_minutes) if every_minutes else epochs - 1
    saves = resumable + 1
    return resumable * ck["resumable (weights + Adam state) s"] + ck["weights only s"] + saves * ck["weights only s"]


def estimate(gpu: dict, data: dict, ck: dict, workers: int, linear: bool = False) -> tuple[dict, dict]:
    """Minutes per stage (each runs at the slower of the GPU and the data pipeline at ``workers``
    workers, ``worker_rate``), checkpoints and setup included; and the rates it used."""
    every = hsi_tables.HSITablesConfig().resumable_every_minutes
    cache_rate, cache_eff = worker_rate(data, "cache read items/s", workers, linear)
    prepare_rate, prepare_eff = worker_rate(data, "prepare images/s", workers, linear)
    free_read = data["baseline free-viewing cache read items/s, 1 process"] * (1.0 + cache_eff * (workers - 1))
    free_prepare = data["baseline free-viewing prepare items/s, 1 process"] * (1.0 + prepare_eff * (workers - 1))
    fwd = gpu["forward_bf16_img_per_s"]
    setup_min = (ck["model construction s"]) / 60

    def fit_minutes(n_train: int, n_val: int, train_rate: float, feed: float, epochs: int) -> float:
        train = (epochs * n_train / min(train_rate, feed) + epochs * n_val / min(fwd, feed)) / 60
        return train + fit_checkpoint_seconds(train, epochs, ck, every) / 60 + setup_min

    fold_train, fold_eval = HSB_IMAGES * (FOLDS - 1) // FOLDS, HSB_IMAGES // FOLDS
    ft = gpu["train_step_bf16_img_per_s"]
    pt = gpu["pretrain_step_bf16_img_per_s"]
    stages = {
        "HSI Algorithm 1 once (15,000 images)": (SALICON_TRAIN + SALICON_VAL) / prepare_rate / 60,
        "baseline free-viewing maps once (15,000 images)": (SALICON_TRAIN + SALICON_VAL) / free_prepare / 60,
        "pretrain HSI (20 epochs, padded object slots)": fit_minutes(SALICON_TRAIN, SALICON_VAL, pt, cache_rate, EPOCHS),
        "pretrain baseline, all images (20 epochs)": fit_minutes(SALICON_TRAIN, SALICON_VAL, ft, free_read, EPOCHS),
        "finetune 3 settings x 5 folds x 20 epochs": 3 * FOLDS * fit_minutes(fold_train, fold_eval, ft, cache_rate,
                                                                             EPOCHS),
        "+ second Table 3 reading (5 folds)": FOLDS * fit_minutes(fold_train, fold_eval, ft, cache_rate, EPOCHS),
        "+ final model on all of HSB (final_model='all')": fit_minutes(HSB_IMAGES, 0, ft, cache_rate, EPOCHS),
    }
    stages["total"] = sum(stages.values())
    used = {"cache read items/s": cache_rate, "prepare images/s": prepare_rate,
            "1->2 worker efficiency, cache read": cache_eff, "1->2 worker efficiency, prepare": prepare_eff,
            "resumable_every_minutes": every}
    return stages, used


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--image-size", type=int, default=None, help="step rates: default 224 on CUDA, 96 on the CPU")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 64 on CUDA, 4 on the CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 on CUDA, 5 on the CPU)")
    parser.add_argument("--objects", type=int, default=None,
                        help="object slots of a pretraining batch (default: the demo cache's padded slots)")
    parser.add_argument("--data-images", type=int, default=24, help="demo SALICON images for the data rates")
    parser.add_argument("--workers", type=int, default=16,
                        help="data workers of the machine estimated for (rates beyond 2 are extrapolated)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/hsi_training.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    size = args.image_size or (224 if gpu else 96)

    data = data_rates(224, args.data_images)
    print(f"Data pipeline at 224 px ({data['source']}):")
    for key, value in data.items():
        if "/s" in key or "objects" in key:
            print(f"  {key:58s} {value:8.2f}")
    objects = args.objects or data["objects per item (cache's padded slots)"]
    steps = step_rates(device, size, args.batch_size or (64 if gpu else 4), args.steps or (20 if gpu else 5), objects)
    steps["device"] = torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"Training throughput on {steps['device']}, {size}x{size} images, batch {steps['batch_size']}")
    base = steps["full fp32 img/s"]
    for key, value in steps.items():
        if key.endswith("img/s"):
            print(f"  {key:52s} {value:9.2f}   x{value / base:.2f} vs finetuning fp32")
    print(f"  pretraining step time per extra object slot: "
          f"{100 * steps['pretrain step time per extra slot (share of 1 slot)']:.1f} % of a 1-slot step")
    ck = checkpoint_costs()
    print("Checkpoints of a full 224 px HSI (training.fit's atomic, fsynced writes):")
    for key, value in ck.items():
        print(f"  {key:52s} {value:12.2f}")

    pre_ratio = steps[f"pretrain {objects} slot(s) fp32 img/s"] / steps["full fp32 img/s"]
    if gpu and size == 224:
        rates = {"train_step_bf16_img_per_s": steps["full AMP(bf16)+channels_last img/s"],
                 "pretrain_step_bf16_img_per_s": steps[f"pretrain {objects} slot(s) AMP(bf16)+channels_last img/s"],
                 "forward_bf16_img_per_s": steps["forward AMP(bf16)+channels_last img/s"]}
        source = f"measured here on {steps['device']} at 224 px"
    else:
        rates = {"train_step_bf16_img_per_s": ISSUE_H100["train_step_bf16_img_per_s"],
                 "pretrain_step_bf16_img_per_s": ISSUE_H100["train_step_bf16_img_per_s"] * pre_ratio,
                 "forward_bf16_img_per_s": ISSUE_H100["forward_bf16_img_per_s"]}
        source = ("NOT measured here: issue #11's H100 finetuning rates (bf16 step 1,199 img/s, forward "
                  f"7,382 img/s); pretraining = 1,199 x the pretraining/finetuning ratio measured here on the "
                  f"CPU at {size} px with {objects} slots ({pre_ratio:.3f})")
    stages, used = estimate(rates, data, ck, args.workers)
    linear_stages, _ = estimate(rates, data, ck, args.workers, linear=True)
    assumptions = [
        f"GPU step rates: {source}",
        f"data rates measured on this machine with 0, 1 and 2 workers; at {args.workers} workers extrapolated: "
        f"each worker beyond the first adds the measured 1->2 gain (cache read "
        f"{used['1->2 worker efficiency, cache read']:.2f}, Algorithm 1 {used['1->2 worker efficiency, prepare']:.2f} "
        f"of a worker; {os.cpu_count()} cores here, so a second worker competes with the training process), "
        f"which assumes no disk or memory-bandwidth limit; the 'linear scaling' column is the upper bound "
        f"({args.workers} x the 1-worker rate, {args.workers} free cores)",
        "each stage runs at the slower of the GPU rate and the data rate (no overlap loss)",
        f"pretraining batches padded to {objects} object slots (this demo cache's most; SALICON images keep "
        "more objects: pass --objects)",
        f"checkpoints as HSITablesConfig's default: resumable state every {used['resumable_every_minutes']} min and "
        "at the end, best weights written at every save (worst case); write times measured here on this disk",
        "setup per fit: model construction measured here; DataLoader worker start-up and CUDA context not counted",
        "paper's sizes: SALICON 10,000 train + 5,000 val, HSB 160 images, 5 folds, 20 + 20 epochs",
    ]
    print(f"Reproduction-time estimate, one GPU + {args.workers} data workers:")
    print(f"  {'stage':58s} {'measured scaling':>16s} {'linear scaling':>15s}")
    for key, value in stages.items():
        print(f"  {key:58s} {value:12.1f} min {linear_stages[key]:11.1f} min")
    print("Assumptions:\n  - " + "\n  - ".join(assumptions))
    load = os.getloadavg()[0]
    print(f"load average (1 min): {load:.2f} on {os.cpu_count()} cores; torch {torch.__version__}")
    from hsi_core.io import atomic_write_json

    atomic_write_json(args.json, {"step_rates": steps, "data_rates": data, "checkpoints": ck,
                                  "gpu_rates_used": rates, "gpu_rates_source": source, "workers": args.workers,
                                  "data_rates_used": used, "estimate_minutes": stages,
                                  "estimate_minutes_linear_worker_scaling": linear_stages, "assumptions": assumptions,
                                  "load_average_1min": round(load, 2), "cpu_count": os.cpu_count(),
                                  "threads": torch.get_num_threads(), "torch": torch.__version__,
                                  "command": "python benchmarks/bench_hsi_training.py"})


if __name__ == "__main__":
    main()
