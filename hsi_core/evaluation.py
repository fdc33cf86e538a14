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

**Undefined, counted.** A metric undefined for an image is never silently dropped from a mean. Under
the default policy ``undefined="pysaliency"`` a flat prediction is scored as pysaliency scores it
(CC 0, NSS 0, SIM of the uniform distribution; :mod:`hsi_core.metrics`); ``undefined="skip"`` leaves
it out of the row. Either way every row says how many fixations its image has (``"fixations"``) and
whether the prediction was flat (``"flat"``), and every summary (:func:`summarize`,
:func:`score_to_csv`, :func:`mean_table`) gives, per metric, the number of images its mean covers
(``n_CC``, ...), the number of flat maps and of images without fixations. An image without fixations
is scored for nothing that needs them (or its ground truth) and counted; the others are scored.

**Conventions** (the book's conventions page): ``nss_convention``, ``judd_convention``,
``sim_convention`` (``"mit"`` default, or ``"pysaliency"``), ``coordinates`` of the points
(``"round"`` default, or pysaliency's ``"truncate"``, :data:`hsi_core.fixations.COORDINATES`) and
the dataset mean (``dataset_mean="image"``, the MIT benchmark's and our default, or ``"fixation"``:
NSS and sAUC weighted by each image's fixations, pysaliency's default for those two).
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from hsi_core import metrics, paper
from hsi_core.baselines import centre_bias_map, uniform_map  # noqa: F401 (re-exported)
from hsi_core.datasets import FixationRecord
from hsi_core.fixations import BORDER_TOLERANCE_PX, pixel_indices, saliency_map, split_half
from hsi_core.io import atomic_open

#: SALICON's blur (19 px on 640-px-wide images) as a fraction of the image width, used for every set.
SIGMA_FRACTION = 19.0 / 640.0
#: The sAUC conventions (see the module docstring); the first is the default.
SAUC_CONVENTIONS = metrics.SAUC_CONVENTIONS
#: Other images whose fixations give the negatives under the ``"mit"`` convention (Borji's M = 10).
MIT_K_OTHER = 10
#: The undefined-metric policies (:data:`hsi_core.metrics.UNDEFINED_POLICIES`); the first is the default.
UNDEFINED_POLICIES = metrics.UNDEFINED_POLICIES
#: How a dataset mean weighs images: ``"image"`` (each image once; default) or ``"fixation"``.
DATASET_MEANS = ("image", "fixation")
#: The metrics pysaliency averages per fixation by default (``NSS``, ``sAUC``: ``average="fixation"``).
FIXATION_WEIGHTED = ("NSS", "sAUC")
#: Row entries that describe the image rather than score it.
ROW_INFO = ("index", "fixations", "flat")


# ----------------------------------------------------------------------------- the pool of fixations
def _record_pixels(record: FixationRecord, coordinates: str = "round") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and weights of a record's fixations on its own pixel grid: one entry per
    fixation (points to pixels by ``coordinates``, within :data:`BORDER_TOLERANCE_PX` clipped in,
    farther out an error naming the record), or per fixated pixel of a binary map. A record
    without fixations gives empty arrays."""
    if record.viewers is not None:
        parts = [np.asarray(v, dtype=np.float64).reshape(-1, 2) for v in record.viewers]
        pts = np.concatenate(parts) if parts else np.zeros((0, 2))
        rows, cols = pixel_indices(pts, (record.height, record.width), coordinates=coordinates,
                                   tolerance=BORDER_TOLERANCE_PX, where=f"record {record.name}")
        return rows.astype(np.int32), cols.astype(np.int32), np.ones(len(rows), np.float32)
    if record.fixations is None:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)
    fix = np.asarray(record.fixations)
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
    def from_records(cls, records: Sequence[FixationRecord], *, coordinates: str = "round") -> "FixationPool":
        return cls(lambda j: (*_record_pixels(records[j], coordinates), records[j].height, records[j].width),
                   len(records))

    @classmethod
    def from_dataset(cls, dataset: Any) -> "FixationPool":
        """A dataset's pool: through its ``fixation_part(j)`` when it has one (:class:`RecordSet`:
        no image is read), a :class:`hsi_core.datasets.records.SaliencyDataset`'s fixation maps (not its
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
        """Flat indices on the grid ``size`` of image ``j``'s fixations, and their weights (empty for
        an image without fixations: it gives no negatives and is scored for no fixation metric)."""
        rows, cols, weights, height, width = self._part(j)
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
                 sigma_fraction: float = SIGMA_FRACTION, coordinates: str = "round") -> None:
        self.records = list(records)
        self.size = (int(size[0]), int(size[1]))
        self.sigma_fraction = sigma_fraction
        self.coordinates = coordinates
        self.pool = FixationPool.from_records(self.records, coordinates=coordinates) if self.records else None

    def __len__(self) -> int:
        return len(self.records)

    def fixation_part(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
        """Record ``j``'s fixations on its own grid, for :class:`FixationPool` (no image read)."""
        record = self.records[j]
        return (*_record_pixels(record, self.coordinates), record.height, record.width)

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
        # an image without fixations has no ground-truth map: zeros, which no metric scores against
        saliency = saliency_map(fix.float(), self.sigma_fraction * w) if fix.any() else torch.zeros(h, w)
        return {"image": torch.from_numpy(rgb).permute(2, 0, 1).contiguous(), "saliency": saliency, "fixations": fix,
                "fixation_counts": counts, "index": i}


def load_items(records: Sequence[FixationRecord], size: tuple[int, int], *,
               sigma_fraction: float = SIGMA_FRACTION, coordinates: str = "round") -> list[dict[str, Any]]:
    """:class:`RecordSet` items held in memory, for small training runs (scoring streams a
    :class:`RecordSet` instead)."""
    dataset = RecordSet(records, size, sigma_fraction=sigma_fraction, coordinates=coordinates)
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
               judd_jitter: bool = False, seed: int = 0, own_counts: bool = False,
               undefined: str = UNDEFINED_POLICIES[0], nss_convention: str = "mit", judd_convention: str = "mit",
               sim_convention: str = "mit") -> list[dict[str, Any]]:
    """The metric set on a batch of maps ``(B, H, W)`` (numpy or torch, any device): CC, KL, SIM,
    MAE against ``saliency``; NSS, AUC-Judd against ``fixations`` (binary or counts); sAUC under
    each convention of ``sauc`` with the negatives of the images ``indices`` of ``pool`` (skipped
    when ``pool`` is None or holds one image; ``own_counts``: ``fixations`` are the images' counts
    on the pool's grid mapping, so the pool need not read them again). ``undefined`` and the
    ``*_convention`` switches: see the module docstring and :func:`hsi_core.metrics.metric_set`.

    One row per map: ``"index"``, ``"fixations"`` (the image's fixation count: the sum of a count
    map, the fixated pixels of a binary one), ``"flat"`` (the prediction is constant) and each
    metric defined for it; a metric undefined for a map is left out of its row, never NaN, and the
    summaries count it."""
    import torch

    metrics.check_undefined_policy(undefined, "score_maps")
    conventions = _conventions(sauc) if pool is not None and len(pool) > 1 else ()
    p = torch.as_tensor(preds)
    size = tuple(p.shape[-2:])
    device = p.device
    fix = torch.as_tensor(fixations).to(device)

    def negatives(convention: str) -> Any:
        own = np.asarray(torch.as_tensor(fixations).cpu(), dtype=np.float64) if own_counts else [None] * len(indices)
        stack = np.stack([pool.negatives(int(i), size, convention, k_other=k_other, seed=seed, own=o)
                          for i, o in zip(indices, own)])
        return torch.from_numpy(stack).to(device)

    first = conventions[0] if conventions else None
    values = metrics.metric_set(p, torch.as_tensor(saliency).to(device), fix,
                                negatives(first) if first == "pysaliency" else None, judd_jitter=judd_jitter,
                                seeds=[seed + int(i) for i in indices], undefined=undefined,
                                nss_convention=nss_convention, judd_convention=judd_convention,
                                sim_convention=sim_convention)
    columns: dict[str, Any] = {k: v for k, v in values.items() if k != "sAUC"}
    has_fix = np.asarray((fix > 0).flatten(1).any(1).cpu())
    for k, convention in enumerate(conventions):
        name = sauc_column(convention, k == 0)
        if convention == "pysaliency" and k == 0:
            columns[name] = values["sAUC"]
            continue
        neg = negatives(convention)
        ok = has_fix & np.asarray((neg > 0).flatten(1).any(1).cpu())
        out = np.full(len(indices), np.nan)
        if ok.any():
            sel = torch.from_numpy(np.flatnonzero(ok)).to(device)
            if convention == "pysaliency":
                scored = metrics.auc_shuffled(p[sel], fix[sel], neg[sel])
            else:
                scored = metrics.auc_shuffled(p[sel], fix[sel] > 0, neg[sel], n_splits=n_splits, seed=seed,
                                              convention="mit")
            out[ok] = np.asarray(scored.cpu() if hasattr(scored, "cpu") else scored, dtype=np.float64)
        columns[name] = out
    columns = {k: np.atleast_1d(np.asarray(v.cpu() if hasattr(v, "cpu") else v, dtype=np.float64))
               for k, v in columns.items()}
    n_fix = np.asarray(fix.flatten(1).to(torch.float64).clamp_min(0).sum(1).cpu()) if fix.dtype != torch.bool else \
        np.asarray(fix.flatten(1).sum(1).cpu())
    flat = np.asarray(metrics.is_flat(p.to(torch.float64)).cpu())
    return [{"index": int(i), "fixations": float(n_fix[b]), "flat": bool(flat[b]),
             **{k: float(v[b]) for k, v in columns.items() if np.isfinite(v[b])}}
            for b, i in enumerate(indices)]


