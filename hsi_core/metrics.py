"""Saliency metrics with the MIT/Tuebingen saliency-benchmark conventions, batched in torch.

Every public metric takes numpy arrays or torch tensors: one map ``(H, W)`` gives a float, a batch
``(B, H, W)`` gives ``B`` values (a numpy array for numpy input, a tensor on the input's device for
torch input). Maps are compared at the same size: the benchmark code resizes the prediction to the
fixation map first; here a shape mismatch raises, so resizing is the caller's explicit choice.

Computation is in float64 on the input's device. Bad input raises ``ValueError``: a shape
mismatch, a NaN or infinity, an empty fixation map, or a constant map where the metric is undefined
(CC, NSS, SIM and MAE need a non-constant map; AUC and KL accept a constant prediction, which is the
uniform distribution and scores chance). Nothing returns NaN silently.

**Conventions** (:data:`CONVENTIONS`; the book's conventions page measures each difference). Where
the MIT benchmark code and pysaliency (the MIT/Tuebingen benchmark's implementation) compute a
metric differently, the metric takes ``convention="mit" | "pysaliency"``; the default is ``"mit"``:

- NSS: ``"mit"`` (``NSS.m``) averages the standardised map over the fixated pixels, each once, with
  the unbiased std (MATLAB's ``std``); ``"pysaliency"`` averages it over the fixations (a count
  map weights each pixel by how often it was fixated) with numpy's biased std.
- AUC-Judd: positives are the fixated pixels, each once (``"mit"``, ``AUC_Judd.m``) or each
  fixation (``"pysaliency"``, ``AUC_Judd(jitter=False)``: the true-positive rate counts fixations).
- SIM: min-max normalised, then sum-normalised (``"mit"``, ``similarity.m``), or only shifted to
  minimum 0 when negative and sum-normalised (``"pysaliency"``, ``SIM``).
- CC, KL and the shuffled AUC's exact reading agree between the two.

**Undefined scores** (:data:`UNDEFINED_POLICIES`). A flat (constant) prediction has no CC, NSS or
MIT SIM. The single-metric functions raise for it unless ``undefined="pysaliency"``; the dataset
scorers (:func:`metric_set`, :mod:`hsi_core.evaluation`) take ``undefined="pysaliency"`` (the
default: scored as pysaliency scores it, CC 0 and NSS 0, SIM and KL as the uniform distribution) or
``"skip"`` (left undefined, NaN in :func:`metric_set`, counted by the summaries). MAE of a flat map
and the metrics against a flat (or, for KL, all-zero) ground truth stay undefined under both.

``torch_cc``, ``torch_kl_div``, ``torch_nss`` and ``torch_sim`` are the differentiable kernels
behind them, without validation, for losses (HSI Eq. 4-7).

:func:`metric_set` computes the whole set at once with the fastest kernel for the input's device
(numpy map by map on the CPU, batched torch on a GPU); dataset scoring (:mod:`hsi_core.evaluation`)
uses it. The shuffled AUC has two named conventions for its negatives (``"pysaliency"``, the
default, and ``"mit"``; see :func:`auc_shuffled`), and AUC-Judd an optional, seeded MIT jitter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from hsi_core.maps import minmax

#: MATLAB's ``eps``: the regulariser in the MIT benchmark's KL divergence (HSI Eq. 5).
EPS = 2.2204e-16

#: The two references whose readings differ (see the module docstring); metrics default to the first.
CONVENTIONS = ("mit", "pysaliency")
#: What the dataset scorers do with a metric undefined for a map; the first is the default.
UNDEFINED_POLICIES = ("pysaliency", "skip")

__all__ = [
    "EPS",
    "CONVENTIONS",
    "UNDEFINED_POLICIES",
    "cc",
    "kl_div",
    "sim",
    "nss",
    "auc_judd",
    "auc_shuffled",
    "SAUC_CONVENTIONS",
    "mae",
    "METRIC_SET",
    "FIXATION_METRICS",
    "metric_set",
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


def _check_convention(convention: str, metric: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"{metric}: convention must be one of {CONVENTIONS}, got {convention!r}")


def _check_single_undefined(undefined: str, metric: str) -> None:
    if undefined not in ("raise", "pysaliency"):
        raise ValueError(f"{metric}: undefined must be 'raise' or 'pysaliency', got {undefined!r}")


def check_undefined_policy(undefined: str, where: str) -> None:
    """``ValueError`` naming ``where`` unless ``undefined`` is one of :data:`UNDEFINED_POLICIES` (the dataset
    scorers' choices for a metric undefined on a map)."""
    if undefined not in UNDEFINED_POLICIES:
        raise ValueError(f"{where}: undefined must be one of {UNDEFINED_POLICIES}, got {undefined!r}")


def is_flat(t: Tensor) -> Tensor:
    """``(B,)`` bool: which maps of a ``(B, H, W)`` tensor are exactly constant (CC, NSS and MIT's SIM
    are undefined for them; the ``undefined=`` policy decides how they are scored)."""
    lo, hi = torch.aminmax(t.flatten(1), dim=1)
    return hi <= lo


def _out(values: Tensor, was_numpy: bool, single: bool) -> Any:
    if single:
        return float(values[0])
    return values.cpu().numpy() if was_numpy else values


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
def cc(pred: Any, gt: Any, *, undefined: str = "raise") -> Any:
    """Pearson linear correlation coefficient between two maps (MIT ``CC.m``; HSI Eq. 6).

    Both maps are standardised and correlated; the result is in [-1, 1]; MIT and pysaliency agree.
    A constant map raises, except a constant prediction with ``undefined="pysaliency"``: 0, as
    pysaliency's ``CC`` scores it (a constant ground truth raises either way).

    Args:
        pred: the predicted map ``(H, W)`` or batch ``(B, H, W)``, numpy or torch.
        gt: the ground-truth saliency map, the same shape as ``pred``.
        undefined: ``"raise"`` (default) for a constant prediction, or ``"pysaliency"`` to score it 0.

    Returns:
        A float for one map; for a batch, ``B`` values: a numpy array for numpy input, a
        tensor on the input's device for torch input.

    Raises:
        ValueError: shapes differ, a value is NaN or infinite, or a map is constant (see ``undefined``).
    """
    _check_single_undefined(undefined, "CC")
    p, g, was_numpy, single = _pair(pred, gt, "gt")
    _require_nonconstant(g, "gt", "CC")
    if undefined == "raise":
        _require_nonconstant(p, "pred", "CC")
    flat = is_flat(p)
    values = torch.where(flat, torch.zeros_like(flat, dtype=p.dtype), torch_cc(p, g, eps=0.0))
    return _out(values, was_numpy, single)


def kl_div(pred: Any, gt: Any) -> Any:
    """MIT image-based KL divergence of the prediction from the ground truth (HSI Eq. 5).

    ``sum_i g_i log(eps + g_i / (p_i + eps))`` with ``eps = 2.2204e-16`` (MATLAB's eps), after each
    map is divided by its sum. A map with negative values is first shifted to minimum 0. Lower is
    better; 0 for identical maps. An all-zero map raises (it is no distribution).

    Args:
        pred: the predicted map ``(H, W)`` or batch ``(B, H, W)``, numpy or torch.
        gt: the ground-truth saliency map, the same shape as ``pred``.

    Returns:
        A float for one map; for a batch, ``B`` values: a numpy array for numpy input, a
        tensor on the input's device for torch input.

    Raises:
        ValueError: shapes differ, a value is NaN or infinite, or a map sums to zero.
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


def sim(pred: Any, gt: Any, *, convention: str = "mit", undefined: str = "raise") -> Any:
    """Similarity (histogram intersection): ``sum_i min(p_i, g_i)`` of two distributions.

    ``convention="mit"`` (MIT ``similarity.m``): each map is min-max normalised, then divided by
    its sum; a constant map raises, or with ``undefined="pysaliency"`` a constant prediction is
    the uniform distribution. ``convention="pysaliency"`` (pysaliency's ``SIM``): a map is shifted
    to minimum 0 only when it has negative values, then divided by its sum (a map summing to 0 is
    the uniform distribution); defined for every finite map. The result is in [0, 1] (1 for
    identical distributions). The HSI paper writes SIM with a 1/(W*H) factor; that factor only
    rescales the score by the image area (it would make SIM of identical maps 1/(W*H) rather than 1)
    and neither reference's code nor the published numbers use it, so it is dropped here.

    Args:
        pred: the predicted map ``(H, W)`` or batch ``(B, H, W)``, numpy or torch.
        gt: the ground-truth saliency map, the same shape as ``pred``.
        convention: ``"mit"`` (default) or ``"pysaliency"``: how each map becomes a distribution.
        undefined: ``"raise"`` (default) for a constant map under ``"mit"``, or ``"pysaliency"`` to
            read a constant prediction as the uniform distribution.

    Returns:
        A float for one map; for a batch, ``B`` values: a numpy array for numpy input, a
        tensor on the input's device for torch input.

    Raises:
        ValueError: shapes differ, a value is NaN or infinite, or (the mit convention) a map is constant.
    """
    _check_convention(convention, "SIM")
    _check_single_undefined(undefined, "SIM")
    p, g, was_numpy, single = _pair(pred, gt, "gt")
    if convention == "pysaliency":
        p, g = _density(p), _density(g)
    else:
        _require_nonconstant(g, "gt", "SIM")
        if undefined == "raise":
            _require_nonconstant(p, "pred", "SIM")
        p = _density(torch.where(is_flat(p).view(-1, 1, 1), torch.zeros_like(p), minmax(p)))
        g = _density(minmax(g))
    return _out(torch.minimum(p, g).sum(1), was_numpy, single)


def _density(t: Tensor) -> Tensor:
    """pysaliency's ``convert_saliency_map_to_density``: shifted to minimum 0 when negative, divided
    by the sum; a map summing to 0 becomes the uniform distribution. Rows ``(B, H*W)``."""
    t = _shift_nonnegative(t).flatten(1)
    total = t.sum(1, keepdim=True)
    uniform = torch.full_like(t, 1.0 / t.shape[1])
    return torch.where(total > 0, t / torch.where(total > 0, total, torch.ones_like(total)), uniform)


def nss(pred: Any, fixations: Any, *, convention: str = "mit", undefined: str = "raise") -> Any:
    """Normalised scanpath saliency (HSI Eq. 7).

    ``convention="mit"`` (MIT ``NSS.m``): the map is standardised with its mean and unbiased
    standard deviation (MATLAB's ``std``), and the values at the fixated pixels (``fixations > 0``,
    each pixel once) are averaged. ``convention="pysaliency"`` (pysaliency's ``NSS``): standardised
    with numpy's biased std and averaged over the fixations, ``fixations`` being a count map (each
    pixel weighted by its count). A constant prediction raises, or scores 0 with
    ``undefined="pysaliency"`` (pysaliency leaves the centred map undivided).

    Args:
        pred: the predicted map ``(H, W)`` or batch ``(B, H, W)``, numpy or torch.
        fixations: the fixation map, the same shape as ``pred``: binary, or fixation counts
            (used as counts under ``convention="pysaliency"``).
        convention: ``"mit"`` (default) or ``"pysaliency"``: which std and which average.
        undefined: ``"raise"`` (default) for a constant prediction, or ``"pysaliency"`` to score it 0.

    Returns:
        A float for one map; for a batch, ``B`` values: a numpy array for numpy input, a
        tensor on the input's device for torch input.

    Raises:
        ValueError: shapes differ, a value is NaN or infinite, a map has no fixation, or the prediction is constant (see ``undefined``).
    """
    _check_convention(convention, "NSS")
    _check_single_undefined(undefined, "NSS")
    p, f, was_numpy, single = _pair(pred, fixations, "fixations")
    if undefined == "raise":
        _require_nonconstant(p, "pred", "NSS")
    _require_fixations(f, "fixations", "NSS")
    flat = is_flat(p)
    if convention == "mit":
        values = torch_nss(p, f, eps=0.0)
    else:
        x = p.flatten(1)
        w = f.flatten(1).clamp_min(0)
        std, mean = torch.std_mean(x, dim=1, correction=0)
        values = (_rowdot(x, w) / w.sum(1) - mean) / std
    return _out(torch.where(flat, torch.zeros_like(values), values), was_numpy, single)


def mae(pred: Any, gt: Any) -> Any:
    """Mean absolute error after min-max normalising both maps to [0, 1] (HSI Table 4).

    Args:
        pred: the predicted map ``(H, W)`` or batch ``(B, H, W)``, numpy or torch.
        gt: the ground-truth saliency map, the same shape as ``pred``.

    Returns:
        A float for one map; for a batch, ``B`` values: a numpy array for numpy input, a
        tensor on the input's device for torch input.

    Raises:
        ValueError: shapes differ, a value is NaN or infinite, or a map is constant.
    """
    p, g, was_numpy, single = _pair(pred, gt, "gt")
    _require_nonconstant(p, "pred", "MAE")
    _require_nonconstant(g, "gt", "MAE")
    return _out((minmax(p) - minmax(g)).abs().flatten(1).mean(1), was_numpy, single)


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


def _jitter_noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """MIT ``AUC_Judd.m``'s jitter: ``rand(size(map)) / 1e7``, from a numpy generator seeded with ``seed``."""
    return np.random.default_rng(seed).random(shape) / 1e7


def auc_judd(pred: Any, fixations: Any, *, jitter: bool = False, seed: int = 0, convention: str = "mit") -> Any:
    """AUC-Judd (MIT ``AUC_Judd.m``; ``convention="pysaliency"``: pysaliency's ``AUC_Judd``).

    Positives are the fixated pixels. The thresholds are the map's values at the fixated pixels;
    for the i-th highest of the N fixated values, the true positive rate is i/N and the false
    positive rate is (#pixels >= threshold - i) / (#pixels - N). The ROC curve from (0, 0) to
    (1, 1) through those points is integrated with the trapezoid rule.

    ``jitter=True`` is the MIT code's default: uniform noise in [0, 1e-7) is added to the map before
    anything else, so that tied values become distinct; the noise comes from a numpy generator
    seeded with ``seed`` (every map of a batch gets the same noise field, so a map scores the same
    alone or in a batch; not MATLAB's random stream). ``jitter=False`` (default here) is
    deterministic: tied fixated values count together (true positive rate = #fixated >= threshold
    / N), which equals the MIT result when values are distinct and gives a flat map exactly 0.5.
    On 8-bit maps with many ties the two differ by a few thousandths.

    ``convention="pysaliency"`` counts each fixation as a positive: ``fixations`` is a count map and
    the true positive rate at a threshold is the share of fixations (not of fixated pixels) at or
    above it; the negatives are still the unfixated pixels. It equals pysaliency's
    ``AUC_Judd(jitter=False)``; pysaliency's own jitter (Gaussian, from one generator running across
    the images) is not reproduced, ``jitter`` adds the MIT noise under either convention.

    Args:
        pred: the predicted map ``(H, W)`` or batch ``(B, H, W)``, numpy or torch.
        fixations: the fixation map, the same shape as ``pred``: binary, or fixation counts
            (used as counts under ``convention="pysaliency"``).
        jitter: add MIT's uniform noise in [0, 1e-7) to break ties (default ``False``: ties count together).
        seed: seed of the jitter's numpy generator.
        convention: ``"mit"`` (default: each fixated pixel once) or ``"pysaliency"`` (each fixation).

    Returns:
        A float for one map; for a batch, ``B`` values: a numpy array for numpy input, a
        tensor on the input's device for torch input.

    Raises:
        ValueError: shapes differ, a value is NaN or infinite, or a map has no fixation.
    """
    _check_convention(convention, "AUC-Judd")
    p, f, was_numpy, single = _pair(pred, fixations, "fixations")
    fix = _require_fixations(f, "fixations", "AUC-Judd").flatten(1)
    s = p.flatten(1)
    if jitter:
        s = s + torch.from_numpy(_jitter_noise((s.shape[1],), seed)).to(s.device).unsqueeze(0)
    if convention == "pysaliency":
        return _out(_torch_judd_dense(s, f.flatten(1).clamp_min(0)), was_numpy, single)
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


def _torch_judd_dense(s: Tensor, weights: Tensor) -> Tensor:
    """AUC-Judd of rows ``s (B, N)`` with positive weights ``weights (B, N)`` (> 0 at the fixated
    pixels): thresholds at the fixated values, the true positive rate the weight of the fixated
    pixels at or above a threshold over the total weight, the false positive rate the share of
    unfixated pixels at or above it; ties count together. Dense: one sort per row; in descending
    value order each fixated pixel is one ROC point and the others repeat the previous point (a
    forward fill by cummax, since both rates only grow)."""
    n = s.shape[1]
    values, order = _argsort_rows(s)
    ws = weights.to(s.dtype).gather(1, order)
    fs = (ws > 0).to(s.dtype)
    n_fix = fs.sum(1, keepdim=True)
    w_total = ws.sum(1, keepdim=True)
    left = torch.searchsorted(values, values, side="left")
    fix_below = torch.cat([torch.zeros_like(fs[:, :1]), torch.cumsum(fs, 1)], 1)
    w_below = torch.cat([torch.zeros_like(ws[:, :1]), torch.cumsum(ws, 1)], 1)
    hits = n_fix - fix_below.gather(1, left)
    w_hits = w_total - w_below.gather(1, left)
    above = (n - left).to(s.dtype)
    zero = torch.zeros_like(hits)
    tp = torch.where(fs > 0, w_hits / w_total, zero).flip(1)
    fp = torch.where(fs > 0, (above - hits) / (n - n_fix), zero).flip(1)
    tp = torch.cummax(tp, 1).values
    fp = torch.cummax(fp, 1).values
    zeros, ones = torch.zeros_like(tp[:, :1]), torch.ones_like(tp[:, :1])
    judd = torch.trapezoid(torch.cat([zeros, tp, ones], 1), torch.cat([zeros, fp, ones], 1), dim=1)
    return torch.where(n_fix.squeeze(1) < n, judd, torch.full_like(judd, float("nan")))


#: The two readings of the shuffled AUC's negatives (see :func:`auc_shuffled`).
SAUC_CONVENTIONS = ("pysaliency", "mit")


def auc_shuffled(
    pred: Any,
    fixations: Any,
    other_fixations: Any,
    n_splits: int = 100,
    seed: int = 0,
    step: float = 0.1,
    *,
    convention: str = "pysaliency",
) -> Any:
    """Shuffled AUC: positives at this image's fixations, negatives at other images' fixations.

    ``convention="pysaliency"`` (default; pysaliency's ``AUC(..., nonfixations="shuffled")``): the
    exact, weighted AUC. ``other_fixations`` is a count map: each location is a negative as many
    times as other images fixated it (in a dataset: every other image's fixations, moved onto this
    image's grid, see :mod:`hsi_core.evaluation`), and ``fixations`` weights each positive by its
    value (a count map weights by fixation as pysaliency does; a binary map counts each fixated
    pixel once). Every value is a threshold: the result is the weighted Mann-Whitney statistic
    P(pos > neg) + P(pos = neg) / 2. ``n_splits``, ``seed`` and ``step`` are unused.
    A prior that matches where people look on average (a centre bias) scores 0.5 under it.

    ``convention="mit"`` follows MIT ``AUC_shuffled.m`` (Borji's sAUC): ``other_fixations`` is
    binarised (the union of the fixation maps of a few other images: the benchmark uses 10); the
    map is min-max normalised; in each of ``n_splits`` draws, as many negatives as there are
    fixated pixels (at most all of them) are sampled without replacement from those locations; the
    ROC curve is traced at thresholds ``0, step, 2 step, ...`` and integrated with the trapezoid
    rule; the draws are averaged. The draws come from a ``torch.Generator`` seeded with ``seed``
    (deterministic, but not MATLAB's random stream, so single draws differ from the MATLAB code;
    their expectation is the same). Because each location counts once, however often it was
    fixated, a centre bias keeps an advantage under this reading.

    Args:
        pred: the predicted map ``(H, W)`` or batch ``(B, H, W)``, numpy or torch.
        fixations: this image's fixation map, the same shape as ``pred`` (binary or counts).
        other_fixations: the negatives, the same shape: other images' fixations as a count map
            (``"pysaliency"``) or a map binarised into locations (``"mit"``).
        n_splits: ``"mit"`` only: the number of random draws of negatives averaged.
        seed: ``"mit"`` only: the seed of the draws' ``torch.Generator``.
        step: ``"mit"`` only: the spacing of the thresholds on the min-max normalised map.
        convention: ``"pysaliency"`` (default: exact, weighted) or ``"mit"`` (Borji's sampled sAUC).

    Returns:
        A float for one map; for a batch, ``B`` values: a numpy array for numpy input, a
        tensor on the input's device for torch input.

    Raises:
        ValueError: shapes differ, a value is NaN or infinite, a map has no fixation or no negative, or ``convention`` is unknown.
    """
    if convention not in SAUC_CONVENTIONS:
        raise ValueError(f"sAUC: convention must be one of {SAUC_CONVENTIONS}, got {convention!r}")
    p, f, was_numpy, single = _pair(pred, fixations, "fixations")
    o, _, _ = _to_batch(other_fixations, "other_fixations", device=p.device)
    if o.shape != p.shape:
        raise ValueError(f"shape mismatch: pred {tuple(p.shape)} vs other_fixations {tuple(o.shape)}")
    _require_fixations(f, "fixations", "sAUC")
    _require_fixations(o, "other_fixations", "sAUC")
    s = p.flatten(1)
    if convention == "pysaliency":
        return _out(_torch_weighted_auc(s, f.flatten(1), o.flatten(1)), was_numpy, single)
    if n_splits < 1:
        raise ValueError(f"sAUC (mit): n_splits must be >= 1, got {n_splits}")
    fix = f.flatten(1) > 0
    oth = o.flatten(1) > 0
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


def _torch_weighted_auc(s: Tensor, w_pos: Tensor, w_neg: Tensor) -> Tensor:
    """Exact AUC of rows ``s (B, N)`` with weights per pixel for positives and negatives (batched,
    dense: one sort per row, then prefix sums of the negative weight in value order)."""
    values, order = _argsort_rows(s)
    wp = w_pos.to(s.dtype).gather(1, order)
    wn = w_neg.to(s.dtype).gather(1, order)
    left = torch.searchsorted(values, values, side="left")
    right = torch.searchsorted(values, values, side="right")
    below = torch.cat([torch.zeros_like(wn[:, :1]), torch.cumsum(wn, 1)], 1)  # weight strictly below
    wins = (wp * (below.gather(1, left) + below.gather(1, right))).sum(1) / 2
    return wins / (wp.sum(1) * wn.sum(1))


def _argsort_rows(t: Tensor) -> tuple[Tensor, Tensor]:
    """Sorted rows and their order; numpy's sort on the CPU (faster there), ``torch.sort`` elsewhere."""
    if t.device.type == "cpu":
        order = torch.from_numpy(np.argsort(t.numpy(), axis=1))
        return t.gather(1, order), order
    values, order = torch.sort(t, dim=1)
    return values, order


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


# ----------------------------------------------------------------------------- the whole metric set at once
#: The columns :func:`metric_set` returns, in order.
METRIC_SET = ("CC", "KL", "SIM", "NSS", "AUC-Judd", "sAUC", "MAE")
#: The metrics of :data:`METRIC_SET` for which a lower score is better (the others: higher is better).
LOWER_IS_BETTER = frozenset({"KL", "MAE"})
#: Other spellings of a metric's name met in the papers' tables: "KLdiv" is the HSI paper's (and the MIT
#: benchmark's ``KLdiv.m``) name for KL, kept as the column of HSI Tables 1-3.
METRIC_ALIASES = {"KLdiv": "KL"}


def lower_is_better(metric: str) -> bool:
    """Whether a lower score of ``metric`` is better.

    Args:
        metric: a name of :data:`METRIC_SET` or of :data:`METRIC_ALIASES`; a suffix in parentheses
            (an sAUC convention column such as ``"sAUC (pysaliency)"``) is ignored.

    Returns:
        ``True`` for KL and MAE, ``False`` for the similarity metrics (CC, SIM, NSS, the AUCs).

    Raises:
        ValueError: ``metric`` is not a known metric name.
    """
    name = METRIC_ALIASES.get(metric, metric).split(" (")[0]
    if name not in METRIC_SET:
        raise ValueError(f"lower_is_better: unknown metric {metric!r}; one of {list(METRIC_SET)} "
                         f"or {list(METRIC_ALIASES)}")
    return name in LOWER_IS_BETTER
#: The metrics scored against the fixations (undefined for an image without any).
FIXATION_METRICS = ("NSS", "AUC-Judd", "sAUC")


def metric_set(pred: Any, saliency: Any, fixations: Any, negatives: Any | None = None, *,
               judd_jitter: bool = False, seeds: Any | None = None, backend: str = "auto",
               nss_convention: str = "mit", judd_convention: str = "mit", sim_convention: str = "mit",
               undefined: str = UNDEFINED_POLICIES[0]) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRIC_SET` on a batch ``(B, H, W)`` at once, with the kernel that is
    fastest on the input's device; the values equal the single-metric functions above.

    ``saliency`` is the ground-truth map (CC, KL, SIM, MAE); ``fixations`` the fixation map, binary
    or counts (NSS and AUC-Judd use the fixated pixels, ``> 0``, under their ``"mit"`` conventions
    and the counts under ``"pysaliency"``; sAUC weights positives by the counts); ``negatives`` the
    sAUC negatives as a count map (the ``"pysaliency"`` convention of :func:`auc_shuffled`, exact),
    or ``None`` to skip sAUC. ``judd_jitter`` adds MIT's jitter to AUC-Judd, map ``b`` with the
    generator seeded ``seeds[b]`` (default ``b``). ``nss_convention``, ``judd_convention``,
    ``sim_convention``: ``"mit"`` or ``"pysaliency"`` (see the module docstring).

    ``undefined`` (:data:`UNDEFINED_POLICIES`): ``"pysaliency"`` (default) scores a flat prediction
    as pysaliency does (CC 0, NSS 0, SIM and KL of the uniform distribution); ``"skip"`` leaves CC,
    NSS and MIT SIM of a flat prediction NaN, and KL of a prediction summing to zero. NaN also
    marks, under both, MAE of a flat prediction, CC, SIM and MAE against a flat ground truth (KL
    against an all-zero one: an image without fixations has no ground-truth map), and the fixation metrics (:data:`FIXATION_METRICS`) of an image without fixations (or sAUC
    without negatives): on purpose and only there, for the caller to count. Bad input (NaN or
    infinite values, a shape mismatch, negative fixations) raises ``ValueError``.

    ``backend``: ``"numpy"`` (one map at a time, vectorised within the map; the fastest on the CPU,
    where a map's working set stays in cache), ``"torch"`` (the whole batch in a few batched ops on
    the input's device: the GPU path), or ``"auto"`` (numpy for CPU input, torch otherwise).
    Returns ``{metric: (B,) float64 array}``.

    Args:
        pred: predicted maps ``(B, H, W)`` (or one ``(H, W)``), numpy or torch.
        saliency: ground-truth saliency maps, the same shape.
        fixations: fixation maps, the same shape, binary or counts.
        negatives: sAUC negatives as count maps, the same shape, or ``None`` to skip sAUC.
        judd_jitter: add MIT's jitter to AUC-Judd.
        seeds: one jitter seed per map (default ``0 .. B-1``).
        backend: ``"auto"`` (default), ``"numpy"`` or ``"torch"``.
        nss_convention: ``"mit"`` (default) or ``"pysaliency"``.
        judd_convention: ``"mit"`` (default) or ``"pysaliency"``.
        sim_convention: ``"mit"`` (default) or ``"pysaliency"``.
        undefined: ``"pysaliency"`` (default) or ``"skip"``.

    Returns:
        ``{metric: (B,) float64 array}`` for each name of :data:`METRIC_SET`, NaN only where a
        metric is undefined for a map (above).

    Raises:
        ValueError: shapes differ, a value is NaN or infinite, a fixation count is negative, or an
            option is unknown.
    """
    for name, value in (("NSS", nss_convention), ("AUC-Judd", judd_convention), ("SIM", sim_convention)):
        _check_convention(value, f"metric_set ({name})")
    check_undefined_policy(undefined, "metric_set")
    p, g, _, _ = _pair(pred, saliency, "saliency")
    f, _, _ = _to_batch(fixations, "fixations", device=p.device)
    if f.shape != p.shape:
        raise ValueError(f"metric_set: fixations {tuple(f.shape)} vs pred {tuple(p.shape)}")
    if (f < 0).any():
        raise ValueError("metric_set: fixations has negative entries; expected a fixation map (binary or counts)")
    o = None
    if negatives is not None:
        o, _, _ = _to_batch(negatives, "negatives", device=p.device)
        if o.shape != p.shape:
            raise ValueError(f"metric_set: negatives {tuple(o.shape)} vs pred {tuple(p.shape)}")
        if (o < 0).any():
            raise ValueError("metric_set: negatives has negative entries; expected a count map")
    b, n = p.shape[0], p.shape[1] * p.shape[2]
    seeds = list(range(b)) if seeds is None else [int(x) for x in seeds]
    if len(seeds) != b:
        raise ValueError(f"metric_set: {len(seeds)} seeds for {b} maps")
    noise = np.stack([_jitter_noise((n,), sd) for sd in seeds]) if judd_jitter else None
    options = {"nss": nss_convention, "judd": judd_convention, "sim": sim_convention, "scored": undefined == "pysaliency"}
    if backend == "auto":
        backend = "numpy" if p.device.type == "cpu" else "torch"
    if backend == "numpy":
        if p.device.type != "cpu":
            raise ValueError("metric_set: the numpy backend needs CPU tensors")
        rows = [_np_metric_row(p[i].numpy().ravel(), g[i].numpy().ravel(), f[i].numpy().ravel(),
                               None if o is None else o[i].numpy().ravel(), None if noise is None else noise[i],
                               **options)
                for i in range(b)]
        out = np.array(rows, dtype=np.float64).reshape(b, len(METRIC_SET))
        return {name: out[:, k] for k, name in enumerate(METRIC_SET)}
    if backend != "torch":
        raise ValueError(f"metric_set: backend must be 'auto', 'numpy' or 'torch', got {backend!r}")
    jit = None if noise is None else torch.from_numpy(noise).to(p.device)
    values = _torch_metric_set(p.flatten(1), g.flatten(1), f.flatten(1), None if o is None else o.flatten(1), jit,
                               **options)
    return {name: values[name].cpu().numpy() for name in METRIC_SET}


def _np_sorted_with_weights(p: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``p`` sorted ascending and ``weights`` in the same order. When ``p`` holds float32 values (a
    network's output, in float64) the low 29 bits of each float64 mantissa are zero; an integer
    weight below 2**29 is stored there, which moves no value past another float32 value, so one
    plain float sort orders values and carries weights (exact, several times faster than an
    argsort and two gathers). Otherwise an argsort."""
    low = np.uint64((1 << 29) - 1)
    bits = p.view(np.uint64)
    w = weights.astype(np.uint64)
    if not (bits & low).any() and float(weights.max()) < 2**29 and np.array_equal(w, weights):
        keys = np.sort((bits | w).view(np.float64)).view(np.uint64)
        return (keys & ~low).view(np.float64), (keys & low).astype(np.float64)
    order = np.argsort(p)
    return np.take(p, order), np.take(weights, order)


def _np_metric_row(p: np.ndarray, g: np.ndarray, f: np.ndarray, neg: np.ndarray | None,
                   noise: np.ndarray | None, *, nss: str = "mit", judd: str = "mit", sim: str = "mit",
                   scored: bool = True) -> list[float]:
    """The metric set of one flattened map in numpy (see :func:`metric_set`); few passes, few
    temporaries. ``scored``: the ``"pysaliency"`` policy for a flat prediction."""
    nan = float("nan")
    n = p.size
    p_lo, p_hi = float(p.min()), float(p.max())
    g_lo, g_hi = float(g.min()), float(g.max())
    p_flat, g_flat = p_hi <= p_lo, g_hi <= g_lo
    p_sum, g_sum = float(p.sum()), float(g.sum())
    pc = p - p_sum / n
    gc = g - g_sum / n
    pp = float(pc @ pc)
    fix = np.flatnonzero(f)  # the fixated pixels, once
    n_fix = fix.size
    if g_flat:
        cc_v = nan
    elif p_flat:
        cc_v = 0.0 if scored else nan
    else:
        cc_v = float(pc @ gc) / np.sqrt(pp * float(gc @ gc))
    if n_fix == 0:
        nss_v = nan
    elif p_flat:
        nss_v = 0.0 if scored else nan
    elif nss == "mit":
        nss_v = float(pc[fix].mean()) / np.sqrt(pp / (n - 1))
    else:
        w = f[fix].astype(np.float64)
        nss_v = float(w @ pc[fix]) / float(w.sum()) / np.sqrt(pp / n)
    # KL (MIT KLdiv.m; maps shifted to minimum 0 first): sum g' log(eps + g' / (p' + eps))
    p_shift, g_shift = min(p_lo, 0.0), min(g_lo, 0.0)
    ps_sum, gs_sum = p_sum - n * p_shift, g_sum - n * g_shift
    if gs_sum <= 0 or (ps_sum <= 0 and not scored):
        kl_v = nan
    else:
        gn = (g - g_shift) / (gs_sum + EPS) if g_shift else g / (gs_sum + EPS)
        if ps_sum <= 0:  # an all-zero prediction: pysaliency's uniform distribution
            t = np.full(n, 1.0 / n)
        else:
            t = (p - p_shift) if p_shift else p.copy()
            t /= ps_sum + EPS
        t += EPS
        np.divide(gn, t, out=t)
        t += EPS
        np.log(t, out=t)
        kl_v = float(gn @ t)
    mae_v = nan
    if not (p_flat or g_flat):
        pm = p - p_lo
        pm /= p_hi - p_lo
        gm = g - g_lo
        gm /= g_hi - g_lo
        if sim == "mit":
            # min-max maps divided by their sums (known from p_sum)
            t = pm / ((p_sum - n * p_lo) / (p_hi - p_lo))
            u = gm / ((g_sum - n * g_lo) / (g_hi - g_lo))
            sim_v = float(np.minimum(t, u, out=t).sum())
        np.subtract(pm, gm, out=pm)
        mae_v = float(np.abs(pm, out=pm).sum()) / n
    if sim == "pysaliency":
        sim_v = nan if g_flat else float(np.minimum(_np_density(p, p_shift, ps_sum), _np_density(g, g_shift, gs_sum)).sum())
    elif g_flat:
        sim_v = nan
    elif p_flat:
        sim_v = float(np.minimum(1.0 / n, (g - g_lo) / (g_sum - n * g_lo)).sum()) if scored else nan
    # AUC-Judd: thresholds at the fixated values, ties counted together (see auc_judd). One sort
    # of the map serves both AUCs when there is no jitter and the negatives cover much of the map.
    s = p if noise is None else p + noise
    share = neg is not None and noise is None and np.count_nonzero(neg) > n // 4
    if share:
        s_sorted, neg_sorted = _np_sorted_with_weights(p, neg)
    else:
        s_sorted = np.sort(s)
    if n_fix == n or n_fix == 0:
        judd_v = nan
    else:
        if judd == "mit":
            fixated = np.sort(s[fix])
            weight_below = None
        else:
            fixated, fw = _np_sorted_with_weights(s[fix], f[fix].astype(np.float64))
            weight_below = np.concatenate([[0.0], np.cumsum(fw)])
        thresholds = fixated[::-1]
        above = n - np.searchsorted(s_sorted, thresholds, side="left")
        at = np.searchsorted(fixated, thresholds, side="left")
        hits = n_fix - at
        rate = hits / n_fix if weight_below is None else (weight_below[-1] - weight_below[at]) / weight_below[-1]
        tp = np.concatenate([[0.0], rate, [1.0]])
        fp = np.concatenate([[0.0], (above - hits) / (n - n_fix), [1.0]])
        judd_v = float(np.trapezoid(tp, fp))
    sauc_v = nan
    if neg is not None and n_fix and neg.any():
        # weighted Mann-Whitney: negative weight strictly below / at most each positive's value
        if share:
            values, weights = s_sorted, neg_sorted
        else:
            idx = np.flatnonzero(neg)
            values, weights = _np_sorted_with_weights(p[idx], neg[idx])
        below = np.concatenate([[0.0], np.cumsum(weights, dtype=np.float64)])
        pos = p[fix]
        w = f[fix].astype(np.float64)
        wins = w @ (below[np.searchsorted(values, pos, "left")] + below[np.searchsorted(values, pos, "right")])
        sauc_v = float(wins / 2 / (w.sum() * below[-1]))
    return [cc_v, kl_v, sim_v, nss_v, judd_v, sauc_v, mae_v]


def _np_density(x: np.ndarray, shift: float, shifted_sum: float) -> np.ndarray:
    """:func:`_density` of one flat numpy map, given its shift (``min(min, 0)``) and shifted sum."""
    if shifted_sum <= 0:
        return np.full(x.size, 1.0 / x.size)
    return (x - shift) / shifted_sum


def _torch_metric_set(p: Tensor, g: Tensor, f: Tensor, neg: Tensor | None, noise: Tensor | None, *,
                      nss: str = "mit", judd: str = "mit", sim: str = "mit", scored: bool = True) -> dict[str, Tensor]:
    """The metric set of ``(B, N)`` rows in a few batched torch ops (the GPU kernel)."""
    nan = torch.full((p.shape[0],), float("nan"), dtype=p.dtype, device=p.device)
    zero = torch.zeros_like(nan)
    n = p.shape[1]
    p_lo, p_hi = torch.aminmax(p, dim=1)
    g_lo, g_hi = torch.aminmax(g, dim=1)
    p_ok, g_ok = p_hi > p_lo, g_hi > g_lo
    both = p_ok & g_ok
    fix = f > 0
    fixf = fix.to(p.dtype)
    has_fix = fix.any(1)
    flat_score = zero if scored else nan
    out: dict[str, Tensor] = {}
    out["CC"] = torch.where(~g_ok, nan, torch.where(p_ok, torch_cc(p, g, eps=0.0), flat_score))
    if nss == "mit":
        nss_v = torch_nss(p, fixf, eps=0.0)
    else:
        std, mean = torch.std_mean(p, dim=1, correction=0)
        w = f.clamp_min(0)
        nss_v = (_rowdot(p, w) / w.sum(1).clamp_min(1e-300) - mean) / std
    out["NSS"] = torch.where(~has_fix, nan, torch.where(p_ok, nss_v, flat_score))
    ps = p - p_lo.clamp(max=0).unsqueeze(1)
    gs = g - g_lo.clamp(max=0).unsqueeze(1)
    p_defined, g_defined = ps.sum(1) > 0, gs.sum(1) > 0
    kl_p = torch.where(p_defined.unsqueeze(1), ps, torch.ones_like(ps))  # zero map -> uniform
    out["KL"] = torch.where(g_defined & (p_defined | scored), torch_kl_div(kl_p, gs), nan)
    pm = (p - p_lo.unsqueeze(1)) / (p_hi - p_lo).unsqueeze(1)
    gm = (g - g_lo.unsqueeze(1)) / (g_hi - g_lo).unsqueeze(1)
    if sim == "mit":
        pm_sim = torch.where(p_ok.unsqueeze(1), pm, torch.zeros_like(pm))
        sim_v = torch.minimum(_density(pm_sim), _density(torch.where(g_ok.unsqueeze(1), gm, torch.zeros_like(gm)))).sum(1)
        out["SIM"] = torch.where(~g_ok, nan, torch.where(p_ok | scored, sim_v, nan))
    else:
        out["SIM"] = torch.where(g_ok, torch.minimum(_density(p), _density(g)).sum(1), nan)
    out["MAE"] = torch.where(both, (pm - gm).abs().mean(1), nan)
    s = p if noise is None else p + noise
    weights = fixf if judd == "mit" else f.clamp_min(0) * fixf
    out["AUC-Judd"] = torch.where(has_fix, _torch_judd_dense(s, weights), nan)
    if neg is None:
        out["sAUC"] = nan
    else:
        ok = has_fix & (neg > 0).any(1)
        out["sAUC"] = torch.where(ok, _torch_weighted_auc(p, f, neg), nan)
    return out
