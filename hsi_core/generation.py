"""HSI maps for a folder of labelled images (HSI paper, "HSI-Generated Human Saliency Map", Figure 11b).

``generate_hsi_maps(model, image_dir, out_dir)`` explains every image by its own label (the ImageNet
one-per-class layout ``<wnid>_<class>.JPEG``, or the val layout with a label file; see
``hsi_core.datasets.list_imagenet_images``) and writes

    out_dir/maps/<image stem>.png     the HSI map at the model's resolution (8-bit, max-scaled; or .npy floats)
    out_dir/manifest.json             one record per image (image, wnid, label, map, size) + the model's config

At scale, images are decoded and resized in ``DataLoader`` workers (``num_workers``; or, with
``decode="gpu"``, JPEG bytes are read in the workers and decoded on the GPU by ``torchvision.io.decode_jpeg``),
the model runs in bfloat16 autocast with channels_last on CUDA (``amp=False`` turns both off) at a large batch,
PNG maps are scaled to 8 bits on the device and written on a thread pool (``hsi_core.predict.MapWriter``).
Each map is written atomically, and a map already on disk is not recomputed, so a killed run started again
resumes where it stopped. Launched by ``torchrun --nproc_per_node K``, rank ``r`` takes
images ``r, r + K, ...`` (gloo on the CPU, nccl with one GPU per rank) and rank 0 writes the manifest after a
barrier. Command line: ``python -m hsi_core.generation IMAGES OUT --weights HSI.pt [--clip-weights RN50.pt]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from hsi_core.datasets import ImageNetItem, list_imagenet_images
from hsi_core.io import atomic_write_json
from hsi_core.training import barrier
from hsi_core.predict import MapWriter, forward_maps, load_model, prepare_model, to_uint8, use_amp

MANIFEST = "manifest.json"


def map_path(out_dir: str | Path, item: ImageNetItem, fmt: str = "png") -> Path:
    """Where the map of ``item`` goes: ``out_dir/maps/<stem>.<fmt>``."""
    return Path(out_dir) / "maps" / f"{item.path.stem}.{fmt}"


def shard(items: Sequence[Any], rank: int, world: int) -> list[Any]:
    """Rank ``rank``'s share of ``items``: every ``world``-th item starting at ``rank``."""
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"shard: need 0 <= rank < world, got rank={rank}, world={world}")
    return list(items[rank::world])


def _distributed(device: torch.device) -> tuple[int, int, torch.device]:
    from hsi_core.training import distributed_context

    rank, world = distributed_context(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    return rank, world, device


def write_manifest(out_dir: str | Path, items: Sequence[ImageNetItem], image_dir: str | Path,
                   model_config: dict[str, Any], fmt: str = "png", **extra: Any) -> dict[str, Any]:
    """Write ``out_dir/manifest.json`` for ``items``; ``FileNotFoundError`` names the first missing map."""
    out_dir, image_dir = Path(out_dir), Path(image_dir)
    records = []
    for item in items:
        path = map_path(out_dir, item, fmt)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: map of {item.path} missing; run the generation again to resume")
        records.append({"image": str(item.path.relative_to(image_dir)) if item.path.is_relative_to(image_dir)
                        else str(item.path), "wnid": item.wnid, "label": item.class_name,
                        "map": str(path.relative_to(out_dir))})
    manifest = {"image_dir": str(image_dir.resolve()), "n_images": len(records), "format": fmt,
                "model": model_config, "images": records, **extra}
    atomic_write_json(out_dir / MANIFEST, manifest)
    return manifest


class ImageFiles(Dataset):
    """``(index, image)`` for a list of ``ImageNetItem``: the image decoded and resized to ``size x size``
    as ``hsi_core.models.hsi.preprocess`` does (float bilinear, ``align_corners=False``), in a worker.
    With ``raw_jpeg=True`` a JPEG comes back as its undecoded bytes (uint8 1-D) for GPU decoding."""

    def __init__(self, items: Sequence[ImageNetItem], size: int, raw_jpeg: bool = False) -> None:
        self.items, self.size, self.raw_jpeg = list(items), size, raw_jpeg

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        from hsi_core.io import read_image
        from hsi_core.models.hsi import preprocess

        path = self.items[index].path
        if self.raw_jpeg and path.suffix.lower() in (".jpg", ".jpeg"):
            if not path.is_file():
                raise FileNotFoundError(f"image file not found: {path}")
            return index, torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
        return index, preprocess(read_image(path), self.size)[0]


def _collate(batch: list[tuple[int, torch.Tensor]]) -> tuple[list[int], list[torch.Tensor]]:
    return [i for i, _ in batch], [x for _, x in batch]


def decode_batch(images: list[torch.Tensor], size: int, device: torch.device,
                 paths: Sequence[Path] = ()) -> torch.Tensor:
    """Worker outputs -> ``(B, 3, size, size)`` on ``device``: decoded images are stacked, JPEG bytes are
    decoded on ``device`` (``torchvision.io.decode_jpeg``, RGB) and resized as ``preprocess`` does."""
    raw = [k for k, x in enumerate(images) if x.ndim == 1]
    out: list[torch.Tensor | None] = [x.to(device, non_blocking=True) if x.ndim == 3 else None for x in images]
    if raw:
        from torchvision.io import ImageReadMode, decode_jpeg

        try:
            decoded = decode_jpeg([images[k] for k in raw], mode=ImageReadMode.RGB, device=device)
        except RuntimeError as error:
            names = [str(paths[k]) for k in raw] if paths else []
            raise ValueError(f"JPEG decoding failed in a batch of {names[:3]}... ({error})") from error
        for k, img in zip(raw, decoded):
            t = img.float()[None] / 255.0
            out[k] = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0].clamp(0, 1)
    return torch.stack(out)  # type: ignore[arg-type]


