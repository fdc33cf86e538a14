"""Saliency-based explanations of an image classifier's decision (HSI paper, Figure 1, Figure 11, Table 4).

* ``guided_backprop``: Springenberg et al. 2015, through captum's ``GuidedBackprop``; the map is the largest
  absolute gradient over the colour channels.
* ``grad_cam``: Selvaraju et al. 2017, through captum's ``LayerGradCam`` on the model's last convolutional
  block (``model.cam_layer``, else ``layer4``, else the last ``Conv2d``), ReLU on, bilinear up-sampling to
  the input size.
* ``rise``: Petsiuk, Das and Saenko 2018, our own batched implementation. ``N`` random binary ``s x s`` grids
  (cells on with probability ``p1``) are up-sampled bilinearly to ``(s + 1) * ceil(H / s)`` and cropped at a
  random shift (RISE Sec. 3.2); the saliency of class ``c`` is ``S_c = 1 / (N p1) * sum_i f_c(I * M_i) M_i``
  (RISE Eq. 6), ``f_c`` the softmax probability. ``masks="per-image"`` (default) draws each image its own
  ``N`` masks, seeded by the image (``image_mask_seed``: the base ``seed`` and a hash of the image's values),
  so an image gets the same map alone or in any batch, at any position, on any device, and the masks' random
  error is independent from image to image (a bootstrap over images then covers it); ``masks="shared"`` is
  the authors' reading (eclique/RISE ``generate_masks``: one mask set, saved and reused for every image),
  whose random error is common to all images. The grids are drawn on the CPU (``N s^2`` values per image),
  masks are up-sampled on the device chunk by chunk, and each chunk's masked images go through the model in
  one batch, so memory is bounded by ``batch_size`` whatever ``N`` is. On CUDA the masked images are built
  in bfloat16 and the model runs under bfloat16 autocast with channels_last (``amp=False``: fp32). The
  occluder (what a masked-out pixel becomes) is a parameter: ``"black"`` (0, the RISE paper's ``I . M``)
  or ``"mean"``, the ImageNet mean colour: the authors' code (eclique/RISE, ``explanations.py`` and the
  notebooks) multiplies the *normalised* image by the mask, so a masked pixel becomes the dataset mean.

All three take ``images (B, 3, H, W)`` in [0, 1] and ``targets (B,)`` class indices, and return ``(B, H, W)``
float maps on the images' device, min-max normalised to [0, 1] per image (``normalize=False`` keeps raw values).
A blank map (``is_blank``: constant up to float32 rounding, e.g. Grad-CAM when the ReLU zeroes every cell)
normalises to the all-zero map, never to stretched rounding noise.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hsi_core.maps import minmax
from hsi_core.precision import autocast as precision_autocast, inference_speedups
from hsi_core.models.inputs import IMAGENET_MEAN

METHODS = ("GBP", "Grad-CAM", "RISE")


# ----------------------------------------------------------------------------- helpers
def _check(images: Tensor, targets: Any) -> tuple[Tensor, Tensor]:
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"xai: expected images as a (B, 3, H, W) tensor in [0, 1], got {shape}")
    if not torch.isfinite(images).all():
        raise ValueError("xai: images contain NaN or infinity")
    t = torch.as_tensor(targets, dtype=torch.long, device=images.device).reshape(-1)
    if t.numel() == 1 and images.shape[0] > 1:
        t = t.expand(images.shape[0])
    if t.numel() != images.shape[0]:
        raise ValueError(f"xai: {t.numel()} targets for {images.shape[0]} images")
    return images, t


#: A map is blank when its range is at most this share of its magnitude: 2**-20 (about 8 float32 ulps at
#: its largest value). Such a map holds rounding only (a collapsed model's output varies by ~1e-7 of its
#: value), and min-max normalising it would stretch that rounding into a picture.
BLANK_RTOL = 2.0 ** -20


def is_blank(maps: Tensor, rtol: float = BLANK_RTOL) -> Tensor:
    """``(B,)`` bool: maps of a ``(B, H, W)`` batch that are constant up to ``rtol`` of their magnitude
    (``max - min <= rtol * max(|max|, |min|)``; an all-zero map is blank)."""
    flat = maps.detach().flatten(1)
    lo, hi = flat.amin(1), flat.amax(1)
    return (hi - lo) <= rtol * torch.maximum(hi.abs(), lo.abs())


def normalize_maps(maps: Tensor, rtol: float = BLANK_RTOL) -> Tensor:
    """Min-max normalise each ``(H, W)`` map of a ``(B, H, W)`` batch to [0, 1] (``hsi_core.maps.minmax``, the
    exact range); a blank map (``is_blank``: flat up to ``rtol``, not only exactly flat) becomes the all-zero map."""
    blank = is_blank(maps, rtol).view(-1, 1, 1)
    return torch.where(blank, torch.zeros_like(maps), minmax(maps))


def default_cam_layer(model: nn.Module) -> nn.Module:
    """The last convolutional block: ``model.cam_layer``, else ``model.layer4`` (ResNets), else the last Conv2d."""
    for name in ("cam_layer", "layer4"):
        layer = getattr(model, name, None)
        if isinstance(layer, nn.Module):
            return layer
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"grad_cam: {type(model).__name__} has no Conv2d layer; pass layer= explicitly")
    return convs[-1]


# ----------------------------------------------------------------------------- gradient methods
def guided_backprop(model: nn.Module, images: Tensor, targets: Any, *, normalize: bool = True) -> Tensor:
    """Guided Backpropagation (captum): ``max_c |dy_t/dx_c|`` per pixel, ``(B, H, W)``."""
    from captum.attr import GuidedBackprop

    images, targets = _check(images, targets)
    model.eval()
    x = images.detach().clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*non-full backward hook.*")
        warnings.filterwarnings("ignore", message=".*Setting backward hooks.*")
        attr = GuidedBackprop(model).attribute(x, target=targets)
    maps = attr.detach().abs().amax(1)
    return normalize_maps(maps) if normalize else maps


def grad_cam(model: nn.Module, images: Tensor, targets: Any, *, layer: nn.Module | None = None,
             normalize: bool = True) -> Tensor:
    """Grad-CAM (captum ``LayerGradCam``) on ``layer`` (default: the last conv block), ReLU on, bilinear
    up-sampling to the input size: ``ReLU(sum_k alpha_k A^k)``, ``alpha_k`` the spatially averaged gradients."""
    from captum.attr import LayerAttribution, LayerGradCam

    images, targets = _check(images, targets)
    model.eval()
    layer = layer if layer is not None else default_cam_layer(model)
    cam = LayerGradCam(model, layer).attribute(images, target=targets, relu_attributions=True)
    cam = LayerAttribution.interpolate(cam.detach(), tuple(images.shape[-2:]), interpolate_mode="bilinear")
    maps = cam[:, 0].float()
    return normalize_maps(maps) if normalize else maps


# ----------------------------------------------------------------------------- RISE
def rise_grids(n: int, s: int = 7, p1: float = 0.5, seed: int = 0) -> Tensor:
    """``(n, s, s)`` binary grids, each cell on with probability ``p1`` (RISE Sec. 3.2, step 1), drawn on the CPU."""
    if n < 1 or s < 1 or not 0.0 < p1 <= 1.0:
        raise ValueError(f"RISE: need n >= 1, s >= 1, 0 < p1 <= 1; got n={n}, s={s}, p1={p1}")
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, s, s, generator=g) < p1).float()


def rise_shifts(n: int, s: int, size: tuple[int, int], seed: int = 0) -> Tensor:
    """``(n, 2)`` random ``(dy, dx)`` shifts in ``[0, cell)`` (RISE Sec. 3.2, step 3)."""
    cell_h, cell_w = math.ceil(size[0] / s), math.ceil(size[1] / s)
    g = torch.Generator().manual_seed(seed + 1)
    return torch.stack([torch.randint(0, cell_h, (n,), generator=g), torch.randint(0, cell_w, (n,), generator=g)], 1)


def _interp_matrix(s: int, cells: int, out: int, shifts: Tensor, device: torch.device) -> Tensor:
    """Rows of the bilinear (align_corners=False) up-sampling matrix ``s -> (s + 1) * cells`` starting at each
    shift: ``(n, out, s)``. Bilinear up-sampling is separable, so ``R_y G R_x^T`` is the up-sampled grid."""
    full = F.interpolate(torch.eye(s, device=device)[None], size=(s + 1) * cells, mode="linear",
                         align_corners=False)[0].T                                       # ((s+1)*cells, s)
    return full[shifts.to(device)[:, None] + torch.arange(out, device=device)]           # (n, out, s)


def masks_from_grids(grids: Tensor, shifts: Tensor, size: tuple[int, int]) -> Tensor:
    """Up-sample ``grids (n, s, s)`` bilinearly to ``(s + 1) * cell`` and crop ``size`` at ``shifts (n, 2)``
    (RISE Sec. 3.2, steps 2-3), all masks at once as two batched matrix products: ``(n, H, W)`` in [0, 1]."""
    n, s, _ = grids.shape
    h, w = size
    ry = _interp_matrix(s, math.ceil(h / s), h, shifts[:, 0], grids.device)             # (n, H, s)
    rx = _interp_matrix(s, math.ceil(w / s), w, shifts[:, 1], grids.device)             # (n, W, s)
    return (ry @ grids @ rx.transpose(1, 2)).clamp_(0.0, 1.0)


def rise_masks(n: int, size: tuple[int, int], s: int = 7, p1: float = 0.5, seed: int = 0,
               device: str | torch.device = "cpu") -> Tensor:
    """All ``n`` RISE masks ``(n, H, W)`` (the same ones ``rise`` uses for the same ``n, s, p1, seed``)."""
    return masks_from_grids(rise_grids(n, s, p1, seed).to(device), rise_shifts(n, s, size, seed), size)


def image_mask_seed(image: Tensor, seed: int = 0) -> int:
    """Seed of one image's RISE masks: numpy's ``SeedSequence`` over the base ``seed`` and the first 8 bytes
    of the BLAKE2b hash of the image's shape and float32 values (on the CPU). It depends on the image and
    ``seed`` only: not on the batch, the image's position in it, or the device. Two identical images share
    their masks; any change to an image's pixels draws it new ones."""
    if image.ndim != 3:
        raise ValueError(f"image_mask_seed: expected one (3, H, W) image, got shape {tuple(image.shape)}")
    values = image.detach().to("cpu", torch.float32).contiguous().numpy()
    digest = hashlib.blake2b(repr(values.shape).encode() + values.tobytes(), digest_size=8).digest()
    entropy = [int(seed) & (2 ** 64 - 1), int.from_bytes(digest, "little")]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 2)   # < 2**62: seed + 1 fits


