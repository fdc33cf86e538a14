"""Benchmarking saliency-based explanations against HSI maps (HSI paper, "XAI Evaluation", Table 4) and beyond.

Table 4: for each XAI method, the pixel-wise MAE between its map and the HSI map of the same image (both min-max
normalised, ``hsi_core.metrics.mae``), averaged over the images; methods ranked by ascending MAE. The paper does not
say how the maps are scaled: ``table4_readings`` computes Table 4 under min-max, sum-to-one and raw [0, 1]
(max-scaled) maps, and ``table4_readings_verdict`` says which reading could give the paper's magnitudes.

The experiment's settings are one frozen ``XAIBenchmarkConfig`` (chapter 5 builds it from its parameters
cell and prints it); ``XAIBenchmarkConfig.key()`` hashes the settings that change the results into the
run directory's name, so maps made with other settings are never reused. (This module was
``hsi_core.benchmark_xai``; that import path still works, with a ``DeprecationWarning``.)

Beyond the paper (its Discussion leaves other metrics open): the same ranking under CC, KL, SIM and NSS with the
HSI map as the reference. KL is ``KL(HSI || XAI)`` (``metrics.kl_div(xai, hsi)``); NSS needs fixations, so the
reference "fixations" are the pixels in the top ``nss_top`` fraction of the HSI map (our choice, documented).

Uncertainty, honestly: each mean gets a percentile bootstrap 95% CI over images (one set of resamples shared by
every method and metric), each method the share of resamples in which it keeps its rank, and Kendall's tau
between the rankings of every pair of metrics gets a bootstrap interval from the same resamples. Ranks are
competition ranks: methods with exactly equal means share the best rank of their group (``1, 1, 3``) and are
reported as tied, never ordered by column. RISE's masks are drawn per image (``hsi_core.xai``), so the bootstrap
over images also covers the masks' random error.

Blank maps (``xai.is_blank``: constant up to float32 rounding, e.g. Grad-CAM when its ReLU zeroes every cell) are a
failure of the method that produced them, counted per method ("n of N maps blank") and scored, never removed
for the other methods. Where a metric is defined for a constant map it is scored as such: MAE against the all-zero
map (the min-max image of a blank map, ``xai.normalize_maps``), KL with the uniform distribution. Where it is not
(CC, SIM, NSS: MIT's definitions divide by the map's spread), ``undefined`` names the convention:

* ``"pysaliency"`` (default): as pysaliency scores a constant map: CC 0, NSS 0, and SIM with the uniform
  distribution (pysaliency's ``convert_saliency_map_to_density`` of a constant map);
* ``"skip"``: left out of that method's mean for that metric only (NaN in the per-image table); each row of the
  extended ranking says how many images its mean covers (``n``).

A blank HSI map leaves the reference undefined for every metric: that image is excluded for all methods and the
number is reported (``BenchmarkResult.n_hsi_blank``). Nothing raises once the maps exist: with fewer than two
scorable images the means, CIs and ranks are NaN.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from hsi_core import metrics, paper
from hsi_core import maps as saliency_maps
from hsi_core.xai import BLANK_RTOL, is_blank, normalize_maps

#: Table 4 of the HSI paper (ResNet-50, 1,000 ImageNet val images, HSI trained on HSB), from hsi_core.paper.
PAPER_TABLE4 = pd.DataFrame([{"Ranking": row["rank"], "Method": method, "MAE": row["MAE"]}
                             for method, row in paper.HSI_TABLE_4.items()])
#: The metrics an XAI map is scored by against the HSI map (direction: ``metrics.lower_is_better``).
METRICS = ("MAE", "CC", "KL", "SIM", "NSS")


#: Conventions for a metric that is undefined on a blank map (see the module docstring).
UNDEFINED_POLICIES = ("pysaliency", "skip")


def _as_maps(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu().double()
    if t.ndim != 3:
        raise ValueError(f"{name}: expected (N, H, W) maps, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).flatten(1).any(1).nonzero().flatten().tolist()
        raise ValueError(f"{name}: maps contain NaN or infinity (maps {bad[:10]})")
    return t


def blank_counts(xai_maps: Mapping[str, Any], hsi_maps: Any, rtol: float = BLANK_RTOL) -> dict[str, np.ndarray]:
    """``{name: (N,) bool}``: which maps are blank (``xai.is_blank``), for every method and for ``"HSI"``;
    checks that every method's maps have the HSI maps' shape."""
    hsi = _as_maps(hsi_maps, "hsi_maps")
    out = {}
    for name, m in xai_maps.items():
        t = _as_maps(m, name)
        if t.shape != hsi.shape:
            raise ValueError(f"{name}: maps of shape {tuple(t.shape)} but HSI maps {tuple(hsi.shape)}; resize first")
        out[name] = is_blank(t, rtol).numpy()
    out["HSI"] = is_blank(hsi, rtol).numpy()
    return out




def _blank_scores(hsi: torch.Tensor, fix: torch.Tensor | None, undefined: str) -> dict[str, np.ndarray]:
    """Each metric's score of a blank map against each HSI map (NaN where ``undefined="skip"`` leaves it out)."""
    g = saliency_maps.minmax(hsi).flatten(1)
    n = g.shape[1]
    nan = np.full(len(hsi), np.nan)
    pys = undefined == "pysaliency"
    return {"MAE": g.mean(1).numpy(),                                             # |0 - minmax(HSI)|
            "KL": np.asarray(metrics.kl_div(torch.ones_like(hsi), hsi), dtype=np.float64).reshape(-1),
            "CC": np.zeros(len(hsi)) if pys else nan,
            "NSS": np.zeros(len(hsi)) if pys else nan,
            "SIM": torch.minimum(torch.full_like(g, 1.0 / n), g / g.sum(1, keepdim=True)).sum(1).numpy()
            if pys else nan}


