"""Figure helpers shared by the chapters; topic-specific figures live in submodules
(``hsi_core.plots.loggabor``, ``hsi_core.plots.xai``, ``hsi_core.plots.eyemovements``)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def as_display_image(image: Any) -> np.ndarray:
    """An image as ``(H, W, 3)`` floats in [0, 1], from ``(3, H, W)`` or ``(H, W, 3)``, uint8 or float."""
    array = _to_numpy(image).astype(np.float64)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[-1] != 3:
        array = array.transpose(1, 2, 0)
    if array.max() > 1.0:
        array = array / 255.0
    return np.clip(array, 0.0, 1.0)


def overlay(ax: plt.Axes, image: Any, saliency: Any, *, alpha: float = 0.5, cmap: str = "jet") -> None:
    """Draw a saliency map over an image (the map is min-max scaled; the image is shown in grey beneath)."""
    img = as_display_image(image)
    sal = _to_numpy(saliency).astype(np.float64)
    span = sal.max() - sal.min()
    sal = (sal - sal.min()) / span if span > 0 else np.zeros_like(sal)
    ax.imshow(img)
    ax.imshow(sal, cmap=cmap, alpha=alpha, extent=(-0.5, img.shape[1] - 0.5, img.shape[0] - 0.5, -0.5))
    ax.set_axis_off()


def plot_fixations(ax: plt.Axes, image: Any, points_xy: Any, *, size: float = 6, color: str = "yellow") -> None:
    """Show an image with fixation points ``(N, 2)`` as ``(x, y)``."""
    ax.imshow(as_display_image(image))
    pts = _to_numpy(points_xy).reshape(-1, 2)
    ax.scatter(pts[:, 0], pts[:, 1], s=size, c=color, edgecolors="black", linewidths=0.3)
    ax.set_axis_off()


class GluedText(str):
    """A string whose repr is itself: myst-nb glues a value by its repr, so a plain ``str`` would show
    its quotes in the sentence that reads it."""

    def __repr__(self) -> str:
        return str(self)


def glue(name: str, variable: Any, display: bool = True) -> None:
    """myst-nb's ``glue`` for the chapters' computed sentences.

    Args:
        name: the key a later ``{glue:text}`name``` reads.
        variable: the value. A string is glued as its text (no quotes); a numpy scalar as the Python
            number (under numpy 2 its repr is ``np.float64(0.5)``, which ``{glue:text}`name:.3f```
            cannot format, and the book build then fails on the warning); anything else unchanged.
        display: show the value where it is glued, too.
    """
    from myst_nb import glue as myst_glue

    if isinstance(variable, np.generic):
        variable = variable.item()
    elif isinstance(variable, str):
        variable = GluedText(variable)
    myst_glue(name, variable, display=display)
