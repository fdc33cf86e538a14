"""Variational Bayesian HMMs of eye movements, with the model, priors and choices of the EMHMM
toolbox (v0.80; Chuk, Chan & Hsiao 2014, J. Vision 14(11):8; Hsiao et al. 2021).

A viewer's fixation sequences on one image are modelled by an HMM whose hidden states are regions
of interest (ROIs) with full-covariance Gaussian emissions. The posterior over all parameters is
approximated by mean-field VB (Chuk et al. 2014, Eqs. 3-9; the conjugate Dirichlet /
Gauss-Wishart updates of Bishop 2006, Sec. 10.2 and of McGrory & Titterington 2009):

* priors: Dirichlet(alpha0) on the start probabilities, Dirichlet(epsilon0) on each transition
  row, Gauss-Wishart(mu0, beta0, W0 * I, v0) on each ROI; the toolbox's defaults alpha0 = epsilon0
  = 0.1, W0 = 0.005, beta0 = 1, v0 = 5 (``vbhmm_learn.m:352-368``), mu0 = the image centre;
* 50 random restarts (a random-start GMM initialises each) keeping the largest lower bound
  (``vbhmm_learn.m:371,647``); the stop rule is ``|dL / L| <= 1e-5`` or 100 iterations;
* the number of ROIs K maximises ``L(K) + log K!`` (``vbhmm_learn.m:483-486``; the bound is
  invariant to the K! relabellings);
* ROIs are ordered as ``vbhmm_standardize(.., 'f')`` does (most likely start, then most likely
  successor); states with soft count below 1e-3 are removed before co-clustering
  (:func:`remove_empty`, ``vhem_cocluster.m:99``).

Everything is vectorised over a batch of independent problems (viewers x restarts): the
forward-backward recursion runs once per time step for the whole batch. The toolbox is
Copyright (c) 2021 A. B. Chan, J. H. Hsiao, T. Chuk, Lan Hui (BSD-3-style terms); this is an
independent implementation from the papers, checked against the toolbox's outputs
(``tests/test_emhmm_golden.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
from scipy.special import digamma, gammaln

LOG2PI = float(np.log(2 * np.pi))
EMPTY_THRESHOLD = 1e-3  # soft count below which a state is empty (vbhmm_remove_empty(h, 0, 1e-3))
DEFAULT_DURATION_MU0 = 150.0  # the toolbox's mu0 for a third (duration, ms) dimension (vbhmm_learn.m)


@dataclass
class HMM:
    """A Gaussian HMM in pixel coordinates: ``prior`` (K,), ``trans`` (K, K) (rows: from),
    ``means`` (K, 2) as (x, y), ``covs`` (K, 2, 2). VB fits also carry the lower bound ``LL``,
    soft counts ``N`` (per ROI), ``N1`` (first fixations), ``M`` (transitions), the variational
    parameters ``varpar`` and, after K selection, ``model_LL`` = L(K) + log K! per candidate K."""

    prior: np.ndarray
    trans: np.ndarray
    means: np.ndarray
    covs: np.ndarray
    LL: float = float("nan")
    N: np.ndarray | None = None
    N1: np.ndarray | None = None
    M: np.ndarray | None = None
    varpar: dict | None = None
    model_k: list[int] = field(default_factory=list)
    model_LL: list[float] = field(default_factory=list)

    @property
    def n_states(self) -> int:
        """Every state of the model, with or without mass (the toolbox's K)."""
        return len(self.prior)

    @property
    def n_rois(self) -> int:
        """ROIs holding mass: states whose soft count reaches ``EMPTY_THRESHOLD`` (the
        threshold ``vhem_cocluster.m:99`` removes below); every state when no counts are known
        (group HMMs)."""
        if self.N is None:
            return len(self.prior)
        return int((np.asarray(self.N) >= EMPTY_THRESHOLD).sum())

    def permute(self, order: Sequence[int]) -> "HMM":
        """The same HMM with its ROIs reordered (``vbhmm_permute``)."""
        o = np.asarray(order)
        vp = None
        if self.varpar is not None:
            vp = {k: (v[o][:, o] if k == "epsilon" else v[o]) for k, v in self.varpar.items()}
        return replace(self, prior=self.prior[o], trans=self.trans[o][:, o], means=self.means[o],
                       covs=self.covs[o], N=None if self.N is None else self.N[o],
                       N1=None if self.N1 is None else self.N1[o],
                       M=None if self.M is None else self.M[o][:, o], varpar=vp)


@dataclass(frozen=True)
class VBOptions:
    """The toolbox's VB-HMM options (``vbhmm_learn.m`` defaults, file:line in the docstring)."""

    alpha0: float = 0.1
    epsilon0: float = 0.1
    W0: float = 0.005
    beta0: float = 1.0
    v0: float = 5.0
    numtrials: int = 50
    max_iter: int = 100
    min_diff: float = 1e-5
    #: EM iterations and relative stop of the random-start GMM that initialises each restart: the
    #: toolbox fits a converged GMM (gmdistribution.fit / gmm_learn, 'TolFun' 1e-5, at most 100
    #: iterations); ``gmm_iter=8`` was the port's earlier, cheaper start.
    gmm_iter: int = 100
    gmm_tol: float = 1e-5


def standardize_order(prior: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """ROI order of ``vbhmm_standardize(hmm, 'f')``: the most likely first ROI, then repeatedly the
    most likely not yet visited successor."""
    a = np.array(trans, dtype=np.float64, copy=True)
    order = [int(np.argmax(prior))]
    a[:, order[0]] = -1
    for _ in range(1, len(prior)):
        nxt = int(np.argmax(a[order[-1]]))
        order.append(nxt)
        a[:, nxt] = -1
    return np.array(order)


# ----------------------------------------------------------------------------- data packing
def pack(batch: Sequence[Sequence[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Pad a batch of problems, each a list of (T_n, D) sequences, to ``X`` (B, N, T, D) and a
    boolean ``mask`` (B, N, T)."""
    B = len(batch)
    N = max(len(p) for p in batch)
    T = max(len(s) for p in batch for s in p)
    D = np.asarray(batch[0][0]).shape[1]
    X = np.zeros((B, N, T, D))
    mask = np.zeros((B, N, T), dtype=bool)
    for b, p in enumerate(batch):
        for n, s in enumerate(p):
            s = np.asarray(s, dtype=np.float64)
            X[b, n, : len(s)] = s
            mask[b, n, : len(s)] = True
    return X, mask


# ----------------------------------------------------------------------------- VB-EM
def _init_varpar(X, mask, means, covs, weights, mu0, opt: VBOptions):
    """Variational parameters from an initial GMM, as ``vbhmm_init`` sets them (the GMM's soft
    counts are ``N * weights``; start/transition counts are ``N / K``)."""
    B, K, D = means.shape
    Ntot = mask.sum(axis=(1, 2)).astype(np.float64)  # (B,)
    Nk = Ntot[:, None] * weights  # (B, K)
    alpha = opt.alpha0 + np.repeat((Ntot / K)[:, None], K, 1)
    epsilon = opt.epsilon0 + np.repeat(alpha[:, None, :] - opt.alpha0, K, 1)
    beta = opt.beta0 + Nk
    v = opt.v0 + Nk + 1
    m = (opt.beta0 * mu0[:, None, :] + Nk[..., None] * means) / beta[..., None]
    diff = means - mu0[:, None, :]
    mult = opt.beta0 * Nk / (opt.beta0 + Nk)
    Winv = (np.eye(D) / opt.W0) + Nk[..., None, None] * covs + mult[..., None, None] * (
        diff[..., :, None] * diff[..., None, :])
    W = np.linalg.inv(Winv)
    return dict(alpha=alpha, epsilon=epsilon, beta=beta, v=v, m=m, W=W)


def _expectations(vp, D):
    """log Lambda-tilde (Bishop 10.65), log pi-tilde and log A-tilde (digamma differences)."""
    i = np.arange(1, D + 1)
    logdetW = np.linalg.slogdet(vp["W"])[1]
    logLam = digamma(0.5 * (vp["v"][..., None] + 1 - i)).sum(-1) + D * np.log(2) + logdetW
    logPi = digamma(vp["alpha"]) - digamma(vp["alpha"].sum(-1, keepdims=True))
    logA = digamma(vp["epsilon"]) - digamma(vp["epsilon"].sum(-1, keepdims=True))
    return logLam, logPi, logA


def _quad(diff: np.ndarray, W: np.ndarray) -> np.ndarray:
    """x^T W_k x for diff (B, P, K, D) and W (B, K, D, D) -> (B, P, K)."""
    d = np.swapaxes(diff, 1, 2)  # (B, K, P, D)
    return np.swapaxes(((d @ W) * d).sum(-1), 1, 2)


def _forward_backward(logrho, mask, logPi, logA):
    """Scaled forward-backward over a batch: ``logrho`` (B, N, T, K), ``mask`` (B, N, T).
    Returns gamma (B, N, T, K), the summed xi (B, N, K, K) and log p(sequence) (B, N)."""
    B, N, T, K = logrho.shape
    mx = np.where(mask, logrho.max(-1), 0.0)
    p = np.exp(logrho - mx[..., None])
    p = np.where(mask[..., None], p, 1.0)
    pi = np.exp(logPi)[:, None, :]  # (B, 1, K)
    A = np.exp(logA)  # (B, K, K)
    At = np.swapaxes(A, 1, 2)
    alpha = np.empty((B, N, T, K))
    c = np.ones((B, N, T))
    a = pi * p[:, :, 0]
    c[:, :, 0] = np.where(mask[:, :, 0], a.sum(-1), 1.0)
    alpha[:, :, 0] = a / c[:, :, 0, None]
    for t in range(1, T):
        a = (alpha[:, :, t - 1] @ A) * p[:, :, t]
        m = mask[:, :, t]
        c[:, :, t] = np.where(m, a.sum(-1), 1.0)
        alpha[:, :, t] = np.where(m[..., None], a / c[:, :, t, None], alpha[:, :, t - 1])
    beta = np.ones((B, N, T, K))
    xi = np.zeros((B, N, K, K))
    for t in range(T - 2, -1, -1):
        m = mask[:, :, t + 1]
        bp = beta[:, :, t + 1] * p[:, :, t + 1] / c[:, :, t + 1, None]
        beta[:, :, t] = np.where(m[..., None], bp @ At, 1.0)
        x = A[:, None] * (alpha[:, :, t, :, None] * bp[:, :, None, :])
        xi += x * m[..., None, None]
    gamma = alpha * beta * mask[..., None]
    lognorm = np.log(c).sum(-1) + mx.sum(-1)
    return gamma, xi, lognorm


def _lower_bound(stats, vp, ex, hyp, opt: VBOptions, D):
    """The variational lower bound of the VB-HMM (Chuk et al. 2014 appendix; the terms of
    Bishop 2006 Eqs. 10.70-10.77 plus the Markov-chain terms), as the toolbox evaluates it."""
    logLam, logPi, logA = ex
    Nk, xbar, S, M, gamma1, Lt63, Lt64 = (stats[k] for k in ("Nk", "xbar", "S", "M", "gamma1", "Lt63", "Lt64"))
    alpha, epsilon, beta, v, m, W = (vp[k] for k in ("alpha", "epsilon", "beta", "v", "m", "W"))
    K = alpha.shape[-1]
    a0, e0, b0, v0, W0inv = opt.alpha0, opt.epsilon0, opt.beta0, opt.v0, 1.0 / opt.W0
    m0 = hyp
    i = np.arange(1, D + 1)
    logdetW0inv = D * np.log(W0inv)
    logCalpha0 = gammaln(K * a0) - K * gammaln(a0)
    logCeps0 = gammaln(K * e0) - K * gammaln(e0)
    logB0 = (v0 / 2) * logdetW0inv - (v0 * D / 2) * np.log(2) - (D * (D - 1) / 4) * np.log(np.pi) \
        - gammaln(0.5 * (v0 + 1 - i)).sum()
    logCalpha = gammaln(alpha.sum(-1)) - gammaln(alpha).sum(-1)
    logCeps = gammaln(epsilon.sum(-1)) - gammaln(epsilon).sum(-1)  # (B, K)
    logdetW = np.linalg.slogdet(W)[1]
    logBk = -(v / 2) * logdetW - (v * D / 2) * np.log(2) - (D * (D - 1) / 4) * np.log(np.pi) \
        - gammaln(0.5 * (v[..., None] + 1 - i)).sum(-1)
    H = (-logBk - 0.5 * (v - D - 1) * logLam + 0.5 * v * D).sum(-1)
    trSW = np.einsum("bkij,bkji->bk", S, W)
    d1 = xbar - m
    xWx = np.einsum("bki,bkij,bkj->bk", d1, W, d1)
    d2 = m - m0[:, None, :]
    mWm = np.einsum("bki,bkij,bkj->bk", d2, W, d2)
    trW0W = W0inv * np.einsum("bkii->bk", W)
    Lt1 = 0.5 * (Nk * (logLam - D / beta - v * trSW - v * xWx - D * LOG2PI)).sum(-1)
    Lt2a = (gamma1 * logPi).sum(-1)
    Lt2b = (M * logA).sum((-1, -2))
    Lt2 = Lt2a + Lt2b
    Lt3 = logCalpha0 + (a0 - 1) * logPi.sum(-1)
    Lt4 = (logCeps0 + (e0 - 1) * logA.sum(-1)).sum(-1)
    Lt51 = 0.5 * (D * np.log(b0 / (2 * np.pi)) + logLam - D * b0 / beta - b0 * v * mWm).sum(-1)
    Lt52 = K * logB0 + 0.5 * (v0 - D - 1) * logLam.sum(-1) - 0.5 * (v * trW0W).sum(-1)
    Lt5 = Lt51 + Lt52
    Lt6 = Lt2a + Lt2b + Lt63 - Lt64
    Lt7 = ((alpha - 1) * logPi).sum(-1) + logCalpha + (((epsilon - 1) * logA).sum(-1) + logCeps).sum(-1)
    Lt8 = 0.5 * (logLam + D * np.log(beta / (2 * np.pi))).sum(-1) - 0.5 * D * K - H
    return Lt1 + Lt2 + Lt3 + Lt4 + Lt5 - Lt6 - Lt7 - Lt8


def vb_em(X: np.ndarray, mask: np.ndarray, means: np.ndarray, covs: np.ndarray, weights: np.ndarray,
          mu0: np.ndarray, opt: VBOptions = VBOptions()) -> dict[str, np.ndarray]:
    """VB-EM for a batch of B independent problems from initial GMMs (``means`` (B, K, D),
    ``covs`` (B, K, D, D), ``weights`` (B, K)); ``mu0`` (B, D). Each problem stops on its own at
    ``|dL/L| <= min_diff`` or ``max_iter``; as in the toolbox, the returned parameters are those
    after the last update and ``LL`` is the bound evaluated just before it."""
    B0, N, T, D = X.shape
    K = means.shape[1]
    vp = _init_varpar(X, mask, means, covs, weights, mu0, opt)
    out: dict[str, np.ndarray] = {}
    act = np.arange(B0)  # problems still iterating; finished ones are dropped from the batch
    X_all, mask_all, mu0_all = X, mask, mu0
    L = np.full(B0, -np.finfo(float).max)
    for it in range(1, opt.max_iter + 1):
        X, mask, mu0 = X_all[act], mask_all[act], mu0_all[act]
        B = len(act)
        Xf = X.reshape(B, N * T, D)
        ex = _expectations(vp, D)
        logLam, logPi, logA = ex
        diff = Xf[:, :, None, :] - vp["m"][:, None]  # (B, N*T, K, D)
        maha = _quad(diff, vp["W"]).reshape(B, N, T, K)
        delta = D / vp["beta"][:, None, None] + vp["v"][:, None, None] * maha
        logrho = 0.5 * logLam[:, None, None] - 0.5 * delta - D * LOG2PI / 2
        gamma, xi, lognorm = _forward_backward(logrho, mask, logPi, logA)
        gamma1 = gamma[:, :, 0].sum(1)
        Nk1 = gamma1 + 1e-50
        Nk = gamma.sum((1, 2)) + 1e-50
        M = xi.sum(1)
        gk = np.swapaxes(gamma.reshape(B, N * T, K), 1, 2)  # (B, K, P)
        xbar = (gk @ Xf) / Nk[..., None]
        dx = Xf[:, None, :, :] - xbar[:, :, None, :]  # (B, K, P, D)
        S = (np.swapaxes(dx * gk[..., None], -1, -2) @ dx) / Nk[..., None, None]
        stats = dict(Nk=Nk, xbar=xbar, S=S, M=M, gamma1=gamma1,
                     Lt63=(gamma * np.where(mask[..., None], logrho, 0.0)).sum((1, 2, 3)), Lt64=lognorm.sum(1))
        lastL = L
        L = _lower_bound(stats, vp, ex, mu0, opt, D)
        bad = ~np.isfinite(L)
        L = np.where(bad, -np.inf, L)
        with np.errstate(invalid="ignore"):
            stop = np.zeros(B, dtype=bool) if it == 1 else np.abs((L - lastL) / lastL) <= opt.min_diff
        stop |= it == opt.max_iter
        # M-step (Chuk et al. 2014 Eqs. 6-9), done even on the last iteration, as the toolbox does
        new = dict(alpha=opt.alpha0 + Nk1, epsilon=opt.epsilon0 + M, beta=opt.beta0 + Nk, v=opt.v0 + Nk + 1)
        new["m"] = (opt.beta0 * mu0[:, None, :] + Nk[..., None] * xbar) / new["beta"][..., None]
        d3 = xbar - mu0[:, None, :]
        mult = opt.beta0 * Nk / (opt.beta0 + Nk)
        Winv = np.eye(D) / opt.W0 + Nk[..., None, None] * S + mult[..., None, None] * (d3[..., :, None] * d3[..., None, :])
        Wn = np.linalg.inv(Winv)
        new["W"] = (Wn + np.swapaxes(Wn, -1, -2)) / 2
        f = stop | bad
        if f.any():
            keep = {k: np.where(bad[f].reshape((-1,) + (1,) * (v.ndim - 1)), vp[k][f], v[f]) for k, v in new.items()}
            snap = dict(keep, LL=L[f], N=Nk[f], N1=Nk1[f], M=M[f])
            for k, val in snap.items():
                if k not in out:
                    out[k] = np.zeros((B0,) + val.shape[1:])
                out[k][act[f]] = val
        vp = {k: v[~f] for k, v in new.items()}
        act, L = act[~f], L[~f]
        if len(act) == 0:
            break
    return _finish(out, D)


def _finish(out, D):
    """Point estimates from the variational parameters (``vbhmm_em.m`` end): normalised
    alpha and epsilon, means m and covariances inv(W) / (v - D - 1)."""
    out["prior"] = out["alpha"] / out["alpha"].sum(-1, keepdims=True)
    rows = out["epsilon"].sum(-1, keepdims=True)
    out["trans"] = out["epsilon"] / np.where(rows == 0, 1, rows)
    v = out["v"]
    C = np.linalg.inv(out["W"]) / np.where(v > D + 1, v - D - 1, v)[..., None, None]
    out["covs"] = (C + np.swapaxes(C, -1, -2)) / 2
    out["means"] = out["m"]
    return out


def _to_hmm(out, b, sort: bool = True) -> HMM:
    vp = {k: out[k][b].copy() for k in ("alpha", "epsilon", "beta", "v", "m", "W")}
    h = HMM(prior=out["prior"][b].copy(), trans=out["trans"][b].copy(), means=out["means"][b].copy(),
            covs=out["covs"][b].copy(), LL=float(out["LL"][b]), N=out["N"][b].copy(), N1=out["N1"][b].copy(),
            M=out["M"][b].copy(), varpar=vp)
    return h.permute(standardize_order(h.prior, h.trans)) if sort else h


def fit_from_gmm(sequences: Sequence[np.ndarray], means, covs, weights, mu0, opt: VBOptions = VBOptions(),
                 sort: bool = True) -> HMM:
    """One VB-HMM from a given initial GMM (the toolbox's ``initmode = 'initgmm'``)."""
    _check_sequences("fit_from_gmm", sequences)
    X, mask = pack([list(sequences)])
    out = vb_em(X, mask, np.asarray(means, float)[None], np.asarray(covs, float)[None],
                np.asarray(weights, float)[None], np.asarray(mu0, float)[None], opt)
    return _to_hmm(out, 0, sort)


# ----------------------------------------------------------------------------- random starts
def _few_point_start(pts: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The toolbox's start when a problem has no more fixations than ROIs (``vbhmm_init.m``,
    case N <= K): the fixations themselves as means, the missing ones at the origin with weight
    1e-6, and the mean per-dimension variance times I as every covariance. MATLAB's ``var`` of a
    single fixation (a row vector) is the variance of its coordinates; that is kept."""
    n, D = pts.shape
    means = np.zeros((K, D))
    means[:n] = pts
    weights = np.r_[np.ones(n), np.full(K - n, 1e-6)]
    var = np.var(pts.ravel(), ddof=1) if n == 1 else np.var(pts, axis=0, ddof=1).mean()
    var = 0.0 if not np.isfinite(var) else float(var)
    return means, np.repeat((var * np.eye(D))[None], K, 0), weights / weights.sum()


def random_gmms(X: np.ndarray, mask: np.ndarray, K: int, rngs: Sequence[np.random.Generator],
                iters: int = 100, tol: float = 1e-5, reg: float = 1e-6
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random-start full-covariance GMMs, one per problem of the batch: means at K distinct random
    fixations ('randSample'), covariances the data's, then EM until the log-likelihood changes by
    less than ``tol`` (relative) or ``iters`` steps (the toolbox: ``gmdistribution.fit`` with
    'TolFun' 1e-5 or, without the Statistics Toolbox, its ``gmm_learn``). ``rngs[b]`` draws
    problem b's start from its own fixations only, so a start never depends on the rest of the
    batch; padding never enters (``mask``). Problems with no more fixations than K get the
    toolbox's few-point start (``_few_point_start``)."""
    B, N, T, D = X.shape
    pts = X.reshape(B, N * T, D)
    w = mask.reshape(B, N * T).astype(np.float64)
    n = w.sum(1)
    mean_all = (pts * w[..., None]).sum(1) / n[:, None]
    dev = (pts - mean_all[:, None]) * w[..., None]
    cov_all = np.einsum("bpi,bpj->bij", dev, dev) / np.maximum(n - 1, 1)[:, None, None]
    if K == 1:
        return mean_all[:, None], cov_all[:, None], np.ones((B, 1))
    means = np.zeros((B, K, D))
    covs = np.repeat(cov_all[:, None], K, 1) + reg * np.eye(D)
    weights = np.full((B, K), 1.0 / K)
    few = n <= K
    for b in range(B):
        valid = np.flatnonzero(w[b])
        if few[b]:
            means[b], covs[b], weights[b] = _few_point_start(pts[b, valid], K)
        else:
            means[b] = pts[b, valid[rngs[b].permutation(len(valid))[:K]]]
    act = np.flatnonzero(~few)
    scale = np.trace(cov_all, axis1=1, axis2=2)[:, None, None, None] / D
    old = np.full(B, -np.inf)
    for _ in range(iters):
        if len(act) == 0:
            break
        P, wa, m, c, wt = pts[act], w[act], means[act], covs[act], weights[act]
        diff = P[:, :, None, :] - m[:, None]
        maha = _quad(diff, np.linalg.inv(c))
        logp = np.log(wt)[:, None] - 0.5 * (maha + np.linalg.slogdet(c)[1][:, None] + D * LOG2PI)
        top = logp.max(-1, keepdims=True)
        r = np.exp(logp - top)
        total = r.sum(-1, keepdims=True)
        loglik = ((np.log(total[..., 0]) + top[..., 0]) * wa).sum(1)
        r = r / total * wa[..., None]
        nk = r.sum(1) + 1e-10
        weights[act] = nk / nk.sum(-1, keepdims=True)
        rk = np.swapaxes(r, 1, 2)  # (B, K, P)
        means[act] = (rk @ P) / nk[..., None]
        dx = P[:, None] - means[act][:, :, None]  # (B, K, P, D)
        cv = (np.swapaxes(dx * rk[..., None], -1, -2) @ dx) / nk[..., None, None]
        covs[act] = cv + (1e-3 * scale[act] + reg) * np.eye(D)  # keep one-point ROIs proper
        with np.errstate(invalid="ignore"):
            done = np.abs((loglik - old[act]) / loglik) < tol
        old[act] = loglik
        act = act[~done]
    return means, covs, weights


def _check_sequences(where: str, seqs: Sequence[np.ndarray], D: int | None = None) -> int:
    """Every sequence a finite (n, D) array with one D for all; returns D."""
    for s in seqs:
        s = np.asarray(s, dtype=np.float64)
        if s.ndim != 2 or s.shape[0] == 0:
            raise ValueError(f"{where}: a fixation sequence must be a non-empty (n, D) array, got shape {s.shape}")
        if D is None:
            D = s.shape[1]
        if s.shape[1] != D:
            raise ValueError(f"{where}: sequences with {s.shape[1]} and {D} columns mixed")
        if not np.isfinite(s).all():
            raise ValueError(f"{where}: NaN or infinite fixation coordinates")
    return D


def fit_vbhmms(problems: Sequence[Sequence[np.ndarray]], mu0s: Sequence[Sequence[float]],
               K_values: Sequence[int] = (1, 2, 3), opt: VBOptions = VBOptions(), seed: int = 1000) -> list[HMM]:
    """VB-HMMs for many problems (e.g. every viewer on one image) at once, as ``vbhmm_learn`` does
    for each: for every K, ``opt.numtrials`` random restarts (one for K = 1), the best bound
    kept; then the K maximising ``L(K) + log K!``. ROIs ordered as ``vbhmm_standardize 'f'``.
    Each problem draws its restarts from its own generator, seeded ``(seed, K)`` as the toolbox
    re-seeds before each K (``vbhmm_learn.m:541``), so a problem's HMM is the same alone and in
    any batch. Sequences are (n, D) arrays (D = 2: x, y; D = 3: x, y, duration)."""
    D = None
    for i, p in enumerate(problems):
        if len(p) == 0 or sum(len(q) for q in p) == 0:
            raise ValueError(f"fit_vbhmms: problem {i} has no fixations")
        D = _check_sequences(f"fit_vbhmms: problem {i}", p, D)
    if any(int(K) < 1 for K in K_values) or len(K_values) == 0:
        raise ValueError(f"fit_vbhmms: K candidates must be positive integers, got {list(K_values)}")
    P = len(problems)
    X0, mask0 = pack(problems)
    mu0 = np.asarray(mu0s, float)
    if mu0.shape != (P, D):
        raise ValueError(f"fit_vbhmms: need one mu0 of length {D} per problem, got shape {mu0.shape}")
    best: dict[int, list[HMM]] = {}
    for K in K_values:
        R = 1 if K == 1 else opt.numtrials
        rngs = [g for g in (np.random.default_rng([seed, K]) for _ in range(P)) for _ in range(R)]
        X = np.repeat(X0, R, 0)
        mask = np.repeat(mask0, R, 0)
        means, covs, weights = random_gmms(X, mask, K, rngs, opt.gmm_iter, opt.gmm_tol)
        out = vb_em(X, mask, means, covs, weights, np.repeat(mu0, R, 0), opt)
        LL = out["LL"].reshape(P, R)
        pick = np.argmax(np.where(np.isfinite(LL), LL, -np.inf), axis=1)
        best[K] = [_to_hmm(out, p * R + pick[p]) for p in range(P)]
    result = []
    for p in range(P):
        scores = [best[K][p].LL + gammaln(K + 1) for K in K_values]
        h = best[list(K_values)[int(np.argmax(scores))]][p]
        h.model_k = list(K_values)
        h.model_LL = [float(s) for s in scores]
        result.append(h)
    return result


def remove_empty(h: HMM, thresh: float = 1e-3) -> HMM:
    """Drop ROIs with soft count ``N < thresh`` and renormalise start and transition
    probabilities from the variational parameters (``vbhmm_remove_empty(h, 0, 1e-3)``)."""
    if h.N is None:
        return h
    keep = np.flatnonzero(h.N >= thresh)
    if len(keep) == len(h.N):
        return h
    if len(keep) == 0:
        raise ValueError("remove_empty: every ROI has a soft count below the threshold")
    g = h.permute(keep)
    if g.varpar is not None:
        g.prior = g.varpar["alpha"] / g.varpar["alpha"].sum()
        g.trans = g.varpar["epsilon"] / g.varpar["epsilon"].sum(1, keepdims=True)
    else:
        g.prior = g.prior / g.prior.sum()
        g.trans = g.trans / g.trans.sum(1, keepdims=True)
    return g


def fit_individual(paths: Sequence[Sequence[Sequence[np.ndarray] | None]], sizes: Sequence[tuple[int, int]],
                   K_values: Sequence[int] = (1, 2, 3), opt: VBOptions = VBOptions(), seed: int = 1000,
                   progress: bool = False, chunk: int = 64, outside_tolerance: float | None = None,
                   use_duration: bool = False, duration_mu0: float = DEFAULT_DURATION_MU0
                   ) -> list[list[HMM | None]]:
    """One VB-HMM per viewer and image: ``paths[image][viewer]`` is that viewer's list of (n, 2+)
    fixation sequences (x, y in pixels, optionally a duration in ms as third column) or None;
    ``sizes[image]`` = (height, width) sets mu0 to the image centre (the toolbox's ``imgsize`` is
    [x; y], i.e. (width, height): see :func:`hsi_core.eyemovements.analysis.analyse_study`).

    ``outside_tolerance``: None (default, the toolbox's behaviour) accepts any finite fixation,
    off-image ones included, as eye trackers record them; a number of pixels raises for a
    fixation farther than that outside the image. ``use_duration``: fit (x, y, duration) with
    mu0's third entry ``duration_mu0`` (the toolbox's default 150 ms). A viewer with no data on
    an image is None there. Problems are fitted ``chunk`` at a time; a problem's HMM does not
    depend on the chunk it lands in. Returns ``hmms[image][viewer]``.

    Args:
        paths: ``paths[image][viewer]``: a list of ``(n, 2+)`` fixation sequences, or None.
        sizes: ``(height, width)`` per image.
        K_values: the ROI counts tried (the best by ``L(K) + log K!`` is kept).
        opt: the VB options (:class:`VBOptions`).
        seed: the toolbox's seed.
        progress: show a progress bar.
        chunk: problems fitted at once.
        outside_tolerance: ``None`` or a number of pixels (above).
        use_duration: fit (x, y, duration).
        duration_mu0: the prior mean duration in ms.

    Returns:
        ``hmms[image][viewer]``: an :class:`HMM` in pixel coordinates, or None without data.

    Raises:
        ValueError: ``paths`` and ``sizes`` differ in length, or a sequence is malformed.
    """
    from tqdm import tqdm

    if len(paths) != len(sizes):
        raise ValueError(f"fit_individual: {len(paths)} images but {len(sizes)} sizes")
    D = 3 if use_duration else 2
    problems, mu0s, where = [], [], []
    for i, (row, (h, w)) in enumerate(zip(paths, sizes)):
        for v, p in enumerate(row):
            if p is None or len(p) == 0:
                continue
            seqs = [np.asarray(s, dtype=np.float64) for s in p if len(s) > 0]
            if not seqs:
                continue
            for s in seqs:
                if s.ndim != 2 or s.shape[1] < D:
                    raise ValueError(f"fit_individual: image {i}, viewer {v}: need (n, {D}) fixations, got {s.shape}")
            seqs = [s[:, :D] for s in seqs]
            _check_sequences(f"fit_individual: image {i}, viewer {v}", seqs)
            if outside_tolerance is not None:
                t = float(outside_tolerance)
                for s in seqs:
                    off = (s[:, 0] < -0.5 - t) | (s[:, 0] > w - 0.5 + t) | (s[:, 1] < -0.5 - t) | (s[:, 1] > h - 0.5 + t)
                    if off.any():
                        x, y = s[np.flatnonzero(off)[0], :2]
                        raise ValueError(f"fit_individual: image {i}, viewer {v}: fixation ({x:g}, {y:g}) is more "
                                         f"than {t:g} px outside the {w}x{h} image")
            problems.append(seqs)
            mu0s.append([w / 2, h / 2] + ([duration_mu0] if use_duration else []))
            where.append((i, v))
    out: list[list[HMM | None]] = [[None] * len(row) for row in paths]
    for start in tqdm(range(0, len(problems), chunk), desc="VB-HMMs", disable=not progress):
        fitted = fit_vbhmms(problems[start:start + chunk], mu0s[start:start + chunk], K_values, opt, seed)
        for (i, v), hm in zip(where[start:start + chunk], fitted):
            out[i][v] = hm
    return out
