"""How stable an explanation is (loggabor paper, Section II-B, LG Eq. 2-5, rerun on a perturbed input).

Rounding moves every MAE of LG Eq. 2 and LG Eq. 5 by about 1e-6 of its size; ``perturbation_stability``
emulates a rerun on another CPU by scaling the input by ``1 + 1e-6`` (far below one grey level) and
compares the two explainable maps by their correlation coefficient, beside how many choices the
unperturbed run read as near-tied (``LayerResult.ambiguity``) and how many choices moved.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
from torch import Tensor

from .reconstruct import Reconstruction, reconstruct


def correlation(a: Tensor, b: Tensor) -> Tensor:
    """Pearson's CC of each pair of maps ``(B, H, W)``: ``(B,)`` (0 where a map is flat)."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    den = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(den > 0, (a * b).sum(1) / den.clamp_min(1e-300), torch.zeros_like(den)).float()


def choice_changes(first: Reconstruction, second: Reconstruction) -> dict[str, int]:
    """Per pair of runs: layers whose top-k choices (LG Eq. 3) or kept maps (LG Eq. 5) differ anywhere, and
    the number of top-k choices (image, map, scale) whose chosen set differs."""
    layers = kept = choices = 0
    for a, b in zip(first.batched, second.batched):
        moved = (a.chosen.sort(-1).values != b.chosen.sort(-1).values).any(-1)
        choices += int(moved.sum())
        layers += int(bool(moved.any()))
        kept += int(not torch.equal(a.kept, b.kept))
    return {"layers with moved choices": layers, "layers with moved kept maps": kept, "moved choices": choices}


def near_ties(result: Reconstruction) -> dict[str, float]:
    """Over all rebuilt layers: top-k choices and kept sets that left a near-tied candidate out."""
    ties = [layer.ties for layer in result.batched if layer.ties is not None]
    kept = [layer.kept_ties for layer in result.batched if layer.kept_ties is not None]
    n_choices = sum(t.numel() for t in ties)
    return {"near-tied choices": int(sum(int((t > 0).sum()) for t in ties)), "choices": int(n_choices),
            "near-tied kept sets": int(sum(int((k > 0).sum()) for k in kept)),
            "layers with near-ties": int(sum(int(bool((t > 0).any())) for t in ties))}


def near_tied_share(result: Reconstruction) -> Tensor:
    """Per image ``(B,)``: the share of its top-k choices (all rebuilt layers, maps and scales) that
    left a near-tied candidate out (0 where a run records no ties)."""
    ties = [layer.ties for layer in result.batched if layer.ties is not None]
    if not ties:
        return torch.zeros(len(result.saliency))
    tied = sum((t > 0).flatten(1).sum(1) for t in ties)
    total = sum(t[0].numel() for t in ties)
    return tied.double().div(total).float()


def perturbation_stability(model: nn.Module, images: Tensor, layer_names: Sequence[str] | None = None, *,
                           factor: float = 1 + 1e-6, reference: Reconstruction | None = None,
                           **kwargs) -> dict[str, object]:
    """Explain ``images`` and ``images * factor`` with the same settings (``reconstruct`` keywords);
    ``reference``: the unperturbed run if already computed with those settings (it is not rerun).
    Returns the per-image CC of the two explainable maps (``"cc"``, ``(B,)``) and per-image share of
    near-tied choices of the unperturbed run (``"near-tied share"``, ``(B,)``), then the totals of
    ``near_ties`` and the moved choices of ``choice_changes``."""
    kwargs.setdefault("keep_maps", False)
    first = reference if reference is not None else reconstruct(model, images, layer_names, **kwargs)
    second = reconstruct(model, images * factor, layer_names, **kwargs)
    return {"cc": correlation(first.saliency, second.saliency), "near-tied share": near_tied_share(first),
            **near_ties(first), **choice_changes(first, second)}
