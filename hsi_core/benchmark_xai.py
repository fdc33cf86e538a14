"""Benchmarking saliency-based explanations against HSI maps (HSI paper, "XAI Evaluation", Table 4) and beyond.

Table 4: for each XAI method, the pixel-wise MAE between its map and the HSI map of the same image (both min-max
normalised, ``hsi_core.metrics.mae``), averaged over the images; methods ranked by ascending MAE. The paper does not
say how the maps are scaled: ``table4_readings`` computes Table 4 under min-max, sum-to-one and raw [0, 1]
(max-scaled) maps, and ``table4_readings_verdict`` says which reading could give the paper's magnitudes.

Beyond the paper (its Discussion leaves other metrics open): the same ranking under CC, KL, SIM and NSS with the
HSI map as the reference. KL is ``KL(HSI || XAI)`` (``metrics.kl_div(xai, hsi)``); NSS needs fixations, so the
reference "fixations" are the pixels in the top ``nss_top`` fraction of the HSI map (our choice, documented).
Each mean gets a percentile bootstrap 95% CI over images (vectorised resampling), each method the share of
bootstrap resamples in which it keeps its rank, and Kendall's tau compares the rankings of every pair of metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau

from hsi_core import metrics, paper

#: Table 4 of the HSI paper (ResNet-50, 1,000 ImageNet val images, HSI trained on HSB), from hsi_core.paper.
PAPER_TABLE4 = pd.DataFrame([{"Ranking": row["rank"], "Method": method, "MAE": row["MAE"]}
                             for method, row in paper.HSI_TABLE_4.items()])
#: Direction of each metric: True when lower is better.
LOWER_IS_BETTER = {"MAE": True, "KL": True, "CC": False, "SIM": False, "NSS": False}
METRICS = ("MAE", "CC", "KL", "SIM", "NSS")


def _as_maps(x: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu().double()
    if t.ndim != 3:
        raise ValueError(f"{name}: expected (N, H, W) maps, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: maps contain NaN or infinity")
    return t


def top_fraction_fixations(maps: torch.Tensor, fraction: float = 0.05) -> torch.Tensor:
    """Boolean ``(N, H, W)``: the ``fraction`` of pixels with the highest values of each map (pseudo-fixations)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"nss_top must lie in (0, 1), got {fraction}")
    flat = maps.flatten(1)
    k = max(1, int(round(fraction * flat.shape[1])))
    idx = flat.topk(k, dim=1).indices
    out = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, idx, True)
    return out.view_as(maps)


def valid_images(xai_maps: Mapping[str, Any], hsi_maps: Any) -> np.ndarray:
    """``(N,)`` bool: images where the HSI map and every method's map are non-constant (metrics need that)."""
    hsi = _as_maps(hsi_maps, "hsi_maps")
    ok = (hsi.flatten(1).amax(1) > hsi.flatten(1).amin(1))
    for name, m in xai_maps.items():
        t = _as_maps(m, name)
        if t.shape != hsi.shape:
            raise ValueError(f"{name}: maps of shape {tuple(t.shape)} but HSI maps {tuple(hsi.shape)}; resize first")
        ok &= t.flatten(1).amax(1) > t.flatten(1).amin(1)
    return ok.numpy()


def per_image_scores(xai_maps: Mapping[str, Any], hsi_maps: Any, metric_names: Sequence[str] = METRICS,
                     nss_top: float = 0.05) -> dict[str, pd.DataFrame]:
    """``{metric: DataFrame (images x methods)}`` of every method's score against the HSI map, image by image.
    Raises ``ValueError`` when a map is constant (drop such images first with ``valid_images``)."""
    hsi = _as_maps(hsi_maps, "hsi_maps")
    unknown = [m for m in metric_names if m not in LOWER_IS_BETTER]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {list(LOWER_IS_BETTER)}")
    fix = top_fraction_fixations(hsi, nss_top) if "NSS" in metric_names else None
    fns = {"MAE": lambda p: metrics.mae(p, hsi), "CC": lambda p: metrics.cc(p, hsi),
           "KL": lambda p: metrics.kl_div(p, hsi), "SIM": lambda p: metrics.sim(p, hsi),
           "NSS": lambda p: metrics.nss(p, fix)}
    out = {}
    for metric in metric_names:
        cols = {name: torch.as_tensor(fns[metric](_as_maps(m, name))).double().numpy() for name, m in xai_maps.items()}
        out[metric] = pd.DataFrame(cols)
    return out


def table4(xai_maps: Mapping[str, Any], hsi_maps: Any) -> pd.DataFrame:
    """Table 4: mean MAE(XAI map, HSI map) per method, ranked ascending (1 = closest to human)."""
    mae = per_image_scores(xai_maps, hsi_maps, ("MAE",))["MAE"].mean()
    ranked = mae.sort_values()
    return pd.DataFrame({"Ranking": np.arange(1, len(ranked) + 1), "Method": ranked.index, "MAE": ranked.values})


