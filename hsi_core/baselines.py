"""Classical saliency baselines.

- ``centre_bias_map``: an anisotropic Gaussian at the image centre, the usual stand-in for the
  central fixation bias (sigma = 1/4 of each side by default; the same map at every size).
- ``uniform_map``: every pixel equal; it scores chance (AUC 0.5), and CC/NSS are undefined for it.
"""

from __future__ import annotations

import numpy as np


def centre_bias_map(height: int, width: int, *, sigma_frac: float = 0.25) -> np.ndarray:
    """A Gaussian centre prior, ``float32 (height, width)`` with maximum 1."""
    if height <= 0 or width <= 0 or sigma_frac <= 0:
        raise ValueError(f"centre_bias_map: invalid size {height}x{width} or sigma_frac {sigma_frac}")
    y = (np.arange(height) - (height - 1) / 2) / (sigma_frac * height)
    x = (np.arange(width) - (width - 1) / 2) / (sigma_frac * width)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2)).astype(np.float32)


def uniform_map(height: int, width: int) -> np.ndarray:
    """A constant map (chance level)."""
    return np.ones((height, width), dtype=np.float32)
