"""The scales of the reconstruction (loggabor paper, Section II-B2, LG Eq. 2-4) as linear operators.

Bilinear resizing is separable and linear: along each axis it is a matrix ``M`` (out x in), and a map
``X`` resized is ``M_y X M_x^T``. Writing every resize this way gives, exactly and without building
the large maps:

- the block means and block variances of a resized map (LG Eq. 2) from two small matrix products: for
  the rows ``M_i`` of one output block, ``||M_i Z||^2 = ||R_i Z||^2`` where ``R_i`` is the triangular
  factor of ``M_i``'s QR decomposition (a ``x2`` up-sampling has 6 non-zero columns per 8-row block,
  a ``x4`` one 4 or 5), so the sum of squares of a block of the x4 map costs a 4x4 product instead of
  64 samples;
- "to the scale and back" (LG Eq. 3-4) as one ``h x h`` matrix per axis, applied once to the weighted sum
  of the chosen candidates (resizing is linear, so resizing the sum is the sum of the resized).

**Scale readings** (``steps``): the paper's maps are "upsampled and downsampled twice individually
by a factor of 2" (``steps="twice"``, default): x4 is two x2 steps, x1/4 two x1/2 steps, each
down-sampling step antialiased (``torch``'s antialiased bilinear: a triangle filter twice as wide),
and the way back to the map's size is the mirror path. ``steps="single"`` is the first version of
this module: one bilinear step to x1/4 or x4 and back, no antialiasing (at x1/4 it reads only the
middle 2x2 pixels of each 4x4 block).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

STEPS = ("twice", "single")


@lru_cache(maxsize=None)
def _resize_matrix(n_in: int, n_out: int, antialias: bool) -> Tensor:
    # built by resizing the identity; the other axis has length 2 (torch's antialiased kernel
    # mishandles a length-1 axis) and is left unchanged
    eye = torch.eye(n_in, dtype=torch.float64).view(n_in, 1, n_in, 1).expand(n_in, 1, n_in, 2)
    out = F.interpolate(eye.contiguous(), size=(n_out, 2), mode="bilinear", align_corners=False,
                        antialias=antialias and n_out < n_in)
    return out[:, 0, :, 0].T.contiguous()


def resize_matrix(n_in: int, n_out: int, *, antialias: bool = False) -> Tensor:
    """The ``(n_out, n_in)`` float64 matrix of a 1-D bilinear resize (``hsi_core.maps.resize`` along one axis)."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"resize_matrix: lengths must be >= 1, got {n_in} -> {n_out}")
    return _resize_matrix(int(n_in), int(n_out), bool(antialias))


def _halvings(scale: float) -> int:
    steps = math.log2(scale)
    if abs(steps - round(steps)) > 1e-9:
        raise ValueError(f"steps='twice' needs scales that are powers of 2, got {scale}")
    return int(round(steps))


def scale_length(n: int, scale: float, steps: str = "twice") -> int:
    """The length of an axis of ``n`` pixels at ``scale`` (``"twice"``: rounded at every x2 step)."""
    if steps not in STEPS:
        raise ValueError(f"steps must be one of {STEPS}, got {steps!r}")
    if steps == "single":
        return round(n * scale)
    for _ in range(abs(_halvings(scale))):
        n = 2 * n if scale > 1 else round(n / 2)
    return n


def _path(n: int, scale: float, steps: str) -> tuple[list[int], bool]:
    lengths = [n]
    if steps == "single":
        return [n, round(n * scale)], False
    for _ in range(abs(_halvings(scale))):
        lengths.append(2 * lengths[-1] if scale > 1 else round(lengths[-1] / 2))
    return lengths, True


def _chain(lengths: Sequence[int], antialias: bool) -> Tensor:
    m = torch.eye(lengths[0], dtype=torch.float64)
    for a, b in zip(lengths[:-1], lengths[1:]):
        m = resize_matrix(a, b, antialias=antialias) @ m
    return m


def to_scale_matrix(n_in: int, n: int, scale: float, steps: str = "twice") -> Tensor:
    """``(scale_length(n), n_in)``: a candidate axis of ``n_in`` pixels taken to ``scale`` of a map
    axis of ``n`` pixels. ``"twice"``: first to ``n`` (antialiased if shrinking), then x2 steps;
    ``"single"``: one bilinear step from ``n_in`` (the first version)."""
    lengths, antialias = _path(n, scale, steps)
    if steps == "single":
        return resize_matrix(n_in, lengths[-1])
    return _chain(lengths, antialias) @ resize_matrix(n_in, n, antialias=True)


def round_trip_matrix(n_in: int, n: int, scale: float, steps: str = "twice") -> Tensor:
    """``(n, n_in)``: to ``scale`` (``to_scale_matrix``) and back to ``n`` by the mirror path."""
    lengths, antialias = _path(n, scale, steps)
    return _chain(lengths[::-1], antialias) @ to_scale_matrix(n_in, n, scale, steps)


def block_operators(m: Tensor, block: int) -> tuple[Tensor, Tensor]:
    """For a ``(n_out, n_in)`` resize matrix: the block-mean rows ``(n_blocks, n_in)`` and the stacked
    QR factors ``(n_blocks, r, n_in)`` with ``R_i^T R_i = M_i^T M_i / block`` for the rows ``M_i`` of
    block ``i`` (whole blocks only, as ``avg_pool2d`` counts them)."""
    n_blocks = m.shape[0] // block
    rows = m[: n_blocks * block].view(n_blocks, block, -1)
    means = rows.mean(1)
    support = rows.abs().sum(1) > 0
    width = int(support.sum(1).max())
    r = min(block, width)
    factors = torch.zeros(n_blocks, r, m.shape[1], dtype=m.dtype)
    for i in range(n_blocks):
        cols = torch.nonzero(support[i]).flatten()
        sub = rows[i][:, cols] / math.sqrt(block)
        tri = torch.linalg.qr(sub, mode="r").R  # (min(block, |cols|), |cols|)
        factors[i, : tri.shape[0], cols] = tri
    return means, factors


def block_variance_of(maps: Tensor, ops_y: tuple[Tensor, Tensor], ops_x: tuple[Tensor, Tensor]) -> Tensor:
    """Block variances ``(..., n_blocks)`` of ``(..., h, w)`` maps resized by the matrices behind
    ``ops_y`` and ``ops_x`` (``block_operators``): E[Y^2] - E[Y]^2 per block, without forming Y."""
    (mean_y, fac_y), (mean_x, fac_x) = ops_y, ops_x
    nby, ry, _ = fac_y.shape
    nbx, rx, _ = fac_x.shape
    lead = maps.shape[:-2]
    x = maps.reshape(-1, *maps.shape[-2:])
    mean = mean_y @ x @ mean_x.T  # (N, nby, nbx)
    t = fac_y.reshape(nby * ry, -1) @ x @ fac_x.reshape(nbx * rx, -1).T
    square = t.view(-1, nby, ry, nbx, rx).square().sum(4).sum(2)  # the contiguous axis first: faster
    return (square - mean * mean).clamp_min(0).reshape(*lead, nby * nbx)


def apply_separable(maps: Tensor, my: Tensor, mx: Tensor) -> Tensor:
    """``my @ X @ mx^T`` for ``(..., h, w)`` maps."""
    return my @ maps @ mx.T
