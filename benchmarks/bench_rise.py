"""RISE images per second: ``hsi_core.xai.rise`` vs xaitk-saliency's ``RISEStack`` on the same CPU and model.

Both sides explain the same images with the same classifier (the demo ``SmallCNN``, random weights: speed does
not depend on them), the same N, s and p1, and the same forward batch size; both are timed in this run and the
claim is their ratio (target: at least 10x). xaitk-saliency is given the fairest black box we can write: its
masked images are stacked and classified in batches of ``--batch-size`` by the same torch model.

    python benchmarks/bench_rise.py [--n-masks 4000] [--images 4] [--size 224] [--device cpu]

Writes ``benchmarks/results/rise.json`` (atomic) and prints it.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any, Hashable, Iterable, Iterator

import numpy as np
import torch

from hsi_core import xai
from hsi_core.io import atomic_write_json
from hsi_core.models.classifier import SmallCNN


def xaitk_blackbox(model: torch.nn.Module, n_classes: int, batch_size: int) -> Any:
    """A smqtk ``ClassifyImage`` over a torch model, classifying xaitk's perturbed images in batches."""
    from smqtk_classifier.interfaces.classify_image import ClassifyImage

    class TorchBlackbox(ClassifyImage):
        def get_labels(self) -> list[Hashable]:
            return list(range(n_classes))

        @torch.no_grad()
        def classify_images(self, img_iter: Iterable[np.ndarray]) -> Iterator[dict[Hashable, float]]:
            batch: list[np.ndarray] = []

            def flush() -> Iterator[dict[Hashable, float]]:
                x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float()
                probs = model(x.to(next(model.parameters()).device)).softmax(-1).cpu().numpy()
                batch.clear()
                for row in probs:
                    yield dict(enumerate(row.tolist()))

            for img in img_iter:
                batch.append(np.asarray(img, dtype=np.float32))
                if len(batch) == batch_size:
                    yield from flush()
            if batch:
                yield from flush()

        def get_config(self) -> dict[str, Any]:
            return {}

    return TorchBlackbox()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-masks", type=int, default=4000)
    parser.add_argument("--s", type=int, default=7)
    parser.add_argument("--p1", type=float, default=0.5)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--xaitk-images", type=int, default=1, help="images timed for xaitk (it is slow)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--model", choices=("smallcnn", "pooled-linear"), default="smallcnn",
                        help="pooled-linear: an almost free model, to time RISE's own machinery (masks, scoring)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--xaitk-model-device", default="cpu",
                        help="where xaitk's black box runs the model (xaitk itself is CPU-only)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "rise.json"))
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    if args.model == "smallcnn":
        model = SmallCNN(n_classes=20, width=args.width, input_size=args.input_size).eval()
        model_name = f"SmallCNN(width={args.width}, input {args.input_size})"
    else:
        model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(8), torch.nn.Flatten(), torch.nn.Linear(192, 20)).eval()
        model_name = "pooled-linear (8x8 average pool + linear)"
    images = torch.rand(args.images, 3, args.size, args.size)
    targets = torch.arange(args.images) % 20
    result: dict[str, Any] = {"n_masks": args.n_masks, "s": args.s, "p1": args.p1, "size": args.size,
                              "batch_size": args.batch_size, "model": model_name,
                              "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()}

    # ours, on the requested device (CPU by default: the like-for-like comparison)
    dev = torch.device(args.device)
    model_dev, images_dev = model.to(dev), images.to(dev)
    xai.rise(model_dev, images_dev[:1], targets[:1], n_masks=args.batch_size, s=args.s, p1=args.p1)  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    ours = xai.rise(model_dev, images_dev, targets, n_masks=args.n_masks, s=args.s, p1=args.p1,
                    batch_size=args.batch_size, debias=True)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t_ours = time.perf_counter() - t0
    result.update(device=str(dev), ours_seconds=t_ours, ours_images_per_second=args.images / t_ours)

    # xaitk-saliency, CPU only (that is all it offers)
    try:
        import xaitk_saliency
        from xaitk_saliency.impls.gen_image_classifier_blackbox_sal.rise import RISEStack
    except ImportError as error:
        result["xaitk_error"] = f"xaitk-saliency not importable: {error}"
    else:
        model_box = model.to(args.xaitk_model_device)
        stack = RISEStack(n=args.n_masks, s=args.s, p1=args.p1, seed=0, threads=0, debiased=True)
        box = xaitk_blackbox(model_box, 20, args.batch_size)
        k = max(1, min(args.xaitk_images, args.images))
        t0 = time.perf_counter()
        theirs = [stack(images[i].permute(1, 2, 0).numpy().astype(np.float32), box) for i in range(k)]
        t_theirs = time.perf_counter() - t0
        corr = [float(np.corrcoef(theirs[i][int(targets[i])].ravel(), ours[i].cpu().numpy().ravel())[0, 1])
                for i in range(k)]
        result.update(xaitk_model_device=args.xaitk_model_device, xaitk_version=xaitk_saliency.__version__ if hasattr(xaitk_saliency, "__version__") else "?",
                      xaitk_images=k, xaitk_seconds=t_theirs, xaitk_images_per_second=k / t_theirs,
                      speedup=(args.images / t_ours) / (k / t_theirs),
                      map_correlation_different_masks=corr)
    atomic_write_json(args.out, result)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
