"""LG Tables I-IV: the deep saliency models, how they are trained (LG Section III-B) and the inputs
the tables score.

**Training set** (``TRAIN_SETS``; ``resolve_train_set``):

- ``"salicon"``, the paper's: SALICON train, with SALICON val for model selection: after each epoch
  the LG Eq. 11-12 loss on the validation images is measured and the epoch with the lowest one is
  the model kept (``best.pt``). The official layout (``annotations/fixations_{train,val}2014.json``,
  ``images/{train,val}``) or the shared sample's (``..._examples.json``); ``"auto"`` reads the shared
  sample when it is beside the repository, else the demo world's synthetic SALICON.
- ``"nus_scene"``, the demo default where SALICON is absent: NUS Scene (or the demo world's free
  viewing) split into training and held-out images; no validation set, the last epoch is kept.

``"auto"``: SALICON when a SALICON folder is given (a full download), else NUS Scene: the shared
sample's 10 training images are too few to train on by default (give ``"salicon"`` to use them). Each
training source has its own run folder (``TrainingData.tag``), so a model trained on one source is
never reused for another; chapters 7 and 8 call the same functions and share the runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hsi_core import paper
from hsi_core.evaluation import SIGMA_FRACTION, TABLE_METRICS, load_items
from hsi_core.fixations import saliency_map

DEEP_MODELS = ("CMRNet", "UNISAL", "MSI-Net")
#: The training sets (module docstring); ``"auto"`` resolves to one of them.
TRAIN_SETS = ("salicon", "nus_scene")


@dataclass(frozen=True)
class TrainingData:
    """What a deep model is trained on: in-memory items (small at demo scale), the validation items
    for model selection (``None``: the last epoch is kept), a name for captions and the run folder's
    ``tag`` (one per data source)."""

    name: str
    train: list[dict[str, Any]]
    val: list[dict[str, Any]] | None
    tag: str
    is_demo: bool


def salicon_root(parameter: str | Path | None = "auto") -> tuple[Path, bool]:
    """The SALICON folder and whether it is the demo world's: a given path, or (``"auto"``) the shared
    sample when present, else the demo world's synthetic SALICON."""
    from hsi_core import demo, sources

    found = sources.shared_subset("salicon-samples", parameter if parameter is not None else "auto")
    if found is None:
        return demo.ensure_demo() / "salicon", True
    return found, False


def salicon_split(root: str | Path, split: str) -> tuple[Path, Path]:
    """(fixation json, image folder) of SALICON's ``split`` (``"train"`` or ``"val"``) under ``root``,
    in the official layout or the shared sample's; a clear error naming what is missing."""
    if split not in ("train", "val"):
        raise ValueError(f"salicon_split: split must be 'train' or 'val', got {split!r}")
    root = Path(root)
    images = root / "images" / split
    for name in (f"fixations_{split}2014.json", f"fixations_{split}2014_examples.json"):
        if (root / "annotations" / name).is_file():
            if not images.is_dir():
                raise FileNotFoundError(f"{images}: SALICON {split} images not found")
            return root / "annotations" / name, images
    raise FileNotFoundError(f"{root / 'annotations'}: no fixations_{split}2014.json; download SALICON's "
                            f"fixations (salicon.net) and put them there, with the images in {images}")


def resolve_train_set(train_set: str, salicon: str | Path | None = "auto", *, free_viewing: bool = True) -> str:
    """``"salicon"`` or ``"nus_scene"``; ``"auto"``: SALICON when ``salicon`` names a folder or no
    free-viewing set is given (``free_viewing=False``), else NUS Scene (module docstring)."""
    if train_set == "auto":
        return "nus_scene" if salicon in (None, "auto") and free_viewing else "salicon"
    if train_set not in TRAIN_SETS:
        raise ValueError(f"train_set must be 'auto' or one of {TRAIN_SETS}, got {train_set!r}")
    return train_set


def salicon_training_data(size: tuple[int, int], train_images: int, val_images: int, *,
                          root: str | Path | None = "auto") -> TrainingData:
    """The paper's training set: the first ``train_images`` SALICON train images and ``val_images``
    SALICON val images for model selection, at ``size``."""
    from hsi_core import datasets

    if train_images < 1 or val_images < 1:
        raise ValueError(f"salicon_training_data: train_images={train_images} and val_images={val_images} "
                         "must both be at least 1")
    folder, is_demo = salicon_root(root)
    splits = {split: salicon_split(folder, split) for split in ("train", "val")}
    train = datasets.salicon_records(*splits["train"], limit=train_images)
    val = datasets.salicon_records(*splits["val"], limit=val_images)
    for split, records in (("train", train), ("val", val)):
        if not records:
            raise ValueError(f"{splits[split][0]}: no SALICON {split} images with fixations")
    where = "demo world (synthetic)" if is_demo else str(folder)
    return TrainingData(f"SALICON train ({len(train)} images; {len(val)} val images for model selection; {where})",
                        load_items(train, size), load_items(val, size),
                        "demo-salicon" if is_demo else f"salicon-{folder.name}", is_demo)