def rise_image_masks(image: Tensor, n: int, s: int = 7, p1: float = 0.5, seed: int = 0,
                     device: str | torch.device = "cpu") -> Tensor:
    """The ``n`` masks ``(n, H, W)`` that ``rise(..., masks="per-image")`` draws for ``image (3, H, W)``."""
    return rise_masks(n, tuple(image.shape[-2:]), s, p1, image_mask_seed(image, seed), device)


MASK_MODES = ("per-image", "shared")


def rise_scoring(scores: Tensor, masks: Tensor, p1: float, *, debias: bool = False) -> Tensor:
    """RISE Eq. 6: ``S_c = 1 / (N p1) * sum_i scores[i, c] * M_i`` -> ``(C, H, W)``.

    ``scores (N, C)``: the model's class probabilities for the ``N`` masked images; ``masks (N, H, W)``.
    ``debias=True`` weights ``M_i - p1`` instead of ``M_i`` (xaitk-saliency's ``RISEScoring(p1)``): this
    removes the constant ``mean(scores) * E[M]`` background and leaves the map's shape otherwise unchanged.
    """
    if scores.ndim != 2 or masks.ndim != 3 or scores.shape[0] != masks.shape[0]:
        raise ValueError(f"rise_scoring: scores (N, C) and masks (N, H, W) must share N, got "
                         f"{tuple(scores.shape)} and {tuple(masks.shape)}")
    weights = masks - p1 if debias else masks
    return torch.einsum("nc,nhw->chw", scores.to(weights.dtype), weights) / (masks.shape[0] * p1)


