"""Operations on saliency maps that every module shares, each defined once with its semantics stated.

Maps are ``(..., H, W)`` arrays: one map ``(H, W)`` or a batch ``(B, H, W)``; every operation acts on
each ``(H, W)`` map on its own. numpy arrays or torch tensors are accepted.

- :func:`minmax`: each map to [0, 1] by its own minimum and maximum.
- :func:`resize`: bilinear resizing with half-pixel centres.
- :func:`top_fraction_fixations`: the highest pixels of a map as pseudo-fixations, by a quantile threshold
  or by an exact count (two readings of "the top fraction", named by ``method=``).
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, Tensor)

#: The readings of "the top fraction of a map" (:func:`top_fraction_fixations`).
TOP_FRACTION_METHODS = ("quantile", "count")


def _as_float_tensor(maps: Any, where: str, numpy_float32: bool = False) -> Tensor:
    if isinstance(maps, Tensor):
        t = maps
    else:
        a = np.asarray(maps)
        keep = np.issubdtype(a.dtype, np.floating) and not numpy_float32
        t = torch.from_numpy(np.ascontiguousarray(a if keep else a.astype(np.float32)))
    if t.ndim < 2:
        raise ValueError(f"{where}: expected (..., H, W) maps, got shape {tuple(t.shape)}")
    return t if t.is_floating_point() else t.float()


def minmax(maps: ArrayOrTensor, eps: float = 0.0) -> ArrayOrTensor:
    """Each ``(H, W)`` map of ``(..., H, W)`` min-max normalised: ``(m - min) / max(max - min, eps)``.

    A flat map (``max == min``) becomes the all-zero map, whatever ``eps`` (never NaN). ``eps = 0``
    (default) divides by the exact range, so every non-flat map spans exactly [0, 1]; ``eps > 0`` floors
    the range, so a map whose range is below ``eps`` is scaled by ``1 / eps`` (it stays below 1), not
    stretched. numpy in, numpy out; a tensor keeps its dtype and device; integer or bool input becomes
    float32. Differentiable; NaN propagates."""
    was_numpy = not isinstance(maps, Tensor)
    t = _as_float_tensor(maps, "minmax")
    flat = t.flatten(-2)
    lo, hi = flat.amin(-1, keepdim=True), flat.amax(-1, keepdim=True)
    span = hi - lo
    out = ((flat - lo) / torch.where(span > 0, span.clamp_min(eps), torch.ones_like(span))).reshape(t.shape)
    return out.numpy() if was_numpy else out


def resize(maps: Any, size: tuple[int, int], *, antialias: bool = False) -> Tensor:
    """``(..., H, W)`` maps resized bilinearly to ``size = (h, w)``, as a tensor.

    Half-pixel centres (``align_corners=False``: pixel ``i`` is the point ``i + 0.5``, as PIL, OpenCV and
    MATLAB's ``imresize`` without antialiasing); no antialiasing by default (``antialias=True`` widens
    the filter when down-sampling, torch's antialiased bilinear). A map already of ``size`` is returned
    unchanged. numpy input is read as float32; a float tensor keeps its dtype and device (an integer or
    bool tensor becomes float32). Values are not clamped (bilinear weights are non-negative, so the
    output stays within the input's range)."""
    t = _as_float_tensor(maps, "resize", numpy_float32=True)
    size = (int(size[0]), int(size[1]))
    if tuple(t.shape[-2:]) == size:
        return t
    if min(size) < 1:
        raise ValueError(f"resize: size must be positive, got {size}")
    out = F.interpolate(t.reshape(-1, 1, *t.shape[-2:]), size=size, mode="bilinear", align_corners=False,
                        antialias=antialias)
    return out.reshape(*t.shape[:-2], *size)


def top_fraction_fixations(maps: Any, fraction: float, *, method: str, floor: float = 1e-6) -> Tensor:
    """Boolean ``(..., H, W)``: the pixels in the top ``fraction`` of each map, as pseudo-fixations (for NSS
    or AUC against a map that has no fixation points). Two readings, named by ``method`` (required):

    - ``"quantile"``: the pixels at or above the map's ``1 - fraction`` quantile (``torch.quantile``,
      linear interpolation), with the threshold floored at ``floor`` so that zero pixels never count.
      Ties at the threshold are all kept, so a map with plateaus gives more than ``fraction`` of its
      pixels, and a map that is zero beyond a few pixels gives fewer. Our reading for HSB's maps
      (``datasets.HSBDataset``) and MIT1003 density maps (``experiments.saliency_models.stimulus_items``).
    - ``"count"``: exactly ``max(1, round(fraction * H * W))`` pixels, the highest values (ties broken by
      ``torch.topk``); ``floor`` is not used. Our reading for the HSI maps of the XAI benchmark
      (``experiments.xai_benchmark``), where every map needs the same number of fixations.

    ``fraction`` must lie in (0, 1)."""
    if method not in TOP_FRACTION_METHODS:
        raise ValueError(f"top_fraction_fixations: method must be one of {TOP_FRACTION_METHODS}, got {method!r}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"top_fraction_fixations: fraction must lie in (0, 1), got {fraction}")
    t = _as_float_tensor(maps, "top_fraction_fixations")
    flat = t.flatten(-2)
    if method == "quantile":
        threshold = torch.quantile(flat, 1 - fraction, dim=-1, keepdim=True).clamp_min(floor)
        return (flat >= threshold).reshape(t.shape)
    k = max(1, int(round(fraction * flat.shape[-1])))
    idx = flat.topk(k, dim=-1).indices
    return torch.zeros_like(flat, dtype=torch.bool).scatter_(-1, idx, True).reshape(t.shape)
