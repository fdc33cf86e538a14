"""A small, generic training loop: progress bars, atomic checkpoints, exact resume, seeds, DDP.

``fit`` trains any model on any map-style dataset (or a ``DataLoader`` over one) with a caller's
``loss_fn(model, batch, device) -> scalar``. The data order of each epoch is drawn from a generator
seeded with ``seed + epoch``, and every checkpoint holds the model, optimiser, scheduler, the RNG
states (python, numpy, torch, cuda), the position in the epoch and the losses of the epoch so far,
so a run killed mid-epoch and started again with the same arguments ends with the same weights and
the same history as an uninterrupted run (bit-exact on the CPU; GPU kernels may add nondeterminism).

Optimiser: Adam with a step learning-rate decay, the recipe of both papers (HSI: 1e-4, x0.1 every
10 epochs; CMRNet: 1e-3, x0.1 every 2 epochs), through ``optimizer_factory`` / ``scheduler_factory``
(``adam(lr)``, ``step(10, 0.1)``) or the shorthand ``lr``, ``lr_step``, ``lr_gamma``.

Distributed data parallel: launched by ``torchrun`` (``WORLD_SIZE > 1``), ``fit`` joins the process
group (gloo on the CPU, nccl on CUDA), wraps the model in ``DistributedDataParallel``, gives each
rank its share of every epoch through ``DistributedSampler`` (seeded the same way) and writes the
checkpoints from rank 0 only. ``loss_fn`` receives the wrapped model, so it must call ``model(...)``
(the forward) rather than other methods; ``val_fn`` receives the plain module.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset
from tqdm.auto import tqdm

from hsi_core.io import atomic_save_torch, atomic_write_json

LossFn = Callable[[nn.Module, Any, torch.device], torch.Tensor]
#: ``val_fn(model, val_loader, device)`` when ``fit`` gets a ``val_loader``; ``val_fn(model, device)`` otherwise.
ValFn = Callable[..., dict[str, float]]
OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]

CHECKPOINT_VERSION = 2


@dataclass
class TrainResult:
    """What ``fit`` returns: one history record per finished epoch, the best epoch (1-based) on the
    validation metric and the paths of ``best.pt`` and ``last.pt``; ``completed`` is False when the
    call stopped early (``max_steps``)."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_path: Path | None = None
    last_path: Path | None = None
    completed: bool = False


# ----------------------------------------------------------------------------- recipes
def adam(lr: float = 1e-4, **kwargs: Any) -> OptimizerFactory:
    """Adam (both papers' optimiser) with learning rate ``lr``."""
    if not lr > 0:
        raise ValueError(f"adam: the learning rate must be positive, got {lr}")
    return lambda params: torch.optim.Adam(params, lr=lr, **kwargs)


def step(step_size: int = 10, gamma: float = 0.1) -> SchedulerFactory:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs (HSI: 10, 0.1)."""
    if step_size < 1:
        raise ValueError(f"step: step_size must be >= 1, got {step_size}")
    return lambda optimizer: torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


# ----------------------------------------------------------------------------- seeds and RNG state
def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global RNG states of python, numpy, torch and (when present) CUDA."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# ----------------------------------------------------------------------------- distributed
def distributed_context(device: torch.device) -> tuple[int, int]:
    """``(rank, world_size)``; joins the process group when ``torchrun`` set ``WORLD_SIZE > 1``
    (gloo on the CPU, nccl on CUDA, where each rank takes GPU ``LOCAL_RANK``)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def _mean_across_ranks(values: list[float], world: int) -> float:
    """Mean of every rank's values (NaN when no rank has any)."""
    total = torch.tensor([float(np.sum(values)) if values else 0.0, float(len(values))], dtype=torch.float64)
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(total)
    return float(total[0] / total[1]) if total[1] > 0 else float("nan")