# IMAGENET_MEAN (hsi_core.models.inputs): the occluder of the RISE authors' code (masking normalised inputs).


def occluder_colour(occluder: str | tuple[float, float, float] | Tensor, device: torch.device,
                    dtype: torch.dtype) -> Tensor:
    """``(1, 3, 1, 1)`` colour of masked-out pixels: ``"black"`` (0), ``"mean"`` (``IMAGENET_MEAN``) or an
    explicit RGB triple in [0, 1]."""
    if isinstance(occluder, str):
        if occluder not in ("black", "mean"):
            raise ValueError(f"rise: occluder must be 'black', 'mean' or an RGB triple, got {occluder!r}")
        occluder = (0.0, 0.0, 0.0) if occluder == "black" else IMAGENET_MEAN
    colour = torch.as_tensor(occluder, dtype=torch.float32).reshape(-1)
    if colour.numel() != 3 or not torch.isfinite(colour).all():
        raise ValueError(f"rise: occluder must be three finite RGB values, got {occluder}")
    return colour.view(1, 3, 1, 1).to(device=device, dtype=dtype)


def _probabilities(model: nn.Module, x: Tensor, output: str) -> Tensor:
    out = model(x)
    if output == "softmax":
        return out.float().softmax(-1)
    if output == "sigmoid":
        return out.float().sigmoid()
    return out.float()


