"""HSI prediction: batched saliency maps, map files, asynchronous writing and low-latency single images.

Used by the command line (``hsi_core.cli``) and by folder generation (``hsi_core.generation``); it imports
neither of them.

* ``predict_saliency(model, images, labels)``: maps ``(N, S, S)`` for paths, arrays or tensors, in batches on
  a device; on CUDA by default in bfloat16 autocast with channels_last (``amp=False`` turns both off).
* ``save_map`` / ``encode_map``: one map as an 8-bit max-scaled ``.png`` or a float ``.npy``, written atomically.
* ``MapWriter``: the same writes on a thread pool (PNG/zlib encoding releases the GIL), so that the GPU does
  not wait for the disk; errors surface at ``close()``.
* ``SingleImagePredictor``: batch-1 prediction with the launch overhead removed (a CUDA graph on CUDA, fp32,
  since bfloat16 is slower than fp32 at batch 1: ``benchmarks/bench_hsi_inference.py``); plain eager on the CPU.
* ``load_model``: an HSI from a checkpoint or an untrained one, with the labels it must explain.
"""

from __future__ import annotations

import io
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from hsi_core.models.hsi import HSI, load_hsi, preprocess
from hsi_core.precision import autocast, inference_speedups  # noqa: F401  (autocast: part of predict's API)


# ----------------------------------------------------------------------------- precision
def use_amp(device: torch.device, amp: bool | None) -> bool:
    """bfloat16 autocast in effect (``hsi_core.precision``: ``None`` = on for CUDA only, a bool is kept)."""
    return inference_speedups(device, amp)[0]


def prepare_model(model: torch.nn.Module, device: torch.device, amp: bool) -> torch.nn.Module:
    """``model`` in eval mode on ``device``; channels_last weights where the policy turns them on with ``amp``."""
    model = model.eval().to(device)
    if inference_speedups(device, amp)[1]:
        model = model.to(memory_format=torch.channels_last)
    return model


# ----------------------------------------------------------------------------- batched prediction
def as_batch(images: Any, image_size: int) -> torch.Tensor:
    """Paths, uint8 ``(H, W, 3)`` arrays or a [0, 1] tensor -> ``(N, 3, S, S)`` float in [0, 1]."""
    from hsi_core.io import read_image

    if isinstance(images, torch.Tensor):
        return preprocess(images, image_size)
    if isinstance(images, (str, Path)):
        images = [images]
    arrays = [read_image(x) if isinstance(x, (str, Path)) else np.asarray(x) for x in images]
    return preprocess(arrays, image_size)


def label_ids_for(model: torch.nn.Module, labels: str | Sequence[str], n: int) -> torch.Tensor:
    """One label id per image (``ValueError`` when the counts differ or a label is unknown)."""
    names = [labels] * n if isinstance(labels, str) else list(labels)
    if len(names) != n:
        raise ValueError(f"predict_saliency: {n} images but {len(names)} labels")
    return model.label_ids(names) if getattr(model, "uses_text", False) else torch.zeros(n, dtype=torch.long)


def forward_maps(model: torch.nn.Module, x: torch.Tensor, ids: torch.Tensor, amp: bool) -> torch.Tensor:
    """One batch through the model: ``(B, S, S)`` float32 saliency on ``x``'s device."""
    if inference_speedups(x.device, amp)[1]:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(x.device, amp):
        return model(x, ids)["saliency"].float()


