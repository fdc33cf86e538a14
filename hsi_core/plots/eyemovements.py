"""Figures for the eye-movement chapter: HMM regions of interest over an image with fixations
coloured by their ROI (the HSI paper's Figures 4 and 6), saliency maps beside them (Figure 6),
and the tables of priors and transitions."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Ellipse

from hsi_core.eyemovements import HMM, viterbi
from hsi_core.plots import as_display_image

COLOURS = plt.get_cmap("tab10").colors


def plot_hmm(ax: plt.Axes, image: np.ndarray, hmm: HMM, paths: Sequence[np.ndarray], title: str = "") -> None:
    """ROIs as 2-SD ellipses (numbered, with their prior) over the image; fixations coloured by
    their ROI on the Viterbi path."""
    ax.imshow(as_display_image(image))
    for k, (mean, cov) in enumerate(zip(hmm.means, hmm.covs)):
        values, vectors = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
        width, height = 4 * np.sqrt(np.maximum(values[::-1], 1e-9))
        ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, lw=2, color=COLOURS[k % 10]))
        ax.text(mean[0], mean[1], f"{k + 1}", color="white", fontsize=7, ha="center", va="center",
                bbox=dict(boxstyle="round,pad=0.1", fc=COLOURS[k % 10], ec="none", alpha=0.8))
    for path in paths:
        xy = np.asarray(path)[:, :2]
        if len(xy) == 0:
            continue
        states = viterbi(hmm, xy)
        ax.scatter(xy[:, 0], xy[:, 1], s=8, c=[COLOURS[s % 10] for s in states], edgecolors="black", linewidths=0.3)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def plot_saliency(ax: plt.Axes, image: np.ndarray, saliency: np.ndarray, title: str = "") -> None:
    """A saliency map over a greyed image (Figure 6, left of each pair)."""
    grey = as_display_image(image).astype(np.float64).mean(-1)
    ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
    ax.imshow(saliency, cmap="jet", alpha=0.5)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def hmm_table(hmm: HMM) -> pd.DataFrame:
    """Priors and the transition matrix of an HMM (rows: from ROI, columns: to ROI)."""
    names = [f"ROI {k + 1}" for k in range(hmm.n_rois)]
    table = pd.DataFrame(hmm.trans, index=names, columns=[f"to {n}" for n in names])
    table.insert(0, "prior", hmm.prior)
    return table.round(2)
