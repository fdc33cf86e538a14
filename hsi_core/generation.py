"""HSI maps for a folder of labelled images (HSI paper, "HSI-Generated Human Saliency Map", Figure 11b).

``generate_hsi_maps(model, image_dir, out_dir)`` explains every image by its own label (the ImageNet
one-per-class layout ``<wnid>_<class>.JPEG``, or the val layout with a label file; see
``hsi_core.datasets.list_imagenet_images``) and writes

    out_dir/maps/<image stem>.png     the HSI map at the model's resolution (8-bit, max-scaled; or .npy floats)
    out_dir/manifest.json             one record per image (image, wnid, label, map, size) + the model's config

Each map is written atomically as soon as its batch is done, and a map already on disk is not recomputed, so a
killed run started again resumes where it stopped. Launched by ``torchrun --nproc_per_node K``, rank ``r`` takes
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

from hsi_core.datasets import ImageNetItem, list_imagenet_images
from hsi_core.io import atomic_write_json

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


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


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
) -> dict[str, Any]:
    """HSI maps for every labelled image of ``image_dir`` (see the module docstring); returns the manifest
    (rank 0) or this rank's summary (other ranks). ``model`` is an ``HSI``/``HSIBaseline`` whose vocabulary
    holds the class names (``hsi_core.cli.load_model`` embeds new ones when real CLIP weights are given)."""
    from tqdm.auto import tqdm

    from hsi_core.cli import predict_saliency, save_map

    if fmt not in ("png", "npy"):
        raise ValueError(f"generate_hsi_maps: fmt must be 'png' or 'npy', got {fmt!r}")
    if batch_size < 1:
        raise ValueError(f"generate_hsi_maps: batch_size must be >= 1, got {batch_size}")
    image_dir, out_dir = Path(image_dir), Path(out_dir)
    items = list(items) if items is not None else list_imagenet_images(image_dir, label_file=label_file)
    items = items[:limit] if limit is not None else items
    if not items:
        raise ValueError(f"{image_dir}: no labelled images to explain")
    if getattr(model, "uses_text", False):
        missing = sorted({it.class_name for it in items} - set(model.labels))
        if missing:
            raise ValueError(f"{image_dir}: labels {missing[:10]} (of {len(missing)}) are not in the HSI model's "
                             "vocabulary; load it with hsi_core.cli.load_model(..., clip_weights=...) to embed them")
    rank, world, dev = _distributed(torch.device(device))
    mine = shard(items, rank, world)
    todo = [it for it in mine if overwrite or not map_path(out_dir, it, fmt).is_file()]
    (out_dir / "maps").mkdir(parents=True, exist_ok=True)
    model.eval().to(dev)
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc=f"HSI maps (rank {rank}/{world})", unit="img", disable=not progress,
               position=rank)
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        maps = predict_saliency(model, [it.path for it in batch], [it.class_name for it in batch],
                                batch_size=batch_size, device=dev)
        for it, m in zip(batch, maps):
            save_map(m.numpy(), map_path(out_dir, it, fmt))
        bar.update(len(batch))
    bar.close()
    seconds = time.perf_counter() - t0
    summary = {"rank": rank, "world_size": world, "assigned": len(mine), "computed": len(todo),
               "skipped": len(mine) - len(todo), "seconds": seconds}
    _barrier(world)
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
    p.add_argument("--label-file", type=Path, default=None)
    p.add_argument("--batch-size", type=int, default=16)
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
    from hsi_core.cli import load_model

    items = list_imagenet_images(args.images, label_file=args.label_file)
    items = items[:args.limit] if args.limit is not None else items
    model = load_model(args.weights, args.clip_weights, [it.class_name for it in items], device="cpu")
    result = generate_hsi_maps(model, args.images, args.out, items=items, batch_size=args.batch_size,
                               device=args.device, fmt=args.format, overwrite=args.overwrite,
                               progress=not args.no_progress)
    if "images" in result:
        print(f"{result['n_images']} HSI maps in {args.out} (manifest {args.out / MANIFEST}); "
              f"rank 0 computed {result['rank0']['computed']} in {result['rank0']['seconds']:.1f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
