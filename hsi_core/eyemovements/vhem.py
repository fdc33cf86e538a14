"""Co-clustering of viewers' HMMs with the variational hierarchical EM algorithm (VHEM), as the
EMHMM toolbox v0.80 computes it (``vhem_cocluster`` / ``hem_coh3m_c_step``).

VHEM (Coviello, Chan & Lanckriet 2014, JMLR 15:697-747) clusters a set of "base" HMMs into K
"reduced" HMMs by maximising the expected log-likelihood of N_v virtual sequences of length tau
drawn from each base HMM (their Eqs. 10-13): the E-step is a variational forward-backward over the
base and reduced state chains (Sec. 3.3, Eqs. 26-35; the expected Gaussian log-likelihoods of
Eq. 38), the M-step re-estimates each reduced HMM from the assignment-weighted summary statistics
(Eqs. 40-45). Co-clustering (Hsiao et al. 2021, Sec. 2.2; the toolbox's ``hem_coh3m_c``) runs one
VHEM per image but with **one viewer-to-group assignment Z shared by all images**: the per-image
expected log-likelihoods are averaged over images before the soft assignment, so a viewer belongs
to the same group on every image. Each viewer counts equally (N_i = N_v for every viewer, omega
uniform and, as in the toolbox, not re-estimated); the bound is divided by tau * N_v / K_b
(``inf_norm = 'nt'``); reduced covariances get ``reg_cov * I``.

Starts (``initmode``, the toolbox's ``hemopt.initmode``; :func:`initial_groups`), each run for
``trials`` trials, every trial seeded on its own (the toolbox seeds trial t with seed + t):

- ``'auto'`` (``vhem_cocluster.m``'s default, :160 and :219): runs ``'hem-ind'``, ``'gmmNew'`` and
  ``'gmmNew2'`` in turn, each with ``trials`` trials, and keeps the start whose best trial has the
  highest bound (the demo, ``demo_cocluster.m``, sets ``'gmmNew'`` instead).
- ``'gmmNew'`` (``initialize_hem_h3m_c.m``): per image, the emissions of all viewers' HMMs are pooled,
  each with the same weight, and reduced by hierarchical EM (``GMM_MixHierEM``; :func:`hem_gmm`) to
  a GMM with S Gaussians, which every group takes as its emissions; prior and transitions random
  (``initopt.mode = 'r0'``), omega random.
- ``'gmmNew2'``: the same with S * K Gaussians, dealt out at random so each group gets S of its own;
  uniform prior and transitions (``'u0'``), omega random.
- ``'hem-ind'`` (``hem_coh3m_c.m``): one VHEM per image on its own (a ``'baseem'`` start, omega
  re-estimated as ``hem_h3m_c_step`` does, termvalue / 10); the per-image groups are matched
  across images by k-means on the viewers' assignment vectors (``match_clusters.m``, mode 'k') and
  omega is their average.
- ``'baseem'``: each group ROI a random viewer's random ROI, uniform prior and transitions.
- ``'base'``: the (resized) HMMs of K randomly chosen viewers, the same viewers on every image (this
  package's earlier default; the toolbox's ``'base'`` keeps only viewers with exactly S ROIs).

As in ``hem_coh3m_c_step.m``, omega is not re-estimated during co-clustering. Trials whose bound is
more than 10% better than the next are discarded as degenerate (``find_degenerate_outliers.m``);
the best bound wins. The H3M/VHEM code of the toolbox is Copyright 2012 Emanuele Coviello, CALab,
UCSD; this is an independent implementation from the papers and the toolbox's behaviour, checked
against the toolbox's outputs (``tests/test_emhmm_golden.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from .vbhmm import HMM, LOG2PI, remove_empty, standardize_order


#: the starts :func:`cocluster` knows (``hemopt.initmode``)
INITMODES = ("auto", "gmmNew", "gmmNew2", "hem-ind", "baseem", "base")
#: what ``'auto'`` tries, in the toolbox's order (``vhem_cocluster.m:219``)
AUTO_INITMODES = ("hem-ind", "gmmNew", "gmmNew2")


@dataclass(frozen=True)
class VHEMOptions:
    """``vhem_cocluster.m`` defaults (:147-181), with the demo's ``trials``."""

    n_groups: int = 2
    trials: int = 100
    tau: int = 10  # the toolbox's demo sets round(median sequence length)
    Nv: int = 100
    reg_cov: float = 0.001
    termvalue: float = 1e-5
    max_iter: int = 100
    min_iter: int = 1
    seed: int = 3000
    #: how trials start (``hemopt.initmode``): one of :data:`INITMODES`; ``'auto'`` is the toolbox's default
    initmode: str = "auto"
    #: iterations of the hierarchical GMM fit of the ``'gmmNew'`` starts (``hemopt.initopt.iter``)
    init_iter: int = 30
    #: working-memory budget of the E-step in bytes: images (and trials) are processed in chunks
    #: so that the per-chunk arrays stay under it; results do not depend on it.
    max_bytes: int = 1 << 30


@dataclass
class CoClustering:
    """Result of :func:`cocluster`: ``labels`` (viewer -> group, 0-based), soft assignments ``Z``
    (viewers x groups), the bound ``LogL``, ``group_hmms[image][group]`` (ROIs ordered as
    ``vbhmm_standardize 'f'``), the ROI count ``S`` per image and every trial's bound."""

    labels: np.ndarray
    Z: np.ndarray
    LogL: float
    group_hmms: list[list[HMM]]
    S: list[int]
    trial_LL: np.ndarray

    #: images nobody looked at (left out of the co-clustering; ``group_hmms[k]`` is None there)
    empty_images: list[int] = field(default_factory=list)
    #: viewers without data on any image (left out; label -1 and a NaN row of ``Z``)
    absent_viewers: list[int] = field(default_factory=list)
    #: the start the result came from, and the best bound each start tried reached (``'auto'``)
    initmode: str = ""
    init_LL: dict[str, float] = field(default_factory=dict)

    @property
    def group_sizes(self) -> list[int]:
        return [int((self.labels == g).sum()) for g in range(self.Z.shape[1])]


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """log-sum-exp over a (short) axis, unrolled over its entries (numpy's reductions over a
    length-3 trailing axis are slow)."""
    a = np.moveaxis(a, axis, 0)
    m = a[0]
    for x in a[1:]:
        m = np.maximum(m, x)
    m = np.where(np.isfinite(m), m, 0.0)
    total = np.exp(a[0] - m)
    for x in a[1:]:
        total += np.exp(x - m)
    return m + np.log(total)


