"""A small, generic training loop: progress bars, atomic checkpoints, exact resume, seeds, DDP.

``fit`` trains any model on any map-style dataset (or a ``DataLoader`` over one) with a caller's
``loss_fn(model, batch, device) -> scalar``. The data order of each epoch is drawn from a generator
seeded with ``seed + epoch``, and every checkpoint holds the model, optimiser, scheduler, the RNG
states (python, numpy, torch, cuda), the position in the epoch and the losses of the epoch so far,
so a run killed mid-epoch and started again with the same arguments ends with the same weights and
the same history as an uninterrupted run (bit-exact on the CPU; GPU kernels may add nondeterminism).

Feeding a GPU: one ``DataLoader`` serves every epoch (``num_workers`` processes, kept alive across
epochs with ``persistent_workers``, ``pin_memory`` on CUDA); its sampler replays the seeded order,
so workers change nothing in what is trained. On CUDA, bfloat16 autocast and channels-last tensors
are on by default (``amp=False`` / ``channels_last=False`` turn them off); on the CPU both are off unless
asked for (``hsi_core.precision.resolve_speedups``, the one policy, shared with ``predict``).

Checkpoints: ``last.pt`` (weights, optimiser, scheduler, RNG, position: what resuming needs) and
``best.pt`` (weights only, the best epoch on the validation metric); nothing else. The resumable
``last.pt`` is written every ``resumable_every_epochs`` epochs, or once ``resumable_every_minutes``
have passed since the previous one, and at the end; ``best.pt`` is written with it (the best
weights wait in memory until then), so a resumed run redoes at most the epochs after the last
resumable state and ends identical. With ``keep_optimizer=False`` a finished run's ``last.pt`` is
written without the optimiser state (a finished fold's weights are a third of its training
checkpoint). Temporary files a kill left mid-save are removed when the run starts again.
``summary.json`` in the run directory states the epochs, the best epoch, each checkpoint's size and
the bytes of checkpoints written.

The HSI experiment (pretraining, k-fold finetuning, HSI Tables 1-3) lives in
``hsi_core.experiments.hsi_tables``; this module is the generic loop only.

Optimiser: Adam with a step learning-rate decay, the recipe of both papers (HSI: 1e-4, x0.1 every
10 epochs; CMRNet: 1e-3, x0.1 every 2 epochs), through ``optimizer_factory`` / ``scheduler_factory``
(``adam(lr)``, ``step(10, 0.1)``) or the shorthand ``lr``, ``lr_step``, ``lr_gamma``.

Distributed data parallel: launched by ``torchrun`` (``WORLD_SIZE > 1``), ``fit`` joins the process
group (gloo on the CPU, nccl on CUDA), wraps the model in ``DistributedDataParallel``, gives each
rank its share of every epoch through ``DistributedSampler`` (seeded the same way), gives every rank
rank 0's BatchNorm statistics after each epoch (``share_rank0_buffers``) and writes the checkpoints
from rank 0 only. ``loss_fn`` receives the wrapped model, so it must call ``model(...)``
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
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, Sampler
from tqdm.auto import tqdm

from hsi_core.io import atomic_save_torch, atomic_write_json
from hsi_core.models.weights import apply_state, read_checkpoint, unwrap_checkpoint
from hsi_core.precision import resolve_speedups  # noqa: F401  (the one AMP/channels-last policy; hsi_tables imports it from here)

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
    #: Bytes of checkpoints this run wrote (across resumes, as recorded in its resumable state).
    bytes_written: int = 0


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


def barrier(world: int) -> None:
    """Wait for every rank (a no-op in a single process)."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def reduction_device(device: str | torch.device) -> torch.device:
    """Where a tensor handed to a collective must live: on the rank's GPU under NCCL (which rejects
    CPU tensors), on the CPU under gloo."""
    device = torch.device(device)
    return device if device.type == "cuda" else torch.device("cpu")


