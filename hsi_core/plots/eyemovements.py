"""Figures for the eye-movement chapter: HMM regions of interest over an image (the HSI paper's
Figures 4 and 6) and the tables of priors and transitions beside them."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Ellipse

from hsi_core.eyemovements import ViewerHMM
from hsi_core.plots import as_display_image

COLOURS = plt.get_cmap("tab10").colors


def plot_hmm(ax: plt.Axes, image: np.ndarray, hmm: ViewerHMM, paths: Sequence[np.ndarray], title: str = "") -> None:
    """ROIs as 2-SD ellipses over the image, fixations coloured by their most likely ROI (Viterbi)."""
    ax.imshow(as_display_image(image))
    means, covars = hmm.means_px(), hmm.covars_px()
    for k, (mean, cov) in enumerate(zip(means, covars)):
        values, vectors = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
        width, height = 4 * np.sqrt(np.maximum(values[::-1], 1e-9))
        ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, lw=2, color=COLOURS[k % 10]))
    for path in paths:
        xy = np.asarray(path)[:, :2]
        states = hmm.model.predict(xy / hmm.scale)
        ax.scatter(xy[:, 0], xy[:, 1], s=10, c=[COLOURS[s % 10] for s in states], edgecolors="black", linewidths=0.3)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()


def hmm_table(hmm: ViewerHMM) -> pd.DataFrame:
    """Priors and the transition matrix of an HMM (rows: from ROI, columns: to ROI)."""
    names = [f"ROI {k + 1}" for k in range(hmm.model.n_components)]
    table = pd.DataFrame(hmm.model.transmat_, index=names, columns=names)
    table.insert(0, "prior", hmm.model.startprob_)
    return table.round(2)