def free_viewing_training_data(free: Any, train_records: Sequence[Any], size: tuple[int, int]) -> TrainingData:
    """The demo default: ``train_records`` of a free-viewing set (``sources.FreeViewing``), no
    validation set."""
    if not train_records:
        raise ValueError(f"{free.root}: no training images in the free-viewing split")
    return TrainingData(f"{free.name} ({len(train_records)} training images; no validation set)",
                        load_items(train_records, size), None, "demo" if free.is_demo else free.root.name,
                        free.is_demo)


def training_data(train_set: str, size: tuple[int, int], *, train_images: int, val_images: int,
                  salicon: str | Path | None = "auto", free: Any = None,
                  train_records: Sequence[Any] | None = None) -> TrainingData:
    """What chapters 7 and 8 train on: ``train_set`` resolved (``resolve_train_set``; ``"auto"`` with
    no free-viewing split given reads SALICON), then SALICON train + val or the free-viewing split."""
    chosen = resolve_train_set(train_set, salicon, free_viewing=train_records is not None)
    if chosen == "salicon":
        return salicon_training_data(size, train_images, val_images, root=salicon)
    if free is None or train_records is None:
        raise ValueError("train_set='nus_scene' needs a free-viewing set and its training split")
    return free_viewing_training_data(free, train_records, size)


def build_model(name: str, weights: str | Path | None = None) -> Any:
    """``"CMRNet"``, ``"UNISAL"`` or ``"MSI-Net"``, randomly initialised or with local weights: the
    registry's :func:`hsi_core.models.registry.build_model`, restricted to the LG tables' deep models
    (``DEEP_MODELS``; used by the log-gabor tests and ``benchmarks/bench_models.py``)."""
    from hsi_core.models import build_model as build

    if name not in DEEP_MODELS:
        raise ValueError(f"build_model: unknown model {name!r}; one of {DEEP_MODELS}")
    return build(name, weights)


def train_saliency_model(model: Any, items: Any, *, run_dir: str | Path, epochs: int = 60, batch_size: int = 8,
                         lr: float = 1e-3, lr_step: int = 2, device: str = "cpu", seed: int = 0,
                         progress: bool = False, val_items: Any = None) -> list[dict[str, float]]:
    """Train with the loggabor paper's recipe (Section III-B: LG Eq. 11-12 loss, Adam 1e-3, x0.1 every
    2 epochs, 60 epochs, batch 8 — the defaults) through ``training.fit`` (checkpoints, resume: a
    finished run in ``run_dir`` is reused). With ``val_items`` (SALICON val) the LG Eq. 11-12 loss on
    them is measured after each epoch and the best epoch's weights are loaded at the end (model
    selection); without, the last epoch's are kept. Returns the per-epoch history (``train_loss``,
    and ``val_loss`` with ``val_items``)."""
    from torch.utils.data import DataLoader

    from hsi_core import losses, training

    loss = training.saliency_batch_loss(losses.normalized_l1_loss)
    val_loader = None if val_items is None else DataLoader(val_items, batch_size=batch_size, shuffle=False)
    result = training.fit(model, items, loss_fn=loss, epochs=epochs, run_dir=run_dir, batch_size=batch_size, lr=lr,
                          lr_step=lr_step, device=device, seed=seed, progress=progress, val_loader=val_loader,
                          select_best=("val_loss", "min"))
    if val_items is not None:
        if result.best_path is None:
            raise RuntimeError(f"{run_dir}: training with a validation set wrote no best.pt")
        training.load_weights(model, result.best_path)
    model.to(device).eval()
    return result.history


def paper_table(dataset: str) -> Any:
    """One of LG Tables I-III as a DataFrame (rows: models; columns: SIM, CC, sAUC, AUC-Judd)."""
    import pandas as pd

    if dataset not in paper.LOGGABOR_TABLES_I_III:
        raise ValueError(f"paper_table: unknown dataset {dataset!r}; one of {sorted(paper.LOGGABOR_TABLES_I_III)}")
    return pd.DataFrame.from_dict(paper.LOGGABOR_TABLES_I_III[dataset], orient="index", columns=list(TABLE_METRICS))


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

    from hsi_core.datasets import resize_fixations
    from hsi_core.maps import resize, top_fraction_fixations

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
            sal = resize(item.density(), size) if item.fixation_map_path is not None else saliency_map(fix.float(), sigma_fraction * w)
        elif item.fixation_map_path is not None:
            sal = resize(item.density(), size)
            fix = top_fraction_fixations(sal, top_fraction, method="quantile")
            stand_ins += 1
        else:
            raise FileNotFoundError(f"{item.name}: neither fixation locations nor a density map")
        if not fix.any() or float(sal.max() - sal.min()) == 0:
            raise ValueError(f"{item.name}: empty fixations or a constant saliency map")
        out.append({"image": torch.from_numpy(rgb).permute(2, 0, 1).contiguous(), "saliency": sal, "fixations": fix, "index": i})
    return out, stand_ins