def bootstrap_means(scores: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """``(n_boot, methods)`` means over images resampled with replacement (the same resample for every method)."""
    values = scores.to_numpy(dtype=np.float64)
    if len(values) < 2:
        raise ValueError(f"bootstrap: need at least 2 images, got {len(values)}")
    idx = np.random.default_rng(seed).integers(0, len(values), size=(n_boot, len(values)))
    return values[idx].mean(axis=1)


def _ranks(means: np.ndarray, lower_is_better: bool) -> np.ndarray:
    """Rank 1 = best along the last axis."""
    order = np.argsort(means if lower_is_better else -means, axis=-1, kind="stable")
    return np.argsort(order, axis=-1) + 1


def extended_ranking(scores: Mapping[str, pd.DataFrame], n_boot: int = 2000, seed: int = 0,
                     level: float = 0.95) -> pd.DataFrame:
    """One row per (metric, method): mean, bootstrap CI, rank (1 = most human-like) and ``rank_stability``
    (share of bootstrap resamples with the same rank)."""
    rows = []
    for metric, table in scores.items():
        lower = LOWER_IS_BETTER[metric]
        means = table.mean().to_numpy()
        boot = bootstrap_means(table, n_boot, seed)
        lo, hi = np.quantile(boot, [(1 - level) / 2, 1 - (1 - level) / 2], axis=0)
        rank = _ranks(means, lower)
        stability = (_ranks(boot, lower) == rank[None]).mean(0)
        for j, method in enumerate(table.columns):
            rows.append({"metric": metric, "better": "lower" if lower else "higher", "method": method,
                         "mean": means[j], "ci_low": lo[j], "ci_high": hi[j], "rank": int(rank[j]),
                         "rank_stability": stability[j]})
    return pd.DataFrame(rows)


def ranking_table(extended: pd.DataFrame) -> pd.DataFrame:
    """Ranks as a methods x metrics table."""
    return extended.pivot(index="method", columns="metric", values="rank")[list(dict.fromkeys(extended["metric"]))]


def kendall_matrix(extended: pd.DataFrame) -> pd.DataFrame:
    """Kendall's tau between the method rankings of every pair of metrics (1 = same order, -1 = reversed)."""
    ranks = ranking_table(extended)
    names = list(ranks.columns)
    tau = np.ones((len(names), len(names)))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j:
                tau[i, j] = kendalltau(ranks[a], ranks[b]).statistic
    return pd.DataFrame(tau, index=names, columns=names)


@dataclass
class BenchmarkResult:
    """Everything the chapter shows: Table 4, the extended ranking, Kendall's tau, the per-image scores."""

    table4: pd.DataFrame
    extended: pd.DataFrame
    kendall: pd.DataFrame
    scores: dict[str, pd.DataFrame]
    n_images: int
    n_excluded: int


def run_benchmark(xai_maps: Mapping[str, Any], hsi_maps: Any, *, nss_top: float = 0.05, n_boot: int = 2000,
                  seed: int = 0) -> BenchmarkResult:
    """Table 4 and the extended ranking on the images where every map is non-constant (the number of excluded
    images is reported, never hidden)."""
    ok = valid_images(xai_maps, hsi_maps)
    if ok.sum() < 2:
        raise ValueError(f"run_benchmark: only {int(ok.sum())} of {len(ok)} images have non-constant maps for every method")
    keep = {k: _as_maps(v, k)[torch.from_numpy(ok)] for k, v in xai_maps.items()}
    hsi = _as_maps(hsi_maps, "hsi_maps")[torch.from_numpy(ok)]
    scores = per_image_scores(keep, hsi, METRICS, nss_top)
    extended = extended_ranking(scores, n_boot, seed)
    mae = extended[extended.metric == "MAE"].sort_values("rank")
    t4 = pd.DataFrame({"Ranking": mae["rank"].to_numpy(), "Method": mae["method"].to_numpy(),
                       "MAE": mae["mean"].to_numpy(), "95% CI": [f"[{a:.3f}, {b:.3f}]" for a, b in
                                                                 zip(mae["ci_low"], mae["ci_high"])]})
    return BenchmarkResult(t4, extended, kendall_matrix(extended), scores, int(ok.sum()), int((~ok).sum()))


def table4_beside_paper(ours: pd.DataFrame) -> pd.DataFrame:
    """Our Table 4 next to the paper's, by method."""
    paper = PAPER_TABLE4.rename(columns={"Ranking": "paper rank", "MAE": "paper MAE"})
    mine = ours.rename(columns={"Ranking": "our rank", "MAE": "our MAE"})
    return paper.merge(mine, on="Method", how="outer")[["Method", "paper rank", "paper MAE", "our rank", "our MAE"]
                                                       + (["95% CI"] if "95% CI" in mine else [])]


# ----------------------------------------------------------------------------- Table 4: which normalisation?
def _minmax_maps(t: torch.Tensor) -> torch.Tensor:
    flat = t.flatten(1)
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).view_as(t)


def _sum_maps(t: torch.Tensor) -> torch.Tensor:
    if (t < 0).any():
        raise ValueError("sum-to-one: maps must be non-negative")
    return t / t.flatten(1).sum(1).clamp_min(1e-30).view(-1, 1, 1)