@torch.no_grad()
def predict_saliency(model: HSI, images: Any, labels: str | Sequence[str], batch_size: int = 16,
                     device: str | torch.device | None = None, output_size: tuple[int, int] | None = None,
                     progress: bool = False, amp: bool | None = None) -> torch.Tensor:
    """Saliency maps ``(N, S, S)`` (CPU, in (0, 1)) for ``N`` images, each explained by its label.

    ``images``: image paths, uint8 ``(H, W, 3)`` arrays, or a float ``(N, 3, H, W)`` tensor in [0, 1].
    ``labels``: one label for all images or one per image (names from ``model.labels``; ignored by
    ``HSIBaseline``). Images go through the model ``batch_size`` at a time on ``device`` (default: the
    model's); ``amp`` (default: on for CUDA) runs bfloat16 autocast with channels_last. With ``output_size``
    the maps are resized bilinearly to it.
    """
    if batch_size < 1:
        raise ValueError(f"predict_saliency: batch_size must be positive, got {batch_size}")
    batch = as_batch(images, model.image_size)
    n = batch.shape[0]
    ids = label_ids_for(model, labels, n)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    amp = use_amp(device, amp)
    was_training = model.training
    prepare_model(model, device, amp)
    chunks: Any = range(0, n, batch_size)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="HSI predict", unit="batch")
    out = []
    for start in chunks:
        x = batch[start:start + batch_size].to(device, non_blocking=True)
        maps = forward_maps(model, x, ids[start:start + batch_size].to(device), amp)
        if output_size is not None:
            maps = F.interpolate(maps[:, None], size=tuple(output_size), mode="bilinear",
                                 align_corners=False)[:, 0]
        out.append(maps.cpu())
    model.train(was_training)
    return torch.cat(out)


def predict_files(model: HSI, paths: Sequence[str | Path], labels: Sequence[str], batch_size: int = 16,
                  device: str | torch.device | None = None, *, native_size: bool = True,
                  amp: bool | None = None) -> list[torch.Tensor]:
    """Maps for image files, batched: one ``(H, W)`` map per file at the image's own size
    (``native_size``) or at the model's. ``FileNotFoundError`` names a missing file before any work."""
    from PIL import Image

    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
    maps = predict_saliency(model, paths, list(labels), batch_size, device, amp=amp)
    if not native_size:
        return list(maps)
    out = []
    for path, m in zip(paths, maps):
        with Image.open(path) as im:
            size = (im.height, im.width)
        out.append(F.interpolate(m[None, None], size=size, mode="bilinear", align_corners=False)[0, 0])
    return out