def default_workers(device: torch.device) -> int:
    """DataLoader workers: none on the CPU (the model needs the cores), up to 8 feeding a GPU."""
    return 0 if device.type != "cuda" else max(1, min(8, (os.cpu_count() or 2) - 1))


def generate_hsi_maps(
    model: torch.nn.Module,
    image_dir: str | Path,
    out_dir: str | Path,
    *,
    items: Sequence[ImageNetItem] | None = None,
    label_file: str | Path | None = None,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    fmt: str = "png",
    overwrite: bool = False,
    limit: int | None = None,
    progress: bool = True,
    num_workers: int | None = None,
    amp: bool | None = None,
    decode: str = "cpu",
    write_threads: int = 4,
) -> dict[str, Any]:
    """HSI maps for every labelled image of ``image_dir`` (see the module docstring); returns the manifest
    (rank 0) or this rank's summary (other ranks). ``model`` is an ``HSI``/``HSIBaseline`` whose vocabulary
    holds the class names (``hsi_core.predict.load_model`` embeds new ones when real CLIP weights are given).

    ``num_workers``: DataLoader workers decoding and resizing (default ``default_workers``); ``amp``: bfloat16
    autocast + channels_last (default: on for CUDA); ``decode="gpu"``: JPEGs decoded on the CUDA device;
    ``write_threads``: threads writing map files. Paper scale on one H100: ``batch_size=256``, the defaults."""
    from tqdm import tqdm

    if fmt not in ("png", "npy"):
        raise ValueError(f"generate_hsi_maps: fmt must be 'png' or 'npy', got {fmt!r}")
    if batch_size < 1:
        raise ValueError(f"generate_hsi_maps: batch_size must be >= 1, got {batch_size}")
    if decode not in ("cpu", "gpu"):
        raise ValueError(f"generate_hsi_maps: decode must be 'cpu' or 'gpu', got {decode!r}")
    image_dir, out_dir = Path(image_dir), Path(out_dir)
    items = list(items) if items is not None else list_imagenet_images(image_dir, label_file=label_file)
    items = items[:limit] if limit is not None else items
    if not items:
        raise ValueError(f"{image_dir}: no labelled images to explain")
    if getattr(model, "uses_text", False):
        missing = sorted({it.class_name for it in items} - set(model.labels))
        if missing:
            raise ValueError(f"{image_dir}: labels {missing[:10]} (of {len(missing)}) are not in the HSI model's "
                             "vocabulary; load it with hsi_core.predict.load_model(..., clip_weights=...) "
                             "to embed them")
    rank, world, dev = _distributed(torch.device(device))
    if decode == "gpu" and dev.type != "cuda":
        raise ValueError(f"generate_hsi_maps: decode='gpu' needs a CUDA device, got {dev}")
    mine = shard(items, rank, world)
    todo = [it for it in mine if overwrite or not map_path(out_dir, it, fmt).is_file()]
    (out_dir / "maps").mkdir(parents=True, exist_ok=True)
    amp = use_amp(dev, amp)
    was_training = model.training
    prepare_model(model, dev, amp)
    workers = default_workers(dev) if num_workers is None else num_workers
    loader = DataLoader(ImageFiles(todo, model.image_size, raw_jpeg=decode == "gpu"), batch_size=batch_size,
                        num_workers=workers, collate_fn=_collate, pin_memory=dev.type == "cuda",
                        prefetch_factor=4 if workers > 0 else None)
    label_index = {name: i for i, name in enumerate(model.labels)} if getattr(model, "uses_text", False) else {}
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc=f"HSI maps (rank {rank}/{world})", unit="img", disable=not progress,
               position=rank)
    with MapWriter(write_threads) as writer, torch.no_grad():
        for indices, images in loader:
            batch = [todo[i] for i in indices]
            x = decode_batch(images, model.image_size, dev, [it.path for it in batch])
            ids = torch.tensor([label_index.get(it.class_name, 0) for it in batch], device=dev)
            maps = forward_maps(model, x, ids, amp)
            maps = to_uint8(maps).cpu() if fmt == "png" else maps.cpu()
            for it, m in zip(batch, maps):
                writer.submit(m, map_path(out_dir, it, fmt))
            bar.update(len(batch))
    bar.close()
    model.train(was_training)
    seconds = time.perf_counter() - t0
    summary = {"rank": rank, "world_size": world, "assigned": len(mine), "computed": len(todo),
               "skipped": len(mine) - len(todo), "seconds": seconds, "device": str(dev), "amp": amp,
               "num_workers": workers, "decode": decode, "batch_size": batch_size}
    barrier(world)
    if rank != 0:
        return summary
    config = model.config() if hasattr(model, "config") else {"kind": type(model).__name__}
    return write_manifest(out_dir, items, image_dir, config, fmt, world_size=world, rank0=summary)


