"""Dataset-level scoring: fixation records from any dataset, the metric set on a map, and the simple
baselines (centre bias, uniform, one half of the viewers predicting the other half)."""

from __future__ import annotations

from pathlib import Path
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
            if "constant map" not in str(error) and "sums to zero" not in str(error):
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


# ----------------------------------------------------------------------------- model-level scoring (Tables I-IV)
#: The four metrics of the loggabor paper's Tables I-III, in its column order.
TABLE_METRICS = ("SIM", "CC", "sAUC", "AUC-Judd")


def score_batch(preds: np.ndarray, saliency: np.ndarray, fixations: np.ndarray, other: np.ndarray | None,
                *, n_splits: int = 100) -> list[dict[str, float]]:
    """:func:`score` on a batch ``(B, H, W)`` in one batched call per metric; maps for which a metric
    is undefined (constant) fall back to :func:`score` one at a time."""
    try:
        out = {name: np.atleast_1d(fn(preds, target)) for name, fn, target in (
            ("CC", metrics.cc, saliency), ("KL", metrics.kl_div, saliency), ("SIM", metrics.sim, saliency),
            ("NSS", metrics.nss, fixations), ("AUC-Judd", metrics.auc_judd, fixations))}
        if other is not None:
            out["sAUC"] = np.atleast_1d(metrics.auc_shuffled(preds, fixations, other, n_splits=n_splits))
    except ValueError as error:
        if "constant map" not in str(error) and "sums to zero" not in str(error):
            raise
        return [score(p, s, f, None if other is None else o, n_splits=n_splits)
                for p, s, f, o in zip(preds, saliency, fixations, other if other is not None else [None] * len(preds))]
    return [{k: float(v[i]) for k, v in out.items()} for i in range(len(preds))]


def fixation_union(dataset: Any) -> np.ndarray:
    """How many images fixate each pixel ``(H, W)`` (int32), the pool of sAUC negatives. Reads only
    the fixation maps when the dataset is a :class:`hsi_core.datasets.SaliencyDataset`."""
    from hsi_core.datasets import SaliencyDataset, resize_fixations

    if isinstance(dataset, SaliencyDataset):
        maps = (resize_fixations(np.asarray(f() if callable(f) else f), dataset.size) for f in dataset.fixations)
    else:
        maps = (dataset[i]["fixations"] for i in range(len(dataset)))
    total = None
    for fix in maps:
        fix = np.asarray(fix, dtype=np.int32)
        total = fix if total is None else total + fix
    if total is None:
        raise ValueError("fixation_union: the dataset is empty")
    return total


def evaluate(predict: Any, dataset: Any, *, batch_size: int = 8, n_splits: int = 100, device: str = "cpu",
             progress: bool = False, desc: str = "evaluate") -> list[dict[str, float]]:
    """Score ``predict(images (B, 3, H, W)) -> (B, H, W)`` on a dataset of equally sized
    ``{"image", "saliency", "fixations"}`` items, streaming (memory of one batch): SIM, CC, KL
    against the blurred fixations; NSS, AUC-Judd, and sAUC with every other image's fixations
    as the negatives. One row per image (add ``mean_table`` for the summary)."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from hsi_core.datasets import collate_dicts

    if len(dataset) == 0:
        raise ValueError("evaluate: the dataset is empty")
    union = fixation_union(dataset) if len(dataset) > 1 else None
    rows: list[dict[str, float]] = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_dicts)
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        with torch.no_grad():
            preds = predict(batch["image"].to(device))
        preds = preds.detach().float().cpu().double().numpy()
        if preds.shape != tuple(batch["saliency"].shape):
            raise ValueError(f"evaluate: predictor returned {preds.shape}, expected {tuple(batch['saliency'].shape)}")
        if not np.isfinite(preds).all():
            raise ValueError("evaluate: the predictor returned NaN or infinite values")
        fix = batch["fixations"].numpy()
        other = None if union is None else (union[None] - fix.astype(np.int32)) > 0
        rows += score_batch(preds, batch["saliency"].double().numpy(), fix, other, n_splits=n_splits)
    return rows


def mean_table(results: dict[str, list[dict[str, float]]], columns: Sequence[str] = TABLE_METRICS) -> Any:
    """Per model (rows), the mean of each metric over images; a pandas DataFrame."""
    import pandas as pd

    return pd.DataFrame({name: pd.DataFrame(rows).reindex(columns=list(columns)).mean() for name, rows in results.items()}).T


def count_parameters(model: Any) -> int:
    """Number of parameters of a torch module (0 for a parameter-free function)."""
    return int(sum(p.numel() for p in model.parameters())) if hasattr(model, "parameters") else 0


def inference_time(predict: Any, images: Any, *, repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time per image (seconds) of ``predict`` on a batch ``images`` (on its device),
    with gradients off and the device synchronised around each call."""
    import time

    import torch

    if repeats < 1:
        raise ValueError(f"inference_time: repeats must be >= 1, got {repeats}")
    sync = torch.cuda.synchronize if images.is_cuda else (lambda: None)
    times = []
    with torch.no_grad():
        for k in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            predict(images)
            sync()
            if k >= warmup:
                times.append((time.perf_counter() - start) / images.shape[0])
    return float(np.median(times))


