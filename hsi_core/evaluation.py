"""Dataset-level scoring: fixation records from any dataset, the metric set on a map, and the simple
baselines (centre bias, uniform, one half of the viewers predicting the other half)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hsi_core import metrics
from hsi_core.baselines import centre_bias_map, uniform_map
from hsi_core.datasets import FixationRecord
from hsi_core.fixations import saliency_map, split_half

#: SALICON's blur (19 px on 640-px-wide images) as a fraction of the image width, used for every set.
SIGMA_FRACTION = 19.0 / 640.0


def other_fixations(records: Sequence[FixationRecord], index: int) -> np.ndarray:
    """The union of every other record's fixations, moved onto record ``index``'s grid (sAUC negatives)."""
    target = records[index]
    out = np.zeros((target.height, target.width), bool)
    for j, record in enumerate(records):
        if j == index:
            continue
        rows, cols = np.nonzero(record.fixation_map())
        out[(rows * target.height) // record.height, (cols * target.width) // record.width] = True
    return out


def score(pred: np.ndarray, saliency: np.ndarray, fixations: np.ndarray, other: np.ndarray | None,
          *, n_splits: int = 100) -> dict[str, float]:
    """The metric set on one map: CC, KL, SIM against the saliency map; NSS, AUC-Judd and sAUC
    against the fixations. Metrics undefined for the map (a constant map) are left out, and so is
    sAUC when there are no other images' fixations (``other`` None)."""
    out: dict[str, float] = {}
    for name, fn, target in (("CC", metrics.cc, saliency), ("KL", metrics.kl_div, saliency),
                             ("SIM", metrics.sim, saliency), ("NSS", metrics.nss, fixations),
                             ("AUC-Judd", metrics.auc_judd, fixations)):
        try:
            out[name] = float(fn(pred, target))
        except ValueError as error:
            if "constant map" not in str(error):
                raise
    if other is not None:
        out["sAUC"] = float(metrics.auc_shuffled(pred, fixations, other, n_splits=n_splits))
    return out


def baseline_scores(records: Sequence[FixationRecord], *, max_side: int = 320, n_splits: int = 100,
                    seed: int = 0) -> list[dict[str, Any]]:
    """Per image and baseline, the metric set (rows of dicts; average them for a table).

    The ground-truth map is the fixations blurred with :data:`SIGMA_FRACTION` of the width. The
    split-half baseline (records with per-viewer points and at least two viewers) predicts the
    other half's fixations and their blurred map."""
    small = [r.scaled(max_side) for r in records]
    rows: list[dict[str, Any]] = []
    for i, record in enumerate(small):
        h, w = record.height, record.width
        sigma = SIGMA_FRACTION * w
        fix = record.fixation_map()
        gt = saliency_map(fix, sigma)
        other = other_fixations(small, i) if len(small) > 1 else None
        for name, pred in (("centre bias", centre_bias_map(h, w)), ("uniform", uniform_map(h, w))):
            rows.append({"image": record.name, "baseline": name, **score(pred, gt, fix, other, n_splits=n_splits)})
        viewers = [v for v in (record.viewers or []) if len(v)]
        if len(viewers) >= 2:
            pred, half_b = split_half(viewers, (h, w), sigma, seed=seed)
            rows.append({"image": record.name, "baseline": "one half of the viewers",
                         **score(pred, saliency_map(half_b, sigma), half_b, other, n_splits=n_splits)})
    return rows


def score_dataset(predict: Any, dataset: Any, *, batch_size: int = 8, n_splits: int = 100,
                  device: str = "cpu") -> list[dict[str, float]]:
    """Score a predictor on every item of a saliency dataset (``{"image", "saliency", "fixations"}``
    items of one size): ``predict(images (B, 3, H, W)) -> (B, H, W)``. The sAUC negatives of an
    image are the other items' fixations. One row of metrics per image."""
    import torch

    items = [dataset[i] for i in range(len(dataset))]
    fixations = torch.stack([it["fixations"] for it in items]).numpy()
    union = fixations.sum(0)
    rows = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        with torch.no_grad():
            preds = predict(torch.stack([it["image"] for it in chunk]).to(device)).detach().cpu().double().numpy()
        for j, (item, pred) in enumerate(zip(chunk, preds)):
            fix = fixations[start + j]
            other = (union - fix) > 0 if len(items) > 1 else None
            rows.append(score(pred, item["saliency"].double().numpy(), fix, other, n_splits=n_splits))
    return rows