def _sum_last(a: np.ndarray) -> np.ndarray:
    """Sum over a short last axis, unrolled."""
    total = a[..., 0].copy()
    for s in range(1, a.shape[-1]):
        total += a[..., s]
    return total


@dataclass
class BaseHMMs:
    """The base HMMs of all images, padded to Nb states: prior (I, Kb, Nb), A (I, Kb, Nb, Nb),
    mu (I, Kb, Nb, D), cov (I, Kb, Nb, D, D), and the virtual-sample count N_i (I, Kb)."""

    prior: np.ndarray
    A: np.ndarray
    mu: np.ndarray
    cov: np.ndarray
    Ni: np.ndarray


def _slice_base(base: BaseHMMs, k0: int, k1: int) -> BaseHMMs:
    return BaseHMMs(base.prior[k0:k1], base.A[k0:k1], base.mu[k0:k1], base.cov[k0:k1], base.Ni[k0:k1])


def _estep_bytes_per_image(base: BaseHMMs, S: int, tau: int) -> int:
    """Peak bytes of :func:`_estep` for one trial and one image: the tau stored transition
    posteriors and a few temporaries of shape (Kb, Kr, Nb, S, S), plus the Gaussian terms."""
    _, Kb, Nb = base.prior.shape
    D = base.mu.shape[-1]
    return 8 * Kb * Nb * S * (S * (tau + 4) + 3 * D + 4)