def per_image_scores(xai_maps: Mapping[str, Any], hsi_maps: Any, metric_names: Sequence[str] = METRICS,
                     nss_top: float = 0.05, undefined: str = "pysaliency") -> dict[str, pd.DataFrame]:
    """``{metric: DataFrame (images x methods)}`` of every method's score against the HSI map, image by image.
    A blank method map is scored by ``undefined``'s convention (module docstring); a blank HSI map raises
    ``ValueError`` (the reference is undefined: ``run_benchmark`` excludes and counts such images)."""
    if undefined not in UNDEFINED_POLICIES:
        raise ValueError(f"undefined must be one of {UNDEFINED_POLICIES}, got {undefined!r}")
    unknown = [m for m in metric_names if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {list(METRICS)}")
    blank = blank_counts(xai_maps, hsi_maps)
    if blank["HSI"].any():
        raise ValueError(f"HSI maps {np.flatnonzero(blank['HSI'])[:10].tolist()} are blank: every metric is "
                         "undefined against them (run_benchmark excludes and counts such images)")
    hsi = _as_maps(hsi_maps, "hsi_maps")
    if len(hsi) == 0:                               # nothing to score (e.g. every HSI map was blank)
        return {metric: pd.DataFrame({name: np.zeros(0) for name in xai_maps}) for metric in metric_names}
    fix = saliency_maps.top_fraction_fixations(hsi, nss_top, method="count") if "NSS" in metric_names else None
    fallback = _blank_scores(hsi, fix, undefined)
    fns = {"MAE": lambda p, h: metrics.mae(p, h), "CC": lambda p, h: metrics.cc(p, h),
           "KL": lambda p, h: metrics.kl_div(p, h), "SIM": lambda p, h: metrics.sim(p, h),
           "NSS": lambda p, f: metrics.nss(p, f)}
    out = {}
    for metric in metric_names:
        cols = {}
        for name, m in xai_maps.items():
            t, ok = _as_maps(m, name), ~blank[name]
            col = fallback[metric].copy()
            if ok.any():
                keep = torch.from_numpy(ok)
                ref = fix[keep] if metric == "NSS" else hsi[keep]
                col[ok] = torch.as_tensor(fns[metric](t[keep], ref)).double().reshape(-1).numpy()
            cols[name] = col
        out[metric] = pd.DataFrame(cols)
    return out


def table4(xai_maps: Mapping[str, Any], hsi_maps: Any, undefined: str = "pysaliency") -> pd.DataFrame:
    """Table 4: mean MAE(XAI map, HSI map) per method, ranked ascending (1 = closest to human; ties share a rank).
    Images with a blank HSI map are left out (``run_benchmark`` counts them)."""
    keep = torch.from_numpy(~blank_counts(xai_maps, hsi_maps)["HSI"])
    sub = {k: _as_maps(v, k)[keep] for k, v in xai_maps.items()}
    mae = per_image_scores(sub, _as_maps(hsi_maps, "hsi_maps")[keep], ("MAE",), undefined=undefined)["MAE"]
    means = _nanmean(mae.to_numpy(), axis=0)
    rank = competition_ranks(means, lower_is_better=True)
    order = np.lexsort((np.arange(len(means)), np.where(np.isnan(rank), np.inf, rank)))
    return pd.DataFrame({"Ranking": _int_ranks(rank[order]), "Method": mae.columns[order], "MAE": means[order]})


def _int_ranks(rank: Any) -> pd.array:
    """Ranks as pandas' nullable integers (``<NA>`` where undefined), for the tables."""
    return pd.array([None if np.isnan(r) else int(r) for r in np.asarray(rank, dtype=np.float64)], dtype="Int64")


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)            # all-NaN slices are NaN on purpose
        return np.nanmean(values, axis=axis)