@torch.no_grad()
def rise(
    model: nn.Module,
    images: Tensor,
    targets: Any,
    *,
    n_masks: int = 4000,
    s: int = 7,
    p1: float = 0.5,
    seed: int = 0,
    masks: str = "per-image",
    batch_size: int = 256,
    amp: bool | None = None,
    occluder: str | tuple[float, float, float] | Tensor = "black",
    output: str = "softmax",
    debias: bool = False,
    normalize: bool = True,
    progress: bool = False,
) -> Tensor:
    """RISE saliency ``(B, H, W)`` for ``targets`` (RISE Eq. 6), batched on the images' device.

    ``masks="per-image"`` (default): image ``i`` gets ``rise_image_masks(images[i], n_masks, s, p1, seed)``,
    seeded by the image itself, so its map does not depend on the batch it comes in (up to float32
    accumulation order). ``masks="shared"``: the same ``rise_masks(n_masks, (H, W), s, p1, seed)`` for every
    image (the authors' code). Each step forwards at most ``batch_size`` masked images
    (``images_per_step`` images x ``batch_size // images_per_step`` masks), so peak memory depends on
    ``batch_size``, not on ``n_masks``. ``amp`` (default: on for CUDA) builds the masked images in bfloat16
    and runs the model under bfloat16 autocast with channels_last.
    ``occluder``: the colour a masked pixel becomes, ``I * M + occluder * (1 - M)``: ``"black"`` (default,
    the paper's ``I . M``), ``"mean"`` (ImageNet mean, as the authors' code) or an RGB triple.
    ``output``: ``"softmax"`` (default; logits -> probabilities), ``"sigmoid"`` or ``"identity"``.
    """
    images, targets = _check(images, targets)
    if output not in ("softmax", "sigmoid", "identity"):
        raise ValueError(f"rise: output must be 'softmax', 'sigmoid' or 'identity', got {output!r}")
    if masks not in MASK_MODES:
        raise ValueError(f"rise: masks must be one of {MASK_MODES}, got {masks!r}")
    if batch_size < 1:
        raise ValueError(f"rise: batch_size must be >= 1, got {batch_size}")
    model.eval()
    device = images.device
    b, _, h, w = images.shape
    per_image = masks == "per-image"
    if per_image:                                   # (B, N, s, s) and (B, N, 2), drawn on the CPU
        seeds = [image_mask_seed(img, seed) for img in images]
        grids = torch.stack([rise_grids(n_masks, s, p1, k) for k in seeds])
        shifts = torch.stack([rise_shifts(n_masks, s, (h, w), k) for k in seeds])
    else:                                           # (1, N, s, s): one set, broadcast over the images
        grids = rise_grids(n_masks, s, p1, seed)[None]
        shifts = rise_shifts(n_masks, s, (h, w), seed)[None]
    amp, channels_last = inference_speedups(device, amp)
    dtype = torch.bfloat16 if amp else images.dtype
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        model.to(memory_format=torch.channels_last)
    autocast = precision_autocast(device, amp)
    colour = occluder_colour(occluder, device, dtype)
    background = colour.abs().sum() > 0
    img_step = max(1, min(b, batch_size // 8))          # images per step; at least 8 masks per step when possible
    mask_step = max(1, batch_size // img_step)
    sal = torch.zeros(b, h, w, device=device)
    source = images.to(dtype)
    buffer = torch.empty(img_step * mask_step, 3, h, w, device=device, dtype=dtype, memory_format=memory_format)
    steps: Any = [(i0, m0) for i0 in range(0, b, img_step) for m0 in range(0, n_masks, mask_step)]
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="RISE", unit="chunk")
    group_grids: Tensor | None = None
    for i0, m0 in steps:
        bi = min(img_step, b - i0)
        if m0 == 0:                                 # this group's grids on the device, once
            rows = slice(i0, i0 + bi) if per_image else slice(0, 1)
            group_grids, group_shifts = grids[rows].to(device), shifts[rows]
        g, sh = group_grids[:, m0:m0 + mask_step], group_shifts[:, m0:m0 + mask_step]
        gb, m = g.shape[:2]                         # gb: bi (per-image) or 1 (shared)
        step_masks = masks_from_grids(g.flatten(0, 1), sh.flatten(0, 1), (h, w)).view(gb, m, h, w)
        masks_x = step_masks.to(dtype)[:, :, None]                                   # (gb, m, 1, H, W)
        x = buffer[: bi * m]                                                          # reused: no page faults
        x5 = x.view(bi, m, 3, h, w) if memory_format == torch.contiguous_format else None
        if x5 is not None:
            torch.mul(source[i0:i0 + bi, None], masks_x, out=x5)
            if background:
                x5.add_(colour[None] * (1 - masks_x))
        else:
            prod = source[i0:i0 + bi, None] * masks_x
            if background:
                prod = prod + colour[None] * (1 - masks_x)
            x.copy_(prod.flatten(0, 1))
        with autocast:
            probs = _probabilities(model, x, output)
        p = probs.view(bi, m, -1).gather(2, targets[i0:i0 + bi, None, None].expand(bi, m, 1))[..., 0]
        weights = step_masks - p1 if debias else step_masks
        if per_image:
            sal[i0:i0 + bi] += torch.einsum("bm,bmhw->bhw", p.float(), weights)
        else:
            sal[i0:i0 + bi] += torch.einsum("bm,mhw->bhw", p.float(), weights[0])
    sal = sal / (n_masks * p1)
    if not torch.isfinite(sal).all():
        raise ValueError("rise: the model produced NaN or infinite scores")
    return normalize_maps(sal) if normalize else sal


# ----------------------------------------------------------------------------- all methods
def explain(model: nn.Module, images: Tensor, targets: Any, methods: tuple[str, ...] = METHODS,
            rise_kwargs: dict[str, Any] | None = None, normalize: bool = True) -> dict[str, Tensor]:
    """Every requested method's ``(B, H, W)`` maps, min-max normalised to [0, 1] (``normalize=False``: the
    methods' raw maps): ``{"GBP": ..., "Grad-CAM": ..., "RISE": ...}``.

    Args:
        model: an image classifier returning logits ``(B, classes)``.
        images: ``(B, 3, H, W)`` in [0, 1], on the model's device.
        targets: ``(B,)`` class indices (a sequence or a tensor), the classes explained.
        methods: any of ``"GBP"``, ``"Grad-CAM"``, ``"RISE"`` (default: all three).
        rise_kwargs: keywords for :func:`rise` (``n_masks``, ``s``, ``p1``, ``seed``, ...).
        normalize: min-max normalise each map to [0, 1] (default); ``False`` keeps raw maps.

    Returns:
        ``{method: (B, H, W) tensor}`` on the images' device, in the order of ``methods``.

    Raises:
        ValueError: a method is unknown, or the images or targets are malformed.
    """
    table: dict[str, Callable[..., Tensor]] = {
        "GBP": lambda m, x, t: guided_backprop(m, x, t, normalize=normalize),
        "Grad-CAM": lambda m, x, t: grad_cam(m, x, t, normalize=normalize),
        "RISE": lambda m, x, t: rise(m, x, t, **{"normalize": normalize, **(rise_kwargs or {})}),
    }
    unknown = [m for m in methods if m not in table]
    if unknown:
        raise ValueError(f"explain: unknown methods {unknown}; choose from {list(table)}")
    return {name: table[name](model, images, targets) for name in methods}