def _estep_chunked(base: BaseHMMs, prior, A, mu, cov, tau: int, max_bytes: int):
    """:func:`_estep` over chunks of images, so that one chunk's arrays stay within ``max_bytes``;
    the per-image statistics are concatenated (they are small: no tau or base-state axis)."""
    R, I, Kr, S = prior.shape
    per = _estep_bytes_per_image(base, S, tau) * Kr * R
    step = int(max(1, min(I, max_bytes // max(per, 1))))
    if step >= I:
        return _estep(base, prior, A, mu, cov, tau)
    parts = [_estep(_slice_base(base, k, k + step), prior[:, k:k + step], A[:, k:k + step],
                    mu[:, k:k + step], cov[:, k:k + step], tau) for k in range(0, I, step)]
    return tuple(np.concatenate([p[q] for p in parts], axis=1) for q in range(len(parts[0])))


def _pack_base(rows: Sequence[Sequence[HMM | None]], Nv: int) -> BaseHMMs:
    I, Kb = len(rows), len(rows[0])
    present = [h for row in rows for h in row if h is not None]
    D = present[0].means.shape[1]
    Nb = max(h.n_states for h in present)
    prior = np.zeros((I, Kb, Nb))
    A = np.zeros((I, Kb, Nb, Nb))
    mu = np.zeros((I, Kb, Nb, D))
    cov = np.tile(np.eye(D), (I, Kb, Nb, 1, 1))
    Ni = np.zeros((I, Kb))
    for k, row in enumerate(rows):
        valid = np.array([h is not None for h in row])
        if not valid.any():
            raise ValueError(f"cocluster: image {k} has no viewer HMM at all")
        Ni[k] = Nv * valid / valid.sum() * Kb  # N_i = Nv * omega_i * Kb, omega uniform over viewers present
        for i, h in enumerate(row):
            if h is None:  # a missing viewer (omega_i = 0 in the toolbox): a dummy with no weight
                prior[k, i, 0], A[k, i, 0, 0] = 1.0, 1.0
                continue
            n = h.n_states
            prior[k, i, :n], A[k, i, :n, :n], mu[k, i, :n], cov[k, i, :n] = h.prior, h.trans, h.means, h.covs
    return BaseHMMs(prior, A, mu, cov, Ni)


def _pad_reduced(groups: Sequence[tuple[np.ndarray, ...]]) -> tuple[list[np.ndarray], np.ndarray]:
    """Stack per-image reduced HMMs (R, Kr, S_k, ...) into (R, I, Kr, Smax, ...); padded states get
    prior 0, no transitions into them, a self-transition of 1 and a unit Gaussian, so they never
    receive mass. Returns the arrays and the state mask (I, Smax)."""
    R, Kr = groups[0][0].shape[:2]
    D = groups[0][2].shape[-1]
    Smax = max(g[0].shape[-1] for g in groups)
    I = len(groups)
    prior = np.zeros((R, I, Kr, Smax))
    A = np.zeros((R, I, Kr, Smax, Smax))
    mu = np.zeros((R, I, Kr, Smax, D))
    cov = np.tile(np.eye(D), (R, I, Kr, Smax, 1, 1))
    smask = np.zeros((I, Smax), dtype=bool)
    for k, (p, a, m, c) in enumerate(groups):
        S = p.shape[-1]
        prior[:, k, :, :S], A[:, k, :, :S, :S], mu[:, k, :, :S], cov[:, k, :, :S] = p, a, m, c
        smask[k, :S] = True
        for s in range(S, Smax):
            A[:, k, :, s, s] = 1.0
    return [prior, A, mu, cov], smask


def _estep(base: BaseHMMs, prior, A, mu, cov, tau: int):
    """Variational forward-backward between every base HMM and every reduced HMM of every trial
    and image at once (Coviello et al. 2014, Sec. 3.3 and Algorithm 2). Reduced parameters are
    (R, I, Kr, S, ...); base (I, Kb, Nb, ...). Returns the bound L (R, I, Kb, Kr) and the
    sufficient statistics for the M-step. Axes: r trial, k image, i viewer, j group, b/c base
    state, s/t (rho/sigma) reduced state."""
    D = mu.shape[-1]
    icov = np.linalg.inv(cov)  # (R, I, Kr, S, D, D)
    logdet = np.linalg.slogdet(cov)[1]  # (R, I, Kr, S)
    # expected log-likelihood of base Gaussian b under reduced Gaussian s (Coviello et al. Eq. 38)
    tr = np.einsum("rkjsde,kibed->rkijbs", icov, base.cov)
    diff = base.mu[None, :, :, None, :, None, :] - mu[:, :, None, :, None, :, :]  # (R,I,Kb,Kr,Nb,S,D)
    q = np.einsum("rkijbsd,rkjsde->rkijbse", diff, icov)
    maha = (q * diff).sum(-1)
    LLG = -0.5 * (D * LOG2PI + logdet[:, :, None, :, None, :] + tr + maha)  # (R, I, Kb, Kr, Nb, S)
    with np.errstate(divide="ignore"):
        logAr = np.log(A)[:, :, None]  # (R, I, 1, Kr, S, S)
        logpr = np.log(prior)[:, :, None]  # (R, I, 1, Kr, S)
    LL_old = np.zeros_like(LLG)
    thetas = {}
    for t in range(tau, 1, -1):
        lt = logAr[:, :, :, :, None, :, :] + (LLG + LL_old)[:, :, :, :, :, None, :]  # (R,I,Kb,Kr,Nb,rho,sigma)
        ls = _logsumexp(lt, -1)  # (R, I, Kb, Kr, Nb, rho)
        thetas[t] = np.exp(lt - ls[..., None])
        LL_old = 0.0
        for c in range(ls.shape[4]):  # sum_c A_b[b, c] * ls[c, :]
            LL_old = LL_old + base.A[None, :, :, None, :, c, None] * ls[:, :, :, :, c, None, :]
    lt1 = logpr[:, :, :, :, None, :] + LLG + LL_old  # (R, I, Kb, Kr, Nb, S)
    ls1 = _logsumexp(lt1, -1)
    L = np.einsum("kib,rkijb->rkij", base.prior, ls1)
    theta1 = np.exp(lt1 - ls1[..., None])
    nu = base.prior[None, :, :, None, :, None] * theta1  # (R, I, Kb, Kr, Nb, S)
    nu1 = sum(nu[:, :, :, :, b] for b in range(nu.shape[4]))
    sum_nu = nu.copy()
    sum_xi = 0.0
    for t in range(2, tau + 1):
        foo = 0.0
        for b in range(nu.shape[4]):  # sum_b nu[b, rho] * A_b[b, c]
            foo = foo + nu[:, :, :, :, b, None, :] * base.A[None, :, :, None, b, :, None]
        xi = foo[..., :, None] * thetas[t]  # (R, I, Kb, Kr, Nb', rho, sigma)
        sum_xi = sum_xi + sum(xi[:, :, :, :, b] for b in range(xi.shape[4]))  # over base states
        nu = _sum_last(np.moveaxis(xi, 5, -1))  # over rho
        sum_nu += nu
    w = sum(sum_nu[:, :, :, :, b] for b in range(sum_nu.shape[4]))  # (R, I, Kb, Kr, S)
    wmu = np.einsum("rkijbs,kibd->rkijsd", sum_nu, base.mu)
    second = base.cov + base.mu[..., :, None] * base.mu[..., None, :]
    wMu = np.einsum("rkijbs,kibde->rkijsde", sum_nu, second)
    return L, nu1, sum_xi, w, wmu, wMu


def _mstep(Zw, nu1, sum_xi, w, wmu, wMu, reg_cov: float, smask: np.ndarray, tau: int):
    """Re-estimation of each reduced HMM from the weighted statistics (Coviello et al. Eqs. 40-45,
    ``hem_mstep_component.m``); ``Zw`` (R, I, Kb, Kr) = z_ij * N_i. Padded states are reset."""
    new_prior = np.einsum("rkij,rkijs->rkjs", Zw, nu1)
    new_A = np.einsum("rkij,rkijst->rkjst", Zw, sum_xi)
    Gw = np.einsum("rkij,rkijs->rkjs", Zw, w)
    Gmu = np.einsum("rkij,rkijsd->rkjsd", Zw, wmu)
    GMu = np.einsum("rkij,rkijsde->rkjsde", Zw, wMu)
    D = Gmu.shape[-1]
    one_state = smask.sum(1) == 1  # a one-ROI HMM: A = 1e-12 before normalising, i.e. [[1]]
    if one_state.any():
        new_A[:, one_state, :, 0, 0] = 1e-12
    prior = new_prior / new_prior.sum(-1, keepdims=True)
    rows = new_A.sum(-1, keepdims=True)
    A = new_A / np.where(rows == 0, 1, rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = Gmu / Gw[..., None]
        tmp = Gmu[..., :, None] * c[..., None, :]
        Sigma = GMu - tmp - np.swapaxes(tmp, -1, -2) + Gw[..., None, None] * (c[..., :, None] * c[..., None, :])
        cov = Sigma / Gw[..., None, None] + reg_cov * np.eye(D)
    pad = ~smask[None, :, None, :]  # (1, I, 1, S)
    if pad.any():
        S = smask.shape[1]
        c = np.where(pad[..., None], 0.0, c)
        cov = np.where(pad[..., None, None], np.eye(D), cov)
        A = np.where(pad[..., None], np.eye(S), A)
    return prior, A, c, cov, Gw


def fix_degenerate_states(prior, A, mu, cov, Gw, smask: np.ndarray, trial_ids: Sequence[int], seed: int,
                          iteration: int) -> list[tuple[int, int, int, int]]:
    """Repair group-HMM states that received no virtual mass (``Gw <= 0`` or NaN), in place, as
    ``hem_coh3m_c_step.m`` does through ``hem_fix_degenerate_hmm.m``: the empty state copies the
    state with the largest count (its emission, with centres perturbed by up to 1 %, and its
    outgoing transitions); the two share that state's start probability and incoming
    transitions. The perturbation is drawn from a generator seeded by (seed, trial, iteration),
    so a trial repairs the same way whatever chunk of trials it runs in. Returns the repaired
    (trial, image, group, state) indices."""
    bad = ~(Gw > 0) & smask[None, :, None, :]
    fixed = []
    for r, k, j in {tuple(x[:3]) for x in np.argwhere(bad)}:
        counts = np.where(smask[k], np.nan_to_num(Gw[r, k, j], nan=-np.inf), -np.inf)
        highest = int(np.argmax(counts))
        rng = np.random.default_rng([seed, int(trial_ids[r]), iteration, k, j])
        for z in np.flatnonzero(bad[r, k, j]):
            p = prior[r, k, j]
            p[[z, highest]] = p[highest] / 2
            prior[r, k, j] = p / p.sum()
            a = A[r, k, j]
            a[z, :] = a[highest, :]
            a[:, [z, highest]] = (a[:, highest] / 2)[:, None]
            centre = mu[r, k, j, highest]
            mu[r, k, j, z] = centre + 0.01 * rng.random(centre.shape) * centre
            cov[r, k, j, z] = cov[r, k, j, highest]
            fixed.append((int(trial_ids[r]), int(k), int(j), int(z)))
    return fixed


def fix_degenerate_groups(params: list[np.ndarray], omega: np.ndarray, smask: np.ndarray, trial_ids: Sequence[int],
                          seed: int, iteration: int, n_base_states: int) -> np.ndarray:
    """Repair groups whose weight omega fell to 0, in place, as ``hem_h3m_c_step.m`` does through
    ``hem_fix_degenerate_component.m``: the empty group shares the heaviest group's weight and
    copies its emissions; its prior is the heaviest's plus noise of up to 0.1 / N, its transitions
    noise of up to 0.1 / N where the heaviest's are non-zero, both renormalised (N: the base HMMs'
    state count). ``params`` = [prior, A, mu, cov] (R, I, Kr, S, ...). Returns the new omega (R, Kr)."""
    omega = omega.copy()
    for r, j in np.argwhere(~(omega > 0)):
        hi = int(np.argmax(omega[r]))
        omega[r, [j, hi]] = omega[r, hi] / 2
        omega[r] /= omega[r].sum()
        rng = np.random.default_rng([seed, int(trial_ids[r]), iteration, 1 << 20, int(j)])
        params[2][r, :, j] = params[2][r, :, hi]
        params[3][r, :, j] = params[3][r, :, hi]
        for k in range(smask.shape[0]):
            S = int(smask[k].sum())
            p = params[0][r, k, hi, :S] + 0.1 / n_base_states * rng.random(S)
            params[0][r, k, j, :S] = p / p.sum()
            a = 0.1 / n_base_states * rng.random((S, S)) * (params[1][r, k, hi, :S, :S] != 0)
            rows = a.sum(1, keepdims=True)
            params[1][r, k, j, :S, :S] = a / np.where(rows == 0, 1, rows)
    return omega


def vhem_step(base: BaseHMMs, init: Sequence[np.ndarray], smask: np.ndarray, omega: np.ndarray,
              opt: VHEMOptions, trial_ids: Sequence[int] | None = None,
              update_omega: bool = False) -> dict[str, np.ndarray | list]:
    """The co-clustering E/M loop from given starting group HMMs, for R trials at once
    (``hem_coh3m_c_step``). ``init`` = [prior, A, mu, cov] padded as ``_pad_reduced`` does,
    (R, I, Kr, S, ...); ``omega`` (R, Kr). Returns, per trial, the bound ``LogL`` and the
    assignments ``Z`` of the last E-step before the final parameter update, and the final group
    HMMs, as the toolbox returns them. Trials that have converged leave the batch; group states
    left without mass are repaired (:func:`fix_degenerate_states`; listed in ``"repaired"``).
    ``update_omega``: re-estimate the group weights from Z (mean over viewers with data), as the
    single-set VHEM ``hem_h3m_c_step`` does; co-clustering keeps them (``hem_coh3m_c_step``). The
    weights paired with the returned HMMs are ``"omega"`` (R, Kr), the assignments of the last
    E-step (those ``hem_h3m_c_step`` returns) ``"Z_last"``."""
    R, Kr = omega.shape
    trial_ids = np.arange(R) if trial_ids is None else np.asarray(trial_ids)
    repaired: list = []
    I, Kb = base.Ni.shape
    D = init[2].shape[-1]
    params = [init[0].copy(), init[1].copy(), init[2].copy(), init[3] + opt.reg_cov * np.eye(D)]
    pad = ~smask[None, :, None, :]
    params[3] = np.where(pad[..., None, None], np.eye(D), params[3])
    inf_norm = opt.tau * opt.Nv / Kb
    with np.errstate(divide="ignore"):
        logomega = np.log(np.asarray(omega, dtype=np.float64)).copy()
    res_omega = np.exp(logomega)
    present = (base.Ni > 0).any(0)  # viewers with data somewhere (omega_i > 0)
    act = np.arange(R)
    old = np.full(R, -np.inf)
    res_LogL = np.full(R, -np.inf)
    res_Z = np.zeros((R, Kb, Kr))
    res_Z_last = np.zeros((R, Kb, Kr))
    res_params = [p.copy() for p in params]
    prev_Z = np.zeros((R, Kb, Kr))
    prev_L = np.full(R, -np.inf)
    num_iter = 0
    while True:
        stats = _estep_chunked(base, *params, opt.tau, opt.max_bytes)
        # one assignment per viewer shared by all images: the images' bounds are averaged
        log_Z = (base.Ni[None, :, :, None] * stats[0] / inf_norm).sum(1) / I + logomega[act][:, None, :]
        lse = _logsumexp(log_Z, -1)
        Z = np.exp(log_Z - lse[..., None])
        new = lse.sum(-1)
        with np.errstate(invalid="ignore"):
            change = (new - old) / np.abs(old) if num_iter > 1 else np.full(len(act), np.inf)
        stop = (change < opt.termvalue) | (num_iter > opt.max_iter) | np.isnan(new)
        fin = stop if num_iter >= opt.min_iter else np.zeros(len(act), dtype=bool)
        if fin.any():
            res_LogL[act[fin]] = prev_L[fin]
            res_Z[act[fin]] = prev_Z[fin]
            for q in range(4):
                res_params[q][act[fin]] = params[q][fin]
            res_omega[act[fin]] = np.exp(logomega[act[fin]])
            res_Z_last[act[fin]] = Z[fin]
        keep = ~fin
        if not keep.any():
            break
        act, old, Z, new = act[keep], new[keep], Z[keep], new[keep]
        params = [p[keep] for p in params]
        stats = [s[keep] for s in stats]
        num_iter += 1
        prev_L, prev_Z = new, Z
        if update_omega:
            with np.errstate(divide="ignore"):
                logomega[act] = np.log(Z[:, present].mean(1))
        Zw = Z[:, None] * base.Ni[None, :, :, None]  # (R, I, Kb, Kr)
        *params, Gw = _mstep(Zw, *stats[1:], opt.reg_cov, smask, opt.tau)
        repaired += fix_degenerate_states(*params, Gw, smask, trial_ids[act], opt.seed, num_iter)
        if update_omega:
            logomega[act] = np.log(fix_degenerate_groups(params, np.exp(logomega[act]), smask, trial_ids[act],
                                                         opt.seed, num_iter, base.prior.shape[-1]))
    return {"LogL": res_LogL, "Z": res_Z, "params": res_params, "omega": res_omega, "Z_last": res_Z_last,
            "repaired": repaired}


def _resize(h: HMM, S: int, scale: float) -> tuple[np.ndarray, ...]:
    """A viewer's HMM with exactly S ROIs, to start a trial: the ROIs with the largest soft counts
    are kept, or the largest ROI is split along its major axis until there are S."""
    prior, A, mu, cov = h.prior.copy(), h.trans.copy(), h.means.copy(), h.covs.copy()
    weight = h.N.copy() if h.N is not None else prior.copy()
    if len(prior) > S:
        keep = np.sort(np.argsort(-weight)[:S])
        prior, A, mu, cov = prior[keep], A[keep][:, keep], mu[keep], cov[keep]
        prior, A = prior / prior.sum(), A / A.sum(1, keepdims=True)
    while len(prior) < S:
        k = int(np.argmax([np.linalg.det(c) for c in cov]))
        vals, vecs = np.linalg.eigh(cov[k])
        step = np.sqrt(max(vals[-1], scale)) * vecs[:, -1] * 0.5
        mu = np.vstack([mu, mu[k] + step])
        mu[k] = mu[k] - step
        cov = np.concatenate([cov, cov[k:k + 1]])
        prior = np.append(prior, prior[k] / 2)
        prior[k] /= 2
        A = np.hstack([A, A[:, k:k + 1] / 2])
        A[:, k] /= 2
        A = np.vstack([A, A[k:k + 1]])
    return prior, A, mu, cov


def _trial_chunk(base: BaseHMMs, S: int, Kr: int, opt: VHEMOptions) -> int:
    """How many trials run together: the per-trial statistics kept for every image (a few copies
    of (I, Kb, Kr, S, S + D^2 + D + 2) floats) take at most half of ``opt.max_bytes``."""
    I, Kb, _ = base.prior.shape
    D = base.mu.shape[-1]
    per_trial = 8 * 4 * I * Kb * Kr * S * (S + D * D + D + 2)
    return int(max(1, (opt.max_bytes // 2) // max(per_trial, 1)))


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means from k randomly sampled points (MATLAB ``kmeans(..., 'Start', 'sample')``);
    an emptied cluster takes the point farthest from its centre ('EmptyAction', 'singleton').
    Returns (labels, centres)."""
    n = len(points)
    centres = points[rng.choice(n, k, replace=n < k)].astype(np.float64)
    labels = np.full(n, -1)
    for _ in range(max_iter):
        d2 = ((points[:, None, :] - centres[None]) ** 2).sum(-1)
        new = np.argmin(d2, 1)
        for c in range(k):
            if not (new == c).any():
                counts = np.bincount(new, minlength=k)
                movable = counts[new] > 1
                if not movable.any():
                    continue  # fewer distinct points than clusters: c keeps its centre
                dist = np.where(movable, d2[np.arange(n), new], -np.inf)
                new[int(np.argmax(dist))] = c
        if np.array_equal(new, labels):
            break
        labels = new
        centres = np.array([points[labels == c].mean(0) if (labels == c).any() else centres[c] for c in range(k)])
    return labels, centres


def hem_gmm(means: np.ndarray, covs: np.ndarray, n_components: int, virtual_samples: float, iterations: int,
            rng: np.random.Generator, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reduce n Gaussians (``means`` (n, D), ``covs`` (n, D, D)), each of weight 1/n, to a GMM of
    ``n_components`` Gaussians by hierarchical EM (Vasconcelos & Lippman 2001; the toolbox's
    ``GMM_MixHierEM``): each input Gaussian stands for ``virtual_samples / n`` virtual points, the
    E-step weighs the expected log-likelihood of a whole input Gaussian under each component, the
    M-step moment-matches. Starts from k-means on the means and the mean covariance; stops when
    the mean log-likelihood gains less than ``tol`` or after ``iterations``. Returns (weights,
    centres, covariances). One component: the moment-matched Gaussian (the toolbox takes the
    uncentred second moment there; the co-clustering re-estimates it at its first M-step)."""
    means = np.asarray(means, np.float64)
    covs = np.asarray(covs, np.float64)
    n, D = means.shape
    if n_components == 1:
        centre = means.mean(0)
        diff = means - centre
        cov = covs.mean(0) + diff.T @ diff / n
        return np.ones(1), centre[None], cov[None]
    T = n_components
    _, cent = _kmeans(means, T, rng)
    var = np.repeat(covs.mean(0)[None], T, 0)
    weight = np.full(T, 1.0 / T)
    per_point = virtual_samples / n
    last = -np.inf
    for _ in range(iterations):
        icov = np.linalg.inv(var)  # (T, D, D)
        logdet = np.linalg.slogdet(var)[1]
        tr = np.einsum("tde,ned->tn", icov, covs)
        diff = cent[:, None, :] - means[None]  # (T, n, D)
        maha = np.einsum("tnd,tde,tne->tn", diff, icov, diff)
        with np.errstate(divide="ignore"):
            xpt = np.log(weight)[:, None] + per_point * (-0.5 * (D * LOG2PI + logdet[:, None] + tr + maha))
        lse = _logsumexp(xpt, 0)
        logp = float(lse.mean())
        if not np.isfinite(logp) or logp - last < tol:
            break
        last = logp
        post = np.exp(xpt - lse[None])
        weight = post.mean(1)
        mass = post.sum(1)
        keep = mass > 0  # a component without any input Gaussian keeps its parameters
        w = post[keep] / mass[keep, None]
        cent[keep] = w @ means
        d = means[None] - cent[keep][:, None]
        var[keep] = np.einsum("tn,tnde->tde", w, d[..., :, None] * d[..., None, :] + covs[None])
    return weight, cent, var


def _pooled_emissions(row: Sequence[HMM | None]) -> tuple[np.ndarray, np.ndarray]:
    present = [h for h in row if h is not None]
    return np.concatenate([h.means for h in present]), np.concatenate([h.covs for h in present])


def _uniform_chain(S: int, Kr: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((Kr, S), 1.0 / S), np.full((Kr, S, S), 1.0 / S)


def _random_chain(S: int, Kr: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    prior = rng.random((Kr, S))
    A = rng.random((Kr, S, S))
    return prior / prior.sum(-1, keepdims=True), A / A.sum(-1, keepdims=True)


def start_gmm(row: Sequence[HMM | None], S: int, Kr: int, rng: np.random.Generator, separate: bool,
              iterations: int = 30) -> tuple[np.ndarray, ...]:
    """One image's ``'gmmNew'`` (``separate=False``) or ``'gmmNew2'`` start
    (``initialize_hem_h3m_c.m``): the pooled emissions of the viewers' HMMs reduced by
    :func:`hem_gmm` to S Gaussians shared by all groups, prior and transitions random; or to
    S * Kr Gaussians dealt out at random, S to each group, prior and transitions uniform. The
    toolbox's virtual sample count, 1000 * Kb * Kb for Kb viewers with data. Returns (prior,
    A, means, covs) with a leading group axis."""
    means, covs = _pooled_emissions(row)
    Kb = sum(h is not None for h in row)
    T = S * Kr if separate else S
    use = rng.permutation(T).reshape(S, Kr).T if separate else np.tile(np.arange(S), (Kr, 1))
    _, centres, var = hem_gmm(means, covs, T, 1000.0 * Kb * Kb, iterations, rng)
    prior, A = _uniform_chain(S, Kr) if separate else _random_chain(S, Kr, rng)
    return prior, A, centres[use], var[use]


def start_baseem(row: Sequence[HMM | None], S: int, Kr: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """One image's ``'baseem'`` start: each group ROI the ROI of a random viewer with data, chosen
    at random; uniform prior and transitions (``initopt.mode = 'u'``)."""
    present = [h for h in row if h is not None]
    mu = np.empty((Kr, S, present[0].means.shape[1]))
    cov = np.empty(mu.shape + (mu.shape[-1],))
    for j in range(Kr):
        for s in range(S):
            h = present[rng.integers(len(present))]
            r = rng.integers(h.n_states)
            mu[j, s], cov[j, s] = h.means[r], h.covs[r]
    prior, A = _uniform_chain(S, Kr)
    return prior, A, mu, cov


def match_groups(Z: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Match per-image group labels across images (``match_clusters.m``, mode 'k'): k-means over
    the viewers' concatenated assignment vectors ``Z`` (images, viewers, groups), then per image
    the group order that agrees best with the k-means centres. Returns ``order`` (images,
    groups): group j of the co-clustering starts from image k's group ``order[k, j]``."""
    I, Kb, Kr = Z.shape
    features = np.moveaxis(Z, 0, 1).reshape(Kb, I * Kr)
    _, centres = _kmeans(features, Kr, rng)
    centres = centres.reshape(Kr, I, Kr)
    order = np.empty((I, Kr), dtype=int)
    for k in range(I):
        rows, cols = linear_sum_assignment(-centres[:, k, :])
        order[k, rows] = cols
    return order


def _run_trials(base: BaseHMMs, groups: Sequence[tuple[np.ndarray, ...]], omega: np.ndarray, opt: VHEMOptions,
                trial_ids: np.ndarray, update_omega: bool = False) -> tuple[dict, np.ndarray]:
    """:func:`vhem_step` over chunks of trials within ``opt.max_bytes``; returns the concatenated
    results and the state mask."""
    init, smask = _pad_reduced(groups)
    R, Kr = omega.shape
    chunk = _trial_chunk(base, smask.shape[1], Kr, opt)
    parts = []
    for t0 in range(0, R, chunk):
        sl = slice(t0, min(R, t0 + chunk))
        with np.errstate(invalid="ignore", over="ignore"):
            parts.append(vhem_step(base, [p[sl] for p in init], smask, omega[sl], opt, trial_ids=trial_ids[sl],
                                   update_omega=update_omega))
    res = {key: np.concatenate([p[key] for p in parts]) for key in ("LogL", "Z", "omega", "Z_last")}
    res["params"] = [np.concatenate([p["params"][q] for p in parts]) for q in range(4)]
    res["repaired"] = [x for p in parts for x in p["repaired"]]
    return res, smask


def _trial_rng(opt: VHEMOptions, t: int) -> np.random.Generator:
    return np.random.default_rng([opt.seed, t])


def _stack(per_trial: Sequence[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    return tuple(np.array([p[q] for p in per_trial]) for q in range(4))


def initial_groups(clean: Sequence[Sequence[HMM | None]], S: Sequence[int], Kr: int, opt: VHEMOptions,
                   initmode: str, base: BaseHMMs | None = None) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray]:
    """The ``opt.trials`` starting group HMMs of one start (``initmode``, not ``'auto'``), for the
    images ``clean[image][viewer]`` (viewers without data None) with S[image] ROIs each: per
    image (prior, A, means, covs) of shape (trials, Kr, S, ...), and omega (trials, Kr). Trial t
    draws from its own generator seeded by (seed, t)."""
    R, I = opt.trials, len(clean)
    Kb = len(clean[0])
    if initmode == "base":
        rng = np.random.default_rng(opt.seed)
        starts = np.array([rng.choice(Kb, Kr, replace=False) for _ in range(R)])
        groups = []
        for k, row in enumerate(clean):
            scale = float(np.median([np.trace(c) / 2 for h in row if h is not None for c in h.covs]))
            fallback = next(h for h in row if h is not None)
            groups.append(_stack([tuple(np.array(x) for x in zip(*[
                _resize(row[v] if row[v] is not None else fallback, S[k], scale) for v in trial]))
                for trial in starts]))
        return groups, np.full((R, Kr), 1.0 / Kr)
    if initmode in ("gmmNew", "gmmNew2"):
        per_image: list[list[tuple]] = [[] for _ in range(I)]
        omega = np.empty((R, Kr))
        for t in range(R):
            rng = _trial_rng(opt, t)
            w = rng.random(Kr)  # the toolbox draws omega at random and keeps the first image's
            omega[t] = w / w.sum()
            for k, row in enumerate(clean):
                per_image[k].append(start_gmm(row, S[k], Kr, rng, separate=initmode == "gmmNew2",
                                              iterations=opt.init_iter))
        return [_stack(p) for p in per_image], omega
    if initmode == "baseem":
        per_image = [[] for _ in range(I)]
        for t in range(R):
            rng = _trial_rng(opt, t)
            for k, row in enumerate(clean):
                per_image[k].append(start_baseem(row, S[k], Kr, rng))
        return [_stack(p) for p in per_image], np.full((R, Kr), 1.0 / Kr)
    if initmode == "hem-ind":
        if base is None:
            base = _pack_base(clean, opt.Nv)
        rngs = [_trial_rng(opt, t) for t in range(R)]
        single = replace(opt, termvalue=opt.termvalue / 10)
        per_image, Zs, omegas = [], [], []
        for k, row in enumerate(clean):
            starts = [start_baseem(row, S[k], Kr, rngs[t]) for t in range(R)]
            res, _ = _run_trials(_slice_base(base, k, k + 1), [_stack(starts)], np.full((R, Kr), 1.0 / Kr),
                                 single, np.arange(R), update_omega=True)
            per_image.append([p[:, 0] for p in res["params"]])  # one image: no padded states
            Zs.append(res["Z_last"])
            omegas.append(res["omega"])
        Zs = np.stack(Zs, 1)  # (R, I, Kb, Kr)
        omega = np.empty((R, Kr))
        groups = [[np.empty_like(p) for p in per_image[k]] for k in range(I)]
        for t in range(R):
            # match_clusters re-normalises log(Z + 1e-30); a viewer without data on an image has Z = omega there
            Zt = np.where(np.isfinite(Zs[t]), Zs[t], 1.0 / Kr) + 1e-30  # a failed per-image run: no information
            order = match_groups(Zt / Zt.sum(-1, keepdims=True), rngs[t])
            omega[t] = np.mean([omegas[k][t][order[k]] for k in range(I)], 0)
            for k in range(I):
                for q in range(4):
                    groups[k][q][t] = per_image[k][q][t][order[k]]
        return [tuple(g) for g in groups], omega
    raise ValueError(f"cocluster: unknown initmode {initmode!r}; choose one of {INITMODES}")


def cocluster(hmms: Sequence[Sequence[HMM | None]], opt: VHEMOptions = VHEMOptions(),
              S: Sequence[int] | None = None) -> CoClustering:
    """VHEM co-clustering of ``hmms[image][viewer]`` (``None`` for a viewer without data on an
    image) into ``opt.n_groups`` groups shared across images, with ``opt.trials`` trials of the
    start ``opt.initmode`` (``'auto'``: of each start it tries; the best bound wins, see the
    module docstring). Empty ROIs (soft count < 1e-3) are removed first; each image's group HMMs
    have S = ceil(median) of that image's viewer ROI counts (``vhem_cocluster.m:133``) unless
    ``S`` is given.

    An image without any viewer HMM is left out and listed in ``empty_images`` (its
    ``group_hmms`` entry is None, its S 0); a viewer without an HMM on any image is left out and
    listed in ``absent_viewers`` (label -1, Z row NaN), never put in a group. Trials and images
    are processed in chunks within ``opt.max_bytes``; the result does not depend on the chunks.

    Args:
        hmms: ``hmms[image][viewer]``, individual HMMs or None.
        opt: the co-clustering options (:class:`VHEMOptions`: groups, trials, tau, seed, ...).
        S: ROIs per image of the group HMMs (default: ceil(median) of the viewers').

    Returns:
        A :class:`CoClustering`: ``labels``, ``Z``, ``LogL``, ``group_hmms[image][group]``, ``S``.

    Raises:
        ValueError: no images, or images with different numbers of viewers.
    """
    n_img = len(hmms)
    if n_img == 0:
        raise ValueError("cocluster: no images")
    if opt.initmode not in INITMODES:
        raise ValueError(f"cocluster: unknown initmode {opt.initmode!r}; choose one of {INITMODES}")
    Kb_all = len(hmms[0])
    Kr = opt.n_groups
    if any(len(row) != Kb_all for row in hmms):
        raise ValueError("cocluster: every image needs one entry per viewer (None when missing)")
    empty_images = [k for k, row in enumerate(hmms) if all(h is None for h in row)]
    absent = [v for v in range(Kb_all) if all(row[v] is None for row in hmms)]
    images = [k for k in range(n_img) if k not in empty_images]
    viewers = [v for v in range(Kb_all) if v not in absent]
    Kb = len(viewers)
    if Kr < 1 or Kr > Kb:
        raise ValueError(f"cocluster: {Kr} groups for {Kb} viewers with data (of {Kb_all})")
    clean = [[None if hmms[k][v] is None else remove_empty(hmms[k][v]) for v in viewers] for k in images]
    if S is None:
        S_used = [int(np.ceil(np.median([h.n_states for h in row if h is not None]))) for row in clean]
    else:
        if len(S) != n_img:
            raise ValueError(f"cocluster: S has {len(S)} entries for {n_img} images")
        S_used = [int(S[k]) for k in images]
    base = _pack_base(clean, opt.Nv)
    modes = AUTO_INITMODES if opt.initmode == "auto" else (opt.initmode,)
    R = opt.trials
    runs = []
    for m, mode in enumerate(modes):
        groups, omega = initial_groups(clean, S_used, Kr, opt, mode, base)
        res, smask = _run_trials(base, groups, omega, opt, np.arange(R) + m * R)
        LL = res["LogL"].copy()
        LL[~np.isfinite(LL)] = -np.inf
        LL = drop_degenerate(LL)  # per start, as hem_coh3m_c checks each run
        runs.append((mode, res, smask, LL))
    init_LL = {mode: float(LL.max()) for mode, _, _, LL in runs}
    if not any(np.isfinite(v) for v in init_LL.values()):
        raise ValueError("cocluster: no trial reached a finite bound")
    mode, res, smask, LL = runs[int(np.argmax([LL.max() for _, _, _, LL in runs]))]
    best = int(np.argmax(LL))
    Z = np.full((Kb_all, Kr), np.nan)
    Z[viewers] = res["Z"][best]
    labels = np.full(Kb_all, -1)
    labels[viewers] = np.argmax(res["Z"][best], axis=1)
    out: list[list[HMM] | None] = [None] * n_img
    S_all = [0] * n_img
    for q, k in enumerate(images):
        S_k = int(smask[q].sum())
        S_all[k] = S_k
        prior, A, mu, cov = (p[best, q] for p in res["params"])
        row = []
        for j in range(Kr):
            h = HMM(prior=prior[j, :S_k], trans=A[j, :S_k, :S_k], means=mu[j, :S_k], covs=cov[j, :S_k])
            row.append(h.permute(standardize_order(h.prior, h.trans)))
        out[k] = row
    trial_LL = np.concatenate([r["LogL"] for _, r, _, _ in runs])
    return CoClustering(labels, Z, float(res["LogL"][best]), out, S_all, trial_LL,
                        empty_images=empty_images, absent_viewers=absent, initmode=mode, init_LL=init_LL)


def drop_degenerate(LL: np.ndarray, ratio: float = 0.10) -> np.ndarray:
    """Set to -inf the trials whose bound is more than ``ratio`` (relative) better than the next
    best (``find_degenerate_outliers.m``, mode 'diff')."""
    LL = np.asarray(LL, dtype=np.float64).copy()
    order = np.argsort(-LL)
    srt = LL[order]
    i = 0
    while i + 1 < len(srt) and np.isfinite(srt[i + 1]) and abs((srt[i + 1] - srt[i]) / srt[i + 1]) > ratio:
        LL[order[i]] = -np.inf
        i += 1
    return LL


def step_from_hmms(hmms: Sequence[Sequence[HMM | None]], init_groups: Sequence[Sequence[HMM]],
                   opt: VHEMOptions, omega: Sequence[float] | None = None) -> dict:
    """The deterministic E/M loop from given group HMMs (one trial): ``init_groups[image][group]``.
    The input HMMs are cleaned of empty ROIs as :func:`cocluster` does; no ROI sorting."""
    clean = [[None if h is None else remove_empty(h) for h in row] for row in hmms]
    base = _pack_base(clean, opt.Nv)
    groups = [tuple(np.array([[getattr(g, f) for g in row]]) for f in ("prior", "trans", "means", "covs"))
              for row in init_groups]
    init, smask = _pad_reduced(groups)
    Kr = len(init_groups[0])
    om = np.full((1, Kr), 1.0 / Kr) if omega is None else np.asarray(omega, float)[None]
    res = vhem_step(base, init, smask, om, opt)
    out = []
    for k in range(len(init_groups)):
        S_k = int(smask[k].sum())
        p = [q[0, k] for q in res["params"]]
        out.append([HMM(prior=p[0][j, :S_k], trans=p[1][j, :S_k, :S_k], means=p[2][j, :S_k], covs=p[3][j, :S_k])
                    for j in range(Kr)])
    return {"LogL": float(res["LogL"][0]), "Z": res["Z"][0], "group_hmms": out}
