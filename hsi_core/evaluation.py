"""Dataset-level scoring as the saliency benchmarks compute it: fixation records from any dataset,
the metric set on every map, streamed through a DataLoader, and the simple baselines (centre bias,
uniform, one half of the viewers predicting the other half).

**Shuffled AUC negatives.** The negatives of image ``i`` come from a :class:`FixationPool`: every
image's fixation points, gathered in one pass over the fixations (images are not read), and moved
onto the scoring grid of image ``i`` (``row * h // H``, ``col * w // W`` of the pixel each point
falls in). Two conventions (``sauc=``):

- ``"pysaliency"`` (default), as pysaliency's ``AUC(..., nonfixations="shuffled")``: every fixation of
  every other image, with its multiplicity (the pool's total count map minus image ``i``'s own),
  scored exactly (:func:`hsi_core.metrics.auc_shuffled`). A centre prior scores about 0.5 at any
  resolution and number of images, which is what sAUC is for.
- ``"mit"``, as the MIT benchmark (Borji's sAUC, ``AUC_shuffled.m``): the fixated locations of
  ``k_other = 10`` other images drawn at random (seeded by ``seed`` and the image's position), each
  location once, and ``n_splits`` draws of as many negatives as the image has fixated pixels.

Both are O(N) in the number of images and hold no map per image: the pool keeps one total count
map per grid size and reads an image's fixations when they are needed.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from hsi_core import metrics, paper
from hsi_core.baselines import centre_bias_map, uniform_map  # noqa: F401 (re-exported)
from hsi_core.datasets import FixationRecord
from hsi_core.fixations import saliency_map, split_half
from hsi_core.io import atomic_open

#: SALICON's blur (19 px on 640-px-wide images) as a fraction of the image width, used for every set.
SIGMA_FRACTION = 19.0 / 640.0
#: The sAUC conventions (see the module docstring); the first is the default.
SAUC_CONVENTIONS = metrics.SAUC_CONVENTIONS
#: Other images whose fixations give the negatives under the ``"mit"`` convention (Borji's M = 10).
MIT_K_OTHER = 10


# ----------------------------------------------------------------------------- the pool of fixations
def _record_pixels(record: FixationRecord) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and weights of a record's fixations on its own pixel grid: one entry per
    fixation (points rounded to the nearest pixel and clipped in, as ``fixation_map``), or per
    fixated pixel of a binary map."""
    if record.viewers is not None and len(record.viewers):
        pts = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1, 2) for v in record.viewers])
        cols = np.clip(np.rint(pts[:, 0]), 0, record.width - 1).astype(np.int32)
        rows = np.clip(np.rint(pts[:, 1]), 0, record.height - 1).astype(np.int32)
        return rows, cols, np.ones(len(rows), np.float32)
    fix = np.asarray(record.fixation_map())
    rows, cols = np.nonzero(fix)
    return rows.astype(np.int32), cols.astype(np.int32), fix[rows, cols].astype(np.float32)


