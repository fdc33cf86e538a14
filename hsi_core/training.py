"""A small, generic training loop: progress bars, atomic checkpoints, exact resume, seeds.

``fit`` trains any model on any dataset with a caller's ``loss_fn(model, batch, device)``. The data
order of each epoch comes from a generator seeded with ``seed + epoch``, and every checkpoint holds
the model, optimiser, scheduler, RNG states and the position in the epoch, so a run killed mid-epoch
and started again with the same arguments ends with the same weights as an uninterrupted run
(on the CPU; GPU kernels may add nondeterminism). Optimiser: Adam with a step learning-rate decay,
the recipe of both papers (HSI: 1e-4, x0.1 every 10 epochs; CMRNet: 1e-3, x0.1 every 2 epochs).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler
from tqdm import tqdm

from hsi_core.io import atomic_save_torch, atomic_write_json

LossFn = Callable[[nn.Module, Any, torch.device], torch.Tensor]
ValFn = Callable[[nn.Module, torch.device], dict[str, float]]


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int | None = None
    best_path: Path | None = None
    last_path: Path | None = None
    completed: bool = False


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def saliency_batch_loss(criterion: Callable[..., torch.Tensor], *, with_fixations: bool = False) -> LossFn:
    """A ``loss_fn`` for batches of ``{"image", "saliency", "fixations"}`` and a model mapping images to
    ``(B, H, W)`` maps: ``criterion(pred, saliency)`` (or ``(pred, saliency, fixations)``)."""

    def loss_fn(model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device) -> torch.Tensor:
        pred = model(batch["image"].to(device))
        targets = [batch["saliency"].to(device)] + ([batch["fixations"].to(device)] if with_fixations else [])
        return criterion(pred, *targets)

    return loss_fn


def fit(
    model: nn.Module,
    train_set: Dataset,
    *,
    loss_fn: LossFn,
    epochs: int,
    run_dir: str | Path,
    batch_size: int = 8,
    lr: float = 1e-4,
    lr_step: int = 10,
    lr_gamma: float = 0.1,
    val_fn: ValFn | None = None,
    select: str = "val_loss",
    mode: str = "min",
    device: str | torch.device = "cpu",
    seed: int = 0,
    collate_fn: Callable | None = None,
    checkpoint_every: int | None = None,
    max_steps: int | None = None,
    amp: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` for ``epochs`` epochs, resuming from ``run_dir/last.pt`` if it exists.

    ``val_fn`` runs after each epoch; the epoch with the best ``select`` value (``mode`` "min" or
    "max") is saved to ``best.pt``. ``checkpoint_every`` also checkpoints every that many steps;
    ``max_steps`` stops after that many steps in this call (a deliberate interruption, for tests).
    ``amp`` turns on bfloat16 autocast on CUDA (ignored on the CPU).
    """
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if len(train_set) == 0:
        raise ValueError("fit: the training set is empty")
    device = torch.device(device)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_step, gamma=lr_gamma)
    result = TrainResult(last_path=last_path)
    start_epoch, start_step = 0, 0
    seed_everything(seed)
    if last_path.is_file():
        state = torch.load(last_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start_epoch, start_step = state["epoch"], state["step"]
        result.history, result.best_epoch = state["history"], state["best_epoch"]
        result.best_path = best_path if best_path.is_file() else None

    def save(epoch: int, step: int) -> None:
        atomic_save_torch({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                           "scheduler": scheduler.state_dict(), "rng": _rng_state(), "epoch": epoch,
                           "step": step, "history": result.history, "best_epoch": result.best_epoch}, last_path)

    use_amp = amp and device.type == "cuda"
    steps_this_call = 0
    for epoch in range(start_epoch, epochs):
        # One generator per epoch for the order and the loader's own seed draw, so that iterating
        # the loader never touches the global RNG (whose state the checkpoint restores).
        order = torch.Generator().manual_seed(seed + epoch)
        sampler = RandomSampler(train_set, generator=order)
        loader = DataLoader(train_set, batch_size=batch_size, sampler=sampler, collate_fn=collate_fn,
                            drop_last=False, generator=order)
        model.train()
        losses = []
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
        for step, batch in enumerate(bar):
            if epoch == start_epoch and step < start_step:
                continue  # already trained before the interruption (same order: same seed)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = loss_fn(model, batch, device)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"fit: non-finite loss {loss.item()} at epoch {epoch + 1}, step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.4f}")
            steps_this_call += 1
            if checkpoint_every and (step + 1) % checkpoint_every == 0:
                save(epoch, step + 1)
            if max_steps is not None and steps_this_call >= max_steps:
                save(epoch, step + 1)
                return result
        scheduler.step()
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                  "lr": optimizer.param_groups[0]["lr"]}
        if val_fn is not None:
            model.eval()
            with torch.no_grad():
                record.update(val_fn(model, device))
            if select not in record:
                raise KeyError(f"fit: val_fn returned no {select!r} (it returned {sorted(record)})")
            previous = [h[select] for h in result.history]
            better = not previous or (record[select] < min(previous) if mode == "min" else record[select] > max(previous))
            if better:
                result.best_epoch = epoch + 1
                atomic_save_torch(model.state_dict(), best_path)
                result.best_path = best_path
        result.history.append(record)
        save(epoch + 1, 0)
        atomic_write_json(run_dir / "history.json", result.history)
    result.completed = True
    return result
