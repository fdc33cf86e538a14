"""How stable an explanation is (loggabor paper, Section II-B, LG Eq. 2-5, rerun on a perturbed input
or on another CPU).

Rounding moves every MAE of LG Eq. 2 and LG Eq. 5 by about 1e-6 of its size; ``perturbation_stability``
emulates a rerun on another CPU by scaling the input by ``1 + 1e-6`` (far below one grey level) and
compares the two explainable maps by their correlation coefficient, beside how many choices the
unperturbed run read as near-tied (``LayerResult.ambiguity``) and how many choices moved.
``emulated_cpu_rerun`` reruns the explanation in a child process whose torch, oneDNN and MKL are
held to another instruction set (AVX2 by default): the rerun on another CPU itself.

Why the choices move: with no choice moved, the difference between two runs still grows by about
x2 per layer (measured on UNISAL in float64, one MIT1003 image, native AVX-512 against emulated
AVX2: reconstructions apart by 3e-15 at the first layer, 4e-5 forty layers later), because each layer
min-max normalises band-pass energies whose range is a fraction of their map's (LG Eq. 1-4), and
such growth is the method's own, not the arithmetic's. Float32's 1e-7 is spent within about ten
layers. ``reconstruct(precision="float64")`` starts nine digits lower and rounds the maps each layer
passes on to ``CARRY_GRID`` (2^-20), so a difference stops at the layer where it arose: there the
explanation is the same on AVX-512 and AVX2 on CMRNet, UNISAL and MSI-Net (float64 without the grid:
CMRNet's 27 layers hold, UNISAL's 66 do not, CC 0.48-0.79).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
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


#: The environment that holds torch (ATen), oneDNN and MKL to an instruction set (the developers' guide).
EMULATED_CPU_ENV = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
                             "MKL_ENABLE_INSTRUCTIONS": "AVX2"}}

_RERUN = """
import sys, torch
from hsi_core import loggabor
torch.set_num_threads(int(sys.argv[3]))
job = torch.load(sys.argv[1], weights_only=False, map_location="cpu")
run = loggabor.reconstruct(job["model"], job["images"], job["layers"], **job["kwargs"])
torch.save({"saliency": run.saliency, "chosen": [layer.chosen for layer in run.batched],
            "kept": [layer.kept for layer in run.batched], "names": [layer.name for layer in run.batched],
            "capability": torch.backends.cpu.get_cpu_capability()}, sys.argv[2])
"""


def emulated_cpu_rerun(model: nn.Module, images: Tensor, layer_names: Sequence[str] | None = None, *,
                       instruction_set: str = "avx2", timeout: float = 3600, **kwargs) -> dict[str, object]:
    """Explain ``images`` (``reconstruct`` keywords) in a child process whose torch, oneDNN and MKL are
    held to ``instruction_set`` (``EMULATED_CPU_ENV``), on the CPU, with this process's thread count.
    The model travels pickled (its class must be importable). Returns the child's ``"saliency"``
    ``(B, H, W)``, per rebuilt layer its ``"chosen"`` and ``"kept"`` tensors and ``"names"``, and the
    instruction set torch reported there (``"capability"``).

    Raises:
        ValueError: ``instruction_set`` is unknown.
        RuntimeError: the child failed (its last output is in the message)."""
    if instruction_set not in EMULATED_CPU_ENV:
        raise ValueError(f"emulated_cpu_rerun: instruction_set must be one of {sorted(EMULATED_CPU_ENV)}, "
                         f"got {instruction_set!r}")
    kwargs.pop("device", None)
    env = {**os.environ, **EMULATED_CPU_ENV[instruction_set]}
    with tempfile.TemporaryDirectory(prefix="hsi-emulated-cpu-") as folder:
        job, out = Path(folder) / "job.pt", Path(folder) / "out.pt"
        torch.save({"model": model, "images": images.cpu(), "layers": layer_names, "kwargs": kwargs}, job)
        done = subprocess.run([sys.executable, "-c", _RERUN, str(job), str(out), str(torch.get_num_threads())],
                              env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 or not out.is_file():
            raise RuntimeError(f"emulated_cpu_rerun ({instruction_set}): the child process failed with exit "
                               f"{done.returncode}: {(done.stderr or done.stdout)[-2000:]}")
        return torch.load(out, weights_only=False)
