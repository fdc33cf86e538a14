"""Saliency metrics with the MIT/Tuebingen saliency-benchmark conventions, batched in torch.

Every public metric takes numpy arrays or torch tensors: one map ``(H, W)`` gives a float, a batch
``(B, H, W)`` gives ``B`` values (a numpy array for numpy input, a tensor on the input's device for
torch input). Maps are compared at the same size: the benchmark code resizes the prediction to the
fixation map first; here a shape mismatch raises, so resizing is the caller's explicit choice.

Computation is in float64 on the input's device. Bad input raises ``ValueError``: a shape
mismatch, a NaN or infinity, an empty fixation map, or a constant map where the metric is undefined
(CC, NSS, SIM and MAE need a non-constant map; AUC and KL accept a constant prediction, which is the
uniform distribution and scores chance). Nothing returns NaN silently.

``torch_cc``, ``torch_kl_div``, ``torch_nss`` and ``torch_sim`` are the differentiable kernels
behind them, without validation, for losses (HSI Eq. 4-7).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

#: MATLAB's ``eps``: the regulariser in the MIT benchmark's KL divergence (HSI Eq. 5).
EPS = 2.2204e-16

__all__ = [
    "EPS",
    "cc",
    "kl_div",
    "sim",
    "nss",
    "auc_judd",
    "auc_shuffled",
    "mae",
    "torch_cc",
    "torch_kl_div",
    "torch_nss",
    "torch_sim",
]


# ----------------------------------------------------------------------------- input handling
def _to_batch(x: Any, name: str, device: torch.device | None = None) -> tuple[Tensor, bool, bool]:
    """Return ``(float64 tensor (B, H, W), was_numpy, was_single)``; reject NaN/inf and bad ranks."""
    was_numpy = not isinstance(x, Tensor)
    if was_numpy:
        array = np.asarray(x)
        if array.dtype == object:
            raise ValueError(f"{name}: expected a numeric array, got dtype object")
        t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
    else:
        t = x.detach().to(torch.float64)
    if device is not None:
        t = t.to(device)
    if t.ndim not in (2, 3):
        raise ValueError(f"{name}: expected a map (H, W) or a batch (B, H, W), got shape {tuple(t.shape)}")
    single = t.ndim == 2
    if single:
        t = t.unsqueeze(0)
    if t.shape[0] == 0 or t.shape[1] == 0 or t.shape[2] == 0:
        raise ValueError(f"{name}: empty map of shape {tuple(t.shape)}")
    # A row sum is NaN or infinite whenever the row holds NaN or infinity (one cheap reduction);
    # only then look element by element (a huge finite map can also overflow the sum).
    if not torch.isfinite(t.flatten(1).sum(1)).all() and not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).flatten(1).any(1).nonzero().flatten().tolist()
        raise ValueError(f"{name}: contains NaN or infinite values (maps {bad[:10]})")
    return t, was_numpy, single


def _pair(pred: Any, other: Any, other_name: str) -> tuple[Tensor, Tensor, bool, bool]:
    p, was_numpy, single = _to_batch(pred, "pred")
    o, _, _ = _to_batch(other, other_name, device=p.device)
    if p.shape != o.shape:
        raise ValueError(
            f"shape mismatch: pred {tuple(p.shape[-2:]) if single else tuple(p.shape)} vs "
            f"{other_name} {tuple(o.shape[-2:]) if single else tuple(o.shape)}; resize the prediction first"
        )
    return p, o, was_numpy, single


def _require_nonconstant(t: Tensor, name: str, metric: str) -> None:
    lo, hi = torch.aminmax(t.flatten(1), dim=1)
    constant = (hi - lo) <= 0
    if constant.any():
        idx = constant.nonzero().flatten().tolist()
        raise ValueError(f"{metric}: {name} is a constant map (maps {idx[:10]}); {metric} is undefined for it")


def _require_fixations(f: Tensor, name: str, metric: str) -> Tensor:
    fix = f > 0
    empty = ~fix.flatten(1).any(1)
    if empty.any():
        idx = empty.nonzero().flatten().tolist()
        raise ValueError(f"{metric}: {name} holds no fixations (maps {idx[:10]})")
    if (f < 0).any():
        raise ValueError(f"{metric}: {name} has negative entries; expected a binary fixation map")
    return fix


def _out(values: Tensor, was_numpy: bool, single: bool) -> Any:
    if single:
        return float(values[0])
    return values.cpu().numpy() if was_numpy else values


def _minmax(t: Tensor) -> Tensor:
    lo, hi = torch.aminmax(t.flatten(1), dim=1)
    return (t - lo.view(-1, 1, 1)) / (hi - lo).view(-1, 1, 1)


# ----------------------------------------------------------------------------- differentiable kernels
def torch_cc(pred: Tensor, gt: Tensor, eps: float = 1e-12) -> Tensor:
    """Pearson correlation per map of ``(B, H, W)`` tensors (HSI Eq. 6); differentiable."""
    p = pred.flatten(1)
    g = gt.flatten(1)
    p = p - p.mean(1, keepdim=True)
    g = g - g.mean(1, keepdim=True)
    return _rowdot(p, g) / (p.norm(dim=1) * g.norm(dim=1) + eps)


def _rowdot(a: Tensor, b: Tensor) -> Tensor:
    """Row-wise dot products of ``(B, N)`` tensors without an ``(B, N)`` product temporary."""
    return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).view(-1)


def torch_kl_div(pred: Tensor, gt: Tensor, eps: float = EPS) -> Tensor:
    """MIT KL divergence ``sum g log(eps + g / (p + eps))`` of sum-normalised maps (HSI Eq. 5)."""
    p = pred.flatten(1)
    g = gt.flatten(1)
    p = p / (p.sum(1, keepdim=True) + eps)
    g = g / (g.sum(1, keepdim=True) + eps)
    return (g * torch.log(eps + g / (p + eps))).sum(1)


def torch_nss(pred: Tensor, fixations: Tensor, eps: float = 1e-12) -> Tensor:
    """NSS per map: mean of the standardised map (unbiased std, as MATLAB) at fixated pixels (HSI Eq. 7)."""
    p = pred.flatten(1)
    f = (fixations.flatten(1) > 0).to(p.dtype)
    std, mean = torch.std_mean(p, dim=1)
    fixated_mean = _rowdot(p, f) / f.sum(1).clamp_min(1)
    return (fixated_mean - mean) / (std + eps)


def torch_sim(pred: Tensor, gt: Tensor, eps: float = 1e-12) -> Tensor:
    """Histogram intersection of min-max then sum-normalised maps; differentiable."""
    def norm(x: Tensor) -> Tensor:
        x = x.flatten(1)
        x = (x - x.amin(1, keepdim=True)) / (x.amax(1, keepdim=True) - x.amin(1, keepdim=True) + eps)
        return x / (x.sum(1, keepdim=True) + eps)

    return torch.minimum(norm(pred), norm(gt)).sum(1)


# ----------------------------------------------------------------------------- public metrics
def cc(pred: Any, gt: Any) -> Any:
    """Pearson linear correlation coefficient between two maps (MIT ``CC.m``; HSI Eq. 6).

    Both maps are standardised and correlated; the result is in [-1, 1]. Constant maps raise.
    """
    p, g, was_numpy, single = _pair(pred, gt, "gt")
    _require_nonconstant(p, "pred", "CC")
    _require_nonconstant(g, "gt", "CC")
    return _out(torch_cc(p, g, eps=0.0), was_numpy, single)


def kl_div(pred: Any, gt: Any) -> Any:
    """MIT image-based KL divergence of the prediction from the ground truth (HSI Eq. 5).

    ``sum_i g_i log(eps + g_i / (p_i + eps))`` with ``eps = 2.2204e-16`` (MATLAB's eps), after each
    map is divided by its sum. A map with negative values is first shifted to minimum 0. Lower is
    better; 0 for identical maps. An all-zero map raises (it is no distribution).
    """
    p, g, was_numpy, single = _pair(pred, gt, "gt")
    p = _shift_nonnegative(p)
    g = _shift_nonnegative(g)
    for t, name in ((p, "pred"), (g, "gt")):
        zero = t.flatten(1).sum(1) <= 0
        if zero.any():
            raise ValueError(f"KL: {name} sums to zero (maps {zero.nonzero().flatten().tolist()[:10]})")
    return _out(torch_kl_div(p, g), was_numpy, single)


def _shift_nonnegative(t: Tensor) -> Tensor:
    lo = t.flatten(1).amin(1)
    if (lo >= 0).all():
        return t
    return t - lo.clamp(max=0).view(-1, 1, 1)


def sim(pred: Any, gt: Any) -> Any:
    """Similarity (histogram intersection): ``sum_i min(p_i, g_i)`` (MIT ``similarity.m``).

    Each map is min-max normalised, then divided by its sum, so the result is in [0, 1] (1 for
    identical distributions). The HSI paper writes SIM with a 1/(W*H) factor; that factor only
    rescales the score by the image area (it would make SIM of identical maps 1/(W*H) rather than 1)
    and the benchmark's code and published numbers do not use it, so it is dropped here.
    """
    p, g, was_numpy, single = _pair(pred, gt, "gt")
    _require_nonconstant(p, "pred", "SIM")
    _require_nonconstant(g, "gt", "SIM")
    p = _minmax(p).flatten(1)
    g = _minmax(g).flatten(1)
    p = p / p.sum(1, keepdim=True)
    g = g / g.sum(1, keepdim=True)
    return _out(torch.minimum(p, g).sum(1), was_numpy, single)


def nss(pred: Any, fixations: Any) -> Any:
    """Normalised scanpath saliency (MIT ``NSS.m``; HSI Eq. 7).

    The map is standardised with its mean and unbiased standard deviation (MATLAB's ``std``), and
    the values at the fixated pixels (``fixations > 0``, each pixel once) are averaged.
    """
    p, f, was_numpy, single = _pair(pred, fixations, "fixations")
    _require_nonconstant(p, "pred", "NSS")
    _require_fixations(f, "fixations", "NSS")
    return _out(torch_nss(p, f, eps=0.0), was_numpy, single)


def mae(pred: Any, gt: Any) -> Any:
    """Mean absolute error after min-max normalising both maps to [0, 1] (HSI Table 4)."""
    p, g, was_numpy, single = _pair(pred, gt, "gt")
    _require_nonconstant(p, "pred", "MAE")
    _require_nonconstant(g, "gt", "MAE")
    return _out((_minmax(p) - _minmax(g)).abs().flatten(1).mean(1), was_numpy, single)


def _sort_rows(t: Tensor) -> Tensor:
    """Sort each row ascending. On the CPU numpy's vectorised sort is used: it is several times
    faster than ``torch.sort`` there (benchmarks/bench_metrics.py); elsewhere ``torch.sort``."""
    if t.device.type == "cpu":
        return torch.from_numpy(np.sort(t.numpy(), axis=1))
    return torch.sort(t, dim=1)[0]


def _padded_values(values: Tensor, mask: Tensor, fill: float) -> tuple[Tensor, Tensor]:
    """Gather the masked entries of each row into a right-padded ``(B, K)`` tensor and their counts."""
    counts = mask.sum(1)
    width = int(counts.max())
    rows, cols = mask.nonzero(as_tuple=True)  # row-major: each row's entries in their original order
    slot = torch.arange(rows.numel(), device=values.device) - (torch.cumsum(counts, 0) - counts)[rows]
    out = torch.full((values.shape[0], width), fill, dtype=values.dtype, device=values.device)
    out[rows, slot] = values[rows, cols]
    return out, counts


def auc_judd(pred: Any, fixations: Any) -> Any:
    """AUC-Judd (MIT ``AUC_Judd.m``, without its optional random jitter).

    Positives are the fixated pixels. The thresholds are the map's values at the fixated pixels;
    for the i-th highest of the N fixated values, the true positive rate is i/N and the false
    positive rate is (#pixels >= threshold - i) / (#pixels - N). The ROC curve from (0, 0) to
    (1, 1) through those points is integrated with the trapezoid rule. The MATLAB code assumes
    distinct values (it adds random jitter to break ties); here tied fixated values count together
    (true positive rate = #fixated >= threshold / N), which equals the MATLAB result when values are
    distinct and gives a flat map exactly 0.5.
    """
    p, f, was_numpy, single = _pair(pred, fixations, "fixations")
    fix = _require_fixations(f, "fixations", "AUC-Judd").flatten(1)
    s = p.flatten(1)
    n_pixels = s.shape[1]
    thresholds, n_fix = _padded_values(s, fix, float("-inf"))
    thresholds = torch.flip(_sort_rows(thresholds), [1])  # descending; padding (-inf) last
    k = thresholds.shape[1]
    above = n_pixels - torch.searchsorted(_sort_rows(s), thresholds.contiguous(), side="left")
    valid = torch.arange(k, device=s.device).unsqueeze(0) < n_fix.unsqueeze(1)
    # fixated values >= each threshold: i for distinct values (MIT's i / N), and the whole tie
    # group when values repeat, so a flat map traces the diagonal instead of an artefact
    fixated_sorted = _sort_rows(torch.where(valid, thresholds, torch.full_like(thresholds, float("inf"))))
    hits = k - torch.searchsorted(fixated_sorted, thresholds.contiguous(), side="left")
    hits = hits - (k - n_fix).unsqueeze(1)  # the +inf padding counted as >= every threshold
    hits = hits.to(s.dtype)
    nf = n_fix.to(s.dtype).unsqueeze(1)
    tp = hits / nf
    fp = (above.to(s.dtype) - hits) / (n_pixels - nf)
    tp = torch.where(valid, tp, torch.ones_like(tp))
    fp = torch.where(valid, fp, torch.ones_like(fp))
    zeros = torch.zeros_like(tp[:, :1])
    ones = torch.ones_like(tp[:, :1])
    tp = torch.cat([zeros, tp, ones], 1)
    fp = torch.cat([zeros, fp, ones], 1)
    return _out(torch.trapezoid(tp, fp, dim=1), was_numpy, single)


def auc_shuffled(
    pred: Any,
    fixations: Any,
    other_fixations: Any,
    n_splits: int = 100,
    seed: int = 0,
    step: float = 0.1,
) -> Any:
    """Shuffled AUC: positives are the fixated pixels, negatives other images' fixation locations.

    ``n_splits > 0`` follows MIT ``AUC_shuffled.m``: the map is min-max normalised; in each of
    ``n_splits`` draws, as many negatives as there are fixated pixels (at most all of them) are sampled
    without replacement from the locations in ``other_fixations``; the ROC curve is traced at
    thresholds ``0, step, 2 step, ...`` and integrated with the trapezoid rule; the draws are averaged.
    The draws come from a ``torch.Generator`` seeded with ``seed`` (deterministic, but not MATLAB's
    random stream, so single draws differ from the MATLAB code; their expectation is the same).

    ``n_splits=0`` gives the exact AUC: every other-image fixation location is a negative and every
    value is a threshold, i.e. the Mann-Whitney statistic P(pos > neg) + P(pos = neg) / 2.
    """
    p, f, was_numpy, single = _pair(pred, fixations, "fixations")
    o, _, _ = _to_batch(other_fixations, "other_fixations", device=p.device)
    if o.shape != p.shape:
        raise ValueError(f"shape mismatch: pred {tuple(p.shape)} vs other_fixations {tuple(o.shape)}")
    fix = _require_fixations(f, "fixations", "sAUC").flatten(1)
    oth = _require_fixations(o, "other_fixations", "sAUC").flatten(1)
    if n_splits < 0:
        raise ValueError(f"sAUC: n_splits must be >= 0, got {n_splits}")
    s = p.flatten(1)
    if n_splits == 0:
        pos, n_pos = _padded_values(s, fix, float("nan"))
        neg, n_neg = _padded_values(s, oth, float("inf"))
        neg = _sort_rows(neg)
        less = torch.searchsorted(neg, pos, side="left").to(s.dtype)
        less_eq = torch.searchsorted(neg, pos, side="right").to(s.dtype)
        valid = ~torch.isnan(pos)
        wins = torch.where(valid, (less + less_eq) / 2, torch.zeros_like(less)).sum(1)
        return _out(wins / (n_pos.to(s.dtype) * n_neg.to(s.dtype)), was_numpy, single)

    lo = s.amin(1, keepdim=True)
    hi = s.amax(1, keepdim=True)
    s = torch.where(hi > lo, (s - lo) / (hi - lo), torch.zeros_like(s))
    n_thresholds = int(np.floor(1.0 / step + 1e-9)) + 1
    thresholds = torch.arange(n_thresholds - 1, -1, -1, device=s.device, dtype=s.dtype) * step
    # Bound memory: each chunk holds (maps x splits x other fixations) random keys.
    per_map = n_splits * int(oth.sum(1).max())
    chunk = max(1, int(2e7 // max(per_map, 1)))
    scores = [
        _sauc_draws(s[i : i + chunk], fix[i : i + chunk], oth[i : i + chunk], n_splits, seed, thresholds)
        for i in range(0, s.shape[0], chunk)
    ]
    return _out(torch.cat(scores), was_numpy, single)


def _sauc_draws(s: Tensor, fix: Tensor, oth: Tensor, n_splits: int, seed: int, thresholds: Tensor) -> Tensor:
    """MIT-style sAUC of normalised maps ``s (B, N)``; each map's draws come from a generator seeded
    with ``seed``, so a map scores the same alone or in any batch."""
    pos, n_pos = _padded_values(s, fix, float("-inf"))
    neg_all, n_oth = _padded_values(s, oth, float("-inf"))
    n_neg = torch.minimum(n_pos, n_oth)
    width = neg_all.shape[1]
    keys = torch.full((s.shape[0], n_splits, width), 2.0, dtype=torch.float64)  # padding sorts last
    for b, m in enumerate(n_oth.tolist()):
        generator = torch.Generator(device="cpu").manual_seed(seed)
        keys[b, :, :m] = torch.rand((n_splits, m), generator=generator, dtype=torch.float64)
    draw = torch.argsort(keys.to(s.device), dim=2)
    neg = torch.gather(neg_all.unsqueeze(1).expand(-1, n_splits, -1), 2, draw)
    keep = torch.arange(width, device=s.device).view(1, 1, -1) < n_neg.view(-1, 1, 1)
    neg = _sort_rows(neg.masked_fill(~keep, float("-inf")).flatten(0, 1)).view_as(neg)
    pos = _sort_rows(pos)
    t_pos = thresholds.unsqueeze(0).expand(s.shape[0], -1).contiguous()
    t_neg = thresholds.view(1, 1, -1).expand(s.shape[0], n_splits, -1).contiguous()
    tp = (_count_at_least(pos, t_pos)).to(s.dtype) / n_pos.to(s.dtype).view(-1, 1)
    fp = (_count_at_least(neg, t_neg)).to(s.dtype) / n_neg.to(s.dtype).view(-1, 1, 1)
    tp = tp.unsqueeze(1).expand(-1, n_splits, -1)
    zeros = torch.zeros_like(fp[..., :1])
    ones = torch.ones_like(fp[..., :1])
    tp = torch.cat([zeros, tp, ones], 2)
    fp = torch.cat([zeros, fp, ones], 2)
    return torch.trapezoid(tp, fp, dim=2).mean(1)


def _count_at_least(sorted_values: Tensor, thresholds: Tensor) -> Tensor:
    """How many of each row's ascending ``sorted_values`` are >= each threshold."""
    return sorted_values.shape[-1] - torch.searchsorted(sorted_values.contiguous(), thresholds, side="left")
