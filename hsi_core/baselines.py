"""Classical saliency baselines (LG Tables I-III).

- ``centre_bias_map``: an anisotropic Gaussian at the image centre, the usual stand-in for the
  central fixation bias. sigma = 1/4 of each side by default, so the same map at every size and
  aspect ratio; at this width the Gaussian holds most fixations of free-viewing sets (MIT1003's own
  centre-bias map is of the same shape).
- ``uniform_map``: every pixel equal; it scores chance (AUC 0.5), and CC/NSS are undefined for it.
- ``itti_koch``: Itti, Koch & Niebur (1998): intensity, red-green / blue-yellow opponency and four
  Gabor orientations on a Gaussian pyramid, centre-surround differences ``|F(c) - F(s)|`` for
  c in {2, 3, 4}, s = c + {3, 4}, the normalisation operator N(.) (scale to [0, 1], multiply by
  ``(1 - mean of the other local maxima)^2``), conspicuity maps and their mean. Simplified: one
  Gabor size at every level, no iterative (DoG) normalisation.
- ``spectral_residual``: Hou & Zhang (2007): log amplitude spectrum minus its 3x3 local mean, back
  with the original phase, squared, Gaussian-smoothed.

Every model is batched torch: ``(B, 3, H, W)`` images in [0, 1] -> ``(B, H, W)`` maps in [0, 1].
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hsi_core.fixations import gaussian_blur
from hsi_core import maps as saliency_maps


def centre_bias_map(height: int, width: int, *, sigma_frac: float = 0.25) -> np.ndarray:
    """A Gaussian centre prior, ``float32 (height, width)`` with maximum 1."""
    if height <= 0 or width <= 0 or sigma_frac <= 0:
        raise ValueError(f"centre_bias_map: invalid size {height}x{width} or sigma_frac {sigma_frac}")
    y = (np.arange(height) - (height - 1) / 2) / (sigma_frac * height)
    x = (np.arange(width) - (width - 1) / 2) / (sigma_frac * width)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2)).astype(np.float32)


def uniform_map(height: int, width: int) -> np.ndarray:
    """A constant map (chance level)."""
    if height <= 0 or width <= 0:
        raise ValueError(f"uniform_map: invalid size {height}x{width}")
    return np.ones((height, width), dtype=np.float32)


def centre_bias(images: Tensor, *, sigma_frac: float = 0.25) -> Tensor:
    """The centre prior as a batched predictor: ``(B, 3, H, W)`` -> ``(B, H, W)``."""
    _check_images(images, "centre_bias")
    h, w = images.shape[-2:]
    prior = torch.from_numpy(centre_bias_map(h, w, sigma_frac=sigma_frac)).to(images.device, images.dtype)
    return prior.expand(images.shape[0], h, w).clone()


# ----------------------------------------------------------------------------- helpers
def _check_images(images: Tensor, where: str) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"{where}: expected images (B, 3, H, W), got {shape}")
    if not torch.isfinite(images).all():
        raise ValueError(f"{where}: images hold NaN or infinite values")


#: The range floor of this module's min-max scalings (``hsi_core.maps.minmax``'s ``eps``).
MINMAX_EPS = 1e-12


def __getattr__(name: str) -> Any:
    # baselines.minmax moved to hsi_core.maps.minmax; kept for one release
    if name == "minmax":
        warnings.warn("hsi_core.baselines.minmax is deprecated and goes in the next release: use "
                      "hsi_core.maps.minmax(maps, eps=1e-12)", DeprecationWarning, stacklevel=2)
        return lambda maps, eps=MINMAX_EPS: saliency_maps.minmax(maps, eps)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _blur_downsample(x: Tensor) -> Tensor:
    """One pyramid step: separable 5-tap binomial blur (reflect padding), keep every second pixel."""
    c = x.shape[1]
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=x.dtype, device=x.device) / 16
    pad_w, pad_h = min(2, x.shape[-1] - 1), min(2, x.shape[-2] - 1)
    if pad_w > 0:
        x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    if pad_h > 0:
        x = F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)
    return x[..., ::2, ::2]


def gaussian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """Levels 0..levels-1 of a dyadic Gaussian pyramid of ``(B, C, H, W)``."""
    out = [x]
    for _ in range(levels - 1):
        out.append(_blur_downsample(out[-1]))
    return out


def gabor_kernels(n_orientations: int = 4, *, wavelength: float = 4.0, sigma: float = 2.0,
                  size: int = 9, device: torch.device | str = "cpu") -> Tensor:
    """Even (cosine) Gabor kernels ``(n, 1, size, size)`` at orientations ``k pi / n``, zero mean."""
    r = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    theta = torch.arange(n_orientations, dtype=torch.float32, device=device) * math.pi / n_orientations
    u = xx[None] * torch.cos(theta)[:, None, None] + yy[None] * torch.sin(theta)[:, None, None]
    g = torch.exp(-(xx**2 + yy**2)[None] / (2 * sigma**2)) * torch.cos(2 * math.pi * u / wavelength)
    g = g - g.mean((1, 2), keepdim=True)
    return (g / g.abs().sum((1, 2), keepdim=True))[:, None]


def itti_normalise(maps: Tensor, *, neighbourhood: int = 3) -> Tensor:
    """Itti's N(.) on ``(..., H, W)`` maps: scale to [0, 1], then weight by ``(1 - m)^2`` with m the
    mean of the local maxima other than the global one (promotes maps with one strong peak)."""
    shape = maps.shape
    x = saliency_maps.minmax(maps.reshape(-1, 1, *shape[-2:]), MINMAX_EPS)
    peaks = (x == F.max_pool2d(x, neighbourhood, 1, neighbourhood // 2)) & (x > 0)
    total = (x * peaks).flatten(1).sum(1)
    count = peaks.flatten(1).sum(1)
    others = (total - 1.0) / (count - 1).clamp_min(1)  # the global maximum is 1 after scaling
    others = torch.where(count > 1, others, torch.zeros_like(others))
    return (x * ((1 - others) ** 2).view(-1, 1, 1, 1)).view(shape)


def opponent_channels(images: Tensor) -> Tensor:
    """Intensity, red-green and blue-yellow ``(B, 3, H, W)`` (Itti et al. 1998, Eq. 1-5): r, g, b are
    divided by the intensity where it exceeds 1/10 of the image maximum, elsewhere set to 0."""
    r, g, b = images.unbind(1)
    intensity = images.mean(1)
    keep = intensity > 0.1 * intensity.flatten(1).amax(1).view(-1, 1, 1)
    scale = torch.where(keep, 1.0 / intensity.clamp_min(1e-6), torch.zeros_like(intensity))
    r, g, b = r * scale, g * scale, b * scale
    red = (r - (g + b) / 2).clamp_min(0)
    green = (g - (r + b) / 2).clamp_min(0)
    blue = (b - (r + g) / 2).clamp_min(0)
    yellow = ((r + g) / 2 - (r - g).abs() / 2 - b).clamp_min(0)
    return torch.stack([intensity, red - green, blue - yellow], 1)


def itti_koch(images: Tensor, *, work_side: int = 256, centres: tuple[int, ...] = (2, 3, 4),
              deltas: tuple[int, ...] = (3, 4), n_orientations: int = 4) -> Tensor:
    """Itti-Koch-Niebur saliency ``(B, H, W)`` in [0, 1] of ``(B, 3, H, W)`` images.

    The image is resized so that its shorter side is ``work_side`` (Itti's 640x480 inputs give a
    9-level pyramid). Feature maps are the 7 channels I, RG, BY, O_0..O_135 at each level; the
    centre-surround maps (6 scale pairs x 7) are resized to the centre scale 4, normalised, summed
    into the three conspicuity maps, normalised again and averaged."""
    _check_images(images, "itti_koch")
    b, _, h, w = images.shape
    scale = work_side / min(h, w)
    work = F.interpolate(images, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="bilinear",
                         align_corners=False, antialias=scale < 1)
    levels = max(centres) + max(deltas) + 1
    pyramid = gaussian_pyramid(opponent_channels(work), levels)
    gabor = gabor_kernels(n_orientations, device=images.device).to(images.dtype)
    pad = gabor.shape[-1] // 2
    features = []
    for level in pyramid:  # one conv per pyramid level (9 levels), not per pixel or filter
        intensity = level[:, :1]
        mode = "reflect" if min(intensity.shape[-2:]) > pad else "replicate"
        orient = F.conv2d(F.pad(intensity, (pad,) * 4, mode=mode), gabor).abs()
        features.append(torch.cat([level, orient], 1))  # (B, 3 + n_orient, h_l, w_l)
    atlas = tuple(features[max(centres)].shape[-2:])
    diffs = []
    for c in centres:
        for d in deltas:
            surround = F.interpolate(features[c + d], size=features[c].shape[-2:], mode="bilinear", align_corners=False)
            diff = (features[c] - surround).abs()
            diffs.append(F.interpolate(diff, size=atlas, mode="bilinear", align_corners=False))
    maps = itti_normalise(torch.stack(diffs, 1))  # (B, pairs, 3 + n_orient, h4, w4)
    intensity = maps[:, :, 0].sum(1)
    colour = maps[:, :, 1:3].sum((1, 2))
    orientation = itti_normalise(maps[:, :, 3:].sum(1)).sum(1)
    saliency = itti_normalise(torch.stack([intensity, colour, orientation], 1)).mean(1)
    saliency = F.interpolate(saliency[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    return saliency_maps.minmax(saliency, MINMAX_EPS)


def spectral_residual(images: Tensor, *, width: int = 64, average: int = 3, sigma_frac: float = 0.05) -> Tensor:
    """Hou & Zhang (2007) saliency ``(B, H, W)`` in [0, 1]: on a ``width``-pixel-wide grey image,
    ``R = log|F| - h_n * log|F|`` (h_n an ``average`` x ``average`` mean filter) and
    ``S = g * |F^-1[exp(R + i phase)]|^2``; the Gaussian g has sigma ``sigma_frac * width``."""
    _check_images(images, "spectral_residual")
    b, _, h, w = images.shape
    small = (max(4, round(width * h / w)), width)
    grey = F.interpolate(images.mean(1, keepdim=True), size=small, mode="bilinear", align_corners=False,
                         antialias=True)[:, 0]
    spectrum = torch.fft.fft2(grey.double())
    log_amp = torch.log(spectrum.abs().clamp_min(1e-12))
    smooth = F.avg_pool2d(F.pad(log_amp[:, None], (average // 2,) * 4, mode="replicate"), average, 1)[:, 0]
    residual = torch.exp(log_amp - smooth + 1j * torch.angle(spectrum))
    saliency = torch.fft.ifft2(residual).abs() ** 2
    saliency = gaussian_blur(saliency.float(), sigma_frac * width).to(images.dtype)
    saliency = F.interpolate(saliency[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    return saliency_maps.minmax(saliency, MINMAX_EPS)


#: The classical predictors by name, as batched ``(B, 3, H, W) -> (B, H, W)`` functions.
CLASSICAL = {"ITTI (ours)": itti_koch, "Spectral residual (ours)": spectral_residual, "Centre bias": centre_bias}