def load_manifest(out_dir: str | Path) -> dict[str, Any]:
    """The manifest written by ``generate_hsi_maps`` (``FileNotFoundError`` when the run has not finished)."""
    import json

    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no manifest; run python -m hsi_core.generation first (or let it finish)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error


def load_maps(out_dir: str | Path) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Manifest records and the maps ``(N, H, W)`` float32 in [0, 1] they point to."""
    from hsi_core.io import read_image

    out_dir = Path(out_dir)
    manifest = load_manifest(out_dir)
    maps = []
    for rec in manifest["images"]:
        path = out_dir / rec["map"]
        if path.suffix == ".npy":
            if not path.is_file():
                raise FileNotFoundError(f"{path}: listed in {out_dir / MANIFEST} but missing")
            maps.append(np.load(path).astype(np.float32))
        else:
            maps.append(read_image(path)[..., 0].astype(np.float32) / 255.0)
    return manifest["images"], np.stack(maps)


# ----------------------------------------------------------------------------- command line
def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of ``generate`` (also usable as a subparser of ``hsi_core.cli``)."""
    p = parser or argparse.ArgumentParser(prog="python -m hsi_core.generation",
                                          description="HSI maps for a folder of labelled images, with a manifest.")
    p.add_argument("images", type=Path, help="folder of <wnid>_<class>.JPEG images (or val layout + --label-file)")
    p.add_argument("out", type=Path, help="output folder (maps/ and manifest.json)")
    p.add_argument("--weights", type=Path, default=None, help="HSI checkpoint (hsi_core.models.hsi.save_hsi)")
    p.add_argument("--clip-weights", type=Path, default=None, help="local CLIP RN50 weights (to embed new labels)")
    p.add_argument("--label-file", type=Path, default=None,
                   help="LOC_val_solution.csv (official val layout) or Caffe's val.txt")
    p.add_argument("--synset-file", type=Path, default=None,
                   help="LOC_synset_mapping.txt / synset_words.txt (default: found beside the images)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (H100: 256)")
    p.add_argument("--num-workers", type=int, default=None, help="decoding workers (default: 0 on CPU, 8 on CUDA)")
    p.add_argument("--decode", choices=("cpu", "gpu"), default="cpu", help="gpu: torchvision decode_jpeg on CUDA")
    p.add_argument("--no-amp", action="store_true", help="fp32 on CUDA (default there: bf16 + channels_last)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--format", choices=("png", "npy"), default="png")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--overwrite", action="store_true", help="recompute maps already on disk")
    p.add_argument("--no-progress", action="store_true")
    return p


def add_generate(sub: Any) -> None:
    """Add the ``generate`` subcommand to ``hsi_core.cli``'s subparsers (``SUBCOMMANDS`` entry:
    ``("generate", generation.add_generate, generation.run)``)."""
    build_parser(sub.add_parser("generate", help="HSI maps for a folder of labelled images, with a manifest"))


def run(args: argparse.Namespace) -> int:
    """Run ``generate`` from parsed arguments; prints the summary."""
    items = list_imagenet_images(args.images, label_file=args.label_file, synset_file=args.synset_file)
    items = items[:args.limit] if args.limit is not None else items
    model = load_model(args.weights, args.clip_weights, [it.class_name for it in items], device="cpu")
    result = generate_hsi_maps(model, args.images, args.out, items=items, batch_size=args.batch_size,
                               device=args.device, fmt=args.format, overwrite=args.overwrite,
                               progress=not args.no_progress, num_workers=args.num_workers,
                               amp=False if args.no_amp else None, decode=args.decode)
    if "images" in result:
        print(f"{result['n_images']} HSI maps in {args.out} (manifest {args.out / MANIFEST}); "
              f"rank 0 computed {result['rank0']['computed']} in {result['rank0']['seconds']:.1f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
