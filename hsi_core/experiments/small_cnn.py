"""The demo-scale classifier that the XAI methods explain: ``SmallCNN`` trained on the demo world's glyphs
(``hsi_core.demo.classification_set``) with the generic loop (``hsi_core.training.fit``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from hsi_core.models.classifier import SmallCNN, accuracy
from hsi_core.training import fit


def train_small_cnn(
    run_dir: str | Path,
    *,
    n_per_class: int = 24,
    n_val_per_class: int = 8,
    epochs: int = 6,
    width: int = 16,
    input_size: int = 64,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[SmallCNN, dict[str, Any]]:
    """Train ``SmallCNN`` on demo glyphs (``hsi_core.demo.classification_set``) with ``hsi_core.training.fit``.

    Resumes from / reuses ``run_dir`` (``fit``'s checkpoints). Returns the model in eval mode and a report
    with the training history and the accuracy on a held-out glyph set drawn with another seed.
    """
    from hsi_core.datasets.hsb import HSB_CLASSES
    from hsi_core.demo import classification_set

    x, y = classification_set(n_per_class, size=input_size, seed=seed, tensors=True)
    xv, yv = classification_set(n_val_per_class, size=input_size, seed=seed + 1000, tensors=True)
    train = TensorDataset(x, y)
    model = SmallCNN(len(HSB_CLASSES), width, input_size, class_names=HSB_CLASSES)

    def loss_fn(net: nn.Module, batch: Any, dev: torch.device) -> Tensor:
        images, targets = batch
        return F.cross_entropy(net(images.to(dev)), targets.to(dev))

    result = fit(model, train, loss_fn=loss_fn, epochs=epochs, run_dir=run_dir, device=device, seed=seed,
                 batch_size=batch_size, lr=lr, lr_step=max(1, epochs // 2 + 1), lr_gamma=0.1,
                 progress=progress, meta={"model": "SmallCNN", **model.config()})
    model.eval()
    acc = accuracy(model, xv, yv, device=device)
    return model, {"history": result.history, "val_accuracy": acc, "n_train": len(train), "n_val": len(yv),
                   "last_path": str(result.last_path)}
