"""A straightforward numpy port of the MIT saliency benchmark's MATLAB metrics (one map at a time).

Used as the trusted reference in the tests and as the per-image baseline in the benchmarks. Each
function follows the MATLAB file named in its docstring line by line (loops included), except that
the random numbers are arguments: AUC-Judd's jitter (``rand(size(map)) / 1e7``, or ``None`` for the
code's ``jitter = 0``) and sAUC's draws. ``auc_shuffled_pysaliency`` ports pysaliency's shuffled AUC
(every other fixation a negative, with multiplicity, pair counting).
"""

from __future__ import annotations

import numpy as np

MATLAB_EPS = 2.2204e-16


def _mat2gray(x: np.ndarray) -> np.ndarray:
    return (x - x.min()) / (x.max() - x.min())


def cc(saliency_map: np.ndarray, fixation_map: np.ndarray) -> float:
    """CC.m"""
    s = (saliency_map - saliency_map.mean()) / saliency_map.std(ddof=1)
    f = (fixation_map - fixation_map.mean()) / fixation_map.std(ddof=1)
    return float(np.corrcoef(s.ravel(), f.ravel())[0, 1])


def kldiv(saliency_map: np.ndarray, fixation_map: np.ndarray) -> float:
    """KLdiv.m"""
    map1 = saliency_map.astype(np.float64)
    map2 = fixation_map.astype(np.float64)
    map1 = map1 / map1.sum()
    map2 = map2 / map2.sum()
    return float(np.sum(map2 * np.log(MATLAB_EPS + map2 / (map1 + MATLAB_EPS))))


def similarity(map1: np.ndarray, map2: np.ndarray) -> float:
    """similarity.m"""
    map1 = _mat2gray(map1.astype(np.float64))
    map1 = map1 / map1.sum()
    map2 = _mat2gray(map2.astype(np.float64))
    map2 = map2 / map2.sum()
    return float(np.minimum(map1, map2).sum())


def nss(saliency_map: np.ndarray, fixation_map: np.ndarray) -> float:
    """NSS.m"""
    s = (saliency_map - saliency_map.mean()) / saliency_map.std(ddof=1)
    return float(s[fixation_map > 0].mean())


def auc_judd(saliency_map: np.ndarray, fixation_map: np.ndarray, jitter: np.ndarray | None = None) -> float:
    """AUC_Judd.m; ``jitter``: the noise the code adds when ``jitter = 1`` (its default), else None."""
    saliency_map = saliency_map.astype(np.float64)
    if jitter is not None:
        saliency_map = saliency_map + jitter
    s = _mat2gray(saliency_map).ravel()
    f = fixation_map.ravel() > 0
    sth = s[f]
    n_fix = len(sth)
    n_pix = len(s)
    thresholds = np.sort(sth)[::-1]
    tp = np.zeros(n_fix + 2)
    fp = np.zeros(n_fix + 2)
    tp[-1] = 1
    fp[-1] = 1
    for i in range(n_fix):
        above = np.sum(s >= thresholds[i])
        tp[i + 1] = (i + 1) / n_fix
        fp[i + 1] = (above - (i + 1)) / (n_pix - n_fix)
    return float(np.trapezoid(tp, fp))


def auc_shuffled(saliency_map: np.ndarray, fixation_map: np.ndarray, other_map: np.ndarray,
                 draws: list[np.ndarray], step: float = 0.1) -> float:
    """AUC_shuffled.m; ``draws[k]`` is the k-th random permutation of the other-fixation indices."""
    s = _mat2gray(saliency_map.astype(np.float64)).ravel()
    sth = s[fixation_map.ravel() > 0]
    ind = np.flatnonzero(other_map.ravel() > 0)
    n_oth = min(len(sth), len(ind))
    aucs = []
    for perm in draws:
        curfix = s[ind[perm[:n_oth]]]
        top = max(sth.max(), curfix.max())
        thresholds = np.arange(0, int(np.floor(top / step + 1e-9)) + 1)[::-1] * step
        tp = np.zeros(len(thresholds) + 2)
        fp = np.zeros(len(thresholds) + 2)
        tp[-1] = 1
        fp[-1] = 1
        for i, t in enumerate(thresholds):
            tp[i + 1] = np.sum(sth >= t) / len(sth)
            fp[i + 1] = np.sum(curfix >= t) / n_oth
        aucs.append(np.trapezoid(tp, fp))
    return float(np.mean(aucs))


def auc_exact(saliency_map: np.ndarray, fixation_map: np.ndarray, other_map: np.ndarray) -> float:
    """Exact AUC with all other-image fixations as negatives, every value a threshold (pair counting)."""
    pos = saliency_map.ravel()[fixation_map.ravel() > 0]
    neg = saliency_map.ravel()[other_map.ravel() > 0]
    wins = 0.0
    for v in pos:
        wins += np.sum(neg < v) + 0.5 * np.sum(neg == v)
    return float(wins / (len(pos) * len(neg)))


def auc_shuffled_pysaliency(saliency_map: np.ndarray, fix_rows: np.ndarray, fix_cols: np.ndarray,
                            other_rows: np.ndarray, other_cols: np.ndarray) -> float:
    """pysaliency's shuffled AUC of one image: every fixation of this image a positive and every
    fixation of the other images (already moved onto this grid) a negative, repeats included;
    P(pos > neg) + P(pos = neg) / 2 by pair counting."""
    pos = saliency_map[fix_rows, fix_cols]
    neg = saliency_map[other_rows, other_cols]
    wins = 0.0
    for v in pos:
        wins += np.sum(neg < v) + 0.5 * np.sum(neg == v)
    return float(wins / (len(pos) * len(neg)))


def mae(map1: np.ndarray, map2: np.ndarray) -> float:
    """Mean absolute error of min-max normalised maps (HSI Table 4)."""
    return float(np.mean(np.abs(_mat2gray(map1.astype(np.float64)) - _mat2gray(map2.astype(np.float64)))))
