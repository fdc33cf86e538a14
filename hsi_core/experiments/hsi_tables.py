"""The HSI experiments of Tables 1-3 (HSI paper, "Experimental Setup" and "Ablation Study").

Pretraining of HSI (HSI Eq. 11) and of the image-only baseline on pseudo-labelled SALICON (HSI Algorithm 1),
then five-fold finetuning on HSB (HSI Eq. 12): HSI with and without finetuning (Table 1), HSI against the
baseline (Table 2), the baseline from its pretrained weights against random weights (Table 3). The
training itself is ``hsi_core.training.fit`` (workers, bf16 autocast and channels-last on CUDA,
checkpoints, exact resume, DDP).

Open readings, each a parameter of ``run_hsi_tables`` (both shown in chapter 04):

- Table 3's "random": ``table3_random="whole"`` re-initialises the whole baseline (image encoder
  included; the paper: "the model weights were initialized randomly"), ``"decoder"`` only its decoder
  on top of the same image encoder as the pretrained row.
- Table 2's baseline pretraining data: ``baseline_salicon="all"`` uses every SALICON image with its
  free-viewing map (the paper: "Neither pretraining or finetuning used the objects information"),
  ``"objects"`` only the images where an object passes HSI Algorithm 1 (HSI's pretraining set).
- HSB releases saliency maps, not fixation points: NSS is computed on the top 2 % of each HSB map
  (``datasets.HSBDataset``), stated in the tables' captions (``HSB_FIXATION_SOURCE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import json
import warnings

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from hsi_core import paper
from hsi_core.io import atomic_write_json
from hsi_core.models.hsi import image_features, run_decoder
from hsi_core.training import (TrainResult, adam, checkpoint_sizes, fit, load_weights, loader_options, move_batch,
                               resolve_speedups, step)

# HSI paper, "Experimental Setup": Adam 1e-4, x0.1 every 10 epochs, 20 pretraining epochs with the best
# epoch on the pretraining validation set kept; 5-fold finetuning on HSB from those weights, 20 epochs,
# the final epoch of each fold evaluated on the fold. Loss weights (1, -1, -1) throughout.
HSI_LR = 1e-4
HSI_LR_STEP = 10
HSI_LR_GAMMA = 0.1
HSI_PRETRAIN_EPOCHS = 20
HSI_FINETUNE_EPOCHS = 20
HSI_FOLDS = 5
TABLE_COLUMNS = ("CC", "KLdiv", "NSS", "SIM")
#: Where NSS's fixations come from on HSB (it releases maps only); for the captions of Tables 1-3.
HSB_FIXATION_SOURCE = ("HSB releases saliency maps, not fixation points: NSS uses the top 2 % of each "
                       "HSB map as its fixations")
#: Readings of Table 3's "random" and of the Table 2 baseline's pretraining data (see the module docstring).
TABLE3_RANDOM = ("whole", "decoder")
BASELINE_SALICON = ("all", "objects")


def __getattr__(name: str) -> Any:
    # names kept for one release: the paper's tables are read from hsi_core.paper, a column's direction
    # from hsi_core.metrics
    from hsi_core import metrics

    moved = {"PAPER_TABLES": ("hsi_core.paper.HSI_TABLES_1_3", lambda: paper.HSI_TABLES_1_3),
             "LOWER_IS_BETTER": ("hsi_core.metrics.lower_is_better(column)",
                                 lambda: tuple(c for c in TABLE_COLUMNS if metrics.lower_is_better(c)))}
    if name in moved:
        instead, value = moved[name]
        warnings.warn(f"hsi_core.experiments.hsi_tables.{name} is deprecated; use {instead}",
                      DeprecationWarning, stacklevel=2)
        return value()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def hsi_vocabulary(extra: Sequence[str] = ()) -> list[str]:
    """The label vocabulary: the 20 HSB classes (so an HSB class index is its vocabulary index), then
    any other names (e.g. COCO categories met in pretraining)."""
    from hsi_core.datasets import HSB_CLASSES

    vocab = list(HSB_CLASSES)
    return vocab + [name for name in dict.fromkeys(extra) if name not in vocab]


# ----------------------------------------------------------------------------- frozen-encoder cache
class EncodedDataset(Dataset):
    """A dataset whose images were run once through a frozen image encoder: each item holds ``enc``
    (``u4p``, ``u5``, ``z``) instead of ``image``, and every other tensor field of the source item."""

    def __init__(self, fields: dict[str, torch.Tensor], enc: dict[str, torch.Tensor]) -> None:
        n = {len(v) for v in [*fields.values(), *enc.values()]}
        if len(n) != 1:
            raise ValueError(f"EncodedDataset: fields of different lengths {sorted(n)}")
        self.fields, self.enc = fields, enc

    def __len__(self) -> int:
        return len(next(iter(self.enc.values())))

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"enc": {k: v[i] for k, v in self.enc.items()}, **{k: v[i] for k, v in self.fields.items()}}


@torch.no_grad()
def encode_dataset(model: nn.Module, dataset: Dataset, *, batch_size: int = 16, device: str | torch.device = "cpu",
                   progress: bool = True, num_workers: int = 0, amp: bool | None = None) -> EncodedDataset:
    """Run every image of ``dataset`` once through ``model.encode_image`` (eval mode: BatchNorm uses its
    running statistics, so a cached feature does not depend on its batch) and keep the features
    (float32, on the CPU). ``num_workers`` decode images in parallel; ``amp`` (default on CUDA) runs
    the encoder under bfloat16 autocast."""
    device = torch.device(device)
    use_amp, _ = resolve_speedups(device, amp, False)
    was_training = model.training
    model.to(device).eval()
    enc: dict[str, list[torch.Tensor]] = {"u4p": [], "u5": [], "z": []}
    fields: dict[str, list[torch.Tensor]] = {}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        **loader_options(device, num_workers, persistent_workers=False))
    for batch in tqdm(loader, desc="encoding images", disable=not progress, leave=False):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = model.encode_image(batch["image"].to(device, non_blocking=True))
        for k in enc:
            enc[k].append(out[k].float().cpu())
        for k, v in batch.items():
            if k != "image" and isinstance(v, torch.Tensor):
                fields.setdefault(k, []).append(v)
    model.train(was_training)
    return EncodedDataset({k: torch.cat(v) for k, v in fields.items()}, {k: torch.cat(v) for k, v in enc.items()})


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, images: Iterable[torch.Tensor],
                          forward: Callable[[torch.Tensor], Any] | None = None,
                          device: str | torch.device = "cpu") -> int:
    """Re-estimate every BatchNorm's running mean and variance as the plain average over ``images``
    (batches), the "precise BN" pass. A randomly initialised CLIP encoder has the default statistics
    (mean 0, variance 1), so in eval mode its features shrink layer after layer (about 1e-3 at u5);
    after this pass they are normalised as in training. Not needed with CLIP's own weights.

    ``forward`` (default ``module``) maps a batch of images to features, e.g. ``hsi.encode_image``.
    Everything runs on ``device``: ``module`` and, when ``forward`` is a bound method, the module it
    belongs to (an ``HSI``, whose CLIP mean/std buffers normalise the images) are moved there first.
    Returns the number of BatchNorm layers updated."""
    device = torch.device(device)
    owner = getattr(forward, "__self__", None)
    for m in (module, owner):
        if isinstance(m, nn.Module):
            m.to(device)
    forward = forward or module
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    for batch in images:
        forward(batch.to(device, non_blocking=True))
    for m, (momentum, training) in zip(norms, saved):
        m.momentum = momentum
        m.train(training)
    return len(norms)


class HSIHead(nn.Module):
    """The trainable part of an ``HSI``/``HSIBaseline`` whose image encoder is frozen: the decoder and
    (when trainable) the label-embedding table, fed with cached encoder features. Same maps as the
    full model on the same features (it reuses the model's decoding, HSI Eq. 1 and Figure 7)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        import copy

        self.kind = type(model)
        self.uses_text = model.uses_text
        self.image_size = model.image_size
        self.labels = list(model.labels)
        self.decoder = copy.deepcopy(model.decoder)
        if self.uses_text:
            table = model.text_embeddings.detach().clone()
            if isinstance(model.text_embeddings, nn.Parameter):
                self.text_embeddings = nn.Parameter(table)
            else:
                self.register_buffer("text_embeddings", table)

    def features(self, enc: dict[str, torch.Tensor]) -> torch.Tensor:
        return image_features(enc)

    def decode(self, features: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        return run_decoder(self.decoder, features, a, self.image_size)

    def export_to(self, model: nn.Module) -> nn.Module:
        """Copy the trained decoder (and label table) into a full model with the same encoder."""
        missing = model.load_state_dict(self.state_dict(), strict=False)
        if missing.unexpected_keys:
            raise ValueError(f"HSIHead.export_to: unexpected keys {missing.unexpected_keys}")
        return model

    def forward(self, x: dict[str, torch.Tensor], label_ids: torch.Tensor | None = None) -> dict[str, Any]:
        return _hsi_maps(self, x, label_ids)


class HSIFull(nn.Module):
    """The whole model under training (image encoder included unless the model froze it, in which
    case its BatchNorm stays in eval mode), with the same call as ``HSIHead``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.uses_text, self.image_size, self.labels = model.uses_text, model.image_size, list(model.labels)

    def train(self, mode: bool = True) -> "HSIFull":
        super().train(mode)
        if getattr(self.model, "freeze_image", False):
            self.model.visual.eval()
        return self

    @property
    def text_embeddings(self) -> torch.Tensor:
        return self.model.text_embeddings

    def features(self, enc: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.features(enc)

    def decode(self, features: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        return self.model.decode(features, a)

    def forward(self, x: torch.Tensor, label_ids: torch.Tensor | None = None) -> dict[str, Any]:
        return _hsi_maps(self, self.model.encode_image(x), label_ids)


def _hsi_maps(net: Any, enc: dict[str, torch.Tensor], label_ids: torch.Tensor | None) -> dict[str, Any]:
    """Saliency maps from encoder features: ``label_ids (B,)`` -> ``saliency (B, S, S)`` and the score map
    (HSI Eq. 1); ``label_ids (B, N)`` -> the ``N`` conditional maps ``(B, N, S, S)`` and score maps ``(B, N, h, w)``
    (HSI Eq. 8-9 input). The baseline ignores labels (its ``N`` maps are one map repeated)."""
    from hsi_core.models.hsi import score_map

    feats = net.features(enc)
    if not net.uses_text:
        sal = net.decode(feats, None)
        if label_ids is not None and label_ids.ndim == 2:
            sal = sal.unsqueeze(1).expand(-1, label_ids.shape[1], -1, -1)
        return {"saliency": sal, "score_maps": None}
    if label_ids is None:
        raise ValueError("HSI needs label ids (B,) or (B, N)")
    a = score_map(enc["z"], net.text_embeddings[label_ids].to(enc["z"].dtype))
    if label_ids.ndim == 1:
        return {"saliency": net.decode(feats, a), "score_maps": a}
    b, n = label_ids.shape
    sal = net.decode(feats.repeat_interleave(n, 0), a.flatten(0, 1))
    return {"saliency": sal.view(b, n, *sal.shape[-2:]), "score_maps": a}


def trainable(model: nn.Module, *, encoded: bool) -> nn.Module:
    """``HSIHead`` (cached features of a frozen encoder) or ``HSIFull`` around an ``HSI``/``HSIBaseline``."""
    return HSIHead(model) if encoded else HSIFull(model)


# ----------------------------------------------------------------------------- losses as loss_fn
def _inputs(batch: dict[str, Any]) -> Any:
    return batch["enc"] if "enc" in batch else batch["image"]


def hsi_pretrain_loss_fn(model: nn.Module, batch: dict[str, Any], device: torch.device) -> torch.Tensor:
    """HSI Eq. 11 for the HSI model (HSI Eq. 8 on the pseudo-labels + HSI Eq. 10 on H(p), HSI Eq. 9);
    the image-only baseline, which has no objects, trains on the passive-viewing map alone (HSI Eq. 4),
    as the HSI Table 2 baseline.
    The losses run in float32 outside autocast (the model's forward may be bf16)."""
    from hsi_core import losses

    out = model(_inputs(batch), batch.get("obj_labels"))
    with torch.autocast(device.type, enabled=False):  # the losses' sums and dot products in float32
        if out["score_maps"] is None:
            sal = out["saliency"][:, 0] if out["saliency"].ndim == 4 else out["saliency"]
            return losses.saliency_loss(sal.float(), batch["saliency"].float(), batch["fixations"])
        return losses.pretrain_loss(out["saliency"].float(), out["score_maps"].float(), batch["obj_saliency"].float(),
                                    batch["obj_fixations"], batch["saliency"].float(), batch["fixations"],
                                    batch["valid"])


def hsi_finetune_loss_fn(model: nn.Module, batch: dict[str, Any], device: torch.device) -> torch.Tensor:
    """HSI Eq. 12 on HSB: the map for the image's one label against its saliency map and fixations."""
    from hsi_core import losses

    out = model(_inputs(batch), batch["label"])
    with torch.autocast(device.type, enabled=False):  # in float32, as the pretraining loss
        return losses.finetune_loss(out["saliency"].float(), batch["saliency"].float(), batch["fixations"])


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict_dataset(model: nn.Module, dataset: Dataset, *, batch_size: int = 16,
                    device: str | torch.device = "cpu", num_workers: int = 0, amp: bool | None = None,
                    channels_last: bool | None = None) -> dict[str, torch.Tensor]:
    """Maps for every HSB-style item (its own label): ``pred``, ``saliency``, ``fixations`` ``(B, S, S)``
    and ``index``, on the CPU (``pred`` in float32). bfloat16 autocast and channels-last on CUDA by default."""
    device = torch.device(device)
    use_amp, use_cl = resolve_speedups(device, amp, channels_last)
    model.to(device).eval()
    if use_cl:
        model.to(memory_format=torch.channels_last)
    out: dict[str, list[torch.Tensor]] = {"pred": [], "saliency": [], "fixations": [], "index": []}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False,
                        **loader_options(device, num_workers, persistent_workers=False))
    for batch in loader:
        batch = move_batch(batch, device, channels_last=use_cl)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            pred = model(_inputs(batch), batch["label"])["saliency"]
        out["pred"].append(pred.float().cpu())
        for k in ("saliency", "fixations", "index"):
            out[k].append(batch[k].cpu())
    return {k: torch.cat(v) for k, v in out.items()}


#: Conventions for a prediction where a metric is undefined (a flat map): ``"pysaliency"`` scores CC
#: and NSS 0 (what pysaliency returns for a constant map: no correlation, no fixation above the mean)
#: and SIM as pysaliency does, on the map normalised to sum one (a uniform map), with KL as for any
#: map; ``"raise"`` refuses the map (``metrics``' own behaviour).
UNDEFINED_CONVENTIONS = ("pysaliency", "raise")


def score_predictions(pred: torch.Tensor, saliency: torch.Tensor, fixations: torch.Tensor, *,
                      undefined: str = "pysaliency") -> dict[str, np.ndarray]:
    """The paper's four metrics per image, batched (``hsi_core.metrics``): CC, KLdiv, NSS, SIM, and
    ``flat`` (the prediction was a constant map). Maps are scored in float32 (a bf16 prediction is
    upcast first). A flat map is scored by the ``undefined`` convention (``UNDEFINED_CONVENTIONS``):
    a collapsed model is a result (scored and counted), never an exception after training."""
    from hsi_core import metrics

    if undefined not in UNDEFINED_CONVENTIONS:
        raise ValueError(f"score_predictions: undefined must be one of {UNDEFINED_CONVENTIONS}, got {undefined!r}")

    def values(t: Any) -> np.ndarray:
        return np.asarray(t.cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64)

    pred, saliency = pred.float(), saliency.float()
    flat = metrics.is_flat(pred) if undefined == "pysaliency" else torch.zeros(len(pred), dtype=torch.bool)
    ok = ~flat
    n = len(pred)
    out = {"CC": np.zeros(n), "KLdiv": values(metrics.kl_div(pred, saliency)), "NSS": np.zeros(n), "SIM": np.zeros(n)}
    if ok.any():
        idx = ok.numpy()
        out["CC"][idx] = values(metrics.cc(pred[ok], saliency[ok]))
        out["NSS"][idx] = values(metrics.nss(pred[ok], fixations[ok]))
        out["SIM"][idx] = values(metrics.sim(pred[ok], saliency[ok]))
    if flat.any():  # SIM of the uniform distribution against the map normalised to sum one
        g = saliency[flat].double().flatten(1)
        g = g / g.sum(1, keepdim=True)
        out["SIM"][flat.numpy()] = values(torch.minimum(g, torch.full_like(g, 1.0 / g.shape[1])).sum(1))
    out["flat"] = flat.numpy().copy()
    return out


def fold_table(per_image: "Any", columns: Sequence[str] = TABLE_COLUMNS) -> "Any":
    """Five-fold cross-validation numbers as the paper reports them: the mean over folds of each
    fold's mean (``per_image`` needs a ``fold`` column)."""
    return per_image.groupby("fold")[list(columns)].mean().mean()


# ----------------------------------------------------------------------------- the two stages
def pretrain_hsi(model: nn.Module, train_set: Dataset, val_set: Dataset, *, run_dir: str | Path,
                 epochs: int = HSI_PRETRAIN_EPOCHS, batch_size: int = 8, lr: float = HSI_LR,
                 lr_step: int = HSI_LR_STEP, lr_gamma: float = HSI_LR_GAMMA, device: str | torch.device = "cpu",
                 seed: int = 0, progress: bool = True, amp: bool | None = None, channels_last: bool | None = None,
                 meta: dict[str, Any] | None = None, max_steps: int | None = None, num_workers: int = 0,
                 pin_memory: bool | None = None, persistent_workers: bool = True,
                 keep_optimizer: bool = False, resumable_every_epochs: int | None = 1,
                 resumable_every_minutes: float | None = None) -> TrainResult:
    """Pretraining on pseudo-labelled SALICON (``pseudo_labels.PseudoLabelCache``, or its
    ``EncodedDataset``): HSI Eq. 11 for the HSI model, HSI Eq. 4 on the passive-viewing maps for the
    baseline; the epoch with the lowest loss on ``val_set`` is kept in ``run_dir/best.pt`` (the paper: "selected the model
    weights performing the best on the validation set of the pretraining dataset"). ``model`` is
    ``trainable(...)``'s wrapper. Loader and speed options as ``training.fit``."""
    val_loader = DataLoader(val_set, batch_size=batch_size, shuffle=False,
                            **loader_options(device, num_workers, pin_memory, persistent_workers))
    return fit(model, train_set, loss_fn=hsi_pretrain_loss_fn, epochs=epochs, run_dir=run_dir,
               optimizer_factory=adam(lr), scheduler_factory=step(lr_step, lr_gamma), val_loader=val_loader,
               select_best=("val_loss", "min"), device=device, seed=seed, amp=amp, channels_last=channels_last,
               progress=progress, batch_size=batch_size, meta=meta, max_steps=max_steps, num_workers=num_workers,
               pin_memory=pin_memory, persistent_workers=persistent_workers, keep_optimizer=keep_optimizer,
               resumable_every_epochs=resumable_every_epochs, resumable_every_minutes=resumable_every_minutes)


def finetune_hsi_kfold(make_model: Callable[[], nn.Module], dataset: Dataset, folds: Sequence[int], *,
                       run_dir: str | Path, epochs: int = HSI_FINETUNE_EPOCHS, finetune: bool = True,
                       batch_size: int = 8, lr: float = HSI_LR, lr_step: int = HSI_LR_STEP,
                       lr_gamma: float = HSI_LR_GAMMA, device: str | torch.device = "cpu", seed: int = 0,
                       progress: bool = True, amp: bool | None = None, channels_last: bool | None = None,
                       meta: dict[str, Any] | None = None, predictions: dict[int, torch.Tensor] | None = None,
                       held_out: Sequence[int] | None = None, num_workers: int = 0, pin_memory: bool | None = None,
                       persistent_workers: bool = True, keep_optimizer: bool = False,
                       resumable_every_epochs: int | None = 1, resumable_every_minutes: float | None = None,
                       bytes_written: dict[str, int] | None = None, undefined: str = "pysaliency") -> "Any":
    """K-fold finetuning on HSB (HSI Eq. 12): for each fold ``k``, a model from ``make_model()`` (e.g. the best
    pretrained weights) is trained on the other folds for ``epochs`` epochs and its final epoch is
    scored on fold ``k`` (the paper: "took the model from the final epoch"). ``finetune=False`` scores
    ``make_model()`` as it is (Table 1, w.o.). ``folds[i]`` is item ``i``'s fold. Returns per-image
    metrics with a ``fold`` column; a dict passed as ``predictions`` receives each held-out item's
    predicted map by its ``index``; ``held_out`` restricts the folds held out in turn (default: every
    fold). A finished fold's ``last.pt`` keeps its weights without the optimiser state
    (``keep_optimizer=False``); ``resumable_every_*`` as ``training.fit``; a dict passed as
    ``bytes_written`` receives each fold's checkpoint bytes. Flat predictions are scored by the
    ``undefined`` convention (``score_predictions``) and flagged in the ``flat`` column."""
    import pandas as pd

    folds = np.asarray(folds)
    if len(folds) != len(dataset):
        raise ValueError(f"finetune_hsi_kfold: {len(folds)} fold ids for {len(dataset)} items")
    present = np.unique(folds)
    if finetune and len(present) < 2:
        raise ValueError(f"finetune_hsi_kfold: need at least two folds, got {present.tolist()}")
    ids = present if held_out is None else np.asarray(list(held_out))
    if not np.isin(ids, present).all():
        raise ValueError(f"finetune_hsi_kfold: held-out folds {ids.tolist()} not among the folds {present.tolist()}")
    frames = []
    for k in tqdm(ids, desc="folds", disable=not progress, leave=False):
        held_out_set = torch.utils.data.Subset(dataset, np.flatnonzero(folds == k).tolist())
        model = make_model()
        if finetune:
            train = torch.utils.data.Subset(dataset, np.flatnonzero(folds != k).tolist())
            fold_dir = Path(run_dir) / f"fold{int(k)}"
            done = fit(model, train, loss_fn=hsi_finetune_loss_fn, epochs=epochs, run_dir=fold_dir,
                       optimizer_factory=adam(lr), scheduler_factory=step(lr_step, lr_gamma), device=device,
                       seed=seed + int(k), amp=amp, channels_last=channels_last, progress=progress,
                       batch_size=batch_size, meta={**(meta or {}), "fold": int(k)}, num_workers=num_workers,
                       pin_memory=pin_memory, persistent_workers=persistent_workers, keep_optimizer=keep_optimizer,
                       resumable_every_epochs=resumable_every_epochs, resumable_every_minutes=resumable_every_minutes)
            if bytes_written is not None:
                bytes_written[f"{Path(run_dir).name}/fold{int(k)}"] = done.bytes_written
        out = predict_dataset(model, held_out_set, batch_size=batch_size, device=device, num_workers=num_workers,
                              amp=amp, channels_last=channels_last)
        scores = pd.DataFrame({"fold": int(k), "index": out["index"].numpy(),
                               **score_predictions(out["pred"], out["saliency"], out["fixations"], undefined=undefined)})
        if predictions is not None:
            predictions.update({int(i): p for i, p in zip(out["index"], out["pred"])})
        frames.append(scores)
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- Tables 1-3
@dataclass
class HSIExperiments:
    """Everything Tables 1-3 and Figure 10 need. ``per_image[name]`` holds per-image fold metrics of
    ``"HSI w. finetuning"``, ``"HSI w.o. finetuning"``, ``"baseline (pretrained)"`` and, for each
    Table 3 reading run, ``random_run_name(reading)``."""

    per_image: dict[str, Any]
    pretrain_history: dict[str, list[dict[str, float]]]
    predictions: dict[str, dict[int, torch.Tensor]]
    two_objects: np.ndarray | None
    hsb: Any
    meta: dict[str, Any]
    run_dir: Path
    #: The HSI for Table 4 in ``save_hsi`` format (``HSITablesConfig.final_model`` says which).
    model_path: Path | None = None
    config: "HSITablesConfig | None" = None


def random_run_name(reading: str) -> str:
    """The run name of Table 3's "random" row under ``reading`` (``"whole"`` or ``"decoder"``)."""
    if reading not in TABLE3_RANDOM:
        raise ValueError(f"Table 3 'random' reading must be one of {TABLE3_RANDOM}, got {reading!r}")
    return {"whole": "baseline (random, whole model)", "decoder": "baseline (random decoder)"}[reading]


def two_object_flags(hsb_root: str | Path, items: Sequence[Any]) -> np.ndarray | None:
    """For the demo world's HSB images, whether each holds a second object of another label (read from
    the planted ``truth.json`` one level above ``hsb_root``); ``None`` for data without that file."""
    import json

    truth_path = Path(hsb_root).parent / "truth.json"
    if not truth_path.is_file():
        return None
    truth = json.loads(truth_path.read_text()).get("hsb", {})
    flags = []
    for item in items:
        key = Path(item.image_path).relative_to(Path(hsb_root)).as_posix()
        if key not in truth:
            raise ValueError(f"{truth_path}: no entry for HSB image {key}")
        flags.append(len({o["label"] for o in truth[key]["objects"]}) > 1)
    return np.asarray(flags)


def _config_key(config: dict[str, Any]) -> str:
    import hashlib
    import json

    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:10]


def prepare_pretraining_cache(root: Path, split: str, cache_dir: Path, *, image_size: int, t_a: float, t_r: float,
                              reading: str, limit: int | None, workers: int, progress: bool) -> Path:
    """HSI Algorithm 1 once over a SALICON split into ``cache_dir`` (``pseudo_labels.prepare``, as ``hsi prepare``
    writes it; an existing cache with the same settings and sources is reused, one with other settings raises)."""
    from hsi_core import pseudo_labels

    return pseudo_labels.prepare(root / f"salicon/annotations/fixations_{split}2014.json", root / f"salicon/images/{split}",
                                 root / f"coco/annotations/instances_{split}2014.json", cache_dir, size=image_size,
                                 t_a=t_a, t_r=t_r, sigma=pseudo_labels.SIGMA, reading=reading, workers=workers,
                                 limit=limit, progress=progress)


def salicon_free_viewing(root: Path, split: str, *, image_size: int, limit: int | None) -> Dataset:
    """Every SALICON image of ``split`` with its free-viewing map (fixations blurred with sigma 19 px at
    640 px width, SALICON's recipe) and fixations, computed per item: the Table 2 baseline's
    pretraining set in the paper's reading (no object information, so no image is left out).
    Training reads it through ``FreeViewingCache`` (computed once)."""
    from hsi_core import datasets, pseudo_labels

    records = datasets.salicon_records(root / f"salicon/annotations/fixations_{split}2014.json",
                                       root / f"salicon/images/{split}", limit=limit)
    if not records:
        raise ValueError(f"{root / 'salicon'}: no SALICON {split} images")
    return datasets.records_dataset(records, (image_size, image_size), pseudo_labels.SIGMA / 640)


_FREE_VIEWING_FILES = ("images", "saliency", "fixations")


def prepare_free_viewing(source: Dataset, cache_dir: str | Path, *, workers: int = 0, batch_size: int = 32,
                         progress: bool = True) -> Path:
    """Write ``source``'s items (``image``, ``saliency``, ``fixations`` at training size) once into
    ``cache_dir`` as ``.npy`` arrays (uint8 images, float16 maps, bool fixations), streamed batch by
    batch (memory does not grow with the set) by ``workers`` processes. The arrays are written in a
    temporary folder renamed into place when complete, so a killed run leaves no cache that looks
    finished (it starts again). Returns ``cache_dir``."""
    import shutil

    cache_dir = Path(cache_dir)
    if (cache_dir / "done.json").is_file():
        return cache_dir
    n = len(source)
    first = source[0]
    s = tuple(first["saliency"].shape)
    tmp = cache_dir.with_name(cache_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    arrays = {"images": np.lib.format.open_memmap(tmp / "images.npy", "w+", np.uint8, (n, 3, *s)),
              "saliency": np.lib.format.open_memmap(tmp / "saliency.npy", "w+", np.float16, (n, *s)),
              "fixations": np.lib.format.open_memmap(tmp / "fixations.npy", "w+", np.bool_, (n, *s))}
    loader = DataLoader(source, batch_size=batch_size, shuffle=False, num_workers=workers)
    done = 0
    for batch in tqdm(loader, desc=f"free-viewing maps -> {cache_dir.name}", disable=not progress, leave=False):
        k = len(batch["image"])
        arrays["images"][done:done + k] = (batch["image"] * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        arrays["saliency"][done:done + k] = batch["saliency"].numpy().astype(np.float16)
        arrays["fixations"][done:done + k] = batch["fixations"].numpy()
        done += k
    for a in arrays.values():
        a.flush()
    del arrays
    atomic_write_json(tmp / "done.json", {"items": n, "size": list(s)})
    shutil.rmtree(cache_dir, ignore_errors=True)
    tmp.rename(cache_dir)
    return cache_dir


class FreeViewingCache(Dataset):
    """Items of ``prepare_free_viewing``'s cache (memory-mapped): ``image (3, S, S)`` in [0, 1],
    ``saliency (S, S)``, ``fixations (S, S)`` bool, ``index``. A cache without ``done.json`` or with
    truncated arrays raises."""

    def __init__(self, cache_dir: str | Path) -> None:
        self.cache_dir = Path(cache_dir)
        done = self.cache_dir / "done.json"
        if not done.is_file():
            raise FileNotFoundError(f"{done}: missing, so {self.cache_dir} is not a finished free-viewing cache")
        self.n = int(json.loads(done.read_text())["items"])
        self._arrays: dict[str, np.ndarray] = {}
        for name in _FREE_VIEWING_FILES:
            try:
                a = np.load(self.cache_dir / f"{name}.npy", mmap_mode="r")
            except (ValueError, OSError) as error:
                raise ValueError(f"{self.cache_dir / name}.npy: truncated or corrupt ({error})") from error
            if len(a) != self.n:
                raise ValueError(f"{self.cache_dir / name}.npy: {len(a)} items, done.json says {self.n}")
            self._arrays[name] = a

    def __getstate__(self) -> dict[str, Any]:  # workers re-map the files
        return {"cache_dir": self.cache_dir, "n": self.n, "_arrays": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["cache_dir"])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self.n:
            raise IndexError(f"FreeViewingCache: index {i} out of range ({self.n} items)")
        a = self._arrays
        return {"image": torch.from_numpy(np.array(a["images"][i])).float().div_(255.0),
                "saliency": torch.from_numpy(np.asarray(a["saliency"][i], dtype=np.float32)),
                "fixations": torch.from_numpy(np.array(a["fixations"][i])), "index": i}


#: Which model ``run_hsi_tables`` saves as ``hsi_finetuned.pt`` (the HSI of Table 4; see HSITablesConfig).
FINAL_MODELS = ("all", "fold")
#: Settings that do not change what is computed, left out of the run directory's hash.
_RUN_ONLY_SETTINGS = ("device", "run_dir", "progress", "num_workers", "pin_memory", "persistent_workers",
                      "pseudo_label_cache", "table3_random", "resumable_every_epochs", "resumable_every_minutes",
                      "amp", "channels_last")  # amp in effect is hashed as amp_bf16


@dataclass(frozen=True)
class HSITablesConfig:
    """Every setting of the Tables 1-3 experiments (``run_hsi_tables``), typed and frozen. Defaults are
    the paper's recipe (HSI paper, "Experimental Setup"); the chapter builds one from its parameters
    cell and prints it. ``key()`` hashes what changes the results (not the device, workers, paths or
    checkpoint cadence) into the run directory's name.

    - ``clip_weights``: local CLIP RN50 weights (None: random init, recorded in every checkpoint).
    - ``image_size``, ``hidden`` (decoder width), ``freeze_image`` (True: the encoder is frozen and
      run once per image, only the decoder and label table train).
    - ``pretrain_epochs``, ``finetune_epochs``, ``batch_size``, ``lr``, ``lr_step``, ``lr_gamma``.
    - ``folds``: how many HSB folds to hold out in turn (the first ones), or which.
    - ``t_a``, ``t_r``, ``algorithm1_reading``: HSI Algorithm 1's thresholds (None: the paper's) and the
      reading of its area test (``pseudo_labels.READINGS``).
    - ``pseudo_label_cache``: a folder holding ``train/`` and ``val/`` as written by ``hsi prepare``
      (one per SALICON split) with these settings; None: prepared under ``run_dir/pseudo_labels``.
      A cache prepared with other settings raises (``pseudo_labels.prepare`` compares them).
    - ``table3_random``, ``baseline_salicon``: the readings of Tables 3 and 2 (module docstring).
    - ``final_model``: which HSI is saved as ``hsi_finetuned.pt`` for Table 4: ``"all"`` (default)
      the best pretrained HSI finetuned on all of HSB for ``finetune_epochs`` (the paper's model for
      ImageNet saw every HSB image), ``"fold"`` the first held-out fold's finetuned model (no extra
      training; it never saw that fold).
    - ``resumable_every_epochs`` / ``resumable_every_minutes``: how often each ``fit`` writes its
      resumable state (``training.fit``); by default every 10 minutes and at the end, which keeps
      the paper-scale run's checkpoints to a few GB.
    - ``calibration_images``: HSB images for a random encoder's BatchNorm statistics (0: off).
    - ``device``, ``amp``, ``channels_last``, ``num_workers``, ``pin_memory``, ``persistent_workers``,
      ``progress``: as ``training.fit``; ``seed``; ``salicon_limit``, ``hsb_limit`` (first images only).
    """

    clip_weights: str | None = None
    image_size: int = 224
    hidden: int = 256
    freeze_image: bool = False
    pretrain_epochs: int = HSI_PRETRAIN_EPOCHS
    finetune_epochs: int = HSI_FINETUNE_EPOCHS
    batch_size: int = 8
    lr: float = HSI_LR
    lr_step: int = HSI_LR_STEP
    lr_gamma: float = HSI_LR_GAMMA
    folds: int | tuple[int, ...] = HSI_FOLDS
    seed: int = 0
    salicon_limit: int | None = None
    hsb_limit: int | None = None
    t_a: float | None = None
    t_r: float | None = None
    algorithm1_reading: str = "area_share"
    pseudo_label_cache: str | None = None
    calibration_images: int = 64
    table3_random: tuple[str, ...] = TABLE3_RANDOM
    baseline_salicon: str = "all"
    final_model: str = "all"
    resumable_every_epochs: int | None = None
    resumable_every_minutes: float | None = 10.0
    device: str = "cpu"
    amp: bool | None = None
    channels_last: bool | None = None
    num_workers: int = 0
    pin_memory: bool | None = None
    persistent_workers: bool = True
    progress: bool = True
    run_dir: str = "runs/hsi_tables"

    def __post_init__(self) -> None:
        from hsi_core import pseudo_labels

        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put("table3_random", (self.table3_random,) if isinstance(self.table3_random, str) else tuple(self.table3_random))
        if not isinstance(self.folds, int):
            put("folds", tuple(int(k) for k in self.folds))
        for name in ("clip_weights", "pseudo_label_cache", "run_dir"):
            value = getattr(self, name)
            if isinstance(value, Path):
                put(name, str(value))
        for reading in self.table3_random:
            random_run_name(reading)
        checks = [("baseline_salicon", BASELINE_SALICON), ("algorithm1_reading", pseudo_labels.READINGS),
                  ("final_model", FINAL_MODELS)]
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                raise ValueError(f"HSITablesConfig: {name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("image_size", "hidden", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"HSITablesConfig: {name} must be >= 1, got {getattr(self, name)}")

    def result_settings(self) -> dict[str, Any]:
        """The settings that change what is computed (hashed into the run directory's name)."""
        import dataclasses

        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _RUN_ONLY_SETTINGS}


def _rank0_then_all(rank: int, world: int, work: Callable[[], Any]) -> None:
    """``work()`` on rank 0 only (it writes files), then every rank waits for it (a barrier)."""
    from hsi_core.training import barrier

    if rank == 0:
        work()
    barrier(world)


def _link_latest(target: Path, link: Path) -> None:
    """``link`` -> ``target`` (a relative symbolic link, replaced atomically; a copy where links fail)."""
    import os
    import shutil

    tmp = link.with_name(f".{link.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.symlink(os.path.relpath(target, link.parent), tmp)
    except OSError:
        shutil.copyfile(target, tmp)
    os.replace(tmp, link)


def run_hsi_tables(data_root: str | Path, config: HSITablesConfig | None = None, **settings: Any) -> HSIExperiments:
    """The experiments of Tables 1-3 on a data root laid out as the demo world (``salicon/``, ``coco/``,
    ``hsb/``; see CONTRIBUTING.md): pretrain HSI (HSI Eq. 11) and the image-only baseline on SALICON, then
    5-fold finetuning on HSB of HSI from its best pretrained weights (Table 1 w., Table 2), HSI without
    finetuning (Table 1 w.o.), the baseline from its pretrained weights (Tables 2-3) and from random
    weights (Table 3). Settings: one ``HSITablesConfig`` (``config``), or its fields as keywords (a
    name it does not have raises ``TypeError``); keywords given with a config replace its fields.

    Runs are stored under ``run_dir/<config.key>`` and resume from there; its ``summary.json`` lists
    the settings, every checkpoint's size and the bytes written. The run directory also holds
    ``hsi_finetuned.pt`` (``models.hsi.save_hsi`` format, readable by ``load_hsi``): the HSI for Table 4,
    chosen by ``final_model`` (default ``"all"``: the best pretrained HSI finetuned on all of HSB);
    ``run_dir/hsi_finetuned.pt`` links to the latest run's, so chapter 5 finds chapter 4's model.

    Under ``torchrun`` (``WORLD_SIZE > 1``) every rank trains (DDP in ``training.fit``), while
    HSI Algorithm 1's cache, the free-viewing cache, the summary and ``hsi_finetuned.pt`` are written by
    rank 0 only, the other ranks waiting at a barrier.
    """
    import copy
    import dataclasses
    import os

    from hsi_core import datasets, pseudo_labels
    from hsi_core.models.hsi import HSI, HSIBaseline, save_hsi
    from hsi_core.training import distributed_context

    if config is None:
        config = HSITablesConfig(**settings)
    elif settings:
        config = dataclasses.replace(config, **settings)
    c = config
    readings = list(c.table3_random)
    root = Path(data_root)
    dev = torch.device(c.device)
    rank, world = distributed_context(dev)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(dev)
    use_amp, use_cl = resolve_speedups(dev, c.amp, c.channels_last)
    hashed = {**c.result_settings(), "data_root": str(root.resolve()), "amp_bf16": use_amp}
    base_dir = Path(c.run_dir)
    run_dir = base_dir / _config_key(hashed)
    coco_train = datasets.load_coco(root / "coco/annotations/instances_train2014.json")
    vocab = hsi_vocabulary([c_["name"] for c_ in coco_train.cats.values()])
    model_kw = dict(labels=vocab, image_size=c.image_size, hidden=c.hidden, freeze_image=c.freeze_image)
    torch.manual_seed(c.seed)
    hsi = HSI(c.clip_weights, **model_kw)
    torch.manual_seed(c.seed)
    base = HSIBaseline(c.clip_weights, **model_kw)
    meta = {**hashed, "clip_weights_source": hsi.weights_source, "clip_weights_loaded": hsi.weights_loaded,
            "table3_random": readings, "hsb_fixation_source": HSB_FIXATION_SOURCE, "world_size": world}
    hsb = datasets.HSBDataset(root / "hsb", size=(c.image_size, c.image_size))
    if c.hsb_limit is not None:
        hsb.items = hsb.items[:c.hsb_limit]
    loader_kw = dict(num_workers=c.num_workers, pin_memory=c.pin_memory, persistent_workers=c.persistent_workers)

    def calibrate(model: nn.Module) -> None:
        # random init: BatchNorm statistics from a few HSB images (see recalibrate_batchnorm)
        if model.weights_loaded or c.calibration_images <= 0:
            return
        pick = torch.randperm(len(hsb), generator=torch.Generator().manual_seed(c.seed))[:c.calibration_images].tolist()
        loader = DataLoader(torch.utils.data.Subset(hsb, pick), batch_size=c.batch_size,
                            **loader_options(dev, c.num_workers, persistent_workers=False))
        recalibrate_batchnorm(model.visual, (b["image"] for b in loader), model.encode_image, dev)
        meta["batchnorm_recalibrated_on"] = f"{len(pick)} HSB images"

    calibrate(hsi)
    base.visual.load_state_dict(hsi.visual.state_dict())  # one image encoder for both models: a fair ablation
    base.to(dev)

    cache_root = base_dir / "pseudo_labels"
    t_a = pseudo_labels.T_A if c.t_a is None else c.t_a
    t_r = pseudo_labels.T_R if c.t_r is None else c.t_r
    algorithm1 = {split: (Path(c.pseudo_label_cache) / split if c.pseudo_label_cache is not None else
                          cache_root / f"{split}_{_config_key({'size': c.image_size, 't_a': t_a, 't_r': t_r, 'limit': c.salicon_limit, 'sigma': pseudo_labels.SIGMA, 'reading': c.algorithm1_reading})}")
                  for split in ("train", "val")}
    free_dirs = {split: cache_root / f"free_viewing_{split}_{_config_key({'size': c.image_size, 'limit': c.salicon_limit})}"
                 for split in ("train", "val")}
    free_sources = ({split: salicon_free_viewing(root, split, image_size=c.image_size, limit=c.salicon_limit)
                     for split in free_dirs} if c.baseline_salicon == "all" else {})

    def prepare_caches() -> None:
        for split, folder in algorithm1.items():
            prepare_pretraining_cache(root, split, folder, image_size=c.image_size, t_a=t_a, t_r=t_r,
                                      reading=c.algorithm1_reading, limit=c.salicon_limit,
                                      workers=max(1, c.num_workers), progress=c.progress)
        for split, source in free_sources.items():
            prepare_free_viewing(source, free_dirs[split], workers=c.num_workers, progress=c.progress)

    _rank0_then_all(rank, world, prepare_caches)
    sal = {split: pseudo_labels.PseudoLabelCache(folder, vocabulary=vocab, limit=c.salicon_limit)
           for split, folder in algorithm1.items()}
    base_sal = sal if c.baseline_salicon == "objects" else {
        split: FreeViewingCache(free_dirs[split]) for split in free_dirs}
    meta["pretraining_images"] = {"HSI": {k: len(v) for k, v in sal.items()},
                                  "baseline": {k: len(v) for k, v in base_sal.items()}}
    meta["pseudo_label_cache"] = {k: str(v) for k, v in algorithm1.items()}
    fold_ids = np.asarray([it.fold for it in hsb.items])
    chosen = sorted(np.unique(fold_ids))[:c.folds] if isinstance(c.folds, int) else list(c.folds)
    encode_kw = dict(batch_size=c.batch_size, device=dev, progress=c.progress, num_workers=c.num_workers, amp=c.amp)
    if c.freeze_image:
        sets = {"HSI": {k: encode_dataset(hsi, v, **encode_kw) for k, v in sal.items()}}
        sets["baseline"] = sets["HSI"] if base_sal is sal else {
            k: encode_dataset(base, v, **encode_kw) for k, v in base_sal.items()}
        hsb_set: Dataset = encode_dataset(hsi, hsb, **encode_kw)
    else:
        sets, hsb_set = {"HSI": sal, "baseline": base_sal}, hsb

    def wrap(model: nn.Module) -> nn.Module:
        return trainable(model if c.freeze_image else copy.deepcopy(model), encoded=c.freeze_image)

    def from_checkpoint(model: nn.Module, path: Path) -> Callable[[], nn.Module]:
        def make() -> nn.Module:
            wrapped = wrap(model)
            load_weights(wrapped, path)
            return wrapped
        return make

    common = dict(batch_size=c.batch_size, lr=c.lr, lr_step=c.lr_step, lr_gamma=c.lr_gamma, device=dev, seed=c.seed,
                  progress=c.progress, amp=c.amp, channels_last=c.channels_last,
                  resumable_every_epochs=c.resumable_every_epochs, resumable_every_minutes=c.resumable_every_minutes,
                  **loader_kw)
    histories, best, written = {}, {}, {}
    for name, model in (("HSI", hsi), ("baseline", base)):
        result = pretrain_hsi(wrap(model), sets[name]["train"], sets[name]["val"], run_dir=run_dir / f"pretrain_{name}",
                              epochs=c.pretrain_epochs, meta={**meta, "model": name, "config": model.config()}, **common)
        histories[name], best[name], written[f"pretrain_{name}"] = result.history, result.best_path, result.bytes_written
    runs: dict[str, tuple[Callable[[], nn.Module], bool, Dataset, nn.Module]] = {
        "HSI w. finetuning": (from_checkpoint(hsi, best["HSI"]), True, hsb_set, hsi),
        "HSI w.o. finetuning": (from_checkpoint(hsi, best["HSI"]), False, hsb_set, hsi),
        "baseline (pretrained)": (from_checkpoint(base, best["baseline"]), True, hsb_set, base),
    }
    if "decoder" in readings:   # the shared image encoder, a fresh decoder (as initialised before pretraining)
        runs[random_run_name("decoder")] = (lambda: wrap(base), True, hsb_set, base)
    if "whole" in readings:     # every weight randomly initialised, the image encoder included
        torch.manual_seed(c.seed + 1)
        scratch = HSIBaseline(None, **model_kw)
        calibrate(scratch)
        scratch.to(dev)
        scratch_set = encode_dataset(scratch, hsb, **encode_kw) if c.freeze_image else hsb
        runs[random_run_name("whole")] = (lambda: wrap(scratch), True, scratch_set, scratch)
    per_image, predictions = {}, {}
    for name, (make, finetune, data, model) in runs.items():
        predictions[name] = {}
        per_image[name] = finetune_hsi_kfold(make, data, fold_ids, held_out=chosen, run_dir=run_dir / name.replace(" ", "_"),
                                             epochs=c.finetune_epochs, finetune=finetune,
                                             meta={**meta, "run": name, "config": model.config()},
                                             predictions=predictions[name], bytes_written=written, **common)

    # the HSI of Table 4 (final_model): a full model in save_hsi format, whatever was trained
    if c.final_model == "all":
        final = from_checkpoint(hsi, best["HSI"])()
        done = fit(final, hsb_set, loss_fn=hsi_finetune_loss_fn, epochs=c.finetune_epochs,
                   run_dir=run_dir / "HSI_finetuned_on_all_HSB", optimizer_factory=adam(c.lr),
                   scheduler_factory=step(c.lr_step, c.lr_gamma), device=dev, seed=c.seed, amp=c.amp,
                   channels_last=c.channels_last, progress=c.progress, batch_size=c.batch_size,
                   meta={**meta, "run": "HSI finetuned on all HSB", "config": hsi.config()}, keep_optimizer=False,
                   resumable_every_epochs=c.resumable_every_epochs, resumable_every_minutes=c.resumable_every_minutes,
                   **loader_kw)
        written["HSI_finetuned_on_all_HSB"] = done.bytes_written
        trained_on = f"all {len(hsb_set)} HSB images, {c.finetune_epochs} epochs from the best pretrained HSI"
    else:
        final = wrap(hsi)
        load_weights(final, run_dir / "HSI_w._finetuning" / f"fold{int(chosen[0])}" / "last.pt")
        trained_on = f"the HSB folds other than {int(chosen[0])} (the first held-out fold's model)"
    if isinstance(final, HSIHead):
        final = final.export_to(copy.deepcopy(hsi))
    elif isinstance(final, HSIFull):
        final = final.model
    model_path = run_dir / "hsi_finetuned.pt"

    def write_outputs() -> None:
        save_hsi(final.to("cpu").eval(), model_path, trained_on=trained_on, final_model=c.final_model,
                 run_dir=str(run_dir), settings=meta)
        _link_latest(model_path, base_dir / "hsi_finetuned.pt")
        sizes = checkpoint_sizes(run_dir)
        atomic_write_json(run_dir / "summary.json", {
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in meta.items()},
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(c).items()},
            "amp_bf16": use_amp, "channels_last": use_cl, "num_workers": c.num_workers,
            "checkpoint_bytes": sizes, "checkpoint_total_mb": round(sum(sizes.values()) / 2**20, 1),
            "checkpoint_bytes_written": {**written, "hsi_finetuned.pt": model_path.stat().st_size},
            "checkpoint_written_total_gb": round((sum(written.values()) + model_path.stat().st_size) / 1e9, 3),
            "hsi_finetuned": {"path": str(model_path), "final_model": c.final_model, "trained_on": trained_on},
            "note": "best.pt: weights only; last.pt: weights (the optimiser state is dropped once a run is finished)"})

    _rank0_then_all(rank, world, write_outputs)
    return HSIExperiments(per_image, histories, predictions, two_object_flags(root / "hsb", hsb.items), hsb,
                          meta, run_dir, model_path, config)


def flat_count(per_image: "Any") -> str:
    """``"n of N maps flat"`` for a run's per-image metrics (flat maps are scored by ``score_predictions``'
    convention, not dropped)."""
    flat = per_image["flat"].to_numpy() if "flat" in per_image else np.zeros(len(per_image), bool)
    return f"{int(flat.sum())} of {len(flat)} maps flat"


def comparison_table(ours: dict[str, Any], paper_rows: dict[str, dict[str, float]],
                     columns: Sequence[str] = TABLE_COLUMNS, flat: dict[str, str] | None = None) -> Any:
    """Deprecated (one release): use :func:`hsi_core.paper.beside_paper`, the layout :func:`tables_1_3`
    returns. Kept with its old layout, rows ``(setting, "ours" | "paper")``, built from that table."""
    import pandas as pd

    warnings.warn("hsi_core.experiments.hsi_tables.comparison_table is deprecated; use "
                  "hsi_core.paper.beside_paper (one row per setting)", DeprecationWarning, stacklevel=2)
    frame = pd.DataFrame(ours).T.assign(**({"flat maps": pd.Series(flat)} if flat else {}))
    wide = paper.beside_paper(frame, pd.DataFrame(paper_rows).T, metrics=columns,
                              extra=("flat maps",) if flat else (), missing=None)
    rows = {}
    for name in ours:
        rows[(name, "ours")] = [float(wide.at[name, (c, "ours")]) for c in columns] + \
            ([flat.get(name, "")] if flat else [])
        if name in paper_rows:
            rows[(name, "paper")] = [wide.at[name, (c, "paper")] for c in columns] + (["-"] if flat else [])
    index = pd.MultiIndex.from_tuples(list(rows), names=["setting", "source"])
    return pd.DataFrame(list(rows.values()), index=index, columns=list(columns) + (["flat maps"] if flat else []))


def tables_1_3(exp: HSIExperiments, random: str = "whole") -> dict[str, Any]:
    """HSI Tables 1-3, ours beside the paper's (:func:`hsi_core.paper.beside_paper`), from
    ``run_hsi_tables``'s per-image metrics: one row per setting, columns ``(metric, "ours")``,
    ``(metric, "paper")``, then ``("", "flat maps")`` (our flat predictions, scored CC = NSS = 0,
    pysaliency's convention) and ``("", "source")``. Table 3's "random" row is under the reading
    ``random`` (``"whole"`` or ``"decoder"``, one that was run)."""
    import pandas as pd

    t = {name: fold_table(frame) for name, frame in exp.per_image.items()}
    n_flat = {name: flat_count(frame) for name, frame in exp.per_image.items()}
    if random_run_name(random) not in t:
        raise ValueError(f"tables_1_3: Table 3 reading {random!r} was not run (run_hsi_tables(table3_random=...))")
    layout = {"Table 1": {"w. finetuning": "HSI w. finetuning", "w.o. finetuning": "HSI w.o. finetuning"},
              "Table 2": {"baseline": "baseline (pretrained)", "ours (HSI)": "HSI w. finetuning"},
              "Table 3": {"random": random_run_name(random), "pretrain": "baseline (pretrained)"}}
    tables = {}
    for table, rows in layout.items():
        ours = pd.DataFrame({row: {**t[run].to_dict(), "flat maps": n_flat[run]} for row, run in rows.items()}).T
        ours = ours.astype({c: float for c in TABLE_COLUMNS}).rename_axis("setting")
        tables[table] = paper.beside_paper(ours, f"HSI {table}", metrics=TABLE_COLUMNS, extra=("flat maps",))
    return tables


def subset_means(exp: HSIExperiments, names: Sequence[str], mask: np.ndarray) -> Any:
    """Mean metrics over the HSB images where ``mask[index]`` holds (e.g. two objects of different labels)."""
    import pandas as pd

    return pd.DataFrame({name: exp.per_image[name][mask[exp.per_image[name]["index"].to_numpy()]][list(TABLE_COLUMNS)].mean()
                         for name in names}).T