#: The loggabor paper's Tables I-III (SIM, CC, sAUC, AUC-Judd) and Table IV (M parameters, s/image).
PAPER_TABLES: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "SALICON val": {
        "ITTI": (0.495, 0.636, 0.710, 0.744), "ICL": (0.553, 0.697, 0.72, 0.839), "HFT": (0.549, 0.676, 0.722, 0.867),
        "SIMgrouping": (0.441, 0.656, 0.771, 0.794), "RARE": (0.513, 0.731, 0.768, 0.847),
        "Explainable CMRNet": (0.533, 0.7, 0.76, 0.804), "Explainable UNISAL": (0.549, 0.720, 0.771, 0.815),
        "Explainable MSI-Net": (0.54, 0.705, 0.769, 0.804), "CMRNet": (0.728, 0.846, 0.788, 0.886),
        "UNISAL": (0.741, 0.861, 0.812, 0.897), "MSI-Net": (0.732, 0.851, 0.797, 0.890)},
    "MIT1003": {
        "ITTI": (0.362, 0.576, 0.610, 0.674), "ICL": (0.420, 0.637, 0.617, 0.769), "HFT": (0.416, 0.616, 0.619, 0.797),
        "SIMgrouping": (0.308, 0.596, 0.668, 0.724), "RARE": (0.380, 0.617, 0.665, 0.777),
        "Explainable CMRNet": (0.415, 0.64, 0.653, 0.738), "Explainable UNISAL": (0.426, 0.668, 0.673, 0.748),
        "Explainable MSI-Net": (0.435, 0.70, 0.693, 0.761), "CMRNet": (0.68, 0.81, 0.78, 0.887),
        "UNISAL": (0.691, 0.85, 0.79, 0.897), "MSI-Net": (0.70, 0.87, 0.81, 0.91)},
    "MIT300": {
        "ITTI": (0.405, 0.495, 0.55, 0.70), "ICL": (0.472, 0.562, 0.6, 0.75), "HFT": (0.319, 0.379, 0.502, 0.652),
        "SIMgrouping": (0.343, 0.433, 0.504, 0.654), "RARE": (0.506, 0.595, 0.64, 0.806),
        "Explainable CMRNet": (0.504, 0.64, 0.635, 0.804), "Explainable UNISAL": (0.524, 0.70, 0.675, 0.824),
        "Explainable MSI-Net": (0.515, 0.683, 0.668, 0.814), "CMRNet": (0.68, 0.77, 0.70, 0.85),
        "UNISAL": (0.71, 0.80, 0.72, 0.87), "MSI-Net": (0.691, 0.787, 0.716, 0.863)},
}
PAPER_TABLE_IV: dict[str, tuple[str, float]] = {
    "CMRNet": ("2.5", 0.02), "DINet": ("27.04", 0.06), "SAM-ResNet": ("70.09", 0.09), "DSCLRCN": (">33.71", 0.27),
    "DVA": ("25.07", 0.03), "UNISAL": ("15.5", 0.028)}