_SCORING = ("sauc", "k_other", "n_splits", "judd_jitter", "seed", "undefined", "nss_convention", "judd_convention",
            "sim_convention")


def iter_scores(predict: Any, dataset: Any, *, batch_size: int = 8, sauc: str | Sequence[str] | None = "pysaliency",
                k_other: int = MIT_K_OTHER, n_splits: int = 100, judd_jitter: bool = False, seed: int = 0,
                device: str = "cpu", num_workers: int = 0, progress: bool = False,
                desc: str = "evaluate", undefined: str = UNDEFINED_POLICIES[0], nss_convention: str = "mit",
                judd_convention: str = "mit", sim_convention: str = "mit") -> Iterator[dict[str, Any]]:
    """Score ``predict(images (B, 3, H, W)) -> (B, H, W)`` on a dataset of equally sized
    ``{"image", "saliency", "fixations"}`` items (a :class:`RecordSet`, a
    ``datasets.SaliencyDataset`` or a list), one row per image (:func:`score_maps`) as each batch is
    scored.

    The dataset is read through a DataLoader (``num_workers`` processes), the metrics run batched
    on ``device`` (:func:`hsi_core.metrics.metric_set`: numpy per map on the CPU, batched torch on a
    GPU), and nothing but the current batch and the :class:`FixationPool` (a few bytes per fixation)
    is held, so memory does not grow with the number of images. ``sauc``: a convention or several
    (the first gives the column ``"sAUC"``, the others ``"sAUC (mit)"`` ...); ``judd_jitter``: MIT's
    AUC-Judd jitter (off by default: tied values count together); ``undefined`` and the conventions:
    see the module docstring."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from hsi_core.datasets import collate_dicts

    if len(dataset) == 0:
        raise ValueError("evaluate: the dataset is empty")
    _conventions(sauc)
    metrics.check_undefined_policy(undefined, "evaluate")
    pool = FixationPool.from_dataset(dataset) if len(dataset) > 1 and sauc else None
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_dicts,
                        num_workers=num_workers)
    position = 0
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        with torch.no_grad():
            preds = predict(batch["image"].to(device))
        # float64 whatever the model ran in (bf16 or fp16 maps are scored at full precision)
        preds = preds.detach().to(torch.float64)
        if tuple(preds.shape) != tuple(batch["saliency"].shape):
            raise ValueError(f"evaluate: predictor returned {tuple(preds.shape)}, expected {tuple(batch['saliency'].shape)}")
        # (NaN or infinite predictions raise in metrics.metric_set, naming the maps)
        counted = "fixation_counts" in batch  # then the counts are on the pool's grid mapping
        fix = batch["fixation_counts"] if counted else batch["fixations"]
        indices = range(position, position + len(preds))
        position += len(preds)
        yield from score_maps(preds, batch["saliency"], fix, indices, pool, sauc=sauc, k_other=k_other,
                              n_splits=n_splits, judd_jitter=judd_jitter, seed=seed, own_counts=counted,
                              undefined=undefined, nss_convention=nss_convention, judd_convention=judd_convention,
                              sim_convention=sim_convention)


def evaluate(predict: Any, dataset: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """:func:`iter_scores` collected into a list of rows (:func:`summarize` or :func:`mean_table`
    for the means and their coverage).

    Args:
        predict: a callable ``images (B, 3, H, W) -> maps (B, H, W)`` (a model, or a baseline).
        dataset: equally sized ``{"image", "saliency", "fixations"}`` items: a :class:`RecordSet`,
            a ``datasets.SaliencyDataset`` or a list.
        **kwargs: the options of :func:`iter_scores`: ``batch_size``, ``sauc`` (its conventions),
            ``k_other``, ``n_splits``, ``judd_jitter``, ``seed``, ``device``, ``num_workers``,
            ``progress``, ``undefined`` and the ``*_convention`` switches.

    Returns:
        One dict per image, in dataset order: ``"index"``, ``"fixations"`` (its fixation count),
        ``"flat"`` (the prediction is constant) and each metric defined for it (``"CC"``, ``"KL"``,
        ``"SIM"``, ``"NSS"``, ``"AUC-Judd"``, ``"sAUC"`` ..., ``"MAE"``); an undefined metric is left
        out of its row.

    Raises:
        ValueError: the dataset is empty, a prediction is NaN or infinite or of the wrong shape, or
            an option is unknown.
    """
    return list(iter_scores(predict, dataset, **kwargs))


class _Summary:
    """Running means of rows with their coverage (streamed: one row at a time)."""

    def __init__(self, dataset_mean: str = "image") -> None:
        if dataset_mean not in DATASET_MEANS:
            raise ValueError(f"dataset_mean must be one of {DATASET_MEANS}, got {dataset_mean!r}")
        self.dataset_mean = dataset_mean
        self.sums: dict[str, float] = {}
        self.weights: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.images = self.flat = self.without_fixations = 0

    def add(self, row: dict[str, Any]) -> None:
        self.images += 1
        self.flat += bool(row.get("flat", False))
        n_fix = float(row.get("fixations", 1.0))
        self.without_fixations += n_fix == 0
        for k, v in row.items():
            if k in ROW_INFO or not isinstance(v, (int, float, np.floating)) or isinstance(v, bool) or not np.isfinite(v):
                continue  # (a row from a DataFrame holds NaN where the row had no entry)
            weighted = self.dataset_mean == "fixation" and k.split(" (")[0] in FIXATION_WEIGHTED
            w = n_fix if weighted else 1.0
            self.sums[k] = self.sums.get(k, 0.0) + w * float(v)
            self.weights[k] = self.weights.get(k, 0.0) + w
            self.counts[k] = self.counts.get(k, 0) + 1

    def result(self, columns: Sequence[str] | None = None) -> dict[str, float]:
        names = list(self.sums) if columns is None else list(columns)
        out: dict[str, float] = {"images": float(self.images), "flat maps": float(self.flat),
                                 "images without fixations": float(self.without_fixations)}
        for k in names:
            out[k] = self.sums[k] / self.weights[k] if self.weights.get(k) else float("nan")
        for k in names:
            out[f"n_{k}"] = float(self.counts.get(k, 0))
        return out


def summarize(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, *,
              dataset_mean: str = "image") -> dict[str, float]:
    """The dataset mean of each metric in ``rows`` (or of ``columns``) and its coverage: ``"n_CC"``
    ... (the images each mean covers), ``"images"``, ``"flat maps"``, ``"images without
    fixations"``. A metric no image has is NaN, with ``n_`` 0. ``dataset_mean="fixation"`` weighs
    NSS and sAUC by each image's fixations (pysaliency's ``average="fixation"``); the others are
    always per image (as pysaliency's CC, SIM, KL and ``AUC_Judd``)."""
    summary = _Summary(dataset_mean)
    for row in rows:
        summary.add(row)
    return summary.result(columns)


def score_to_csv(predict: Any, dataset: Any, path: str | Path, *, dataset_mean: str = "image",
                 **kwargs: Any) -> dict[str, float]:
    """Stream :func:`iter_scores` into a CSV file, one row per image written as it is computed (a
    temporary file beside ``path``, renamed over it once complete: a crash never leaves a partial
    ``path``). Memory stays one batch whatever the number of images. Returns :func:`summarize` of
    the rows: each metric's mean, the images it covers (``n_CC`` ...), ``"images"``, ``"flat
    maps"`` and ``"images without fixations"``."""
    conventions = _conventions(kwargs.get("sauc", "pysaliency"))
    metric_columns = ["CC", "KL", "SIM", "NSS", "AUC-Judd", *[sauc_column(c, k == 0) for k, c in enumerate(conventions)],
                      "MAE"]
    summary = _Summary(dataset_mean)
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*ROW_INFO, *metric_columns], restval="")
        writer.writeheader()
        for row in iter_scores(predict, dataset, **kwargs):
            writer.writerow(row)
            summary.add(row)
    return summary.result(metric_columns)