def _map_pixels(fix: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    fix = np.asarray(fix)
    rows, cols = np.nonzero(fix > 0)
    return rows.astype(np.int32), cols.astype(np.int32), fix[rows, cols].astype(np.float32), *fix.shape


class FixationPool:
    """The source of every image's sAUC negatives: image ``j``'s fixations on demand (``part(j)``:
    pixel rows, columns, weights and the ``(H, W)`` grid they are on) and, per scoring grid, the
    count map of all images' fixations, computed in one pass and cached. Nothing per image is
    kept, so memory is one count map per grid size whatever the number of images; the
    ``"mit"`` convention reads ``k_other`` images' fixations per image (O(N) reads in all)."""

    def __init__(self, part: Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray, int, int]], n: int) -> None:
        if n < 1:
            raise ValueError("FixationPool: no images")
        self._part = part
        self._n = n
        self._totals: dict[tuple[int, int], np.ndarray] = {}

    @classmethod
    def from_parts(cls, parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, int, int]]) -> "FixationPool":
        return cls(lambda j: parts[j], len(parts))

    @classmethod
    def from_records(cls, records: Sequence[FixationRecord]) -> "FixationPool":
        return cls(lambda j: (*_record_pixels(records[j]), records[j].height, records[j].width), len(records))

    @classmethod
    def from_dataset(cls, dataset: Any) -> "FixationPool":
        """A dataset's pool: through its ``fixation_part(j)`` when it has one (:class:`RecordSet`:
        no image is read), a :class:`hsi_core.datasets.SaliencyDataset`'s fixation maps (not its
        images), or any other sequence of ``{"fixations"}`` items (``"fixation_counts"`` when
        present) by reading its items."""
        from hsi_core.datasets import SaliencyDataset

        if hasattr(dataset, "fixation_part"):
            return cls(dataset.fixation_part, len(dataset))
        if isinstance(dataset, SaliencyDataset):
            def part(j: int) -> tuple:
                f = dataset.fixations[j]
                return _map_pixels(f() if callable(f) else f)

            return cls(part, len(dataset))

        def item_part(j: int) -> tuple:
            item = dataset[j]
            fix = item.get("fixation_counts", item["fixations"])
            return _map_pixels(fix.numpy() if hasattr(fix, "numpy") else fix)

        return cls(item_part, len(dataset))

    def __len__(self) -> int:
        return self._n

    def _flat(self, j: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices on the grid ``size`` of image ``j``'s fixations, and their weights."""
        rows, cols, weights, height, width = self._part(j)
        if len(rows) == 0:
            raise ValueError(f"FixationPool: image {j} has no fixations")
        h, w = size
        return (rows.astype(np.int64) * h // height) * w + cols.astype(np.int64) * w // width, weights

    def counts(self, index: int, size: tuple[int, int]) -> np.ndarray:
        """Image ``index``'s fixations on the grid ``size`` as a count map ``(h, w)`` (float64)."""
        flat, weights = self._flat(index, size)
        return np.bincount(flat, weights, minlength=size[0] * size[1]).reshape(size)

    def total(self, size: tuple[int, int]) -> np.ndarray:
        """Every image's fixations on the grid ``size`` (count map; one pass, then cached)."""
        key = (int(size[0]), int(size[1]))
        if key not in self._totals:
            total = np.zeros(key[0] * key[1])
            for j in range(self._n):
                flat, weights = self._flat(j, key)
                total += np.bincount(flat, weights, minlength=total.size)
            self._totals[key] = total.reshape(key)
        return self._totals[key]

    def other_images(self, index: int, k: int, seed: int) -> np.ndarray:
        """``k`` other images drawn without replacement, seeded by ``(seed, index)``."""
        picks = np.random.default_rng([seed, index]).choice(self._n - 1, size=min(k, self._n - 1), replace=False)
        return picks + (picks >= index)

    def negatives(self, index: int, size: tuple[int, int], convention: str = "pysaliency", *,
                  k_other: int = MIT_K_OTHER, seed: int = 0, own: np.ndarray | None = None) -> np.ndarray:
        """Image ``index``'s sAUC negatives on the grid ``size`` (see the module docstring):
        ``"pysaliency"``: the other images' fixation counts (``own``: image ``index``'s count map
        when the caller has it); ``"mit"``: the binary union of the fixated locations of
        ``k_other`` random other images."""
        if self._n < 2:
            raise ValueError("FixationPool.negatives: sAUC needs at least two images")
        if convention == "pysaliency":
            return self.total(size) - (self.counts(index, size) if own is None else own)
        if convention == "mit":
            out = np.zeros(size[0] * size[1], bool)
            for j in self.other_images(index, k_other, seed):
                out[self._flat(int(j), size)[0]] = True
            return out.reshape(size)
        raise ValueError(f"sAUC convention must be one of {SAUC_CONVENTIONS}, got {convention!r}")


# ----------------------------------------------------------------------------- records read lazily
class RecordSet:
    """Fixation records as a map-style dataset of ``{"image", "saliency", "fixations",
    "fixation_counts", "index"}`` items at ``size`` (h, w), each read when asked for (so a
    DataLoader streams them). The fixations are moved onto the small grid (as
    :meth:`FixationPool.counts`) and blurred there with sigma ``sigma_fraction * w``: much faster
    than blurring at full size and, at a few pixels of sigma, nearly the same map."""

    def __init__(self, records: Sequence[FixationRecord], size: tuple[int, int], *,
                 sigma_fraction: float = SIGMA_FRACTION) -> None:
        self.records = list(records)
        self.size = (int(size[0]), int(size[1]))
        self.sigma_fraction = sigma_fraction
        self.pool = FixationPool.from_records(self.records) if self.records else None

    def __len__(self) -> int:
        return len(self.records)

    def fixation_part(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
        """Record ``j``'s fixations on its own grid, for :class:`FixationPool` (no image read)."""
        record = self.records[j]
        return (*_record_pixels(record), record.height, record.width)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch
        from PIL import Image

        record = self.records[i]
        h, w = self.size
        path = Path(record.image_path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image of record {record.name} not found")
        with Image.open(path) as image:
            image.draft("RGB", (2 * w, 2 * h))  # JPEG: decode at a reduced scale when possible
            rgb = np.asarray(image.convert("RGB").resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0
        counts = torch.from_numpy(self.pool.counts(i, self.size).astype(np.float32))
        fix = counts > 0
        return {"image": torch.from_numpy(rgb).permute(2, 0, 1).contiguous(),
                "saliency": saliency_map(fix.float(), self.sigma_fraction * w), "fixations": fix,
                "fixation_counts": counts, "index": i}


def load_items(records: Sequence[FixationRecord], size: tuple[int, int], *,
               sigma_fraction: float = SIGMA_FRACTION) -> list[dict[str, Any]]:
    """:class:`RecordSet` items held in memory, for small training runs (scoring streams a
    :class:`RecordSet` instead)."""
    dataset = RecordSet(records, size, sigma_fraction=sigma_fraction)
    return [dataset[i] for i in range(len(dataset))]


# ----------------------------------------------------------------------------- streaming evaluation
def _conventions(sauc: str | Sequence[str] | None) -> tuple[str, ...]:
    conventions = () if sauc is None else (sauc,) if isinstance(sauc, str) else tuple(sauc)
    for c in conventions:
        if c not in SAUC_CONVENTIONS:
            raise ValueError(f"sAUC convention must be one of {SAUC_CONVENTIONS}, got {c!r}")
    return conventions


def sauc_column(convention: str, first: bool) -> str:
    """The row key of an sAUC convention: ``"sAUC"`` for the first (the table's), else ``"sAUC (mit)"``..."""
    return "sAUC" if first else f"sAUC ({convention})"


def score_maps(preds: Any, saliency: Any, fixations: Any, indices: Sequence[int], pool: FixationPool | None, *,
               sauc: str | Sequence[str] | None = "pysaliency", k_other: int = MIT_K_OTHER, n_splits: int = 100,
               judd_jitter: bool = False, seed: int = 0, own_counts: bool = False) -> list[dict[str, Any]]:
    """The metric set on a batch of maps ``(B, H, W)`` (numpy or torch, any device): CC, KL, SIM,
    MAE against ``saliency``; NSS, AUC-Judd against the fixated pixels of ``fixations`` (binary or
    counts); sAUC under each convention of ``sauc`` with the negatives of the images ``indices`` of
    ``pool`` (skipped when ``pool`` is None or holds one image; ``own_counts``: ``fixations`` are
    the images' counts on the pool's grid mapping, so the pool need not read them again). One row
    per map; a metric
    undefined for a map (e.g. CC of a constant map) is left out of its row, never NaN."""
    import torch

    conventions = _conventions(sauc) if pool is not None and len(pool) > 1 else ()
    p = torch.as_tensor(preds)
    size = tuple(p.shape[-2:])
    device = p.device

    def negatives(convention: str) -> Any:
        own = np.asarray(torch.as_tensor(fixations).cpu(), dtype=np.float64) if own_counts else [None] * len(indices)
        stack = np.stack([pool.negatives(int(i), size, convention, k_other=k_other, seed=seed, own=o)
                          for i, o in zip(indices, own)])
        return torch.from_numpy(stack).to(device)

    first = conventions[0] if conventions else None
    values = metrics.metric_set(p, torch.as_tensor(saliency).to(device), torch.as_tensor(fixations).to(device),
                                negatives(first) if first == "pysaliency" else None, judd_jitter=judd_jitter,
                                seeds=[seed + int(i) for i in indices])
    columns: dict[str, Any] = {k: v for k, v in values.items() if k != "sAUC"}
    for k, convention in enumerate(conventions):
        name = sauc_column(convention, k == 0)
        if convention == "pysaliency" and k == 0:
            columns[name] = values["sAUC"]
        elif convention == "pysaliency":
            columns[name] = metrics.auc_shuffled(p, torch.as_tensor(fixations).to(device), negatives(convention))
        else:
            columns[name] = metrics.auc_shuffled(p, torch.as_tensor(fixations).to(device) > 0, negatives(convention),
                                                 n_splits=n_splits, seed=seed, convention="mit")
    columns = {k: np.atleast_1d(np.asarray(v.cpu() if hasattr(v, "cpu") else v, dtype=np.float64))
               for k, v in columns.items()}
    return [{"index": int(i), **{k: float(v[b]) for k, v in columns.items() if np.isfinite(v[b])}}
            for b, i in enumerate(indices)]


def iter_scores(predict: Any, dataset: Any, *, batch_size: int = 8, sauc: str | Sequence[str] | None = "pysaliency",
                k_other: int = MIT_K_OTHER, n_splits: int = 100, judd_jitter: bool = False, seed: int = 0,
                device: str = "cpu", num_workers: int = 0, progress: bool = False,
                desc: str = "evaluate") -> Iterator[dict[str, Any]]:
    """Score ``predict(images (B, 3, H, W)) -> (B, H, W)`` on a dataset of equally sized
    ``{"image", "saliency", "fixations"}`` items (a :class:`RecordSet`, a
    ``datasets.SaliencyDataset`` or a list), one row per image as each batch is scored.

    The dataset is read through a DataLoader (``num_workers`` processes), the metrics run batched
    on ``device`` (:func:`hsi_core.metrics.metric_set`: numpy per map on the CPU, batched torch on a
    GPU), and nothing but the current batch and the :class:`FixationPool` (a few bytes per fixation)
    is held, so memory does not grow with the number of images. ``sauc``: a convention or several
    (the first gives the column ``"sAUC"``, the others ``"sAUC (mit)"`` ...); ``judd_jitter``: MIT's
    AUC-Judd jitter (off by default: tied values count together)."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from hsi_core.datasets import collate_dicts

    if len(dataset) == 0:
        raise ValueError("evaluate: the dataset is empty")
    _conventions(sauc)
    pool = FixationPool.from_dataset(dataset) if len(dataset) > 1 and sauc else None
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_dicts,
                        num_workers=num_workers)
    position = 0
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        with torch.no_grad():
            preds = predict(batch["image"].to(device))
        preds = preds.detach().to(torch.float64)
        if tuple(preds.shape) != tuple(batch["saliency"].shape):
            raise ValueError(f"evaluate: predictor returned {tuple(preds.shape)}, expected {tuple(batch['saliency'].shape)}")
        # (NaN or infinite predictions raise in metrics.metric_set, naming the maps)
        counted = "fixation_counts" in batch  # then the counts are on the pool's grid mapping
        fix = batch["fixation_counts"] if counted else batch["fixations"]
        indices = range(position, position + len(preds))
        position += len(preds)
        yield from score_maps(preds, batch["saliency"], fix, indices, pool, sauc=sauc, k_other=k_other,
                              n_splits=n_splits, judd_jitter=judd_jitter, seed=seed, own_counts=counted)


def evaluate(predict: Any, dataset: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`iter_scores` collected into a list of rows (add :func:`mean_table` for the summary)."""
    return list(iter_scores(predict, dataset, **kwargs))


def score_dataset(predict: Any, dataset: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Former name of :func:`evaluate` (kept for old notebooks)."""
    return evaluate(predict, dataset, **kwargs)


def score_to_csv(predict: Any, dataset: Any, path: str | Path, **kwargs: Any) -> dict[str, float]:
    """Stream :func:`iter_scores` into a CSV file, one row per image written as it is computed (a
    temporary file beside ``path``, renamed over it once complete: a crash never leaves a partial
    ``path``). Memory stays one batch whatever the number of images. Returns the mean of each
    metric over the images where it is defined, and ``"images"``."""
    conventions = _conventions(kwargs.get("sauc", "pysaliency"))
    columns = ["index", "CC", "KL", "SIM", "NSS", "AUC-Judd",
               *[sauc_column(c, k == 0) for k, c in enumerate(conventions)], "MAE"]
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    n = 0
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for row in iter_scores(predict, dataset, **kwargs):
            writer.writerow(row)
            n += 1
            for k, v in row.items():
                if k != "index":
                    sums[k] = sums.get(k, 0.0) + v
                    counts[k] = counts.get(k, 0) + 1
    return {"images": float(n), **{k: sums[k] / counts[k] for k in sums}}


# ----------------------------------------------------------------------------- baselines on records
def baseline_scores(records: Sequence[FixationRecord], *, max_side: int = 320, n_splits: int = 100, seed: int = 0,
                    sauc: str | Sequence[str] | None = "pysaliency", k_other: int = MIT_K_OTHER,
                    judd_jitter: bool = False) -> list[dict[str, Any]]:
    """Per image and baseline, the metric set (rows of dicts; average them for a table), each image
    on its own grid with the longer side at most ``max_side``.

    The ground-truth map is the fixations blurred with :data:`SIGMA_FRACTION` of the width. The
    sAUC negatives come from one :class:`FixationPool` of all the records (O(N)). The split-half
    baseline (records with per-viewer points and at least two viewers) predicts the other half's
    fixations and their blurred map."""
    pool = FixationPool.from_records(records)
    rows: list[dict[str, Any]] = []
    for i, full in enumerate(records):
        record = full.scaled(max_side)
        h, w = record.height, record.width
        sigma = SIGMA_FRACTION * w
        counts = pool.counts(i, (h, w))
        gt = saliency_map(counts > 0, sigma).astype(np.float64)
        preds = np.stack([centre_bias_map(h, w), uniform_map(h, w)]).astype(np.float64)
        scored = score_maps(preds, np.stack([gt, gt]), np.stack([counts, counts]), [i, i], pool, sauc=sauc,
                            k_other=k_other, n_splits=n_splits, judd_jitter=judd_jitter, seed=seed)
        for name, row in zip(("centre bias", "uniform"), scored):
            rows.append({"image": record.name, "baseline": name, **{k: v for k, v in row.items() if k != "index"}})
        viewers = [v for v in (record.viewers or []) if len(v)]
        if len(viewers) >= 2:
            pred, half_b = split_half(viewers, (h, w), sigma, seed=seed)
            row = score_maps(np.asarray(pred, np.float64)[None], saliency_map(half_b, sigma)[None].astype(np.float64),
                             np.asarray(half_b)[None], [i], pool, sauc=sauc, k_other=k_other, n_splits=n_splits,
                             judd_jitter=judd_jitter, seed=seed)[0]
            rows.append({"image": record.name, "baseline": "one half of the viewers",
                         **{k: v for k, v in row.items() if k != "index"}})
    return rows


# ----------------------------------------------------------------------------- model-level scoring (Tables I-IV)
#: The four metrics of the loggabor paper's Tables I-III, in its column order.
TABLE_METRICS = paper.LOGGABOR_TABLE_METRICS


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


#: The loggabor paper's Tables I-III and IV, kept in :mod:`hsi_core.paper` (the papers' numbers, as data).
PAPER_TABLES = paper.LOGGABOR_TABLES_I_III
PAPER_TABLE_IV = paper.LOGGABOR_TABLE_IV


def paper_table(dataset: str) -> Any:
    """One of the paper's Tables I-III as a DataFrame (rows: models; columns: SIM, CC, sAUC, AUC-Judd)."""
    import pandas as pd

    if dataset not in PAPER_TABLES:
        raise ValueError(f"paper_table: unknown dataset {dataset!r}; one of {sorted(PAPER_TABLES)}")
    return pd.DataFrame.from_dict(PAPER_TABLES[dataset], orient="index", columns=list(TABLE_METRICS))


def explainable_layers(model: Any, size: tuple[int, int], *, max_layers: int = 8, min_side: int = 8) -> list[str]:
    """Convolutions of ``model`` to rebuild with log-gabor filters (loggabor paper, Section II):
    those whose output on a ``size`` image is at least ``min_side`` pixels on each side, evenly
    thinned to at most ``max_layers`` (``None``: all), last one kept. ``min_side=2`` and
    ``max_layers=None`` give every layer the method can use (``hsi_core.loggabor.explainable_layers``)."""
    from hsi_core.loggabor import explainable_layers as loggabor_layers

    return loggabor_layers(model, size, max_layers=max_layers, min_side=min_side)


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
    """``"CMRNet"``, ``"UNISAL"`` or ``"MSI-Net"``, randomly initialised or with local weights: the
    registry's :func:`hsi_core.models.build_model` (kept here for the chapters' calls)."""
    from hsi_core.models import build_model as build

    if name not in DEEP_MODELS:
        raise ValueError(f"build_model: unknown model {name!r}; one of {DEEP_MODELS}")
    return build(name, weights)


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