def paper_table(dataset: str) -> Any:
    """One of the paper's Tables I-III as a DataFrame (rows: models; columns: SIM, CC, sAUC, AUC-Judd)."""
    import pandas as pd

    if dataset not in PAPER_TABLES:
        raise ValueError(f"paper_table: unknown dataset {dataset!r}; one of {sorted(PAPER_TABLES)}")
    return pd.DataFrame.from_dict(PAPER_TABLES[dataset], orient="index", columns=list(TABLE_METRICS))


def load_items(records: Sequence[FixationRecord], size: tuple[int, int], *,
               sigma_fraction: float = SIGMA_FRACTION) -> list[dict[str, Any]]:
    """Records as in-memory ``{"image", "saliency", "fixations", "index"}`` items at ``size`` (h, w),
    for small training and evaluation runs. Unlike ``datasets.records_dataset`` the fixations are
    first moved onto the small grid and blurred there (sigma ``sigma_fraction * w``), which is much
    faster and, at a few pixels of sigma, nearly the same map."""
    import torch
    from PIL import Image

    from hsi_core.datasets import resize_fixations

    h, w = size
    items = []
    for i, record in enumerate(records):
        path = Path(record.image_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image of record {record.name} not found")
        with Image.open(path) as image:
            image.draft("RGB", (2 * w, 2 * h))  # JPEG: decode at a reduced scale when possible
            rgb = np.asarray(image.convert("RGB").resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0
        fix = resize_fixations(record.fixation_map(), size)
        if not fix.any():
            raise ValueError(f"{path}: no fixations for record {record.name}")
        items.append({"image": torch.from_numpy(rgb).permute(2, 0, 1).contiguous(),
                      "saliency": saliency_map(fix.float(), sigma_fraction * w), "fixations": fix, "index": i})
    return items


def explainable_layers(model: Any, size: tuple[int, int], *, max_layers: int = 8, min_side: int = 8) -> list[str]:
    """Convolutions of ``model`` to rebuild with log-gabor filters (loggabor paper, Section II):
    those whose output on a ``size`` image is at least ``min_side`` pixels on each side (the 8x8
    block variance needs one block), evenly thinned to at most ``max_layers``, last one kept."""
    import torch

    from hsi_core.loggabor import capture_activations

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    acts = capture_activations(model, torch.zeros(1, 3, *size, device=device))
    model.train(was_training)
    names = [n for n, a in acts.items() if min(a.shape[-2:]) >= min_side]
    if not names:
        raise ValueError(f"explainable_layers: no convolution output is {min_side}x{min_side} or larger at {size}")
    if len(names) <= max_layers:
        return names
    picks = np.unique(np.round(np.linspace(0, len(names) - 1, max_layers)).astype(int))
    return [names[i] for i in picks]


def stimulus_items(items: Sequence[Any], size: tuple[int, int], *, top_fraction: float = 0.02,
                   sigma_fraction: float = SIGMA_FRACTION) -> tuple[list[dict[str, Any]], int]:
    """MIT1003/MIT300/FIGRIM stimuli (``datasets.StimulusItem``) as in-memory items at ``size``.

    The saliency map is the released density map (else the blurred fixation locations); the
    fixations are the released locations. Where a stimulus has only a density map (as in the
    MIT1003 subset beside the project) the pixels in its top ``top_fraction`` stand in for the
    fixations; the second return value counts those stand-ins so a table can say so."""
    import torch
    from PIL import Image

    from hsi_core.datasets import resize_fixations, resize_map

    h, w = size
    out, stand_ins = [], 0
    for i, item in enumerate(items):
        path = Path(item.image_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: stimulus {item.name} not found")
        with Image.open(path) as image:
            image.draft("RGB", (2 * w, 2 * h))
            rgb = np.asarray(image.convert("RGB").resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0
        if item.fixation_locs_path is not None:
            fix = resize_fixations(item.fixations(), size)
            sal = resize_map(item.density(), size) if item.fixation_map_path is not None else saliency_map(fix.float(), sigma_fraction * w)
        elif item.fixation_map_path is not None:
            sal = resize_map(item.density(), size)
            fix = sal >= torch.quantile(sal.flatten(), 1 - top_fraction).clamp_min(1e-6)
            stand_ins += 1
        else:
            raise FileNotFoundError(f"{item.name}: neither fixation locations nor a density map")
        if not fix.any() or float(sal.max() - sal.min()) == 0:
            raise ValueError(f"{item.name}: empty fixations or a constant saliency map")
        out.append({"image": torch.from_numpy(rgb).permute(2, 0, 1).contiguous(), "saliency": sal, "fixations": fix, "index": i})
    return out, stand_ins


# ----------------------------------------------------------------------------- models by name, small training runs
DEEP_MODELS = ("CMRNet", "UNISAL", "MSI-Net")


def build_model(name: str, weights: str | Path | None = None) -> Any:
    """``"CMRNet"``, ``"UNISAL"`` or ``"MSI-Net"``, randomly initialised or with local weights
    (CMRNet: one of our state dicts; UNISAL: the authors' ``weights_best.pth``; MSI-Net: the output
    of ``scripts/convert_msinet_weights.py``)."""
    import torch

    from hsi_core.models.cmrnet import CMRNet
    from hsi_core.models.msinet import MSINet, load_msinet_weights
    from hsi_core.models.unisal import UNISAL, load_unisal_weights

    if name == "CMRNet":
        model = CMRNet()
        if weights is not None:
            if not Path(weights).is_file():
                raise FileNotFoundError(f"CMRNet weights not found at {weights}: train one with notebook 07 or training.fit")
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        return model
    if name == "UNISAL":
        return load_unisal_weights(UNISAL(), weights) if weights is not None else UNISAL()
    if name == "MSI-Net":
        return load_msinet_weights(MSINet(), weights) if weights is not None else MSINet()
    raise ValueError(f"build_model: unknown model {name!r}; one of {DEEP_MODELS}")


def train_saliency_model(model: Any, items: Any, *, run_dir: str | Path, epochs: int = 60, batch_size: int = 8,
                         lr: float = 1e-3, lr_step: int = 2, device: str = "cpu", seed: int = 0,
                         progress: bool = False) -> list[dict[str, float]]:
    """Train with the loggabor paper's recipe (Section III-B: Eq. 11-12 loss, Adam 1e-3, x0.1 every
    2 epochs, 60 epochs, batch 8 — the defaults) through ``training.fit`` (checkpoints, resume: a
    finished run in ``run_dir`` is reused). Returns the per-epoch history."""
    from hsi_core import losses, training

    result = training.fit(model, items, loss_fn=training.saliency_batch_loss(losses.normalized_l1_loss), epochs=epochs,
                          run_dir=run_dir, batch_size=batch_size, lr=lr, lr_step=lr_step, device=device, seed=seed,
                          progress=progress)
    model.to(device).eval()
    return result.history


def split_records(records: Sequence[Any], n_train: int, n_test: int, *, seed: int = 0) -> tuple[list[Any], list[Any]]:
    """A seeded random split: ``n_train`` training and ``n_test`` held-out records (disjoint)."""
    if n_train + n_test > len(records):
        raise ValueError(f"split_records: {n_train} + {n_test} records asked for, {len(records)} available")
    order = np.random.default_rng(seed).permutation(len(records))
    return [records[i] for i in order[:n_train]], [records[i] for i in order[len(records) - n_test:]]