# ----------------------------------------------------------------------------- baselines on records
def baseline_scores(records: Sequence[FixationRecord], *, max_side: int = 320, n_splits: int = 100, seed: int = 0,
                    sauc: str | Sequence[str] | None = "pysaliency", k_other: int = MIT_K_OTHER,
                    judd_jitter: bool = False, undefined: str = UNDEFINED_POLICIES[0], nss_convention: str = "mit",
                    judd_convention: str = "mit", sim_convention: str = "mit",
                    coordinates: str = "round") -> list[dict[str, Any]]:
    """Per image and baseline, the metric set (rows of dicts, as :func:`score_maps`; :func:`summarize`
    them for a table), each image on its own grid with the longer side at most ``max_side``.

    The ground-truth map is the fixations blurred with :data:`SIGMA_FRACTION` of the width. The
    sAUC negatives come from one :class:`FixationPool` of all the records (O(N)). The split-half
    baseline (records with per-viewer points and at least two viewers) predicts the other half's
    fixations and their blurred map. An image without fixations gets rows without the metrics that
    need them (and its ground truth)."""
    pool = FixationPool.from_records(records, coordinates=coordinates)
    options = dict(sauc=sauc, k_other=k_other, n_splits=n_splits, judd_jitter=judd_jitter, seed=seed,
                   undefined=undefined, nss_convention=nss_convention, judd_convention=judd_convention,
                   sim_convention=sim_convention)
    rows: list[dict[str, Any]] = []
    for i, full in enumerate(records):
        record = full.scaled(max_side)
        h, w = record.height, record.width
        sigma = SIGMA_FRACTION * w
        counts = pool.counts(i, (h, w))
        gt = saliency_map(counts > 0, sigma).astype(np.float64) if counts.any() else np.zeros((h, w))
        preds = np.stack([centre_bias_map(h, w), uniform_map(h, w)]).astype(np.float64)
        scored = score_maps(preds, np.stack([gt, gt]), np.stack([counts, counts]), [i, i], pool, own_counts=True,
                            **options)
        for name, row in zip(("centre bias", "uniform"), scored):
            rows.append({"image": record.name, "baseline": name, **{k: v for k, v in row.items() if k != "index"}})
        viewers = [v for v in (record.viewers or []) if len(v)]
        if len(viewers) >= 2:
            pred, half_b = split_half(viewers, (h, w), sigma, seed=seed)
            row = score_maps(np.asarray(pred, np.float64)[None], saliency_map(half_b, sigma)[None].astype(np.float64),
                             np.asarray(half_b)[None], [i], pool, **options)[0]
            rows.append({"image": record.name, "baseline": "one half of the viewers",
                         **{k: v for k, v in row.items() if k != "index"}})
    return rows