def _mean_across_ranks(values: list[float], world: int, device: str | torch.device = "cpu") -> float:
    """Mean of every rank's values (NaN when no rank has any); the reduction runs on
    ``reduction_device(device)``."""
    total = torch.tensor([float(np.sum(values)) if values else 0.0, float(len(values))], dtype=torch.float64,
                         device=reduction_device(device))
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(total)
    total = total.cpu()
    return float(total[0] / total[1]) if total[1] > 0 else float("nan")


def share_rank0_buffers(model: nn.Module, world: int) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics). DDP broadcasts them before each
    forward, so after an epoch's last step every rank holds the statistics its own last batch left;
    without this, validation, the best epoch and the scores would differ by rank from the model rank 0
    saves."""
    if world > 1:
        import torch.distributed as dist

        for buffer in model.buffers():
            dist.broadcast(buffer.data, src=0)


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete the temporary files (``.NAME.*.tmp``, see ``hsi_core.io.atomic_open``) that a kill in the
    middle of a save left in ``run_dir``; returns them."""
    stale = sorted(Path(run_dir).glob(".*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


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
    state = read_checkpoint(path, name="checkpoint", download="Train with hsi_core.training.fit first",
                            weights_only=False, map_location=map_location)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a checkpoint (a {type(state).__name__})")
    apply_state(model, state, source=path, filter_fn=unwrap_checkpoint)
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
    pin_memory: bool | None
    drop_last: bool
    persistent_workers: bool = True


def _loader_spec(train_data: Dataset | DataLoader, batch_size: int, collate_fn: Callable | None,
                 num_workers: int, pin_memory: bool | None = None, persistent_workers: bool = True) -> _LoaderSpec:
    if num_workers < 0:
        raise ValueError(f"fit: num_workers must be >= 0, got {num_workers}")
    if isinstance(train_data, DataLoader):
        if train_data.batch_size is None:
            raise ValueError("fit: the training DataLoader must batch (batch_size=None is not supported)")
        spec = _LoaderSpec(train_data.dataset, train_data.batch_size, train_data.collate_fn,
                           train_data.num_workers, train_data.pin_memory, train_data.drop_last,
                           train_data.persistent_workers)
    else:
        spec = _LoaderSpec(train_data, batch_size, collate_fn, num_workers, pin_memory, False, persistent_workers)
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


class _ReplaySampler(Sampler[int]):
    """The indices of the current epoch (set before each epoch): one ``DataLoader`` with persistent
    workers can then serve every epoch while the order stays ``epoch_order``'s."""

    def __init__(self) -> None:
        self.order: list[int] = []

    def __iter__(self) -> Any:
        return iter(list(self.order))

    def __len__(self) -> int:
        return len(self.order)


def loader_options(device: str | torch.device, num_workers: int = 0, pin_memory: bool | None = None,
                   persistent_workers: bool = True) -> dict[str, Any]:
    """``DataLoader`` keyword arguments that keep a GPU fed: ``num_workers`` processes (kept alive
    across epochs), pinned host memory on CUDA (``pin_memory=None``: on CUDA only), prefetching."""
    if num_workers < 0:
        raise ValueError(f"loader_options: num_workers must be >= 0, got {num_workers}")
    on_gpu = torch.device(device).type == "cuda"
    options: dict[str, Any] = {"num_workers": num_workers,
                               "pin_memory": on_gpu if pin_memory is None else (pin_memory and on_gpu)}
    if num_workers > 0:
        options.update(persistent_workers=persistent_workers, prefetch_factor=4)
    return options


def checkpoint_sizes(run_dir: str | Path) -> dict[str, int]:
    """Bytes of every ``*.pt`` under ``run_dir`` (relative paths), for a run's summary."""
    run_dir = Path(run_dir)
    return {p.relative_to(run_dir).as_posix(): p.stat().st_size for p in sorted(run_dir.rglob("*.pt"))}


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
    amp: bool | None = None,
    channels_last: bool | None = None,
    progress: bool = True,
    checkpoint_every_steps: int | None = None,
    max_steps: int | None = None,
    batch_size: int = 8,
    collate_fn: Callable | None = None,
    num_workers: int = 0,
    pin_memory: bool | None = None,
    persistent_workers: bool = True,
    keep_optimizer: bool = True,
    lr: float = 1e-4,
    lr_step: int = 10,
    lr_gamma: float = 0.1,
    meta: dict[str, Any] | None = None,
    select: str | None = None,
    mode: str | None = None,
    checkpoint_every: int | None = None,
    resumable_every_epochs: int | None = 1,
    resumable_every_minutes: float | None = None,
) -> TrainResult:
    """Train ``model`` for ``epochs`` epochs, resuming from ``run_dir/last.pt`` if it exists.

    ``train_data``: a map-style ``Dataset`` (batched with ``batch_size``, ``collate_fn``,
    ``num_workers``, ``pin_memory`` (``None``: on CUDA only), ``persistent_workers``) or a
    ``DataLoader`` whose batch size, collate function and workers are reused (its sampler is
    replaced by the seeded order). One loader serves every epoch. Optimiser and schedule: ``optimizer_factory`` and
    ``scheduler_factory`` (stepped once per epoch), by default ``adam(lr)`` and ``step(lr_step, lr_gamma)``.

    After each epoch ``val_fn`` runs (``val_fn(model, val_loader, device)`` when ``val_loader`` is
    given, else ``val_fn(model, device)``; with a ``val_loader`` and no ``val_fn``, the mean
    ``loss_fn`` is reported as ``val_loss``); the epoch with the best ``select_best = (key, "min" |
    "max")`` is saved to ``best.pt``. ``last.pt`` is written every epoch, and every
    ``checkpoint_every_steps`` steps. ``max_steps`` stops after that many steps in this call (a
    deliberate interruption). ``amp`` (bfloat16 autocast) and ``channels_last`` apply on CUDA only,
    where ``None`` (the default) turns them on. ``keep_optimizer=False``: once the last epoch is done,
    ``last.pt`` keeps the weights and history but drops the optimiser state (such a run cannot be
    extended to more epochs). ``meta`` (e.g. which weights initialised the model) is stored in every
    checkpoint; ``run_dir/summary.json`` states each checkpoint's size and the bytes written.
    ``resumable_every_epochs`` / ``resumable_every_minutes``: how often the resumable ``last.pt``
    (and ``best.pt``, kept in memory in between) is written (``None``: not by that rule); always
    after the last epoch.
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
    if resumable_every_epochs is not None and resumable_every_epochs < 1:
        raise ValueError(f"fit: resumable_every_epochs must be >= 1, got {resumable_every_epochs}")
    if resumable_every_minutes is not None and not resumable_every_minutes > 0:
        raise ValueError(f"fit: resumable_every_minutes must be positive, got {resumable_every_minutes}")
    spec = _loader_spec(train_data, batch_size, collate_fn, num_workers, pin_memory, persistent_workers)
    device = torch.device(device)
    if val_loader is not None and val_fn is None:
        val_fn = mean_loss_val_fn(loss_fn)
    rank, world = distributed_context(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    on_gpu = device.type == "cuda"
    use_amp, channels_last = resolve_speedups(device, amp, channels_last)
    run_dir = Path(run_dir)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(run_dir)
    barrier(world)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"

    model.to(device)
    if channels_last:
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
        if "optimizer" in state:
            optimizer.load_state_dict(state["optimizer"])
        elif state["epoch"] < epochs or state["step"]:
            raise ValueError(f"{last_path}: a finished run saved without its optimiser state "
                             f"(keep_optimizer=False) cannot be continued to {epochs} epochs")
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        start_epoch, start_step = state["epoch"], state["step"]
        epoch_losses = list(state.get("epoch_losses", []))
        result.history, result.best_epoch = state["history"], state["best_epoch"]
        result.best_path = best_path if best_path.is_file() else None
        result.bytes_written = int(state.get("bytes_written", 0)) + last_path.stat().st_size
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_gpu else None)

    pending_best: dict[str, Any] | None = None  # best weights not yet on disk (written with the resumable state)

    def write(obj: Any, path: Path) -> None:
        atomic_save_torch(obj, path)
        result.bytes_written += path.stat().st_size

    def save(epoch: int, step_in_epoch: int, losses: list[float], *, optimizer_state: bool = True) -> None:
        nonlocal pending_best
        if rank == 0:
            if pending_best is not None:
                write(pending_best, best_path)
                pending_best = None
            state = {"version": CHECKPOINT_VERSION, "model": model.state_dict(),
                     "scheduler": scheduler.state_dict(), "rng": rng_state(), "epoch": epoch,
                     "step": step_in_epoch, "epoch_losses": losses, "history": result.history,
                     "best_epoch": result.best_epoch, "world_size": world, "meta": meta or {},
                     "bytes_written": result.bytes_written}
            if optimizer_state:
                state["optimizer"] = optimizer.state_dict()
            write(state, last_path)
        barrier(world)

    import time

    last_resumable = time.monotonic()

    sampler = _ReplaySampler()
    # One loader for every epoch (persistent workers); its generator only feeds the workers' seeds,
    # so iterating never touches the global RNG whose state the checkpoint restores.
    extra = ({"persistent_workers": spec.persistent_workers, "prefetch_factor": 4} if spec.num_workers > 0 else {})
    loader = DataLoader(spec.dataset, batch_size=spec.batch_size, sampler=sampler, collate_fn=spec.collate_fn,
                        num_workers=spec.num_workers, drop_last=spec.drop_last,
                        pin_memory=on_gpu if spec.pin_memory is None else (spec.pin_memory and on_gpu),
                        generator=torch.Generator().manual_seed(seed), **extra)
    steps_this_call = 0
    for epoch in range(start_epoch, epochs):
        order = epoch_order(len(spec.dataset), epoch, seed, rank, world)
        skip = start_step if epoch == start_epoch else 0
        losses = epoch_losses if epoch == start_epoch else []
        n_batches = len(order) // spec.batch_size if spec.drop_last else math.ceil(len(order) / spec.batch_size)
        sampler.order = order[skip * spec.batch_size:]
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
        share_rank0_buffers(model, world)
        scheduler.step()
        record: dict[str, float] = {"epoch": epoch + 1, "train_loss": _mean_across_ranks(losses, world, device),
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
                    pending_best = {"model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
                                    "epoch": epoch + 1, "metrics": record, "meta": meta or {}}
                result.best_path = best_path
        result.history.append(record)
        finished = epoch + 1 == epochs
        due = ((resumable_every_epochs is not None and (epoch + 1) % resumable_every_epochs == 0) or finished or (
            resumable_every_minutes is not None and time.monotonic() - last_resumable >= 60 * resumable_every_minutes))
        interrupted = max_steps is not None and steps_this_call >= max_steps and not finished
        if due or interrupted:
            save(epoch + 1, 0, [], optimizer_state=keep_optimizer or not finished)
            last_resumable = time.monotonic()
            if rank == 0:
                atomic_write_json(run_dir / "history.json", result.history)
        if max_steps is not None and steps_this_call >= max_steps and epoch + 1 < epochs:
            return result
    result.completed = True
    if rank == 0:
        sizes = checkpoint_sizes(run_dir)
        atomic_write_json(run_dir / "summary.json", {
            "epochs": epochs, "best_epoch": result.best_epoch, "completed": True,
            "checkpoint_bytes": {k: v for k, v in sizes.items() if k in ("best.pt", "last.pt")},
            "checkpoint_bytes_written": result.bytes_written, "resumable_every_epochs": resumable_every_epochs,
            "resumable_every_minutes": resumable_every_minutes,
            "optimizer_state_in_last": keep_optimizer, "amp_bf16": use_amp, "channels_last": channels_last,
            "num_workers": spec.num_workers})
    return result