# ----------------------------------------------------------------------------- batches and weights
def move_batch(batch: Any, device: torch.device, *, channels_last: bool = False) -> Any:
    """Move every tensor of a (nested) batch to ``device``; 4-D float tensors go channels-last on request."""
    if isinstance(batch, torch.Tensor):
        out = batch.to(device, non_blocking=True)
        if channels_last and out.ndim == 4 and out.is_floating_point():
            out = out.contiguous(memory_format=torch.channels_last)
        return out
    if isinstance(batch, dict):
        return {k: move_batch(v, device, channels_last=channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        moved = [move_batch(v, device, channels_last=channels_last) for v in batch]
        if hasattr(batch, "_fields"):  # a named tuple
            return type(batch)(*moved)
        return tuple(moved) if isinstance(batch, tuple) else moved
    return batch


def load_weights(model: nn.Module, path: str | Path, *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load the weights of a ``best.pt``/``last.pt`` written by ``fit`` (or a bare state dict) into
    ``model``; returns the checkpoint's metadata (``meta``, ``epoch``, ``metrics`` where present)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (train with hsi_core.training.fit first)")
    state = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a checkpoint (a {type(state).__name__})")
    weights = state["model"] if "model" in state and isinstance(state["model"], dict) else state
    model.load_state_dict(weights)
    return {k: state[k] for k in ("meta", "epoch", "metrics") if k in state}


def mean_loss_val_fn(loss_fn: LossFn) -> ValFn:
    """A ``val_fn(model, loader, device)`` reporting the mean of ``loss_fn`` over the loader as ``val_loss``."""

    def val_fn(model: nn.Module, loader: Iterable, device: torch.device) -> dict[str, float]:
        total, count = 0.0, 0
        for batch in loader:
            loss = loss_fn(model, move_batch(batch, device), device)
            total, count = total + float(loss), count + 1
        if count == 0:
            raise ValueError("mean_loss_val_fn: the validation loader is empty")
        return {"val_loss": total / count}

    return val_fn


def saliency_batch_loss(criterion: Callable[..., torch.Tensor], *, with_fixations: bool = False) -> LossFn:
    """A ``loss_fn`` for batches of ``{"image", "saliency", "fixations"}`` and a model mapping images to
    ``(B, H, W)`` maps: ``criterion(pred, saliency)`` (or ``(pred, saliency, fixations)``)."""

    def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
        pred = model(batch["image"].to(device))
        targets = [batch["saliency"].to(device)] + ([batch["fixations"].to(device)] if with_fixations else [])
        return criterion(pred, *targets)

    return loss_fn


# ----------------------------------------------------------------------------- the loop
@dataclass
class _LoaderSpec:
    dataset: Dataset
    batch_size: int
    collate_fn: Callable | None
    num_workers: int
    pin_memory: bool
    drop_last: bool


def _loader_spec(train_data: Dataset | DataLoader, batch_size: int, collate_fn: Callable | None,
                 num_workers: int) -> _LoaderSpec:
    if isinstance(train_data, DataLoader):
        if train_data.batch_size is None:
            raise ValueError("fit: the training DataLoader must batch (batch_size=None is not supported)")
        spec = _LoaderSpec(train_data.dataset, train_data.batch_size, train_data.collate_fn,
                           train_data.num_workers, train_data.pin_memory, train_data.drop_last)
    else:
        spec = _LoaderSpec(train_data, batch_size, collate_fn, num_workers, False, False)
    if isinstance(spec.dataset, IterableDataset):
        raise ValueError("fit: iterable datasets cannot be resumed mid-epoch; pass a map-style Dataset")
    if len(spec.dataset) == 0:
        raise ValueError("fit: the training set is empty")
    if spec.batch_size < 1:
        raise ValueError(f"fit: batch_size must be >= 1, got {spec.batch_size}")
    return spec


def epoch_order(n: int, epoch: int, seed: int, rank: int = 0, world: int = 1) -> list[int]:
    """This rank's sample order in ``epoch``: a permutation drawn from ``seed + epoch`` (so resuming
    replays it); across ``world`` ranks, ``DistributedSampler``'s split of its permutation."""
    if world > 1:
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()


def fit(
    model: nn.Module,
    train_data: Dataset | DataLoader,
    *,
    loss_fn: LossFn,
    epochs: int,
    run_dir: str | Path,
    optimizer_factory: OptimizerFactory | None = None,
    scheduler_factory: SchedulerFactory | None = None,
    val_loader: Iterable | None = None,
    val_fn: ValFn | None = None,
    select_best: tuple[str, str] = ("val_loss", "min"),
    device: str | torch.device = "cpu",
    seed: int = 0,
    amp: bool = False,
    channels_last: bool = False,
    progress: bool = True,
    checkpoint_every_steps: int | None = None,
    max_steps: int | None = None,
    batch_size: int = 8,
    collate_fn: Callable | None = None,
    num_workers: int = 0,
    lr: float = 1e-4,
    lr_step: int = 10,
    lr_gamma: float = 0.1,
    meta: dict[str, Any] | None = None,
    select: str | None = None,
    mode: str | None = None,
    checkpoint_every: int | None = None,
) -> TrainResult:
    """Train ``model`` for ``epochs`` epochs, resuming from ``run_dir/last.pt`` if it exists.

    ``train_data``: a map-style ``Dataset`` (batched with ``batch_size``, ``collate_fn``,
    ``num_workers``) or a ``DataLoader`` whose batch size, collate function and workers are reused
    (its sampler is replaced by the seeded order). Optimiser and schedule: ``optimizer_factory`` and
    ``scheduler_factory`` (stepped once per epoch), by default ``adam(lr)`` and ``step(lr_step, lr_gamma)``.

    After each epoch ``val_fn`` runs (``val_fn(model, val_loader, device)`` when ``val_loader`` is
    given, else ``val_fn(model, device)``; with a ``val_loader`` and no ``val_fn``, the mean
    ``loss_fn`` is reported as ``val_loss``); the epoch with the best ``select_best = (key, "min" |
    "max")`` is saved to ``best.pt``. ``last.pt`` is written every epoch, and every
    ``checkpoint_every_steps`` steps. ``max_steps`` stops after that many steps in this call (a
    deliberate interruption). ``amp`` (bfloat16 autocast) and ``channels_last`` apply on CUDA only.
    ``meta`` (e.g. which weights initialised the model) is stored in every checkpoint.
    ``select``, ``mode`` and ``checkpoint_every`` are older spellings of ``select_best`` and
    ``checkpoint_every_steps``.
    """
    key, direction = (select or select_best[0]), (mode or select_best[1])
    if direction not in ("min", "max"):
        raise ValueError(f"fit: select_best mode must be 'min' or 'max', got {direction!r}")
    if epochs < 0:
        raise ValueError(f"fit: epochs must be >= 0, got {epochs}")
    every = checkpoint_every_steps or checkpoint_every
    if every is not None and every < 1:
        raise ValueError(f"fit: checkpoint_every_steps must be >= 1, got {every}")
    spec = _loader_spec(train_data, batch_size, collate_fn, num_workers)
    device = torch.device(device)
    if val_loader is not None and val_fn is None:
        val_fn = mean_loss_val_fn(loss_fn)
    rank, world = distributed_context(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    on_gpu = device.type == "cuda"
    run_dir = Path(run_dir)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
    _barrier(world)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"

    model.to(device)
    if channels_last and on_gpu:
        model.to(memory_format=torch.channels_last)
    optimizer = (optimizer_factory or adam(lr))(model.parameters())
    scheduler = (scheduler_factory or step(lr_step, lr_gamma))(optimizer)
    result = TrainResult(last_path=last_path)
    start_epoch, start_step, epoch_losses = 0, 0, []
    seed_everything(seed)
    if last_path.is_file():
        state = torch.load(last_path, map_location=device, weights_only=False)
        if state.get("world_size", 1) != world:
            raise ValueError(f"{last_path}: written by a run with {state.get('world_size', 1)} processes, "
                             f"resumed with {world}; the data order would differ")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        start_epoch, start_step = state["epoch"], state["step"]
        epoch_losses = list(state.get("epoch_losses", []))
        result.history, result.best_epoch = state["history"], state["best_epoch"]
        result.best_path = best_path if best_path.is_file() else None
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_gpu else None)

    def save(epoch: int, step_in_epoch: int, losses: list[float]) -> None:
        if rank == 0:
            atomic_save_torch({"version": CHECKPOINT_VERSION, "model": model.state_dict(),
                               "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                               "rng": rng_state(), "epoch": epoch, "step": step_in_epoch, "epoch_losses": losses,
                               "history": result.history, "best_epoch": result.best_epoch,
                               "world_size": world, "meta": meta or {}}, last_path)
        _barrier(world)

    use_amp = amp and on_gpu
    steps_this_call = 0
    for epoch in range(start_epoch, epochs):
        order = epoch_order(len(spec.dataset), epoch, seed, rank, world)
        skip = start_step if epoch == start_epoch else 0
        losses = epoch_losses if epoch == start_epoch else []
        n_batches = len(order) // spec.batch_size if spec.drop_last else math.ceil(len(order) / spec.batch_size)
        # The generator only feeds the loader's worker seeds, so iterating never touches the global
        # RNG whose state the checkpoint restores.
        loader = DataLoader(spec.dataset, batch_size=spec.batch_size, sampler=order[skip * spec.batch_size:],
                            collate_fn=spec.collate_fn, num_workers=spec.num_workers, pin_memory=spec.pin_memory and on_gpu,
                            drop_last=spec.drop_last, generator=torch.Generator().manual_seed(seed + epoch))
        net.train()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", total=n_batches, initial=skip,
                   disable=not progress or rank != 0, leave=False)
        for step_in_epoch, batch in enumerate(bar, start=skip):
            batch = move_batch(batch, device, channels_last=channels_last and on_gpu)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = loss_fn(net, batch, device)
            if loss.ndim != 0:
                raise ValueError(f"fit: loss_fn must return a scalar, got shape {tuple(loss.shape)}")
            if not torch.isfinite(loss):
                raise FloatingPointError(f"fit: non-finite loss {loss.item()} at epoch {epoch + 1}, step {step_in_epoch}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            steps_this_call += 1
            done = step_in_epoch + 1
            if max_steps is not None and steps_this_call >= max_steps and done < n_batches:
                save(epoch, done, losses)
                return result
            if every and done % every == 0 and done < n_batches:
                save(epoch, done, losses)
        bar.close()
        scheduler.step()
        record: dict[str, float] = {"epoch": epoch + 1, "train_loss": _mean_across_ranks(losses, world),
                                    "lr": optimizer.param_groups[0]["lr"]}
        if val_fn is not None:
            model.eval()
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                metrics = val_fn(model, val_loader, device) if val_loader is not None else val_fn(model, device)
            record.update({k: float(v) for k, v in metrics.items()})
            if key not in record:
                raise KeyError(f"fit: val_fn returned no {key!r} (it returned {sorted(record)})")
            if not math.isfinite(record[key]):
                raise FloatingPointError(f"fit: validation {key} is {record[key]} at epoch {epoch + 1}")
            previous = [h[key] for h in result.history]
            better = not previous or (record[key] < min(previous) if direction == "min" else record[key] > max(previous))
            if better:
                result.best_epoch = epoch + 1
                if rank == 0:
                    atomic_save_torch({"model": model.state_dict(), "epoch": epoch + 1, "metrics": record,
                                       "meta": meta or {}}, best_path)
                result.best_path = best_path
        result.history.append(record)
        save(epoch + 1, 0, [])
        if rank == 0:
            atomic_write_json(run_dir / "history.json", result.history)
        if max_steps is not None and steps_this_call >= max_steps and epoch + 1 < epochs:
            return result
    result.completed = True
    return result


# ============================================================================= HSI experiments
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
#: Higher is better for every column except KLdiv.
LOWER_IS_BETTER = ("KLdiv",)

#: The paper's Tables 1-3 (five-fold means on HSB).
PAPER_TABLES: dict[str, dict[str, dict[str, float]]] = {
    "Table 1": {"w. finetuning": {"CC": 0.8819, "KLdiv": 0.2162, "NSS": 2.3505, "SIM": 0.7563},
                "w.o. finetuning": {"CC": 0.7317, "KLdiv": 0.5168, "NSS": 1.9357, "SIM": 0.6012}},
    "Table 2": {"baseline": {"CC": 0.8754, "KLdiv": 0.2239, "NSS": 2.3366, "SIM": 0.7533},
                "ours (HSI)": {"CC": 0.8819, "KLdiv": 0.2162, "NSS": 2.3505, "SIM": 0.7563}},
    "Table 3": {"random": {"CC": 0.7729, "KLdiv": 0.4539, "NSS": 1.9538, "SIM": 0.6626},
                "pretrain": {"CC": 0.8754, "KLdiv": 0.2239, "NSS": 2.3366, "SIM": 0.7533}},
}


def hsi_vocabulary(extra: Sequence[str] = ()) -> list[str]:
    """The label vocabulary: the 20 HSB classes (so an HSB class index is its vocabulary index), then
    any other names (e.g. COCO categories met in pretraining)."""
    from hsi_core.demo import HSB_CLASSES

    vocab = list(HSB_CLASSES)
    return vocab + [name for name in dict.fromkeys(extra) if name not in vocab]


# ----------------------------------------------------------------------------- pretraining data
def _resize_fixation_stack(fix: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """``(N, H, W)`` binary maps -> ``(N, h, w)`` bool, each fixated pixel moved to its cell (none lost)."""
    n, h, w = fix.shape
    idx, rows, cols = np.nonzero(fix)
    out = torch.zeros((n, *size), dtype=torch.bool)
    out[torch.as_tensor(idx), torch.as_tensor((rows * size[0]) // h), torch.as_tensor((cols * size[1]) // w)] = True
    return out


def _resize_stack(maps: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(maps, dtype=np.float32))[:, None]
    return torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)[:, 0]


class SaliconPseudoLabels(Dataset):
    """SALICON images with their passive-viewing maps and Algorithm 1's per-object pseudo-labels.

    Item: ``image (3, S, S)``, ``saliency``/``fixations (S, S)`` (``q_pv``, ``f_pv``; the map is the
    fixations blurred with sigma 19 px at 640x480, SALICON's own recipe), ``obj_saliency``/``obj_fixations``
    ``(N, S, S)`` (``q~``, ``f~``), ``valid (N,)`` and ``obj_labels (N,)`` (vocabulary ids; padding
    slots hold 0 and ``valid`` False). Images where no object passes Algorithm 1's tests are left out
    (Eq. 8 needs at least one object); ``skipped`` lists them.
    """

    def __init__(self, image_dir: str | Path, fixations_json: str | Path, instances_json: str | Path, *,
                 size: int, vocabulary: Sequence[str], max_objects: int | None = None, limit: int | None = None,
                 t_a: float | None = None, t_r: float | None = None, sigma: float | None = None,
                 coco: Any = None) -> None:
        from hsi_core import datasets, pseudo_labels

        self.t_a = pseudo_labels.T_A if t_a is None else t_a
        self.t_r = pseudo_labels.T_R if t_r is None else t_r
        self.sigma = pseudo_labels.SIGMA if sigma is None else sigma
        self.image_dir, self.size, self.vocabulary = Path(image_dir), (size, size), list(vocabulary)
        self.coco_path = Path(instances_json)
        self.coco = coco if coco is not None else datasets.load_coco(instances_json)
        images = list(datasets.load_salicon_fixations(fixations_json).values())[:limit]
        self.images, self.skipped, counts = [], [], []
        for image in images:
            labels = self._labels(image)
            if labels:
                self.images.append(image)
                counts.append(len(labels))
            else:
                self.skipped.append(image.file_name)
        if not self.images:
            raise ValueError(f"{fixations_json}: no image has an object passing Algorithm 1 (T_a={self.t_a}, T_r={self.t_r})")
        self.max_objects = max_objects or max(counts)

    def _labels(self, image: Any) -> list[Any]:
        from hsi_core import datasets, pseudo_labels

        masks = datasets.load_coco_masks(self.coco_path, image.image_id, coco=self.coco)
        unknown = sorted({m.category for m in masks} - set(self.vocabulary))
        if unknown:
            raise ValueError(f"{self.coco_path}: categories {unknown} of image {image.file_name} are not in the vocabulary")
        return pseudo_labels.algorithm1(image.fixation_map(), masks, self.t_a, self.t_r, self.sigma)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from hsi_core import datasets
        from hsi_core.fixations import saliency_map
        from hsi_core.io import read_image
        from hsi_core.pseudo_labels import stack_pseudo_labels

        image = self.images[i]
        fix = image.fixation_map()
        stacked = stack_pseudo_labels(self._labels(image), self.max_objects)
        n = stacked["valid"].shape[0]
        ids = torch.zeros(n, dtype=torch.long)
        ids[: len(stacked["categories"])] = torch.tensor([self.vocabulary.index(c) for c in stacked["categories"]])
        return {
            "image": datasets.to_tensor_image(read_image(self.image_dir / image.file_name), self.size),
            "saliency": datasets.resize_map(saliency_map(fix.astype(np.float32), self.sigma), self.size),
            "fixations": datasets.resize_fixations(fix, self.size),
            "obj_saliency": _resize_stack(stacked["saliency"].numpy(), self.size),
            "obj_fixations": _resize_fixation_stack(stacked["fixations"].numpy(), self.size),
            "valid": stacked["valid"],
            "obj_labels": ids,
            "index": i,
        }


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
                   progress: bool = True) -> EncodedDataset:
    """Run every image of ``dataset`` once through ``model.encode_image`` (eval mode: BatchNorm uses its
    running statistics, so a cached feature does not depend on its batch) and keep the features."""
    device = torch.device(device)
    was_training = model.training
    model.to(device).eval()
    enc: dict[str, list[torch.Tensor]] = {"u4p": [], "u5": [], "z": []}
    fields: dict[str, list[torch.Tensor]] = {}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in tqdm(loader, desc="encoding images", disable=not progress, leave=False):
        out = model.encode_image(batch["image"].to(device))
        for k in enc:
            enc[k].append(out[k].float().cpu())
        for k, v in batch.items():
            if k != "image" and isinstance(v, torch.Tensor):
                fields.setdefault(k, []).append(v)
    model.train(was_training)
    return EncodedDataset({k: torch.cat(v) for k, v in fields.items()}, {k: torch.cat(v) for k, v in enc.items()})


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, images: Iterable[torch.Tensor], forward: Callable[[torch.Tensor], Any],
                          device: str | torch.device = "cpu") -> int:
    """Re-estimate every BatchNorm's running mean and variance as the plain average over ``images``
    (batches), the "precise BN" pass. A randomly initialised CLIP encoder has the default statistics
    (mean 0, variance 1), so in eval mode its features shrink layer after layer (about 1e-3 at u5);
    after this pass they are normalised as in training. Not needed with CLIP's own weights.
    Returns the number of BatchNorm layers updated."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
        m.train()
    for batch in images:
        forward(batch.to(device))
    for m, (momentum, training) in zip(norms, saved):
        m.momentum = momentum
        m.train(training)
    return len(norms)


class HSIHead(nn.Module):
    """The trainable part of an ``HSI``/``HSIBaseline`` whose image encoder is frozen: the decoder and
    (when trainable) the label-embedding table, fed with cached encoder features. Same maps as the
    full model on the same features (it reuses the model's decoding, Eq. 1 and Figure 7)."""

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

    def _features(self, enc: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([enc["u4p"], enc["u5"], enc["z"]], 1)

    def _decode(self, features: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        return self.kind._decode(self, features, a)

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

    def _features(self, enc: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model._features(enc)

    def _decode(self, features: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        return self.model._decode(features, a)

    def forward(self, x: torch.Tensor, label_ids: torch.Tensor | None = None) -> dict[str, Any]:
        return _hsi_maps(self, self.model.encode_image(x), label_ids)


def _hsi_maps(net: Any, enc: dict[str, torch.Tensor], label_ids: torch.Tensor | None) -> dict[str, Any]:
    """Saliency maps from encoder features: ``label_ids (B,)`` -> ``saliency (B, S, S)`` and the score map
    (Eq. 1); ``label_ids (B, N)`` -> the ``N`` conditional maps ``(B, N, S, S)`` and score maps ``(B, N, h, w)``
    (Eq. 8-9 input). The baseline ignores labels (its ``N`` maps are one map repeated)."""
    from hsi_core.models.hsi import score_map

    feats = net._features(enc)
    if not net.uses_text:
        sal = net._decode(feats, None)
        if label_ids is not None and label_ids.ndim == 2:
            sal = sal.unsqueeze(1).expand(-1, label_ids.shape[1], -1, -1)
        return {"saliency": sal, "score_maps": None}
    if label_ids is None:
        raise ValueError("HSI needs label ids (B,) or (B, N)")
    a = score_map(enc["z"], net.text_embeddings[label_ids].to(enc["z"].dtype))
    if label_ids.ndim == 1:
        return {"saliency": net._decode(feats, a), "score_maps": a}
    b, n = label_ids.shape
    sal = net._decode(feats.repeat_interleave(n, 0), a.flatten(0, 1))
    return {"saliency": sal.view(b, n, *sal.shape[-2:]), "score_maps": a}


def trainable(model: nn.Module, *, encoded: bool) -> nn.Module:
    """``HSIHead`` (cached features of a frozen encoder) or ``HSIFull`` around an ``HSI``/``HSIBaseline``."""
    return HSIHead(model) if encoded else HSIFull(model)


# ----------------------------------------------------------------------------- losses as loss_fn
def _inputs(batch: dict[str, Any]) -> Any:
    return batch["enc"] if "enc" in batch else batch["image"]


def hsi_pretrain_loss_fn(model: nn.Module, batch: dict[str, Any], device: torch.device) -> torch.Tensor:
    """Eq. 11 for HSI (Eq. 8 on the pseudo-labels + Eq. 10 on H(p), Eq. 9); the image-only baseline,
    which has no objects, trains on the passive-viewing map alone (Eq. 4), as the paper's Table 2 baseline."""
    from hsi_core import losses

    out = model(_inputs(batch), batch.get("obj_labels"))
    if out["score_maps"] is None:
        sal = out["saliency"][:, 0] if out["saliency"].ndim == 4 else out["saliency"]
        return losses.saliency_loss(sal, batch["saliency"], batch["fixations"])
    return losses.pretrain_loss(out["saliency"], out["score_maps"], batch["obj_saliency"], batch["obj_fixations"],
                                batch["saliency"], batch["fixations"], batch["valid"])


def hsi_finetune_loss_fn(model: nn.Module, batch: dict[str, Any], device: torch.device) -> torch.Tensor:
    """Eq. 12 on HSB: the map for the image's one label against its saliency map and fixations."""
    from hsi_core import losses

    out = model(_inputs(batch), batch["label"])
    return losses.finetune_loss(out["saliency"], batch["saliency"], batch["fixations"])


# ----------------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict_dataset(model: nn.Module, dataset: Dataset, *, batch_size: int = 16,
                    device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Maps for every HSB-style item (its own label): ``pred``, ``saliency``, ``fixations`` ``(B, S, S)``
    and ``index``, on the CPU."""
    device = torch.device(device)
    model.to(device).eval()
    out: dict[str, list[torch.Tensor]] = {"pred": [], "saliency": [], "fixations": [], "index": []}
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        batch = move_batch(batch, device)
        out["pred"].append(model(_inputs(batch), batch["label"])["saliency"].float().cpu())
        for k in ("saliency", "fixations", "index"):
            out[k].append(batch[k].cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def score_predictions(pred: torch.Tensor, saliency: torch.Tensor, fixations: torch.Tensor) -> dict[str, np.ndarray]:
    """The paper's four metrics per image, batched (``hsi_core.metrics``): CC, KLdiv, NSS, SIM."""
    from hsi_core import metrics

    def values(t: Any) -> np.ndarray:
        return np.asarray(t.cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64)

    return {"CC": values(metrics.cc(pred, saliency)), "KLdiv": values(metrics.kl_div(pred, saliency)),
            "NSS": values(metrics.nss(pred, fixations)), "SIM": values(metrics.sim(pred, saliency))}


def evaluate_hsb(model: nn.Module, dataset: Dataset, *, batch_size: int = 16,
                 device: str | torch.device = "cpu") -> "Any":
    """Per-image metrics (a ``pandas.DataFrame`` with ``index`` and the four metric columns)."""
    import pandas as pd

    out = predict_dataset(model, dataset, batch_size=batch_size, device=device)
    return pd.DataFrame({"index": out["index"].numpy(), **score_predictions(out["pred"], out["saliency"], out["fixations"])})


def fold_table(per_image: "Any", columns: Sequence[str] = TABLE_COLUMNS) -> "Any":
    """Five-fold cross-validation numbers as the paper reports them: the mean over folds of each
    fold's mean (``per_image`` needs a ``fold`` column)."""
    return per_image.groupby("fold")[list(columns)].mean().mean()


# ----------------------------------------------------------------------------- the two stages
def pretrain_hsi(model: nn.Module, train_set: Dataset, val_set: Dataset, *, run_dir: str | Path,
                 epochs: int = HSI_PRETRAIN_EPOCHS, batch_size: int = 8, lr: float = HSI_LR,
                 lr_step: int = HSI_LR_STEP, lr_gamma: float = HSI_LR_GAMMA, device: str | torch.device = "cpu",
                 seed: int = 0, progress: bool = True, amp: bool = False, channels_last: bool = False,
                 meta: dict[str, Any] | None = None, max_steps: int | None = None) -> TrainResult:
    """Pretraining on pseudo-labelled SALICON (``SaliconPseudoLabels``, or its ``EncodedDataset``):
    Eq. 11 for HSI, Eq. 4 on the passive-viewing maps for the baseline; the epoch with the lowest
    loss on ``val_set`` is kept in ``run_dir/best.pt``. ``model`` is ``trainable(...)``'s wrapper."""
    return fit(model, train_set, loss_fn=hsi_pretrain_loss_fn, epochs=epochs, run_dir=run_dir,
               optimizer_factory=adam(lr), scheduler_factory=step(lr_step, lr_gamma),
               val_loader=DataLoader(val_set, batch_size=batch_size, shuffle=False),
               select_best=("val_loss", "min"), device=device, seed=seed, amp=amp, channels_last=channels_last,
               progress=progress, batch_size=batch_size, meta=meta, max_steps=max_steps)


def finetune_hsi_kfold(make_model: Callable[[], nn.Module], dataset: Dataset, folds: Sequence[int], *,
                       run_dir: str | Path, epochs: int = HSI_FINETUNE_EPOCHS, finetune: bool = True,
                       batch_size: int = 8, lr: float = HSI_LR, lr_step: int = HSI_LR_STEP,
                       lr_gamma: float = HSI_LR_GAMMA, device: str | torch.device = "cpu", seed: int = 0,
                       progress: bool = True, amp: bool = False, channels_last: bool = False,
                       meta: dict[str, Any] | None = None, predictions: dict[int, torch.Tensor] | None = None,
                       held_out: Sequence[int] | None = None) -> "Any":
    """K-fold finetuning on HSB (Eq. 12): for each fold ``k``, a model from ``make_model()`` (e.g. the best
    pretrained weights) is trained on the other folds for ``epochs`` epochs and its final epoch is
    scored on fold ``k``. ``finetune=False`` scores ``make_model()`` as it is (Table 1, w.o.).
    ``folds[i]`` is item ``i``'s fold. Returns per-image metrics with a ``fold`` column; a dict passed
    as ``predictions`` receives each held-out item's predicted map by its ``index``; ``held_out``
    restricts the folds held out in turn (default: every fold)."""
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
        held_out = torch.utils.data.Subset(dataset, np.flatnonzero(folds == k).tolist())
        model = make_model()
        if finetune:
            train = torch.utils.data.Subset(dataset, np.flatnonzero(folds != k).tolist())
            fit(model, train, loss_fn=hsi_finetune_loss_fn, epochs=epochs, run_dir=Path(run_dir) / f"fold{int(k)}",
                optimizer_factory=adam(lr), scheduler_factory=step(lr_step, lr_gamma), device=device,
                seed=seed + int(k), amp=amp, channels_last=channels_last, progress=progress,
                batch_size=batch_size, meta={**(meta or {}), "fold": int(k)})
        out = predict_dataset(model, held_out, batch_size=batch_size, device=device)
        scores = pd.DataFrame({"fold": int(k), "index": out["index"].numpy(),
                               **score_predictions(out["pred"], out["saliency"], out["fixations"])})
        if predictions is not None:
            predictions.update({int(i): p for i, p in zip(out["index"], out["pred"])})
        frames.append(scores)
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- Tables 1-3
@dataclass
class HSIExperiments:
    """Everything Tables 1-3 and Figure 10 need. ``per_image[name]`` holds per-image fold metrics of
    ``"HSI w. finetuning"``, ``"HSI w.o. finetuning"``, ``"baseline (pretrained)"``, ``"baseline (random)"``."""

    per_image: dict[str, Any]
    pretrain_history: dict[str, list[dict[str, float]]]
    predictions: dict[str, dict[int, torch.Tensor]]
    two_objects: np.ndarray | None
    hsb: Any
    meta: dict[str, Any]
    run_dir: Path


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


def run_hsi_tables(data_root: str | Path, *, clip_weights: str | Path | None = None, image_size: int = 224,
                   hidden: int = 256, freeze_image: bool = False, pretrain_epochs: int = HSI_PRETRAIN_EPOCHS,
                   finetune_epochs: int = HSI_FINETUNE_EPOCHS, batch_size: int = 8, lr: float = HSI_LR,
                   lr_step: int = HSI_LR_STEP, lr_gamma: float = HSI_LR_GAMMA, folds: int | Sequence[int] = HSI_FOLDS,
                   device: str = "cpu", seed: int = 0, run_dir: str | Path = "runs/hsi_tables",
                   salicon_limit: int | None = None, t_a: float | None = None, t_r: float | None = None,
                   calibration_images: int = 64,
                   progress: bool = True, amp: bool = False, channels_last: bool = False) -> HSIExperiments:
    """The experiments of Tables 1-3 on a data root laid out as the demo world (``salicon/``, ``coco/``,
    ``hsb/``; see CONTRIBUTING.md): pretrain HSI (Eq. 11) and the image-only baseline on pseudo-labelled
    SALICON, then 5-fold finetuning on HSB of HSI from its best pretrained weights (Table 1 w., Table 2),
    HSI without finetuning (Table 1 w.o.), the baseline from its pretrained weights (Tables 2-3) and from
    random decoder weights (Table 3). Defaults are the paper's recipe.

    ``freeze_image=True`` freezes the CLIP image encoder and runs it once per image (features cached);
    then only the decoder and label table train. Both models share one image encoder. Runs are stored
    under ``run_dir/<hash of the settings>`` and resume from there. ``folds``: how many of the HSB folds
    to hold out (the first ones) or which. ``t_a``, ``t_r``: Algorithm 1's thresholds (default the paper's).
    Without CLIP weights, the encoder's BatchNorm statistics are first estimated on
    ``calibration_images`` HSB images (``recalibrate_batchnorm``; 0 turns this off).
    """
    import copy

    from hsi_core import datasets
    from hsi_core.models.hsi import HSI, HSIBaseline

    root = Path(data_root)
    config = {k: v for k, v in locals().items() if k in (
        "clip_weights", "image_size", "hidden", "freeze_image", "pretrain_epochs", "finetune_epochs", "batch_size",
        "lr", "lr_step", "lr_gamma", "folds", "seed", "salicon_limit", "t_a", "t_r", "calibration_images")}
    config["data_root"] = str(root.resolve())
    run_dir = Path(run_dir) / _config_key(config)
    coco_train = datasets.load_coco(root / "coco/annotations/instances_train2014.json")
    vocab = hsi_vocabulary([c["name"] for c in coco_train.cats.values()])
    torch.manual_seed(seed)
    hsi = HSI(clip_weights, labels=vocab, image_size=image_size, hidden=hidden, freeze_image=freeze_image)
    torch.manual_seed(seed)
    base = HSIBaseline(clip_weights, labels=vocab, image_size=image_size, hidden=hidden, freeze_image=freeze_image)
    meta = {**config, "clip_weights_source": hsi.weights_source, "clip_weights_loaded": hsi.weights_loaded}
    hsb = datasets.HSBDataset(root / "hsb", size=(image_size, image_size))
    if not hsi.weights_loaded and calibration_images > 0:
        # random init: BatchNorm statistics from a few HSB images (see recalibrate_batchnorm)
        pick = torch.randperm(len(hsb), generator=torch.Generator().manual_seed(seed))[:calibration_images].tolist()
        loader = DataLoader(torch.utils.data.Subset(hsb, pick), batch_size=batch_size)
        recalibrate_batchnorm(hsi.visual, (b["image"] for b in loader), hsi.encode_image, device)
        meta["batchnorm_recalibrated_on"] = f"{len(pick)} HSB images"
    base.visual.load_state_dict(hsi.visual.state_dict())  # one image encoder for both models: a fair ablation

    sal = {split: SaliconPseudoLabels(root / f"salicon/images/{split}", root / f"salicon/annotations/fixations_{split}2014.json",
                                      root / f"coco/annotations/instances_{split}2014.json", size=image_size,
                                      vocabulary=vocab, limit=salicon_limit, t_a=t_a, t_r=t_r, coco=coco_train if split == "train" else None)
           for split in ("train", "val")}
    fold_ids = np.asarray([it.fold for it in hsb.items])
    chosen = sorted(np.unique(fold_ids))[:folds] if isinstance(folds, int) else list(folds)
    train_sets: dict[str, Dataset] = dict(sal)
    hsb_set: Dataset = hsb
    if freeze_image:
        train_sets = {k: encode_dataset(hsi, v, batch_size=batch_size, device=device, progress=progress)
                      for k, v in sal.items()}
        hsb_set = encode_dataset(hsi, hsb, batch_size=batch_size, device=device, progress=progress)

    def wrap(model: nn.Module) -> nn.Module:
        return trainable(model if freeze_image else copy.deepcopy(model), encoded=freeze_image)

    def from_checkpoint(model: nn.Module, path: Path) -> Callable[[], nn.Module]:
        def make() -> nn.Module:
            wrapped = wrap(model)
            load_weights(wrapped, path)
            return wrapped
        return make

    common = dict(batch_size=batch_size, lr=lr, lr_step=lr_step, lr_gamma=lr_gamma, device=device, seed=seed,
                  progress=progress, amp=amp, channels_last=channels_last)
    histories, best = {}, {}
    for name, model in (("HSI", hsi), ("baseline", base)):
        result = pretrain_hsi(wrap(model), train_sets["train"], train_sets["val"], run_dir=run_dir / f"pretrain_{name}",
                              epochs=pretrain_epochs, meta={**meta, "model": name}, **common)
        histories[name], best[name] = result.history, result.best_path
    runs = {
        "HSI w. finetuning": (from_checkpoint(hsi, best["HSI"]), True),
        "HSI w.o. finetuning": (from_checkpoint(hsi, best["HSI"]), False),
        "baseline (pretrained)": (from_checkpoint(base, best["baseline"]), True),
        "baseline (random)": (lambda: wrap(base), True),
    }
    per_image, predictions = {}, {}
    for name, (make, finetune) in runs.items():
        predictions[name] = {}
        frame = finetune_hsi_kfold(make, hsb_set, fold_ids, held_out=chosen, run_dir=run_dir / name.replace(" ", "_"),
                              epochs=finetune_epochs, finetune=finetune, meta={**meta, "run": name},
                              predictions=predictions[name], **common)
        per_image[name] = frame
    return HSIExperiments(per_image, histories, predictions, two_object_flags(root / "hsb", hsb.items), hsb,
                          meta, run_dir)


def comparison_table(ours: dict[str, Any], paper: dict[str, dict[str, float]],
                     columns: Sequence[str] = TABLE_COLUMNS) -> Any:
    """Our five-fold means beside the paper's: rows ``(setting, "ours" | "paper")``."""
    import pandas as pd

    rows = {}
    for name, values in ours.items():
        rows[(name, "ours")] = [float(values[c]) for c in columns]
        if name in paper:
            rows[(name, "paper")] = [paper[name][c] for c in columns]
    index = pd.MultiIndex.from_tuples(list(rows), names=["setting", "source"])
    return pd.DataFrame(list(rows.values()), index=index, columns=list(columns))


def tables_1_3(exp: HSIExperiments) -> dict[str, Any]:
    """Tables 1-3 (ours beside the paper's) from ``run_hsi_tables``'s per-image metrics."""
    t = {name: fold_table(frame) for name, frame in exp.per_image.items()}
    return {
        "Table 1": comparison_table({"w. finetuning": t["HSI w. finetuning"], "w.o. finetuning": t["HSI w.o. finetuning"]},
                                    PAPER_TABLES["Table 1"]),
        "Table 2": comparison_table({"baseline": t["baseline (pretrained)"], "ours (HSI)": t["HSI w. finetuning"]},
                                    PAPER_TABLES["Table 2"]),
        "Table 3": comparison_table({"random": t["baseline (random)"], "pretrain": t["baseline (pretrained)"]},
                                    PAPER_TABLES["Table 3"]),
    }


def subset_means(exp: HSIExperiments, names: Sequence[str], mask: np.ndarray) -> Any:
    """Mean metrics over the HSB images where ``mask[index]`` holds (e.g. two objects of different labels)."""
    import pandas as pd

    return pd.DataFrame({name: exp.per_image[name][mask[exp.per_image[name]["index"].to_numpy()]][list(TABLE_COLUMNS)].mean()
                         for name in names}).T