def _max_maps(t: torch.Tensor) -> torch.Tensor:
    if (t < 0).any():
        raise ValueError("raw [0, 1]: maps must be non-negative")
    return t / t.flatten(1).amax(1).clamp_min(1e-30).view(-1, 1, 1)


#: The readings of Table 4's "MAE between the pair of saliency maps" (issue #12 item 6): both maps
#: min-max normalised (``metrics.mae``, our default); both divided by their sum (distributions, as KL and SIM
#: use them); raw [0, 1] maps as an image file stores them: each divided by its maximum, no minimum
#: subtracted (our HSI PNGs are stored so; the XAI maps must then be the methods' raw, non-negative maps).
TABLE4_READINGS = {"min-max": _minmax_maps, "sum-to-one": _sum_maps, "raw [0, 1]": _max_maps}


def table4_readings(xai_maps: Mapping[str, Any], hsi_maps: Any) -> pd.DataFrame:
    """Table 4 under each reading of ``TABLE4_READINGS``: one row per (reading, method) with the mean MAE, its
    rank (1 = closest to HSI), the paper's MAE and rank, and ``blank MAE``, the MAE an all-zero map would get
    (the mean of the normalised HSI map: a sparse map such as GBP's cannot be much further from it).
    Pass the methods' raw maps (``xai_maps_for(..., normalize=False)``); images where some map is constant
    are dropped, as in ``run_benchmark``."""
    ok = torch.from_numpy(valid_images(xai_maps, hsi_maps))
    if int(ok.sum()) < 1:
        raise ValueError("table4_readings: no image has non-constant maps for every method")
    hsi = _as_maps(hsi_maps, "hsi_maps")[ok]
    paper = PAPER_TABLE4.set_index("Method")
    rows = []
    for reading, norm in TABLE4_READINGS.items():
        h = norm(hsi)
        maes = {name: float((norm(_as_maps(m, name)[ok]) - h).abs().flatten(1).mean(1).mean())
                for name, m in xai_maps.items()}
        order = sorted(maes, key=maes.get)
        for name in xai_maps:
            rows.append({"reading": reading, "Method": name, "MAE": maes[name], "rank": order.index(name) + 1,
                         "paper MAE": float(paper.loc[name, "MAE"]) if name in paper.index else np.nan,
                         "paper rank": int(paper.loc[name, "Ranking"]) if name in paper.index else -1,
                         "blank MAE": float(h.flatten(1).mean(1).mean())})
    return pd.DataFrame(rows)


def table4_readings_verdict(readings: pd.DataFrame) -> dict[str, Any]:
    """Computed facts for the chapter: per reading, the ranking (best first), whether it is the paper's, and
    the mean absolute gap between our MAEs and the paper's; the reading with the smallest gap; and a sentence
    saying which readings could give the paper's magnitudes (gap below 0.1) and which cannot."""
    out: dict[str, Any] = {"readings": {}}
    for reading, part in readings.groupby("reading", sort=False):
        part = part.sort_values("rank")
        paper = part.dropna(subset=["paper MAE"])
        same = list(paper["Method"]) == list(paper.sort_values("paper rank")["Method"])
        gap = float((paper["MAE"] - paper["paper MAE"]).abs().mean()) if len(paper) else float("nan")
        out["readings"][reading] = {"ranking": " < ".join(part["Method"]), "paper_ranking": same, "gap": gap,
                                    "scale": float(part["MAE"].abs().max())}
    gaps = {r: v["gap"] for r, v in out["readings"].items()}
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
    ``normalize=False`` keeps each method's raw map (needed for the Table 4 readings, ``table4_readings``)."""
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
    HSB with Eq. 12 (``hsi_finetune_loss_fn``). Without CLIP weights the encoder's BatchNorm statistics are
    first re-estimated on ``calibration_images`` HSB images. ``hidden``: decoder width (paper model: 256; 64 keeps
    the per-epoch checkpoints small). Saved as ``run_dir/hsi.pt`` (``save_hsi``) and
    reused when that file exists. This is NOT the paper's recipe (no SALICON pretraining, no CV folds)."""
    from torch.utils.data import DataLoader, Subset

    from hsi_core import training
    from hsi_core.datasets import HSBDataset
    from hsi_core.experiments import hsi_tables as experiment
    from hsi_core.demo import HSB_CLASSES
    from hsi_core.models.hsi import HSI, load_hsi, save_hsi

    run_dir = Path(run_dir)
    ckpt = run_dir / "hsi.pt"
    if ckpt.is_file():
        return load_hsi(ckpt, device=device)
    training.seed_everything(seed)
    device = torch.device(device)
    # The whole model (its CLIP mean/std buffers included) on the device before any image is (issue #11).
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


def match_size(maps: Any, size: tuple[int, int]) -> torch.Tensor:
    """``(N, h, w)`` maps resized bilinearly to ``size`` (HSI maps at the HSI resolution vs XAI maps at the input's)."""
    t = torch.as_tensor(np.asarray(maps) if not isinstance(maps, torch.Tensor) else maps).float()
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    return torch.nn.functional.interpolate(t[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