def bootstrap_indices(n_images: int, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """``(n_boot, n_images)`` image indices drawn with replacement: one set of resamples for every method and
    metric, so that rankings and Kendall's tau are compared on the same resample."""
    return np.random.default_rng(seed).integers(0, n_images, size=(n_boot, n_images))


def bootstrap_means(scores: pd.DataFrame, n_boot: int = 2000, seed: int = 0,
                    indices: np.ndarray | None = None) -> np.ndarray:
    """``(n_boot, methods)`` means over images resampled with replacement (the same resample for every method;
    NaN scores, ``undefined="skip"``, are left out of each mean)."""
    values = scores.to_numpy(dtype=np.float64)
    if len(values) < 2:
        raise ValueError(f"bootstrap: need at least 2 images, got {len(values)}")
    idx = bootstrap_indices(len(values), n_boot, seed) if indices is None else indices
    return _nanmean(values[idx], axis=1)


def competition_ranks(values: np.ndarray, lower_is_better: bool) -> np.ndarray:
    """Rank 1 = best along the last axis; exactly equal values share the best rank of their group
    (competition ranking, ``1, 1, 3``); NaN values get rank NaN and do not push others down."""
    v = np.asarray(values, dtype=np.float64)
    better = (v[..., None, :] < v[..., :, None]) if lower_is_better else (v[..., None, :] > v[..., :, None])
    rank = 1.0 + better.sum(-1)
    return np.where(np.isnan(v), np.nan, rank)


def kendall_tau_b(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kendall's tau-b between rank vectors along the last axis (ties in either handled as scipy's
    ``kendalltau``; pairs with a NaN left out); NaN where a ranking is all tied."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    i, j = np.triu_indices(a.shape[-1], 1)
    da, db = np.sign(a[..., i] - a[..., j]), np.sign(b[..., i] - b[..., j])
    valid = ~(np.isnan(da) | np.isnan(db))
    da, db = np.where(valid, da, 0.0), np.where(valid, db, 0.0)
    n0 = valid.sum(-1)
    untied_a, untied_b = n0 - ((da == 0) & valid).sum(-1), n0 - ((db == 0) & valid).sum(-1)
    denom = np.sqrt(untied_a * untied_b.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (da * db).sum(-1) / np.where(denom > 0, denom, 1.0), np.nan)


def _interval(boot: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(boot, [(1 - level) / 2, 1 - (1 - level) / 2], axis=0)
    return lo, hi


def _boot_ranks(scores: Mapping[str, pd.DataFrame], n_boot: int, seed: int) -> dict[str, np.ndarray] | None:
    """Each metric's ``(n_boot, methods)`` ranks on the shared resamples; None with fewer than 2 images."""
    n = {len(t) for t in scores.values()}
    if len(n) != 1 or n.pop() < 2:
        return None
    idx = bootstrap_indices(len(next(iter(scores.values()))), n_boot, seed)
    return {m: competition_ranks(bootstrap_means(t, indices=idx), metrics.lower_is_better(m)) for m, t in scores.items()}


def extended_ranking(scores: Mapping[str, pd.DataFrame], n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95, blank: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per (metric, method): mean, bootstrap CI, rank (1 = most human-like; ties share it),
    ``tied_with`` (methods with exactly the same mean), ``rank_stability`` (share of bootstrap resamples in
    which the method has the same rank, ties counted as ties), ``n`` (images its mean covers) and ``blank``
    (its blank maps, when ``blank`` is given). With fewer than 2 images the CIs and stabilities are NaN."""
    rows = []
    for metric, table in scores.items():
        lower = metrics.lower_is_better(metric)
        values = table.to_numpy(dtype=np.float64)
        means = _nanmean(values, axis=0) if len(values) else np.full(values.shape[1], np.nan)
        rank = competition_ranks(means, lower)
        if len(values) >= 2:
            idx = bootstrap_indices(len(values), n_boot, seed)
            boot = bootstrap_means(table, indices=idx)
            lo, hi = _interval(boot, level)
            stability = (competition_ranks(boot, lower) == rank[None]).mean(0)
            stability = np.where(np.isnan(rank), np.nan, stability)
        else:
            lo = hi = stability = np.full(len(means), np.nan)
        for j, method in enumerate(table.columns):
            ties = [str(c) for k, c in enumerate(table.columns) if k != j and means[k] == means[j]]
            rows.append({"metric": metric, "better": "lower" if lower else "higher", "method": method,
                         "mean": means[j], "ci_low": lo[j], "ci_high": hi[j], "rank": rank[j],
                         "tied_with": ", ".join(ties), "rank_stability": stability[j],
                         "n": int(np.isfinite(values[:, j]).sum()),
                         "blank": int(np.asarray(blank[method]).sum()) if blank is not None else np.nan})
    out = pd.DataFrame(rows)
    out["rank"] = _int_ranks(out["rank"]) if len(out) else out.get("rank")
    return out


def ranking_table(extended: pd.DataFrame) -> pd.DataFrame:
    """Ranks as a methods x metrics table (ties share a rank)."""
    return extended.pivot(index="method", columns="metric", values="rank")[list(dict.fromkeys(extended["metric"]))]


def kendall_matrix(extended: pd.DataFrame) -> pd.DataFrame:
    """Kendall's tau-b between the method rankings of every pair of metrics (1 = same order, -1 = reversed;
    ties handled as tau-b does; NaN where a ranking is all tied)."""
    ranks = ranking_table(extended)
    names = list(ranks.columns)
    tau = np.ones((len(names), len(names)))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j:
                tau[i, j] = kendall_tau_b(ranks[a].to_numpy(dtype=np.float64, na_value=np.nan),
                                          ranks[b].to_numpy(dtype=np.float64, na_value=np.nan))
    return pd.DataFrame(tau, index=names, columns=names)


def kendall_intervals(scores: Mapping[str, pd.DataFrame], n_boot: int = 2000, seed: int = 0,
                      level: float = 0.95) -> pd.DataFrame:
    """Kendall's tau-b between the rankings of every pair of metrics, with a percentile bootstrap interval:
    both rankings recomputed on each resample of images (the resamples of ``extended_ranking``), tau on each.
    ``share_same``: share of resamples whose tau equals the point tau (tau is discrete with few methods)."""
    names = list(scores)
    point = {m: competition_ranks(_nanmean(t.to_numpy(np.float64), 0) if len(t) else
                                  np.full(t.shape[1], np.nan), metrics.lower_is_better(m)) for m, t in scores.items()}
    boot = _boot_ranks(scores, n_boot, seed)
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            tau = float(kendall_tau_b(point[a], point[b]))
            if boot is not None:
                taus = kendall_tau_b(boot[a], boot[b])
                lo, hi = _interval(taus[:, None], level)
                lo, hi = float(lo[0]), float(hi[0])
                same = float(np.mean(taus == tau)) if np.isfinite(tau) else np.nan
            else:
                lo = hi = same = np.nan
            rows.append({"metric_a": a, "metric_b": b, "tau": tau, "ci_low": lo, "ci_high": hi, "share_same": same})
    return pd.DataFrame(rows)


def failure_table(blank: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per method (and ``"HSI"``): how many of its maps are blank, as ``"n of N maps blank"``."""
    return pd.DataFrame([{"method": name, "blank": int(np.sum(b)), "images": int(len(b)),
                          "blank maps": f"{int(np.sum(b))} of {len(b)} maps blank"} for name, b in blank.items()])


@dataclass
class BenchmarkResult:
    """Everything the chapter shows: Table 4, the extended ranking, Kendall's tau (point and interval), each
    method's failures, the per-image scores."""

    table4: pd.DataFrame
    extended: pd.DataFrame
    kendall: pd.DataFrame
    scores: dict[str, pd.DataFrame]
    n_images: int
    n_excluded: int
    kendall_ci: pd.DataFrame = field(default_factory=pd.DataFrame)
    failures: pd.DataFrame = field(default_factory=pd.DataFrame)
    undefined: str = "pysaliency"

    @property
    def n_hsi_blank(self) -> int:
        """Images left out for every method because their HSI map is blank (== ``n_excluded``)."""
        return self.n_excluded


def _fmt_ci(lo: float, hi: float) -> str:
    return f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) and np.isfinite(hi) else "n/a"


def run_benchmark(xai_maps: Mapping[str, Any], hsi_maps: Any, *, nss_top: float = 0.05, n_boot: int = 2000,
                  seed: int = 0, level: float = 0.95, undefined: str = "pysaliency") -> BenchmarkResult:
    """Table 4 and the extended ranking. Blank method maps are scored by ``undefined``'s convention and counted
    per method; images whose HSI map is blank are excluded for every method and counted (``n_excluded``).
    Never raises on degenerate maps: with fewer than 2 scorable images the statistics are NaN."""
    blank = blank_counts(xai_maps, hsi_maps)
    keep = torch.from_numpy(~blank["HSI"])
    sub = {k: _as_maps(v, k)[keep] for k, v in xai_maps.items()}
    hsi = _as_maps(hsi_maps, "hsi_maps")[keep]
    scores = per_image_scores(sub, hsi, METRICS, nss_top, undefined)
    method_blank = {k: v for k, v in blank.items() if k != "HSI"}
    extended = extended_ranking(scores, n_boot, seed, level, blank=method_blank)
    mae = extended[extended.metric == "MAE"]
    mae = mae.iloc[np.lexsort((np.arange(len(mae)), mae["rank"].to_numpy(dtype=np.float64, na_value=np.inf)))]
    t4 = pd.DataFrame({"Ranking": mae["rank"].to_numpy(), "Method": mae["method"].to_numpy(),
                       "MAE": mae["mean"].to_numpy(),
                       "95% CI": [_fmt_ci(a, b) for a, b in zip(mae["ci_low"], mae["ci_high"])],
                       "blank maps": [f"{int(method_blank[m].sum())} of {len(blank['HSI'])}" for m in mae["method"]],
                       "tied with": mae["tied_with"].to_numpy()})
    return BenchmarkResult(t4, extended, kendall_matrix(extended), scores, int(keep.sum()), int((~keep).sum()),
                           kendall_intervals(scores, n_boot, seed, level), failure_table(blank), undefined)


def table4_beside_paper(ours: pd.DataFrame, *, decimals: int | None = None) -> pd.DataFrame:
    """HSI Table 4, ours beside the paper's (:func:`hsi_core.paper.beside_paper`): one row per method (the
    paper's order, then methods only we ran), columns ``("Ranking" | "MAE", "ours" | "paper")``, then our
    ``95% CI``, ``blank maps``, ``tied with`` (those present) and the ``source``.

    Args:
        ours: :func:`run_benchmark`'s ``table4`` (columns ``Ranking``, ``Method``, ``MAE``, ...).
        decimals: round the numbers first (``None``: as they are).
    """
    published = paper.table("HSI Table 4").rename(columns={"rank": "Ranking"}).astype({"Ranking": int})
    extra = [c for c in ("95% CI", "blank maps", "tied with") if c in ours]
    return paper.beside_paper(ours.set_index("Method"), published, metrics=("Ranking", "MAE"), extra=extra,
                              decimals=decimals).rename_axis("Method")


# ----------------------------------------------------------------------------- RISE: spread over mask seeds
def rise_seed_spread(rise_by_seed: Mapping[int, Any], other_maps: Mapping[str, Any], hsi_maps: Any, *,
                     method: str = "RISE", n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                     undefined: str = "pysaliency") -> pd.DataFrame:
    """One row per RISE base seed: RISE's mean MAE to the HSI maps, its bootstrap CI over images, and its
    Table 4 rank among ``other_maps`` (the other methods' maps, fixed). How far the mean moves between seeds
    is the masks' random error; with masks drawn per image the CI over images should cover it."""
    rows = []
    for base, maps in rise_by_seed.items():
        res = run_benchmark({**dict(other_maps), method: maps}, hsi_maps, n_boot=n_boot, seed=seed, level=level,
                            undefined=undefined)
        row = res.extended[(res.extended.metric == "MAE") & (res.extended.method == method)].iloc[0]
        rows.append({"seed": base, "MAE": row["mean"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                     "rank": row["rank"], "blank": row["blank"]})
    out = pd.DataFrame(rows)
    out["rank"] = out["rank"].astype("Int64")
    return out


def seed_spread_summary(spread: pd.DataFrame) -> dict[str, Any]:
    """Computed facts for the chapter: how far the mean MAE moves across seeds (max - min), the mean CI width,
    the ranks seen, and whether the movement is smaller than the CI width."""
    movement = float(spread["MAE"].max() - spread["MAE"].min())
    width = float((spread["ci_high"] - spread["ci_low"]).mean())
    ranks = sorted({int(r) for r in spread["rank"].dropna()})
    return {"seeds": len(spread), "movement": movement, "ci_width": width, "ranks": ranks,
            "within_ci": bool(movement < width) if np.isfinite(width) else False,
            "sentence": (f"Across {len(spread)} mask seeds RISE's mean MAE moves by {movement:.3f}, "
                         f"{'inside' if movement < width else 'beyond'} its mean 95% CI width of {width:.3f}; "
                         f"its rank is {' or '.join(map(str, ranks)) if ranks else 'undefined'}.")}


# ----------------------------------------------------------------------------- Table 4: which normalisation?
def _sum_maps(t: torch.Tensor) -> torch.Tensor:
    """Divided by the sum; an all-zero map is the uniform distribution (pysaliency's convention)."""
    if (t < 0).any():
        raise ValueError("sum-to-one: maps must be non-negative")
    total = t.flatten(1).sum(1).view(-1, 1, 1)
    uniform = torch.full_like(t, 1.0 / max(1, t.shape[-1] * t.shape[-2]))
    return torch.where(total > 0, t / torch.where(total > 0, total, torch.ones_like(total)), uniform)


def _max_maps(t: torch.Tensor) -> torch.Tensor:
    """Divided by the maximum, no minimum removed; an all-zero map stays zero."""
    if (t < 0).any():
        raise ValueError("raw [0, 1]: maps must be non-negative")
    return t / t.flatten(1).amax(1).clamp_min(1e-300).view(-1, 1, 1)


#: The readings of Table 4's "MAE between the pair of saliency maps", which the paper leaves unscaled: both maps
#: min-max normalised (``metrics.mae``, our default); both divided by their sum (distributions, as KL and SIM
#: use them); raw [0, 1] maps as an image file stores them: each divided by its maximum, no minimum
#: subtracted (our HSI PNGs are stored so; the XAI maps must then be the methods' raw, non-negative maps).
#: Each defines the MAE of a blank map too (all-zero, uniform, all-zero or all-one): blank maps are scored.
TABLE4_READINGS = {"min-max": normalize_maps, "sum-to-one": _sum_maps, "raw [0, 1]": _max_maps}


def table4_readings(xai_maps: Mapping[str, Any], hsi_maps: Any) -> pd.DataFrame:
    """Table 4 under each reading of ``TABLE4_READINGS``: one row per (reading, method) with the mean MAE, its
    rank (1 = closest to HSI; ties share a rank), the paper's MAE and rank, ``blank MAE``, the MAE an all-zero
    map would get (the mean of the normalised HSI map: a sparse map such as GBP's cannot be much further from
    it), and ``blank maps``, the method's blank maps (scored, not dropped). Pass the methods' raw maps
    (``xai_maps_for(..., normalize=False)``). Images whose HSI map is blank are left out for every method
    (``images`` says how many are scored); with none left the MAEs are NaN."""
    blank = blank_counts(xai_maps, hsi_maps)
    ok = torch.from_numpy(~blank["HSI"])
    hsi = _as_maps(hsi_maps, "hsi_maps")[ok]
    paper = PAPER_TABLE4.set_index("Method")
    rows = []
    for reading, norm in TABLE4_READINGS.items():
        h = norm(hsi)
        maes = {name: float((norm(_as_maps(m, name)[ok]) - h).abs().flatten(1).mean(1).mean()) if len(hsi)
                else np.nan for name, m in xai_maps.items()}
        ranks = dict(zip(maes, competition_ranks(np.array(list(maes.values())), lower_is_better=True)))
        for name in xai_maps:
            rows.append({"reading": reading, "Method": name, "MAE": maes[name], "rank": _int_ranks([ranks[name]])[0],
                         "paper MAE": float(paper.loc[name, "MAE"]) if name in paper.index else np.nan,
                         "paper rank": int(paper.loc[name, "Ranking"]) if name in paper.index else -1,
                         "blank MAE": float(h.flatten(1).mean(1).mean()) if len(hsi) else np.nan,
                         "blank maps": int(blank[name].sum()), "images": int(ok.sum())})
    out = pd.DataFrame(rows)
    out["rank"] = out["rank"].astype("Int64")
    return out


def table4_readings_verdict(readings: pd.DataFrame) -> dict[str, Any]:
    """Computed facts for the chapter: per reading, the ranking (best first; ``=`` joins tied methods),
    whether it is the paper's, and the mean absolute gap between our MAEs and the paper's; the reading with
    the smallest gap; and a sentence saying which readings could give the paper's magnitudes (gap below 0.1)
    and which cannot."""
    out: dict[str, Any] = {"readings": {}}
    for reading, part in readings.groupby("reading", sort=False):
        part = part.iloc[np.lexsort((np.arange(len(part)), part["rank"].to_numpy(dtype=np.float64, na_value=np.inf)))]
        groups = [" = ".join(g["Method"]) for _, g in part.groupby("rank", sort=True, dropna=False)]
        paper = part.dropna(subset=["paper MAE"])
        strict = bool(paper["rank"].is_unique and paper["rank"].notna().all())
        same = strict and list(paper["Method"]) == list(paper.sort_values("paper rank")["Method"])
        gap = float((paper["MAE"] - paper["paper MAE"]).abs().mean()) if len(paper) else float("nan")
        out["readings"][reading] = {"ranking": " < ".join(groups), "paper_ranking": bool(same), "gap": gap,
                                    "scale": float(part["MAE"].abs().max())}
    gaps = {r: v["gap"] for r, v in out["readings"].items() if np.isfinite(v["gap"])}
    if not gaps:
        out["closest"] = None
        out["sentence"] = "No reading could be scored (every HSI map is blank)."
        return out
    out["closest"] = min(gaps, key=gaps.get)
    could = [r for r, g in gaps.items() if g < 0.1]
    cannot = [f"{r} (mean gap {g:.2f})" for r, g in gaps.items() if g >= 0.1]
    out["sentence"] = (
        (f"Magnitudes near the paper's (mean gap < 0.1) come only from the {', '.join(could)} reading; "
         if could else "No reading gives magnitudes near the paper's (mean gap < 0.1 to 0.44, 0.70, 0.89); ")
        + (f"not from {', '.join(cannot)}. " if cannot else "")
        + f"The closest is {out['closest']} (gap {gaps[out['closest']]:.2f}); the paper's order "
        + ("RISE < Grad-CAM < GBP holds under "
           + (", ".join(r for r, v in out["readings"].items() if v["paper_ranking"]) or "none of them")) + ".")
    return out


# ----------------------------------------------------------------------------- maps for a folder
def class_targets(class_names: Sequence[str], vocabulary: Sequence[str]) -> torch.Tensor:
    """Indices of ``class_names`` in the classifier's ``vocabulary`` (``ValueError`` naming unknown ones)."""
    index = {name: i for i, name in enumerate(vocabulary)}
    unknown = sorted({c for c in class_names if c not in index})
    if unknown:
        raise ValueError(f"classes {unknown[:10]} are not among the classifier's {len(vocabulary)} classes")
    return torch.tensor([index[c] for c in class_names], dtype=torch.long)


def imagenet_class_index(wnids: Sequence[str]) -> list[str]:
    """torchvision's ImageNet class order: the 1,000 wnids sorted (pass every wnid of the val set)."""
    ordered = sorted(set(wnids))
    if len(ordered) != 1000:
        raise ValueError(f"expected the 1,000 ImageNet wnids to fix the class order, got {len(ordered)}")
    return ordered


def xai_maps_for(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, *,
                 methods: Sequence[str] = ("GBP", "Grad-CAM", "RISE"), batch_size: int = 8,
                 rise_kwargs: dict[str, Any] | None = None, device: str | torch.device = "cpu",
                 progress: bool = True, normalize: bool = True) -> dict[str, torch.Tensor]:
    """Every method's ``(N, H, W)`` maps (CPU) for ``images (N, 3, H, W)`` in [0, 1], in batches on ``device``;
    ``normalize=False`` keeps each method's raw map (needed for the Table 4 readings, ``table4_readings``).
    RISE draws each image's masks from ``rise_kwargs["seed"]`` and the image itself (``xai.image_mask_seed``),
    so ``batch_size`` does not change an image's map (pass ``"masks": "shared"`` for one mask set)."""
    from tqdm import tqdm

    from hsi_core import xai

    model = model.eval().to(device)
    out: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    for start in tqdm(range(0, len(images), batch_size), desc="XAI maps", unit="batch", disable=not progress):
        x = images[start:start + batch_size].to(device)
        t = targets[start:start + batch_size].to(device)
        for name, maps in xai.explain(model, x, t, tuple(methods), rise_kwargs, normalize=normalize).items():
            out[name].append(maps.detach().float().cpu())
    return {k: torch.cat(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- a quick demo HSI
def train_quick_hsi(data_root: str | Path, run_dir: str | Path, *, clip_weights: str | Path | None = None,
                    image_size: int = 224, epochs: int = 10, lr: float = 1e-3, batch_size: int = 16, hidden: int = 64,
                    calibration_images: int = 32, device: str | torch.device = "cpu", seed: int = 0,
                    progress: bool = True) -> Any:
    """A small HSI for the demo chapter, trained in minutes on a CPU: the image encoder is frozen (run once per
    image, ``hsi_core.experiments.hsi_tables.encode_dataset``) and only the decoder and label table are finetuned on all of
    HSB with HSI Eq. 12 (``hsi_finetune_loss_fn``). Without CLIP weights the encoder's BatchNorm statistics are
    first re-estimated on ``calibration_images`` HSB images. ``hidden``: decoder width (paper model: 256; 64 keeps
    the per-epoch checkpoints small). Saved as ``run_dir/hsi.pt`` (``save_hsi``) and
    reused when that file exists. This is NOT the paper's recipe (no SALICON pretraining, no CV folds)."""
    from torch.utils.data import DataLoader, Subset

    from hsi_core import training
    from hsi_core.datasets import HSB_CLASSES, HSBDataset
    from hsi_core.experiments import hsi_tables as experiment
    from hsi_core.models.hsi import HSI, load_hsi, save_hsi

    run_dir = Path(run_dir)
    ckpt = run_dir / "hsi.pt"
    if ckpt.is_file():
        return load_hsi(ckpt, device=device)
    training.seed_everything(seed)
    device = torch.device(device)
    # The whole model (its CLIP mean/std buffers included) on the device before any image is, so that
    # no forward pass meets a buffer left on the CPU.
    model = HSI(clip_weights, labels=HSB_CLASSES, image_size=image_size, freeze_image=True,
                hidden=hidden).to(device)
    data = HSBDataset(Path(data_root) / "hsb", size=(image_size, image_size))
    if not model.weights_loaded and calibration_images > 0:
        calib = Subset(data, list(range(0, len(data), max(1, len(data) // calibration_images)))[:calibration_images])
        experiment.recalibrate_batchnorm(model.visual, (b["image"].to(device) for b in DataLoader(calib, batch_size=16)),
                                         forward=model.encode_image, device=device)
    encoded = experiment.encode_dataset(model, data, batch_size=16, device=device, progress=progress)
    head = experiment.trainable(model, encoded=True)
    training.fit(head, encoded, loss_fn=experiment.hsi_finetune_loss_fn, epochs=epochs, run_dir=run_dir / "fit",
                 device=device, seed=seed, batch_size=batch_size, lr=lr, lr_step=max(1, epochs), progress=progress,
                 meta={"what": "quick demo HSI (frozen encoder, finetune on all HSB)"})
    head.export_to(model)
    save_hsi(model, ckpt, recipe="train_quick_hsi", epochs=epochs, data_root=str(data_root))
    return model.to(device).eval()


def load_folder(image_dir: str | Path, size: int = 224, limit: int | None = None,
                label_file: str | Path | None = None) -> tuple[list[Any], torch.Tensor]:
    """The labelled images of a folder (``list_imagenet_images``) and a ``(N, 3, size, size)`` [0, 1] tensor."""
    from hsi_core.datasets import list_imagenet_images, to_tensor_image
    from hsi_core.io import read_image

    items = list_imagenet_images(image_dir, label_file=label_file)
    items = items[:limit] if limit is not None else items
    return items, torch.stack([to_tensor_image(read_image(it.path), (size, size)) for it in items])


# ----------------------------------------------------------------------------- the experiment's settings
#: Settings that do not change what is computed, left out of ``XAIBenchmarkConfig.key()``.
_RUN_ONLY_SETTINGS = ("device", "xai_batch_size", "generation_batch_size", "run_dir")
#: RISE's occluders (``xai.rise``): black (the RISE paper's I * M) or the ImageNet mean (the authors' code).
RISE_OCCLUDERS = ("black", "mean")


@dataclass(frozen=True)
class XAIBenchmarkConfig:
    """Every setting of the Table 4 experiment (HSI paper, "XAI Evaluation"), typed and frozen; the
    defaults are chapter 5's demo scale. Paper scale: ``resnet_weights`` (torchvision ResNet-50
    IMAGENET1K_V2), ``hsi_checkpoint`` (chapter 4's ``hsi_finetuned.pt``), ``clip_weights``,
    ``image_dir`` (1,000 ImageNet val images), ``rise_masks=4000``, ``device="cuda"``.

    - ``image_dir``, ``n_images``: the labelled image folder (``"auto"``: the shared samples when
      present) and the first N images (None: all).
    - ``resnet_weights``: the classifier explained (None: the demo CNN, ``classifier_epochs``).
    - ``hsi_checkpoint`` (``save_hsi`` format; None: a quick demo HSI of ``hsi_image_size`` px trained
      ``hsi_epochs``), ``clip_weights``.
    - ``rise_masks``, ``rise_s``, ``rise_p1``, ``rise_occluder``, ``rise_seeds``: RISE's N, grid, keep
      probability, occluder (``RISE_OCCLUDERS``) and the base seeds of the per-seed spread.
    - ``n_boot``, ``nss_top``: bootstrap resamples; the share of HSI pixels used as NSS fixations.
    - ``device``, ``xai_batch_size``, ``generation_batch_size``, ``run_dir``: how, not what (not hashed).
    """

    image_dir: str = "auto"
    n_images: int | None = None
    resnet_weights: str | None = None
    hsi_checkpoint: str | None = None
    clip_weights: str | None = None
    hsi_image_size: int = 96
    hsi_epochs: int = 10
    classifier_epochs: int = 6
    rise_masks: int = 1000
    rise_s: int = 7
    rise_p1: float = 0.5
    rise_occluder: str = "black"
    rise_seeds: int = 3
    n_boot: int = 2000
    nss_top: float = 0.05
    seed: int = 0
    device: str = "cpu"
    xai_batch_size: int = 4
    generation_batch_size: int = 8
    run_dir: str = "runs/xai_benchmark_demo"

    def __post_init__(self) -> None:
        for name in ("image_dir", "resnet_weights", "hsi_checkpoint", "clip_weights", "run_dir"):
            value = getattr(self, name)
            if isinstance(value, Path):
                object.__setattr__(self, name, str(value))
        positive = ("hsi_image_size", "hsi_epochs", "classifier_epochs", "rise_masks", "rise_s", "rise_seeds",
                    "n_boot", "xai_batch_size", "generation_batch_size")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"XAIBenchmarkConfig: {name} must be >= 1, got {getattr(self, name)}")
        if self.n_images is not None and self.n_images < 1:
            raise ValueError(f"XAIBenchmarkConfig: n_images must be None or >= 1, got {self.n_images}")
        if not 0 < self.nss_top <= 1:
            raise ValueError(f"XAIBenchmarkConfig: nss_top must be in (0, 1], got {self.nss_top}")
        if not 0 < self.rise_p1 < 1:
            raise ValueError(f"XAIBenchmarkConfig: rise_p1 must be in (0, 1), got {self.rise_p1}")
        if self.rise_occluder not in RISE_OCCLUDERS:
            raise ValueError(f"XAIBenchmarkConfig: rise_occluder must be one of {RISE_OCCLUDERS}, "
                             f"got {self.rise_occluder!r}")

    def result_settings(self) -> dict[str, Any]:
        """The settings that change what is computed (hashed by ``key``)."""
        import dataclasses

        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _RUN_ONLY_SETTINGS}

    def key(self) -> str:
        """A 10-hex-digit hash of ``result_settings()``: the run directory's name."""
        import hashlib
        import json

        return hashlib.sha1(json.dumps(self.result_settings(), sort_keys=True, default=str).encode()).hexdigest()[:10]

    def run_directory(self) -> Path:
        """``run_dir / key()``: where this configuration's classifier, maps and results live."""
        return Path(self.run_dir) / self.key()