# ----------------------------------------------------------------------------- model-level scoring (LG Tables I-IV)
#: The four metrics of LG Tables I-III, in its column order.
TABLE_METRICS = paper.LOGGABOR_TABLE_METRICS


def mean_table(results: dict[str, list[dict[str, Any]]], columns: Sequence[str] = TABLE_METRICS, *,
               dataset_mean: str = "image", coverage: bool = True) -> Any:
    """Per model (rows), the mean of each metric over images (:func:`summarize`); a pandas
    DataFrame. With ``coverage`` (default) it also has, per metric, ``n_<metric>`` (the images its
    mean covers), and ``images``, ``flat maps``, ``images without fixations``: a mean over fewer
    images than the others, or over flat maps, is visible in the table (:func:`coverage_note` says
    it in a sentence)."""
    import pandas as pd

    table = pd.DataFrame({name: summarize(rows, columns, dataset_mean=dataset_mean)
                          for name, rows in results.items()}).T
    info = ["images", "flat maps", "images without fixations"]
    ordered = [*columns, *[f"n_{c}" for c in columns], *info] if coverage else list(columns)
    return table[ordered]


def coverage_note(table: Any, columns: Sequence[str] | None = None) -> str:
    """One sentence on a :func:`mean_table`'s coverage: which model's mean of which metric covers
    fewer than all its images, and how many of each model's maps were flat."""
    columns = [c[2:] for c in table.columns if c.startswith("n_")] if columns is None else list(columns)
    notes = []
    for name, row in table.iterrows():
        n = int(row["images"])
        short = [f"{c} over {int(row[f'n_{c}'])} of {n} images" for c in columns if int(row[f"n_{c}"]) < n]
        parts = []
        if int(row["flat maps"]):
            parts.append(f"{int(row['flat maps'])} of {n} maps flat")
        if int(row.get("images without fixations", 0)):
            parts.append(f"{int(row['images without fixations'])} of {n} images without fixations")
        parts += short
        if parts:
            notes.append(f"{name}: " + ", ".join(parts))
    return "; ".join(notes) + "." if notes else "Every mean covers all images; no map is flat."


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


#: The LG Tables I-IV experiment's names, moved to ``hsi_core.experiments.saliency_models``.
MOVED_TO_SALIENCY_MODELS = ("DEEP_MODELS", "build_model", "train_saliency_model", "explainable_layers",
                            "stimulus_items", "paper_table")


def __getattr__(name: str) -> Any:
    # names kept for one release: LG Tables I-IV are read from hsi_core.paper (the papers' numbers, as data)
    moved = {"PAPER_TABLES": "LOGGABOR_TABLES_I_III", "PAPER_TABLE_IV": "LOGGABOR_TABLE_IV"}
    if name in moved:
        warnings.warn(f"hsi_core.evaluation.{name} is deprecated; use hsi_core.paper.{moved[name]}",
                      DeprecationWarning, stacklevel=2)
        return getattr(paper, moved[name])
    if name in MOVED_TO_SALIENCY_MODELS:
        from hsi_core.experiments import saliency_models

        warnings.warn(f"hsi_core.evaluation.{name} is deprecated and goes in the next release: use "
                      f"hsi_core.experiments.saliency_models.{name}", DeprecationWarning, stacklevel=2)
        return getattr(saliency_models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


