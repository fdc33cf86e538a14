"""The book's earlier co-clustering stand-in, kept to show how it fails (chapter 09): one
hmmlearn VB-HMM per viewer and image (2 restarts, hmmlearn's default priors in units of the image's
longer side), a symmetric divergence between viewers from the in-sample per-fixation
log-likelihoods of one-sequence HMMs, and an **average-linkage cut** of that divergence
(:func:`linkage_cocluster`). It is not VHEM: very tight ROIs dominate the divergence, so it splits
off outliers (11 vs 1 on the real NUS Scene viewers) and fails on the demo world, whose groups
share ROI locations and spreads. Use :func:`hsi_core.eyemovements.vhem.cocluster` instead.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from hmmlearn.hmm import GaussianHMM
from hmmlearn.vhmm import VariationalGaussianHMM
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from tqdm import tqdm


Scanpath = np.ndarray  # (n, 2+) rows x, y[, start, end] in pixels


def _validate(path: Scanpath, height: int, width: int, where: str) -> np.ndarray:
    xy = np.asarray(path, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise ValueError(f"{where}: a scanpath must be an (n, 2+) array of x, y, got shape {xy.shape}")
    xy = xy[:, :2]
    if len(xy) < 2:
        raise ValueError(f"{where}: a scanpath of {len(xy)} fixation(s) cannot inform transitions; need at least 2")
    if not np.isfinite(xy).all():
        raise ValueError(f"{where}: scanpath contains NaN or infinite coordinates")
    outside = (xy[:, 0] < -0.5) | (xy[:, 0] > width - 0.5) | (xy[:, 1] < -0.5) | (xy[:, 1] > height - 0.5)
    if outside.any():
        raise ValueError(f"{where}: {int(outside.sum())} fixation(s) lie outside the {width}x{height} image")
    return xy


def _quiet(fn, *args, **kwargs):
    """Run an hmmlearn fit without its convergence chatter (short sequences trigger it constantly)."""
    logger = logging.getLogger("hmmlearn")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    finally:
        logger.setLevel(level)


@dataclass
class ViewerHMM:
    model: GaussianHMM | VariationalGaussianHMM
    n_rois: int
    scale: float  # pixels per model unit (the image's longer side)

    def score(self, paths: Sequence[Scanpath]) -> float:
        """Log-likelihood of fixation sequences under this HMM, as a density over pixels (the model
        works in units of the image's longer side; the change of variables adds -2 log(scale) per
        fixation), so values are comparable with EMHMM's and negative for any realistic image."""
        x = np.concatenate([np.asarray(p)[:, :2] for p in paths]) / self.scale
        return float(self.model.score(x, [len(p) for p in paths])) - 2 * len(x) * np.log(self.scale)


def _used_states(model) -> np.ndarray:
    """States a VB fit kept: non-negligible start or stationary occupancy."""
    return np.flatnonzero((model.startprob_ > 1e-3) | (model.transmat_.sum(0) > 1e-2 * model.n_components))


def fit_hmm(paths: Sequence[Scanpath], height: int, width: int, *, k_max: int = 10, restarts: int = 2,
            seed: int = 0) -> ViewerHMM:
    """A VB Gaussian HMM for one viewer's fixation sequences on one image; the number of ROIs (1 to
    ``k_max``) with the highest variational lower bound wins."""
    checked = [_validate(p, height, width, f"scanpath {i}") for i, p in enumerate(paths)]
    scale = float(max(height, width))
    x = np.concatenate(checked) / scale
    lengths = [len(p) for p in checked]
    best, best_bound, best_k = None, -np.inf, 0
    for k in range(1, k_max + 1):
        if k > len(x):
            break
        for r in range(restarts):
            model = VariationalGaussianHMM(n_components=k, covariance_type="full", n_iter=100, tol=1e-4,
                                           random_state=seed + 97 * r + k)
            _quiet(model.fit, x, lengths)
            bound = model.monitor_.history[-1]
            if bound > best_bound:
                best, best_bound, best_k = model, bound, k
    return ViewerHMM(best, best_k, scale)


@dataclass
class Study:
    """Fixation sequences ``paths[image][unit]`` (a unit is a viewer, or a viewer-task pair) with the
    image sizes; units without a usable sequence on an image are skipped there."""

    paths: list[list[Scanpath | None]]
    sizes: list[tuple[int, int]]  # (height, width) per image

    @property
    def n_units(self) -> int:
        return len(self.paths[0])


def fit_all(study: Study, *, k_max: int = 10, seed: int = 0, progress: bool = True) -> list[list[ViewerHMM | None]]:
    """One HMM per unit and image."""
    out = []
    for i, (row, (h, w)) in enumerate(tqdm(list(zip(study.paths, study.sizes)), desc="HMMs per image", disable=not progress)):
        out.append([fit_hmm([p], h, w, k_max=k_max, seed=seed) if p is not None and len(p) >= 2 else None for p in row])
    return out


def divergence_matrix(study: Study, hmms: list[list[ViewerHMM | None]]) -> np.ndarray:
    """Symmetric, per-fixation log-likelihood divergence between units, summed over images."""
    n = study.n_units
    total = np.zeros((n, n))
    counts = np.zeros((n, n))
    for row, models in zip(study.paths, hmms):
        units = [u for u in range(n) if models[u] is not None]
        ll = np.full((n, n), np.nan)  # ll[v, u] = log p(data_v | HMM_u) per fixation
        for v in units:
            for u in units:
                ll[v, u] = models[u].score([row[v]]) / len(row[v])
        for v in units:
            for u in units:
                total[v, u] += (ll[v, v] - ll[v, u]) + (ll[u, u] - ll[u, v])
                counts[v, u] += 1
    return total / np.maximum(counts, 1)


def linkage_cocluster(divergence: np.ndarray, n_groups: int = 2) -> np.ndarray:
    """Group labels (0..n_groups-1) from an average-linkage cut of the divergence matrix."""
    d = np.maximum(divergence, 0)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0)
    labels = fcluster(linkage(squareform(d, checks=False), method="average"), n_groups, criterion="maxclust")
    return labels - 1

