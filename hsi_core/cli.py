"""Command line: ``hsi predict IMAGE [IMAGE ...] --label goldfish [--weights W] -o map.png``.

Each subcommand is a pair of functions in ``SUBCOMMANDS``: one adds its arguments to an ``argparse``
subparser, the other runs it and returns the exit status. Add a subcommand by appending to that list.
The batched Python entry point is ``predict_saliency``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from hsi_core.models.hsi import HSI, load_hsi, preprocess


def _as_batch(images: Any, image_size: int) -> torch.Tensor:
    """Paths, uint8 arrays or a [0, 1] tensor -> ``(N, 3, S, S)`` in [0, 1]."""
    from hsi_core.io import read_image

    if isinstance(images, torch.Tensor):
        return preprocess(images, image_size)
    if isinstance(images, (str, Path)):
        images = [images]
    arrays = [read_image(x) if isinstance(x, (str, Path)) else np.asarray(x) for x in images]
    return preprocess(arrays, image_size)


@torch.no_grad()
def predict_saliency(model: HSI, images: Any, labels: str | Sequence[str], batch_size: int = 16,
                     device: str | torch.device | None = None, output_size: tuple[int, int] | None = None,
                     progress: bool = False) -> torch.Tensor:
    """Saliency maps ``(N, S, S)`` (CPU, in (0, 1)) for ``N`` images, each explained by its label.

    ``images``: image paths, uint8 ``(H, W, 3)`` arrays, or a float ``(N, 3, H, W)`` tensor in [0, 1].
    ``labels``: one label for all images or one per image (names from ``model.labels``; ignored by
    ``HSIBaseline``). Images go through the model ``batch_size`` at a time on ``device``; with
    ``output_size`` the maps are resized bilinearly to it.
    """
    if batch_size < 1:
        raise ValueError(f"predict_saliency: batch_size must be positive, got {batch_size}")
    batch = _as_batch(images, model.image_size)
    n = batch.shape[0]
    names = [labels] * n if isinstance(labels, str) else list(labels)
    if len(names) != n:
        raise ValueError(f"predict_saliency: {n} images but {len(names)} labels")
    ids = model.label_ids(names) if model.uses_text else torch.zeros(n, dtype=torch.long)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval().to(device)
    chunks = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="HSI predict", unit="batch")
    out = []
    for start in chunks:
        x = batch[start:start + batch_size].to(device)
        maps = model(x, ids[start:start + batch_size].to(device))["saliency"].float()
        if output_size is not None:
            maps = F.interpolate(maps[:, None], size=tuple(output_size), mode="bilinear", align_corners=False)[:, 0]
        out.append(maps.cpu())
    model.train(was_training)
    return torch.cat(out)


def save_map(saliency: torch.Tensor | np.ndarray, path: str | Path) -> Path:
    """Write one ``(H, W)`` map: ``.npy`` keeps floats, any other suffix (``.png``) is 8-bit grey, max-scaled."""
    from PIL import Image

    from hsi_core.io import atomic_write_bytes

    arr = np.asarray(saliency, dtype=np.float32)
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise ValueError(f"{path}: expected a finite (H, W) map, got shape {arr.shape}")
    path = Path(path)
    import io

    buffer = io.BytesIO()
    if path.suffix.lower() == ".npy":
        np.save(buffer, arr)
    else:
        scaled = arr / arr.max() if arr.max() > 0 else arr
        Image.fromarray(np.round(scaled * 255).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


def load_model(weights: str | Path | None, clip_weights: str | Path | None, labels: Sequence[str],
               device: str | torch.device = "cpu") -> HSI:
    """An HSI for prediction: from an HSI checkpoint (``weights``) or, without one, an untrained HSI on
    ``clip_weights`` (or random CLIP). Labels missing from a checkpoint's vocabulary are embedded with the
    CLIP text tower when real CLIP weights are available, else ``ValueError``."""
    if weights is None:
        model = HSI(clip_weights, labels=list(dict.fromkeys(labels)))
    else:
        model = load_hsi(weights, clip_weights=clip_weights)
        missing = [label for label in dict.fromkeys(labels) if label not in model.labels]
        if missing and model.uses_text:
            if model.train_text_embeddings or clip_weights is None:
                raise ValueError(f"{weights}: labels {missing} are not in the checkpoint's vocabulary {model.labels}; "
                                 "pass --clip-weights (real CLIP RN50) to embed new labels with a frozen text tower")
            model.set_labels(model.labels + missing)
    return model.to(device).eval()


# ----------------------------------------------------------------------------- subcommands
def _add_predict(sub: Any) -> None:
    p = sub.add_parser("predict", help="predict the saliency map a person would produce explaining LABEL in IMAGE")
    p.add_argument("images", nargs="+", type=Path, help="image file(s)")
    p.add_argument("--label", action="append", required=True,
                   help="label to explain; give once for all images or once per image")
    p.add_argument("--weights", type=Path, default=None, help="HSI checkpoint (hsi_core.models.hsi.save_hsi / training)")
    p.add_argument("--clip-weights", type=Path, default=None,
                   help="local CLIP RN50 checkpoint (OpenAI RN50.pt or open_clip), needed to embed new labels")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output .png/.npy for one image; a folder for several (<image>_<label>.png)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--model-size", action="store_true", help="keep the 224x224 model resolution")


def _run_predict(args: argparse.Namespace) -> int:
    from PIL import Image

    labels = args.label * len(args.images) if len(args.label) == 1 else args.label
    if len(labels) != len(args.images):
        raise ValueError(f"{len(args.images)} images but {len(args.label)} --label values (give one, or one per image)")
    if args.weights is None:
        print("hsi predict: no --weights given: the maps come from an UNTRAINED HSI "
              f"({'CLIP weights ' + str(args.clip_weights) if args.clip_weights else 'random CLIP init'}); "
              "train one with hsi_core.training (notebook 04).", file=sys.stderr)
    model = load_model(args.weights, args.clip_weights, labels, args.device)
    single = len(args.images) == 1 and args.output.suffix != ""
    for image, label in zip(args.images, labels):
        if not image.is_file():
            raise FileNotFoundError(f"image file not found: {image}")
        size = None
        if not args.model_size:
            with Image.open(image) as im:
                size = (im.height, im.width)
        maps = predict_saliency(model, [image], [label], args.batch_size, args.device, output_size=size)
        target = args.output if single else args.output / f"{image.stem}_{label.replace(' ', '_')}.png"
        save_map(maps[0], target)
        print(f"{image} [{label}] -> {target}")
    return 0


#: (name, add arguments to the subparsers, run) for every subcommand; append to add one.
SUBCOMMANDS: list[tuple[str, Callable[[Any], None], Callable[[argparse.Namespace], int]]] = [
    ("predict", _add_predict, _run_predict),
]


def _register_generate() -> None:
    from hsi_core import generation

    SUBCOMMANDS.append(("generate", generation.add_generate, generation.run))


_register_generate()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hsi", description="HSI, the human saliency imitator")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, add, run in SUBCOMMANDS:
        add(sub)
        sub.choices[name].set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hsi`` console script. Errors print one line and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args))
    except (FileNotFoundError, ValueError) as error:
        print(f"hsi {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