# ----------------------------------------------------------------------------- map files
def to_uint8(maps: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` maps -> uint8, each divided by its maximum (an all-zero map stays 0); works on any device,
    so that only bytes cross from the GPU. Same rounding as ``save_map``'s PNG branch."""
    m = maps.float()
    peak = m.flatten(1).amax(1).view(-1, 1, 1)
    scaled = torch.where(peak > 0, m / peak.clamp_min(1e-30), m)
    return torch.round(scaled * 255).clamp_(0, 255).to(torch.uint8)


def encode_map(saliency: torch.Tensor | np.ndarray, path: str | Path) -> bytes:
    """The bytes of one ``(H, W)`` map file: ``.npy`` keeps floats; any other suffix is an 8-bit grey PNG,
    max-scaled (a uint8 map is written as it is). ``ValueError`` naming ``path`` for a bad map."""
    from PIL import Image

    arr = saliency.detach().cpu().numpy() if isinstance(saliency, torch.Tensor) else np.asarray(saliency)
    if arr.ndim != 2:
        raise ValueError(f"{path}: expected an (H, W) map, got shape {arr.shape}")
    buffer = io.BytesIO()
    if Path(path).suffix.lower() == ".npy":
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise ValueError(f"{path}: the map contains NaN or infinity")
        np.save(buffer, arr)
        return buffer.getvalue()
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float32)
        if not np.isfinite(arr).all():
            raise ValueError(f"{path}: the map contains NaN or infinity")
        scaled = arr / arr.max() if arr.max() > 0 else arr
        arr = np.round(scaled * 255).astype(np.uint8)
    Image.fromarray(arr, mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def save_map(saliency: torch.Tensor | np.ndarray, path: str | Path) -> Path:
    """Write one ``(H, W)`` map atomically (``encode_map``'s format, chosen by the suffix)."""
    from hsi_core.io import atomic_write_bytes

    return atomic_write_bytes(Path(path), encode_map(saliency, path))


class MapWriter:
    """Write maps on ``threads`` background threads; at most ``2 * threads`` writes wait at a time (memory
    stays bounded). ``close()`` (or leaving the ``with`` block) waits for all and re-raises the first error."""

    def __init__(self, threads: int = 8) -> None:
        if threads < 1:
            raise ValueError(f"MapWriter: threads must be >= 1, got {threads}")
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="hsi-maps")
        self.pending: list[Future] = []
        self.limit = 2 * threads

    def submit(self, saliency: torch.Tensor | np.ndarray, path: str | Path) -> None:
        self.pending.append(self.pool.submit(save_map, saliency, path))
        if len(self.pending) > self.limit:
            done, self.pending = self.pending[: -self.limit], self.pending[-self.limit:]
            for future in done:
                future.result()

    def close(self) -> None:
        try:
            for future in self.pending:
                future.result()
        finally:
            self.pending = []
            self.pool.shutdown(wait=True)

    def __enter__(self) -> "MapWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ----------------------------------------------------------------------------- single images
class SingleImagePredictor:
    """Batch-1 prediction with little overhead: ``predictor(image (3, S, S) or (1, 3, S, S), label)``.

    On CUDA with ``cuda_graph=True`` the forward pass is captured once as a CUDA graph (fp32: at batch 1
    bfloat16 autocast is slower than fp32 on an H100, ``benchmarks/bench_hsi_inference.py``) and replayed; elsewhere it runs eagerly.
    Returns a ``(S, S)`` map on the CPU."""

    def __init__(self, model: HSI, device: str | torch.device = "cpu", *, cuda_graph: bool = True,
                 warmup: int = 3) -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        size = model.image_size
        self.static_x = torch.zeros(1, 3, size, size, device=self.device)
        self.static_id = torch.zeros(1, dtype=torch.long, device=self.device)
        self.graph = None
        if cuda_graph and self.device.type == "cuda":
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream), torch.no_grad():
                for _ in range(warmup):
                    self._forward(self.static_x, self.static_id)
            torch.cuda.current_stream().wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph), torch.no_grad():
                self.static_out = self._forward(self.static_x, self.static_id)

    def _forward(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The model's forward without its host-side label checks (they synchronise, which a CUDA graph
        capture forbids); ``__call__`` checks the label before copying its id in."""
        from hsi_core.models.hsi import score_map

        m = self.model
        enc = m.encode_image(x)
        a = score_map(enc["z"], m.text_embeddings[ids].to(enc["z"].dtype)) if m.uses_text else None
        return m.decode(m.features(enc), a)

    @torch.no_grad()
    def __call__(self, image: torch.Tensor, label: str) -> torch.Tensor:
        x = preprocess(image, self.model.image_size)
        ids = label_ids_for(self.model, [label], 1)
        if self.graph is None:
            return self.model(x.to(self.device), ids.to(self.device))["saliency"][0].float().cpu()
        self.static_x.copy_(x, non_blocking=True)
        self.static_id.copy_(ids, non_blocking=True)
        self.graph.replay()
        return self.static_out[0].float().cpu()


# ----------------------------------------------------------------------------- models
def load_model(weights: str | Path | None, clip_weights: str | Path | None, labels: Sequence[str],
               device: str | torch.device = "cpu") -> HSI:
    """An HSI for prediction: from an HSI checkpoint (``weights``) or, without one, an untrained HSI on
    ``clip_weights`` (or random CLIP). Labels missing from a checkpoint's vocabulary are embedded with the
    CLIP text tower when real CLIP weights are available, else ``ValueError``."""
    if weights is None:
        model = HSI(clip_weights, labels=list(dict.fromkeys(labels)))
    else:
        model = load_hsi(weights, clip_weights=clip_weights, labels=labels)
    return model.to(device).eval()
