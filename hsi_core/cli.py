"""Command line: ``hsi predict | generate ...`` (wiring only).

``hsi predict IMAGE [IMAGE ...] --label goldfish [--weights W] -o map.png`` and ``hsi generate IMAGES OUT``.
Each subcommand is a pair of functions in ``SUBCOMMANDS``: one adds its arguments to an ``argparse``
subparser, the other runs it and returns the exit status. Add a subcommand by appending to that list.
The work is done in the library: ``hsi_core.predict`` (batched prediction, map files, model loading) and
``hsi_core.generation`` (a folder of labelled images); both are importable without this module.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from hsi_core import generation, pseudo_labels
from hsi_core.predict import load_model, predict_files, predict_saliency, save_map  # noqa: F401 (re-exported)


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
    p.add_argument("--no-amp", action="store_true", help="fp32 on CUDA (default there: bf16 + channels_last)")


def _run_predict(args: argparse.Namespace) -> int:
    labels = args.label * len(args.images) if len(args.label) == 1 else args.label
    if len(labels) != len(args.images):
        raise ValueError(f"{len(args.images)} images but {len(args.label)} --label values "
                         "(give one, or one per image)")
    if args.weights is None:
        print("hsi predict: no --weights given: the maps come from an UNTRAINED HSI "
              f"({'CLIP weights ' + str(args.clip_weights) if args.clip_weights else 'random CLIP init'}); "
              "train one with hsi_core.training (notebook 04).", file=sys.stderr)
    model = load_model(args.weights, args.clip_weights, labels, args.device)
    maps = predict_files(model, args.images, labels, args.batch_size, args.device,
                         native_size=not args.model_size, amp=False if args.no_amp else None)
    single = len(args.images) == 1 and args.output.suffix != ""
    for image, label, m in zip(args.images, labels, maps):
        target = args.output if single else args.output / f"{image.stem}_{label.replace(' ', '_')}.png"
        save_map(m, target)
        print(f"{image} [{label}] -> {target}")
    return 0


#: (name, add arguments to the subparsers, run) for every subcommand; append to add one.
SUBCOMMANDS: list[tuple[str, Callable[[Any], None], Callable[[argparse.Namespace], int]]] = [
    ("predict", _add_predict, _run_predict),
    ("generate", generation.add_generate, generation.run),
    ("prepare", pseudo_labels.add_prepare_parser, pseudo_labels.run_prepare),
]


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
