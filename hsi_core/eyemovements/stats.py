"""Scoring and statistics of the EMHMM group comparison (Chuk et al. 2014; Hsiao et al. 2021; the
HSI paper's eye-tracking study).

* :func:`loglik`: the log-likelihood of each fixation sequence under an HMM (forward algorithm),
  divided by the sequence's number of fixations (``vbhmm_ll.m:33``, option ``'n'``).
* :func:`group_logliks`: per viewer and image, the mean over the viewer's sequences of that
  normalised log-likelihood under each group's HMM (``demo_cocluster.m``), summed over images.
* :func:`ef_scale`: ``(E - F) / (|E| + |F|)`` (the toolbox's AB scale; the paper's EF scale).
* :func:`paired_t` (Cohen's d_z), :func:`one_sample_t`, :func:`partial_correlation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as _st

from .vbhmm import HMM, LOG2PI, pack


def gaussian_logpdf(X: np.ndarray, means: np.ndarray, covs: np.ndarray) -> np.ndarray:
    """log N(x; mean_k, cov_k) for X (..., D) and K Gaussians -> (..., K), via Cholesky."""
    L = np.linalg.cholesky(covs)  # (K, D, D)
    diff = X[..., None, :] - means  # (..., K, D)
    sol = np.linalg.solve(L, diff[..., None])[..., 0]  # broadcast (..., K, D)
    D = X.shape[-1]
    logdet = 2 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
    return -0.5 * ((sol**2).sum(-1) + logdet + D * LOG2PI)


def loglik(hmm: HMM, sequences: Sequence[np.ndarray], normalise: bool = True) -> np.ndarray:
    """Log-likelihood of each sequence under the HMM (scaled forward algorithm, all sequences at
    once), divided by its length when ``normalise`` (the toolbox's default)."""
    D = hmm.means.shape[1]
    seqs = [np.asarray(s, dtype=np.float64) for s in sequences]
    if any(s.ndim != 2 or len(s) == 0 or s.shape[1] < D for s in seqs):
        raise ValueError(f"loglik: every sequence must be a non-empty (n, {D}+) array")
    seqs = [s[:, :D] for s in seqs]
    if not all(np.isfinite(s).all() for s in seqs):
        raise ValueError("loglik: NaN or infinite fixation coordinates have no likelihood")
    X, mask = pack([seqs])
    X, mask = X[0], mask[0]  # (N, T, 2), (N, T)
    logp = gaussian_logpdf(X, hmm.means, hmm.covs)  # (N, T, K)
    mx = np.where(mask, logp.max(-1), 0.0)
    p = np.exp(logp - mx[..., None])
    a = hmm.prior * p[:, 0]
    c = a.sum(-1)
    a = a / c[:, None]
    total = np.log(c) + mx[:, 0]
    for t in range(1, X.shape[1]):
        nxt = (a @ hmm.trans) * p[:, t]
        ct = nxt.sum(-1)
        m = mask[:, t]
        a = np.where(m[:, None], nxt / np.where(m, ct, 1.0)[:, None], a)
        total = total + np.where(m, np.log(np.where(m, ct, 1.0)) + mx[:, t], 0.0)
    lengths = mask.sum(1)
    return total / lengths if normalise else total


def group_logliks(paths: Sequence[Sequence[Sequence[np.ndarray] | None]],
                  group_hmms: Sequence[Sequence[HMM] | None]) -> np.ndarray:
    """``LL[viewer, image, group]``: the mean per-fixation log-likelihood of a viewer's sequences on
    an image under each group's HMM of that image (0 where the viewer has no data, as in
    ``demo_cocluster.m``). ``paths[image][viewer]`` is a list of sequences or None; an image
    whose group HMMs are None (nobody looked at it, :class:`CoClustering`) contributes 0."""
    n_img, n_view = len(paths), len(paths[0])
    K = len(next(row for row in group_hmms if row is not None))
    LL = np.zeros((n_view, n_img, K))
    for i in range(n_img):
        if group_hmms[i] is None:
            continue
        for v in range(n_view):
            seqs = paths[i][v]
            if seqs is None or len(seqs) == 0:
                continue
            for g in range(K):
                LL[v, i, g] = loglik(group_hmms[i][g], seqs).mean()
    return LL


def ef_scale(e: np.ndarray | float, f: np.ndarray | float) -> np.ndarray | float:
    """EF scale ``(E - F) / (|E| + |F|)`` (Hsiao et al. 2021; the toolbox's AB scale):
    positive = closer to the explorative (E) pattern.

    Args:
        e: log-likelihood(s) under the explorative group's HMMs.
        f: log-likelihood(s) under the focused group's HMMs, the same shape.

    Returns:
        A float in [-1, 1] for scalars, else an array of them.

    Raises:
        ValueError: E and F are both zero somewhere.
    """
    e, f = np.asarray(e, dtype=np.float64), np.asarray(f, dtype=np.float64)
    denominator = np.abs(e) + np.abs(f)
    if np.any(denominator == 0):
        raise ValueError("ef_scale: E and F are both zero")
    out = (e - f) / denominator
    return float(out) if out.ndim == 0 else out


TAILS = {"right": "greater", "left": "less", "both": "two-sided"}


def _alternative(tail: str, where: str) -> str:
    if tail not in TAILS:
        raise ValueError(f"{where}: tail must be one of {sorted(TAILS)} (MATLAB ttest's names), got {tail!r}")
    return TAILS[tail]


@dataclass
class TestResult:
    t: float
    df: int
    p: float
    d: float  # Cohen's d (d_z for paired tests)


def paired_t(a: Sequence[float], b: Sequence[float], tail: str = "right") -> TestResult:
    """Paired t-test of a - b with Cohen's d_z (mean difference / SD of the differences).

    ``tail="right"`` (default) tests mean(a - b) > 0, as the toolbox's ``stats_ttest`` does
    (``ttest(LL1, LL2, 'tail', 'right')``: data are more likely under their own group's HMM);
    ``"both"`` is the two-sided test (e.g. the HSI paper's task effect, t(19) = -5.01, p < .001),
    ``"left"`` mean(a - b) < 0.

    Args:
        a: the first sample.
        b: the paired second sample, as long as ``a``.
        tail: ``"right"`` (default), ``"left"`` or ``"both"``.

    Returns:
        A :class:`TestResult`: ``t``, ``df``, ``p`` and Cohen's ``d`` (d_z).

    Raises:
        ValueError: samples of different lengths or fewer than 2, differences of zero variance, or
            an unknown ``tail``.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"paired_t: need two equally long samples of at least 2, got {len(a)} and {len(b)}")
    diff = a - b
    if diff.std(ddof=1) == 0:
        raise ValueError("paired_t: the differences have zero variance")
    res = _st.ttest_rel(a, b, alternative=_alternative(tail, "paired_t"))
    return TestResult(float(res.statistic), len(diff) - 1, float(res.pvalue), float(diff.mean() / diff.std(ddof=1)))


def one_sample_t(x: Sequence[float], mu: float = 0.0, tail: str = "both") -> TestResult:
    """One-sample t-test against ``mu`` with Cohen's d = (mean - mu) / SD; ``tail`` as in
    :func:`paired_t` (default two-sided, MATLAB ttest's default; the toolbox has no one-sample
    test)."""
    x = np.asarray(x, float)
    if len(x) < 2:
        raise ValueError(f"one_sample_t: need at least 2 values, got {len(x)}")
    res = _st.ttest_1samp(x, mu, alternative=_alternative(tail, "one_sample_t"))
    return TestResult(float(res.statistic), len(x) - 1, float(res.pvalue), float((x.mean() - mu) / x.std(ddof=1)))


def partial_correlation(x: Sequence[float], y: Sequence[float], covariate: Sequence[float]) -> tuple[float, int, float]:
    """Pearson correlation of x and y after regressing the covariate out of both: (r, df, p),
    df = n - 3 (the paper's r(59) = .48 controlling for English proficiency)."""
    x, y, z = (np.asarray(v, float) for v in (x, y, covariate))
    if not (len(x) == len(y) == len(z)) or len(x) < 4:
        raise ValueError(f"partial_correlation: need three equally long samples of at least 4, got {len(x)}, {len(y)}, {len(z)}")
    design = np.c_[np.ones_like(z), z]
    rx = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    ry = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    r = float(np.corrcoef(rx, ry)[0, 1])
    df = len(x) - 3
    t = r * np.sqrt(df / (1 - r**2))
    return r, df, float(2 * _st.t.sf(abs(t), df))


def group_separation(LL: np.ndarray, labels: Sequence[int], explorative: int, tail: str = "right"
                     ) -> list[dict[str, object]]:
    """The paper's check that the two groups differ (Chuk et al. 2014; HSI paper: t(27) = 8.48,
    d = 1.60 and t(11) = 8.50, d = 2.45): for each group, a paired t-test of its members'
    log-likelihoods (``LL[viewer, image, group]`` summed over images) under their own group's HMMs
    against the other group's, with Cohen's d_z. Rows: explorative group first; a group of one
    viewer gets no test. ``tail="right"`` as ``stats_ttest`` (own HMM better); ``"both"`` for
    the two-sided p. Viewers labelled -1 (no data, :func:`hsi_core.eyemovements.vhem.cocluster`) are left out.

    Args:
        LL: ``(viewers, images, 2)`` log-likelihoods under each group's HMMs.
        labels: each viewer's group (0 or 1; -1 without data).
        explorative: the explorative group's index.
        tail: ``"right"`` (default) or ``"both"``.

    Returns:
        One dict per group, explorative first: ``group``, ``viewers`` and, for two or more
        viewers, ``t``, ``df``, ``p`` and ``Cohen's d``.

    Raises:
        ValueError: ``LL`` is not ``(viewers, images, 2)`` or ``labels`` has another length.
    """
    LL = np.asarray(LL, dtype=np.float64)
    labels = np.asarray(labels)
    if LL.ndim != 3 or LL.shape[2] != 2 or len(labels) != LL.shape[0]:
        raise ValueError(f"group_separation: need LL (viewers, images, 2) and one label per viewer, got "
                         f"{LL.shape} and {len(labels)} labels")
    total = LL.sum(1)
    rows: list[dict[str, object]] = []
    for group, name in ((explorative, "explorative"), (1 - explorative, "focused")):
        members = labels == group
        row: dict[str, object] = {"group": name, "viewers": int(members.sum())}
        if members.sum() >= 2:
            r = paired_t(total[members, group], total[members, 1 - group], tail=tail)
            row.update({"t": round(r.t, 2), "df": r.df, "p": f"{r.p:.1e}", "Cohen's d": round(r.d, 2)})
        else:
            row.update({"t": "n/a", "df": "", "p": "", "Cohen's d": ""})
        rows.append(row)
    return rows


def viterbi(hmm: HMM, sequence: np.ndarray) -> np.ndarray:
    """The most likely ROI of each fixation (Viterbi path), for colouring fixations by ROI."""
    x = np.asarray(sequence, dtype=np.float64)
    D = hmm.means.shape[1]
    if x.ndim != 2 or len(x) == 0 or x.shape[1] < D or not np.isfinite(x[:, :D]).all():
        raise ValueError(f"viterbi: need a non-empty (n, {D}+) fixation sequence without NaN or infinite values")
    x = x[:, :D]
    logp = gaussian_logpdf(x, hmm.means, hmm.covs)
    with np.errstate(divide="ignore"):
        logA, logpi = np.log(hmm.trans), np.log(hmm.prior)
    delta = logpi + logp[0]
    back = np.zeros((len(x), len(hmm.prior)), dtype=int)
    for t in range(1, len(x)):
        cand = delta[:, None] + logA
        back[t] = np.argmax(cand, 0)
        delta = cand[back[t], np.arange(len(hmm.prior))] + logp[t]
    path = [int(np.argmax(delta))]
    for t in range(len(x) - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return np.array(path[::-1])
