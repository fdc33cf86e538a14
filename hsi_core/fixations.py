"""From fixation points to binary fixation maps to Gaussian saliency maps.

Points are ``(N, 2)`` arrays of ``(x, y)`` in 0-based pixel coordinates (x = column, y = row).
The blur width is given in pixels, or in degrees of visual angle through the screen geometry: the
HSB experiment (HSI paper, Figure 5) blurs with 0.5 dva = 21 px; SALICON maps use sigma = 19 px.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: SALICON's blur for its saliency maps and for HSI Algorithm 1 (pixels).
SALICON_SIGMA = 19.0
#: HSB geometry (HSI paper, Figure 3): 1024x768 px on a 255 mm x 195 mm screen at 60 cm.
HSB_SCREEN_PX = 1024
HSB_SCREEN_MM = 255.0
HSB_DISTANCE_MM = 600.0


#: How far (pixels) a fixation may lie outside its image and still be kept, clipped onto the border:
#: raw mouse or gaze samples overshoot slightly (real NUS Scene: 19 of 43,894 points, all within 1 px;
#: SALICON's raw mouse samples a few px). Every loader and scorer uses this one value; a point
#: farther out raises, naming the image and the point.
BORDER_TOLERANCE_PX = 8.0
#: How a fractional ``(x, y)`` becomes a pixel: ``"round"`` (pixel centres at integer coordinates,
#: the nearest pixel; our default) or ``"truncate"`` (pixel ``i`` spans ``[i, i + 1)``, ``int(x)``:
#: pysaliency's ``Fixations.x_int``). The MIT benchmark ships binary fixation maps, so it has no rule.
COORDINATES = ("round", "truncate")


def pixel_indices(points_xy: Any, shape: tuple[int, int], *, coordinates: str = "round",
                  tolerance: float = BORDER_TOLERANCE_PX, clip: bool = False,
                  where: str = "fixations") -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns (int64) of the pixels ``(N, 2)`` points ``(x, y)`` fall in (see
    :data:`COORDINATES`). A pixel at most ``tolerance`` pixels outside the image is clipped onto its
    border (``clip=True``: any distance); farther out raises ``ValueError`` naming ``where``, how
    many points and the first of them."""
    if coordinates not in COORDINATES:
        raise ValueError(f"{where}: coordinates must be one of {COORDINATES}, got {coordinates!r}")
    height, width = int(shape[0]), int(shape[1])
    if height <= 0 or width <= 0:
        raise ValueError(f"{where}: invalid image shape {shape}")
    pts = np.asarray(points_xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{where}: expected points of shape (N, 2) as (x, y), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError(f"{where}: points contain NaN or infinite values")
    xy = np.rint(pts) if coordinates == "round" else np.trunc(pts)
    over = np.maximum(np.maximum(-xy[:, 0], xy[:, 0] - (width - 1)), np.maximum(-xy[:, 1], xy[:, 1] - (height - 1)))
    outside = over > tolerance
    if outside.any() and not clip:
        first = pts[outside][0]
        raise ValueError(
            f"{where}: {int(outside.sum())} of {len(pts)} points lie more than {tolerance:g} px outside the "
            f"{width}x{height} image (first: x={first[0]:.1f}, y={first[1]:.1f}, {over[outside][0]:.1f} px out)"
        )
    cols = np.clip(xy[:, 0], 0, width - 1).astype(np.int64)
    rows = np.clip(xy[:, 1], 0, height - 1).astype(np.int64)
    return rows, cols


def fixation_map(points_xy: Any, shape: tuple[int, int], *, clip: bool = False,
                 tolerance: float = BORDER_TOLERANCE_PX, coordinates: str = "round") -> np.ndarray:
    """Binary fixation map ``(H, W)`` with True at each fixated pixel (:func:`pixel_indices`: points
    rounded to the nearest pixel by default).

    A point outside the image raises ``ValueError``, unless it lies within ``tolerance`` pixels of the
    border (default :data:`BORDER_TOLERANCE_PX`) or ``clip`` is set: those are clipped onto the border.
    """
    pts = np.asarray(points_xy, dtype=np.float64)
    if pts.size == 0:
        raise ValueError("fixation_map: no fixation points given")
    rows, cols = pixel_indices(pts, shape, coordinates=coordinates, tolerance=tolerance, clip=clip,
                               where="fixation_map")
    out = np.zeros((int(shape[0]), int(shape[1])), dtype=bool)
    out[rows, cols] = True
    return out


def gaussian_kernel(sigma: float, truncate: float = 4.0, dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> Tensor:
    """The 1-D Gaussian of :func:`gaussian_blur`: ``exp(-x^2 / (2 sigma^2))`` on ``x = -r..r``, ``r =
    max(1, ceil(truncate * sigma))``, normalised to sum 1; ``(2r + 1,)``. scipy's ``gaussian_filter`` rounds
    instead (``r = int(truncate * sigma + 0.5)``): where ``truncate * sigma`` has a fraction below 0.5 this
    kernel has one more tap each side (weight below ``exp(-truncate^2 / 2)``, 3e-4 of the peak at 4)."""
    radius = max(1, int(math.ceil(truncate * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(maps: Tensor, sigma: float, *, truncate: float = 4.0) -> Tensor:
    """Separable Gaussian blur of ``(B, H, W)`` maps with zero padding (scipy's ``mode='constant'``)."""
    if sigma <= 0:
        raise ValueError(f"gaussian_blur: sigma must be positive, got {sigma}")
    x = maps.unsqueeze(1)
    kernel = gaussian_kernel(sigma, truncate, x.dtype, x.device)
    radius = (kernel.numel() - 1) // 2
    # Pad explicitly so a kernel wider than the map still sees zeros beyond the border.
    x = F.pad(x, (radius, radius, 0, 0))
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, radius, radius))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x.squeeze(1)


def saliency_map(fix_map: Any, sigma: float, *, truncate: float = 4.0) -> Any:
    """Gaussian saliency map from a fixation map (binary or counts), scaled to maximum 1.

    Accepts ``(H, W)`` or ``(B, H, W)``, numpy or torch; returns the same kind (float32 for numpy).
    An empty fixation map raises: its saliency map is undefined.
    """
    was_numpy = not isinstance(fix_map, Tensor)
    t = torch.as_tensor(np.asarray(fix_map, dtype=np.float32)) if was_numpy else fix_map.to(torch.float32)
    single = t.ndim == 2
    if t.ndim not in (2, 3):
        raise ValueError(f"saliency_map: expected (H, W) or (B, H, W), got shape {tuple(t.shape)}")
    if single:
        t = t.unsqueeze(0)
    if not torch.isfinite(t).all() or (t < 0).any():
        raise ValueError("saliency_map: the fixation map must be finite and non-negative")
    empty = t.flatten(1).sum(1) <= 0
    if empty.any():
        raise ValueError(f"saliency_map: empty fixation map (maps {empty.nonzero().flatten().tolist()[:10]})")
    blurred = gaussian_blur(t, sigma, truncate=truncate)
    blurred = blurred / blurred.flatten(1).amax(1).view(-1, 1, 1)
    if single:
        blurred = blurred[0]
    return blurred.numpy() if was_numpy else blurred


def pixels_per_degree(screen_px: float, screen_mm: float, distance_mm: float) -> float:
    """Pixels per degree of visual angle at the screen centre: px/mm times the mm one degree spans there."""
    if min(screen_px, screen_mm, distance_mm) <= 0:
        raise ValueError("pixels_per_degree: screen size and distance must be positive")
    mm_per_degree = 2.0 * distance_mm * math.tan(math.radians(0.5))
    return screen_px / screen_mm * mm_per_degree


def sigma_from_dva(
    dva: float,
    screen_px: float = HSB_SCREEN_PX,
    screen_mm: float = HSB_SCREEN_MM,
    distance_mm: float = HSB_DISTANCE_MM,
) -> float:
    """A blur width in pixels from degrees of visual angle (defaults: the HSB set-up, 0.5 dva = 21 px)."""
    return dva * pixels_per_degree(screen_px, screen_mm, distance_mm)


def split_half(
    points_per_viewer: Sequence[Any],
    shape: tuple[int, int],
    sigma: float,
    seed: int = 0,
    *,
    clip: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Inter-observer baseline: a random half of the viewers predicts the other half.

    Returns ``(saliency map of half A, binary fixation map of half B)``. Viewers without points are
    ignored; at least two viewers with points are needed.
    """
    viewers = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in points_per_viewer]
    viewers = [v for v in viewers if len(v)]
    if len(viewers) < 2:
        raise ValueError(f"split_half: need at least two viewers with fixations, got {len(viewers)}")
    order = np.random.default_rng(seed).permutation(len(viewers))
    half = len(viewers) // 2
    half_a = np.concatenate([viewers[i] for i in order[:half]])
    half_b = np.concatenate([viewers[i] for i in order[half:]])
    predictor = saliency_map(fixation_map(half_a, shape, clip=clip), sigma)
    return predictor, fixation_map(half_b, shape, clip=clip)
