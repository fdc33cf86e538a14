"""The layer-by-layer reconstruction (loggabor paper, Section II-B2-3, LG Eq. 2-5), batched.

For each captured layer, in execution order, and every image of a batch at once:

1. every activation map and every candidate response is min-max normalised (``normalise="none"``:
   raw) and resized to each of 5
   scales (x1/4, x1/2, x1, x2, x4 of the activation map, by two x2 steps by default: ``resample``;
   scales where the map is smaller than one 8x8 block are not used);
2. block-wise variance in non-overlapping 8x8 blocks; the MAE between the variance maps of each
   activation map and each candidate (LG Eq. 2);
3. the ``top_k = 10`` candidates with the lowest MAE, weighted by 1/MAE normalised to sum 1, summed
   (LG Eq. 3);
4. the scales are resized back and fused as ``sqrt(sum_s R_s^2)`` (LG Eq. 4);
5. the reconstruction MAE against the activation map (both min-max normalised, LG Eq. 5);
6. the ``n_keep = 10`` best-reconstructed maps pass through the bank: their energies (LG Eq. 1) are
   candidates for the layers they feed.

**Which candidates** (``mode``): ``"graph"`` (default; the paper's "in parallel to" the network) gives
a layer the energies of the kept reconstructions of the layers that actually feed it (``graph.trace``),
or the input's 80 energies when it reads the image, and the union of both inputs' candidates at a
concatenation. **An addition** of captured maps (a residual add, M_n = O' + M_(n-1) of LG Eq. 10,
the DIM's sum of branches) is a layer of its own (``point == "sum"``, ``adds="rebuilt_sum"``): it is
rebuilt as the sum of its terms' reconstructions, each put back to its map's range (LG Eq. 4's
reconstruction is min-max normalised), chooses no candidates, and the layers after it read the
energies of its kept maps: the energies of the rebuilt sum. ``adds="union"`` gives them the union of
the terms' candidates instead (the first version), which does not contain the sum's energies.
``"chain"`` gives it those of the layer that ran just before it (the
first version of this module: the network flattened into one chain).

**Layers that cannot be rebuilt** (a map smaller than one block at every scale: a global-pooling
branch such as MSI-Net's ASPP image-mean branch, or the deepest maps at small inputs) are skipped
with the reason in ``Reconstruction.skipped`` and passed through: in graph mode the layers they feed
use the skipped layer's own candidates instead; in chain mode the chain goes on from the last
rebuilt layer.

**Stability** (what a rerun on another CPU, or an input scaled by 1 + 1e-6, changes). Rounding moves
every MAE by about 1e-6 of its size, and three steps amplify that: (1) LG Eq. 3's inverse MAEs: the
best candidate's MAE is a difference of two nearly equal block variances, its relative error reaches
1e-2 at x1/4 (one block), and its inverse dominates the weights; the MAEs are therefore floored at
``weight_floor`` (1 %) of the map's mean block variance; (2) near-ties among the 800 candidates
(their MAE gaps are ~0.3 % at the 10th place): MAEs within ``tie_rtol`` of the k-th are read as tied
and taken in candidate order, and each layer reports how many tied candidates it left out
(``LayerResult.ties``, ``kept_ties``, ``ambiguity()``); (3) the kept maps (LG Eq. 5) decide the next
layers' candidates, so one changed choice can cascade: they are chosen the same way and passed on in
map order. No tolerance removes a boundary (a tie window has edges too); the floor removes the
amplification, the tie order makes exact and near ties reproducible. Between the choices, the method
itself makes two runs drift apart by about x2 per layer (``stability``'s docstring): in float32 a
deep network's choices move within about ten layers whatever the tolerance. ``precision="float64"``
starts from differences of ~1e-16 and rounds the kept maps to ``CARRY_GRID`` before they become
candidates, so a difference below the grid stops at the layer where it arose: the same choices on
AVX-512 and AVX2 on all three networks (``tests/test_loggabor_graph.py``). An input scaled by
1 + 1e-6 is a real change of 1e-6, above any such grid: that perturbation still moves choices.
A tapered LG Eq. 3 (weights 1/MAE less the 11th candidate's, zero at the boundary, so continuous)
was tried and made it worse: those weights amplify MAE differences by about x6 per layer.

The last rebuilt layer's reconstruction (mean over its maps), resized to the input and min-max
normalised, is the explainable saliency map. Everything runs on the images' device in float32
(block variances in bf16 change the top-10 choices); ``batch_size`` bounds the images processed
together and ``chunk`` the (image, map) pairs resized at once: together they bound memory.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from functools import lru_cache

from hsi_core.maps import minmax, resize

from .bank import FFT_LENGTHS, FilterSpec, bank_specs, energy, filter_bank, radial_bandwidth_octaves
from .graph import ADD_READINGS, INPUT, replay, trace
from .resample import (apply_separable, block_operators, block_variance_of, round_trip_matrix, scale_length,
                       to_scale_matrix)

SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)
#: Relative tolerance within which two MAEs (LG Eq. 2 or LG Eq. 5) are read as tied (module docstring).
TIE_RTOL = 1e-3
#: Floor of LG Eq. 3's MAEs, as a share of the activation map's mean block variance (module docstring).
WEIGHT_FLOOR = 1e-2
#: The arithmetic of the forward pass and the reconstruction: "float32" (default) or "float64" (a
#: float64 copy of the model: rounding differences between CPUs shrink from ~1e-7 to ~1e-16 of a
#: value and, with ``CARRY_GRID``, do not travel between layers: the same explanation on every CPU).
PRECISIONS = ("float32", "float64")
#: In float64, the kept reconstructions (values in [0, 1]) are rounded to multiples of this before
#: their energies become the next layers' candidates (LG Eq. 1): 2^-20, about 1e-6, far below the
#: method's resolution (reconstruction MAEs ~0.1) and far above float64's rounding differences
#: between CPUs (~1e-14 after a layer), which the grid then stops instead of letting them grow x2 per
#: layer. In float32 no grid can do both (its differences reach 1e-5 within a layer), so none is used.
CARRY_GRID = 2.0**-20
#: What is done to the maps and candidates before their block variances (LG Eq. 2): "minmax" (each map
#: to [0, 1]: the paper does not say; our default, so that LG Eq. 2 compares structure, not gain) or
#: "none" (the raw maps: a layer's gain then decides which candidates match).
NORMALISATIONS = ("minmax", "none")


#: The range floor of the method's min-max normalisations (``hsi_core.maps.minmax``'s ``eps``).
MINMAX_EPS = 1e-12
#: Images reconstructed together by default, per device type. On the CPU, 2 (``benchmarks/bench_loggabor.py``,
#: 32x48, one thread, load < 1, seconds per image at batch 1 / 2 / 4, the fastest of two runs): on an
#: AVX-512/AMX Xeon, UNISAL 0.54 / 0.47 / 0.45 and 0.54 / 0.53 / 0.50, CMRNet 1.04 / 0.90 / 0.91 and
#: 1.09 / 1.00 / 0.92 (two runs: 4 the fastest in three of four, 2 within 8 %); on an AVX2 EPYC (an
#: earlier version), UNISAL 1.04 / 1.28 / 1.38 and CMRNet 2.84 / 2.62 / 2.63 (4 up to 33 % slower
#: than the fastest, 2 up to 23 %): 2 is the size least far from the fastest on both machines.
#: On a GPU batches fill the device.
DEFAULT_BATCH_SIZE = {"cpu": 2, "cuda": 16}


def default_batch_size(device: torch.device | str) -> int:
    """``reconstruct``'s batch size when none is given: ``DEFAULT_BATCH_SIZE`` for the device type
    (16 for another accelerator)."""
    return DEFAULT_BATCH_SIZE.get(torch.device(device).type, 16)


def block_variance(maps: Tensor, block: int = 8) -> Tensor:
    """Variance in non-overlapping ``block x block`` blocks, flattened: ``(..., n_blocks)``."""
    lead = maps.shape[:-2]
    x = maps.reshape(-1, 1, *maps.shape[-2:])
    mean = F.avg_pool2d(x, block)
    return (F.avg_pool2d(x * x, block) - mean * mean).clamp_min(0).reshape(*lead, -1)


def scale_sizes(size: tuple[int, int], scales: Sequence[float] = SCALES, block: int = 8,
                steps: str = "twice") -> list[tuple[int, int]]:
    """The sizes at which an ``h x w`` map is compared (those with at least one whole block)."""
    return [s for s in ((scale_length(size[0], f, steps), scale_length(size[1], f, steps)) for f in scales)
            if min(s) >= block]


def used_scales(size: tuple[int, int], scales: Sequence[float] = SCALES, block: int = 8,
                steps: str = "twice") -> list[float]:
    """The scales of ``scales`` at which an ``h x w`` map has at least one whole block."""
    return [f for f in scales if min(scale_length(size[0], f, steps), scale_length(size[1], f, steps)) >= block]


def smallest_with_ties(values: Tensor, k: int, rtol: float = TIE_RTOL) -> tuple[Tensor, Tensor]:
    """The ``k`` smallest of ``values`` along the last axis, reading values within ``rtol`` (relative)
    of the ``k``-th smallest as tied and taking tied ones in index order.

    Returns the indices ``(..., k)`` (where a tied candidate is left out: the surely smaller ones
    first, by value, then the tied ones by index; elsewhere the ``k`` smallest, by value) and, per row,
    how many tied candidates were left out (0: the choice is unambiguous).
    ``rtol=0`` is a plain ``topk`` (ties broken by the kernel, as in the first version)."""
    k = min(k, values.shape[-1])
    top = torch.topk(values, k, dim=-1, largest=False)
    if rtol <= 0:
        return top.indices, torch.zeros(values.shape[:-1], dtype=torch.long, device=values.device)
    kth = top.values[..., -1:]
    lo, hi = kth * (1 - rtol), kth * (1 + rtol)
    left_out = (values <= hi).sum(-1) - k  # the surely smaller and the tied, less the k places
    idx = top.indices
    straddling = left_out > 0  # only there does the tie order decide the set
    if bool(straddling.any()):
        n = values.shape[-1]
        rows, low, high = values[straddling], lo[straddling], hi[straddling]
        position = torch.arange(n, device=values.device, dtype=values.dtype) / n
        # surely-smaller values rank by value in [0, 1), tied ones by index in [1, 2), the rest after
        rank = torch.where(rows < low, rows / high.clamp_min(torch.finfo(values.dtype).tiny),
                           torch.where(rows <= high, 1 + position, 3 + position))
        idx = idx.clone()
        idx[straddling] = torch.topk(rank, k, dim=-1, largest=False).indices
    return idx, left_out


@lru_cache(maxsize=256)
def _block_ops(n_in: int, n: int, scale: float, steps: str, block: int) -> tuple[Tensor, Tensor]:
    return block_operators(to_scale_matrix(n_in, n, scale, steps), block)


def _ops(n_in: int, n: int, scale: float, steps: str, block: int, like: Tensor) -> tuple[Tensor, Tensor]:
    return tuple(m.to(like.device, like.dtype) for m in _block_ops(n_in, n, scale, steps, block))


@lru_cache(maxsize=256)
def _round_trip(n_in: int, n: int, scale: float, steps: str) -> Tensor:
    return round_trip_matrix(n_in, n, scale, steps)


def resized_block_variance(maps: Tensor, size: tuple[int, int], scale: float, *, block: int = 8,
                           steps: str = "twice") -> Tensor:
    """Block variances (LG Eq. 2) of ``(..., H, W)`` maps taken to ``scale`` of an ``h x w`` = ``size``
    activation map (``resample.to_scale_matrix``), computed in closed form: ``(..., n_blocks)``."""
    h, w = maps.shape[-2:]
    return block_variance_of(maps, _ops(h, size[0], scale, steps, block, maps),
                             _ops(w, size[1], scale, steps, block, maps))


def reconstruct_batch(acts: Tensor, groups: Sequence[Tensor], *, top_k: int = 10, scales: Sequence[float] = SCALES,
                      block: int = 8, chunk: int = 1024, eps: float = 1e-8, keys: Sequence[object] | None = None,
                      cache: dict | None = None, scale_steps: str = "twice", tie_rtol: float = TIE_RTOL,
                      weight_floor: float = WEIGHT_FLOOR, normalise: str = "minmax"
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Reconstruct ``(B, A, h, w)`` activation maps from candidate groups ``(B, G_i, H_i, W_i)``
    (sizes may differ between groups; candidate ``g`` indexes their concatenation), LG Eq. 2-4.

    Returns the fused reconstructions ``(B, A, h, w)`` (min-max normalised), the chosen candidate
    indices ``(B, A, S, k)``, their weights ``(B, A, S, k)`` and the near-tied candidates left out
    ``(B, A, S)`` (``smallest_with_ties``). Block variances of the resized maps are computed in
    closed form (``resample``); resizing is linear, so the weighted sum at a scale, taken back to the
    map's size, is the round trip of the weighted sum at the candidates' size: that is how LG Eq. 3 is
    computed. ``chunk`` bounds the (image, map) or (image, candidate) pairs processed at once. With
    ``normalise``: the maps and candidates min-max normalised first (``"minmax"``) or
    raw (``"none"``; ``NORMALISATIONS``). With ``keys`` (one per group) the candidates' block variances are kept in ``cache`` under
    ``(key, size, scale)``, for the other layers of the same size that share a feeder."""
    n_img, n_maps, h, w = acts.shape
    factors = used_scales((h, w), scales, block, scale_steps)
    if not factors:
        raise ValueError(f"reconstruct_maps: a {h}x{w} map is smaller than one {block}x{block} block at every scale")
    if normalise not in NORMALISATIONS:
        raise ValueError(f"reconstruct: normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    if normalise == "minmax":
        acts = minmax(acts, MINMAX_EPS)
        groups = [minmax(g, MINMAX_EPS) for g in groups]
    counts = [g.shape[1] for g in groups]
    n_cand = sum(counts)
    bounds = [0]
    for c in counts:
        bounds.append(bounds[-1] + c)
    k = min(top_k, n_cand)
    fused = torch.zeros_like(acts)
    chosen = torch.zeros((n_img, n_maps, len(factors), k), dtype=torch.long, device=acts.device)
    weights = torch.zeros((n_img, n_maps, len(factors), k), dtype=acts.dtype, device=acts.device)
    left_out = torch.zeros((n_img, n_maps, len(factors)), dtype=torch.long, device=acts.device)
    step = max(1, chunk // max(1, n_img))
    for si, factor in enumerate(factors):
        var_c = []
        for gi, g in enumerate(groups):
            key = None if keys is None or cache is None else (keys[gi], (h, w), factor, scale_steps, block,
                                                               normalise)
            if key is not None and key in cache:
                var_c.append(cache[key])
                continue
            flat = g.reshape(-1, *g.shape[-2:])
            var_c.append(torch.cat([resized_block_variance(flat[i : i + step], (h, w), factor, block=block,
                                                           steps=scale_steps)
                                    for i in range(0, flat.shape[0], step)]).view(n_img, g.shape[1], -1))
            if key is not None:
                cache[key] = var_c[-1]
        var_c = torch.cat(var_c, 1)  # (B, G, n_blocks)
        var_a = resized_block_variance(acts, (h, w), factor, block=block, steps=scale_steps)  # (B, A, n_blocks)
        for start in range(0, n_maps, step):
            part = slice(start, start + step)
            mae = torch.cdist(var_a[:, part], var_c, p=1) / var_a.shape[-1]  # (B, a, G): LG Eq. 2
            idx, ties = smallest_with_ties(mae, k, tie_rtol)
            # LG Eq. 3's inverse MAEs, floored at a share of the map's block variance: an MAE far below
            # that is a difference of two nearly equal variances, known only to rounding, and its
            # inverse would let rounding pick the reconstruction
            floor = weight_floor * var_a[:, part].mean(-1, keepdim=True)
            wts = 1.0 / (torch.gather(mae, -1, idx) + eps + floor)
            chosen[:, part, si] = idx
            weights[:, part, si] = wts / wts.sum(-1, keepdim=True)
            left_out[:, part, si] = ties
        # LG Eq. 3, taken back to the map's size: the round trip of the weighted sum of the chosen candidates
        for start in range(0, n_maps, step):
            part = slice(start, start + step)
            idx, wts = chosen[:, part, si], weights[:, part, si]  # (B, a, k)
            rebuilt = torch.zeros((n_img, idx.shape[1], h, w), dtype=acts.dtype, device=acts.device)
            for gi, g in enumerate(groups):
                inside = (idx >= bounds[gi]) & (idx < bounds[gi + 1])
                if not bool(inside.any()):
                    continue
                local = (idx - bounds[gi]).clamp(0, counts[gi] - 1)
                rows = (torch.arange(n_img, device=acts.device).view(-1, 1, 1) * counts[gi] + local).flatten()
                picked = g.reshape(-1, *g.shape[-2:])[rows].view(n_img, idx.shape[1], k, *g.shape[-2:])
                summed = torch.einsum("bak,bakhw->bahw", wts * inside, picked)
                my = _round_trip(g.shape[-2], h, factor, scale_steps).to(acts.device, acts.dtype)
                mx = _round_trip(g.shape[-1], w, factor, scale_steps).to(acts.device, acts.dtype)
                rebuilt += apply_separable(summed, my, mx)
            fused[:, part] += rebuilt**2
    return minmax(fused.sqrt(), MINMAX_EPS), chosen, weights, left_out  # LG Eq. 4


def reconstruct_maps(activations: Tensor, candidates: Tensor, *, top_k: int = 10, scales: Sequence[float] = SCALES,
                     block: int = 8, chunk: int = 1024, eps: float = 1e-8, scale_steps: str = "twice",
                     tie_rtol: float = TIE_RTOL, weight_floor: float = WEIGHT_FLOOR,
                     normalise: str = "minmax") -> tuple[Tensor, Tensor, Tensor]:
    """One image: ``(A, h, w)`` activation maps from ``(G, H, W)`` candidates (LG Eq. 2-4); returns
    reconstructions ``(A, h, w)``, chosen indices and weights ``(A, S, k)``."""
    recon, chosen, weights, _ = reconstruct_batch(activations[None], [candidates[None]], top_k=top_k, scales=scales,
                                                  block=block, chunk=chunk, eps=eps, scale_steps=scale_steps,
                                                  tie_rtol=tie_rtol, weight_floor=weight_floor,
                                                  normalise=normalise)
    return recon[0], chosen[0], weights[0]


@dataclass
class LayerReconstruction:
    """One layer of one image (the view the figures use)."""

    name: str
    activations: Tensor | None  # (A, h, w)
    reconstructions: Tensor | None  # (A, h, w), min-max normalised
    mae: Tensor  # (A,), LG Eq. 5 on min-max normalised maps
    chosen: Tensor  # (A, S, top_k) candidate indices
    weights: Tensor  # (A, S, top_k)
    candidate_specs: list[FilterSpec]  # the filter behind each candidate index
    kept: Tensor  # indices of the maps passed on, ascending
    sources: list[str] = field(default_factory=list)  # layers (or "input") whose energies were candidates
    point: str = "conv"  # where the activation map was taken ("sum": an addition, graph.SUM_POINT)
    ties: Tensor | None = None  # (A, S): near-tied candidates left out of each top-k choice
    kept_ties: int = 0  # near-tied maps left out of the kept ones


@dataclass
class LayerResult:
    """One layer, every image: tensors with a leading batch dimension."""

    name: str
    sources: list[str]
    point: str
    mae: Tensor  # (B, A)
    chosen: Tensor  # (B, A, S, k)
    weights: Tensor  # (B, A, S, k)
    kept: Tensor  # (B, n_keep), ascending map indices
    candidate_specs: list[FilterSpec]
    activations: Tensor | None = None  # (B, A, h, w) when keep_maps
    reconstructions: Tensor | None = None
    ties: Tensor | None = None  # (B, A, S): near-tied candidates left out of each top-k choice (LG Eq. 3)
    kept_ties: Tensor | None = None  # (B,): near-tied maps left out of the kept ones (LG Eq. 5)

    def image(self, b: int) -> LayerReconstruction:
        return LayerReconstruction(
            self.name, None if self.activations is None else self.activations[b],
            None if self.reconstructions is None else self.reconstructions[b], self.mae[b], self.chosen[b],
            self.weights[b], self.candidate_specs, self.kept[b], self.sources, self.point,
            None if self.ties is None else self.ties[b], 0 if self.kept_ties is None else int(self.kept_ties[b]))

    def ambiguity(self) -> dict[str, float]:
        """How ambiguous this layer's choices are: the share of top-k choices (image, map, scale) and
        of kept sets (image) that left a near-tied candidate out, and the mean number left out."""
        ties = self.ties if self.ties is not None else torch.zeros(1)
        kept = self.kept_ties if self.kept_ties is not None else torch.zeros(1)
        return {"ambiguous top-k share": float((ties > 0).float().mean()),
                "tied left out per choice": float(ties.float().mean()),
                "ambiguous kept share": float((kept > 0).float().mean())}


@dataclass
class Reconstruction:
    """Result of ``reconstruct``: ``batched`` layers (execution order), the ``skipped`` layers with the
    reason, and the ``(B, H, W)`` explainable ``saliency`` maps. ``layers`` is the first image's view."""

    batched: list[LayerResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    saliency: Tensor | None = None
    mode: str = "graph"

    def image(self, b: int) -> list[LayerReconstruction]:
        return [layer.image(b) for layer in self.batched]

    @property
    def layers(self) -> list[LayerReconstruction]:
        return self.image(0) if self.batched else []

    def layer_mae(self) -> dict[str, float]:
        """Mean reconstruction MAE (LG Eq. 5) of each layer, over its maps and the batch's images."""
        return {layer.name: float(layer.mae.mean()) for layer in self.batched}


def _sources(capture_feeds: dict[str, list[str]], order: list[str], skipped: dict[str, str],
             mode: str) -> dict[str, list[str]]:
    """Per rebuilt layer, the rebuilt layers (or ``"input"``) whose energies are its candidates."""
    out: dict[str, list[str]] = {}
    expanded: dict[str, list[str]] = {}
    previous = INPUT
    for name in order:
        if mode == "chain":
            if name not in skipped:
                out[name] = [previous]
                previous = name
            continue
        srcs: list[str] = []
        for f in capture_feeds[name]:
            for s in (expanded.get(f, [f]) if f in skipped else [f]):
                if s not in srcs:
                    srcs.append(s)
        if name in skipped:
            expanded[name] = srcs or [INPUT]
        else:
            out[name] = srcs or [INPUT]
    return out


@torch.no_grad()
def _reconstruct_images(model: nn.Module, x: Tensor, layer_names: Sequence[str] | None, *, mode: str, point: str,
                        top_k: int, n_keep: int, scales: Sequence[float], block: int, chunk: int,
                        specs: list[FilterSpec], pad: int | str, autocast: bool, repeated: str,
                        keep_maps: bool, scale_steps: str, tie_rtol: float, weight_floor: float,
                        normalise: str, adds: str, fft_lengths: str,
                        carry_grid: float) -> tuple[list[LayerResult], dict[str, str], Tensor]:
    capture = trace(model, x, layer_names, point=point, autocast=autocast, repeated=repeated,
                    adds=adds if mode == "graph" else "union")
    if not capture.activations:
        raise ValueError("reconstruct: no 4-D activations were captured")
    order = list(capture.activations)
    skipped = dict(capture.not_maps)
    for name, act in capture.activations.items():
        if not scale_sizes(tuple(act.shape[-2:]), scales, block, scale_steps):
            skipped[name] = (f"a {act.shape[-2]}x{act.shape[-1]} map is smaller than one {block}x{block} block "
                             "at every scale; passed through")
    sums = dict(capture.terms)
    for name in order:  # a sum is the sum of its terms' reconstructions: each term must be rebuilt
        if name in sums and name not in skipped:
            missing = [term for term in sums[name] if term in skipped]
            if missing:
                skipped[name] = f"a sum of {', '.join(missing)}, which could not be rebuilt; passed through"
    sources = _sources(capture.feeds, order, skipped, mode)
    if not sources:
        raise ValueError(f"reconstruct: no layer can be rebuilt ({next(iter(skipped.values()))})")
    # candidates (energies of the kept maps) are for the layers rebuilt by LG Eq. 2-4; the whole
    # reconstruction, at its map's range, for the sums that add it
    last_use = {s: i for i, name in enumerate(sources) if name not in sums for s in sources[name]}
    last_term_use = {s: i for i, name in enumerate(sources) if name in sums for s in sources[name]}
    summands: dict[str, Tensor] = {}
    banks: dict[tuple[int, int], Tensor] = {}

    def energies(maps: Tensor) -> Tensor:  # (N, h, w) -> (N, G, h, w), LG Eq. 1
        size = tuple(maps.shape[-2:])
        if size not in banks:
            banks[size] = filter_bank(size, specs, pad=pad, fft_lengths=fft_lengths, device=maps.device,
                                      dtype=maps.dtype)
        return energy(maps, banks[size])

    candidates: dict[str, Tensor] = {}
    variances: dict[tuple[str, tuple[int, int]], Tensor] = {}  # block variances shared by layers
    n_img = x.shape[0]
    results: list[LayerResult] = []
    for i, name in enumerate(sources):
        maps = capture.activations[name]
        if name in sums:
            # the sum of the terms' reconstructions, each at its own map's range (what LG Eq. 4's
            # min-max normalised reconstruction does not carry): no candidates are chosen here
            summed = sum(replay(ops, summands[term]) for term, ops in zip(sums[name], capture.term_ops[name]))
            recon = minmax(summed, MINMAX_EPS)
            chosen = torch.zeros((n_img, maps.shape[1], 0, top_k), dtype=torch.long, device=maps.device)
            weights = torch.zeros((n_img, maps.shape[1], 0, top_k), dtype=maps.dtype, device=maps.device)
            ties = torch.zeros((n_img, maps.shape[1], 0), dtype=torch.long, device=maps.device)
            groups = []
            for term in sources[name]:
                if last_term_use[term] <= i:
                    summands.pop(term, None)
        else:
            summed = None
            for s in sources[name]:
                if s == INPUT and s not in candidates:
                    candidates[s] = energies(x.to(maps.dtype).mean(1))
            groups = [candidates[s] for s in sources[name]]
            recon, chosen, weights, ties = reconstruct_batch(
                maps, groups, top_k=top_k, scales=scales, block=block, chunk=chunk, keys=sources[name],
                cache=variances, scale_steps=scale_steps, tie_rtol=tie_rtol, weight_floor=weight_floor,
                normalise=normalise)
        mae = (minmax(maps, MINMAX_EPS) - recon).abs().flatten(2).mean(2)  # LG Eq. 5
        # the kept maps, in map order: the candidates' numbering (and so the tie order of the next
        # layers) must not depend on the order of near-equal MAEs
        kept, kept_ties = smallest_with_ties(mae, n_keep, tie_rtol)
        kept = kept.sort(dim=1).values
        cand_specs = [sp for g in groups for _ in range(g.shape[1] // len(specs)) for sp in specs]
        results.append(LayerResult(name, list(sources[name]), capture.points[name], mae, chosen, weights, kept,
                                   cand_specs, maps if keep_maps else None, recon if keep_maps else None,
                                   ties, kept_ties))
        if name in last_term_use:
            if summed is None:
                lo = maps.flatten(2).amin(2)[..., None, None]
                hi = maps.flatten(2).amax(2)[..., None, None]
                summed = lo + (hi - lo) * recon
            summands[name] = summed
        for s in sources[name]:
            if s in last_use and last_use[s] <= i:
                candidates.pop(s, None)
                for key in [key for key in variances if key[0] == s]:
                    del variances[key]
        if name in last_use:
            best = torch.gather(recon, 1, kept.view(n_img, -1, 1, 1).expand(-1, -1, *recon.shape[-2:]))
            if carry_grid > 0:  # rounding differences below the grid stop here instead of growing
                best = torch.round(best / carry_grid) * carry_grid
            candidates[name] = energies(best.flatten(0, 1)).view(n_img, -1, *recon.shape[-2:])
        capture.activations[name] = None  # free the map unless kept above
    last = results[-1]
    final = (last.reconstructions if keep_maps else recon).mean(1)
    saliency = minmax(resize(final, tuple(x.shape[-2:])), MINMAX_EPS)
    return results, {k: v for k, v in skipped.items()}, saliency


def reconstruct(model: nn.Module, images: Tensor, layer_names: Sequence[str] | None = None, *,
                mode: str = "graph", point: str = "activation", top_k: int = 10, n_keep: int = 10,
                scales: Sequence[float] = SCALES, block: int = 8, chunk: int = 1024, batch_size: int | None = None,
                specs: Sequence[FilterSpec] | None = None, pad: int | str = "auto", autocast: bool = False,
                repeated: str = "first", keep_maps: bool = True, scale_steps: str = "twice",
                tie_rtol: float = TIE_RTOL, weight_floor: float = WEIGHT_FLOOR, normalise: str = "minmax",
                adds: str = "rebuilt_sum", fft_lengths: str = "fast", precision: str = "float32",
                carry_grid: float | None = None, device: torch.device | str | None = None) -> Reconstruction:
    """The whole method (Section II-B, LG Eq. 1-5) on images ``(B, C, H, W)`` (or one ``(C, H, W)``).

    One forward pass per ``batch_size`` images records the named layers' maps (default every
    convolution) at ``point`` and which layer feeds which; then each layer is rebuilt for all those
    images at once, from the candidates ``mode`` gives it (module docstring). ``pad`` is the border
    of the energies (``bank.energy``); ``autocast`` runs the model's forward pass in bf16 on CUDA;
    ``repeated``: see ``graph.trace``;
    ``keep_maps=False`` keeps only MAEs, choices and the saliency maps (less memory). ``scale_steps``:
    ``"twice"`` (two x2 steps, antialiased down, the paper's reading) or ``"single"`` (one step, the
    first version; ``resample``). ``tie_rtol``: MAEs within this relative tolerance of the k-th are
    tied and taken in index order (0: ``topk``'s order); ``weight_floor``: LG Eq. 3's MAE floor (0: the
    plain inverse). ``normalise``: maps and candidates min-max normalised before their block
    variances (``"minmax"``) or raw (``"none"``). ``device``: where the images go (the model must already be there); default the
    images' device.

    Args:
        model: the saliency network explained (in eval mode, on ``device``).
        images: ``(B, C, H, W)`` or ``(C, H, W)`` as the model takes them.
        layer_names: the layers rebuilt (default: every convolution; ``explainable_layers``).
        mode: ``"graph"`` (default: each layer from what feeds it) or ``"chain"`` (from the
            previous rebuilt layer).
        point: where a layer's maps are read (``graph.POINTS``; default ``"activation"``).
        top_k: candidates weighted per map and scale (LG Eq. 3; the paper's 10).
        n_keep: best-reconstructed maps passed on as the next layer's candidates (the paper's 10).
        scales: the scales of LG Eq. 2-4.
        block: the block side of the block variances (LG Eq. 2).
        chunk: candidates compared at once (memory).
        batch_size: images per forward pass (``None``: ``default_batch_size`` of the images' device,
            2 on the CPU, among the fastest measured there).
        specs: the filter bank (default ``bank_specs()``: the paper's 80 filters).
        pad: the energies' border (``bank.energy``).
        autocast: the forward pass in bf16 on CUDA.
        repeated: see ``graph.trace``.
        keep_maps: keep activation maps and reconstructions (``False``: less memory).
        scale_steps: ``"twice"`` (default) or ``"single"``.
        tie_rtol: relative tolerance of tied MAEs.
        weight_floor: LG Eq. 3's MAE floor.
        normalise: ``"minmax"`` (default) or ``"none"``.
        adds: ``"rebuilt_sum"`` (default: an addition of captured maps is a layer, the sum of its
            terms' reconstructions, and the layers after it read its energies) or ``"union"`` (they
            read the union of the terms' candidates); graph mode only (``graph.trace``).
        fft_lengths: the energies' FFT grid (``bank.FFT_LENGTHS``): ``"fast"`` (default; each padded
            side rounded up to a 5-smooth length, several times faster) or ``"exact"`` (the first
            version).
        precision: ``"float32"`` (default) or ``"float64"`` (``PRECISIONS``: the forward pass on a
            float64 copy of the model and the whole reconstruction in float64; the same
            explanation on every CPU, at about twice the time; the layers' tensors are float64, the
            saliency maps float32).
        carry_grid: the kept reconstructions are rounded to multiples of this before their energies
            (``None``: ``CARRY_GRID`` in float64, none in float32; 0: none).
        device: where the images go (default: theirs).

    Returns:
        A :class:`Reconstruction`: per rebuilt layer a :class:`LayerResult` (``batched``, execution
        order), the ``skipped`` layers with the reason, and the ``(B, H, W)`` explainable
        ``saliency`` maps.

    Raises:
        ValueError: the images are not 3-D or 4-D, a count is below 1, or ``mode``, ``normalise``,
            ``adds``, ``fft_lengths`` or ``precision`` is unknown.
    """
    x = images.unsqueeze(0) if images.ndim == 3 else images
    if x.ndim != 4:
        raise ValueError(f"reconstruct: expected images (B, C, H, W) or (C, H, W), got {tuple(images.shape)}")
    if device is not None:
        x = x.to(device)
    if batch_size is None:
        batch_size = default_batch_size(x.device)
    if top_k < 1 or n_keep < 1 or batch_size < 1 or chunk < 1:
        raise ValueError("reconstruct: top_k, n_keep, batch_size and chunk must be >= 1")
    if mode not in ("graph", "chain"):
        raise ValueError(f"reconstruct: mode must be 'graph' or 'chain', got {mode!r}")
    if normalise not in NORMALISATIONS:
        raise ValueError(f"reconstruct: normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    if fft_lengths not in FFT_LENGTHS:
        raise ValueError(f"reconstruct: fft_lengths must be one of {FFT_LENGTHS}, got {fft_lengths!r}")
    if adds not in ADD_READINGS:
        raise ValueError(f"reconstruct: adds must be one of {ADD_READINGS}, got {adds!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"reconstruct: precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "float64":
        model, x = copy.deepcopy(model).to(torch.float64), x.to(torch.float64)
    if carry_grid is None:
        carry_grid = CARRY_GRID if precision == "float64" else 0.0
    if carry_grid < 0:
        raise ValueError(f"reconstruct: carry_grid must be >= 0, got {carry_grid}")
    specs = list(specs) if specs is not None else bank_specs()
    parts, skipped, saliency = [], {}, []
    for start in range(0, x.shape[0], batch_size):
        layers, skipped, sal = _reconstruct_images(
            model, x[start : start + batch_size], layer_names, mode=mode, point=point, top_k=top_k, n_keep=n_keep,
            scales=scales, block=block, chunk=chunk, specs=specs, pad=pad, autocast=autocast, repeated=repeated,
            keep_maps=keep_maps, scale_steps=scale_steps, tie_rtol=tie_rtol, weight_floor=weight_floor,
            normalise=normalise, adds=adds, fft_lengths=fft_lengths, carry_grid=float(carry_grid))
        parts.append(layers)
        saliency.append(sal)
    result = Reconstruction(skipped=skipped, saliency=torch.cat(saliency).float(), mode=mode)
    for d, first in enumerate(parts[0]):
        def cat(attr: str) -> Tensor | None:
            values = [getattr(p[d], attr) for p in parts]
            return None if values[0] is None else torch.cat(values)
        result.batched.append(LayerResult(first.name, first.sources, first.point, cat("mae"), cat("chosen"),
                                          cat("weights"), cat("kept"), first.candidate_specs, cat("activations"),
                                          cat("reconstructions"), cat("ties"), cat("kept_ties")))
    return result


def explainable_saliency(model: nn.Module, images: Tensor, layer_names: Sequence[str] | None = None,
                         **kwargs) -> Tensor:
    """The explainable saliency maps ``(B, H, W)`` of a batch (``reconstruct(...).saliency``)."""
    kwargs.setdefault("keep_maps", False)
    return reconstruct(model, images, layer_names, **kwargs).saliency


def selected_filter_table(layer: LayerReconstruction | LayerResult) -> dict[str, Tensor]:
    """The chosen filters of a layer (all images, maps, scales and ranks) as weighted samples of
    their orientation, wavelength and bandwidths."""
    specs = layer.candidate_specs
    idx = layer.chosen.flatten().tolist()
    return {
        "orientation": torch.tensor([specs[i].orientation for i in idx]),
        "wavelength": torch.tensor([specs[i].wavelength for i in idx]),
        "sigma_ratio": torch.tensor([specs[i].sigma_ratio for i in idx]),
        "sigma_theta": torch.tensor([specs[i].sigma_theta for i in idx]),
        "weight": layer.weights.flatten().cpu(),
    }


def layer_filter_summary(result: Reconstruction) -> list[dict[str, float | str | int]]:
    """Per rebuilt layer: its sources, maps, size, mean reconstruction MAE and the weighted means of
    the chosen filters' wavelength, radial bandwidth (octaves) and angular width.

    Deprecated: LG Eq. 3's weights are least-squares coefficients of correlated energies, not mixing
    weights (planted weights 0.6, 0.3, 0.1 do not come back), so their weighted means do not say
    which filters a layer uses. ``filter_choice_shares`` gives the share of choices per filter
    property across images, with its spread."""
    import warnings

    warnings.warn("loggabor.layer_filter_summary is deprecated: Eq. 3 weights are not mixing weights; "
                  "use loggabor.filter_choice_shares", DeprecationWarning, stacklevel=2)
    rows = []
    for depth, layer in enumerate(result.batched):
        if not layer.candidate_specs:  # a sum layer chooses no filters
            continue
        table = selected_filter_table(layer)
        w = table["weight"] / table["weight"].sum()
        octaves = {r: radial_bandwidth_octaves(r) for r in set(table["sigma_ratio"].tolist())}
        bandwidth = torch.tensor([octaves[r] for r in table["sigma_ratio"].tolist()])
        rows.append({
            "layer": layer.name, "depth": depth, "point": layer.point, "sources": ", ".join(layer.sources),
            "maps": int(layer.mae.shape[1]),
            "size": "" if layer.activations is None else "x".join(str(d) for d in layer.activations.shape[-2:]),
            "reconstruction MAE": float(layer.mae.mean()),
            "wavelength (px)": float((w * table["wavelength"]).sum()),
            "radial bandwidth (octaves)": float((w * bandwidth).sum()),
            "angular width (rad)": float((w * table["sigma_theta"]).sum()),
        })
    return rows


def filter_choice_shares(result: Reconstruction, by: str = "wavelength") -> list[dict[str, float | str | int]]:
    """Per rebuilt layer (``depth``, execution order) and value of the chosen filters' ``by``
    (``"wavelength"``, ``"orientation"``, ``"sigma_ratio"`` or ``"sigma_theta"``): the share of the
    layer's top-k choices (maps, scales, ranks) that picked a filter with that value, its mean over
    the images and its spread (standard deviation over images; 0 for one image).

    The choices are counted, not weighted: LG Eq. 3's 1/MAE weights make a reconstruction, they are
    not mixing weights that a sum of filters would recover (planted weights do not come back)."""
    if by not in ("wavelength", "orientation", "sigma_ratio", "sigma_theta"):
        raise ValueError(f"filter_choice_shares: by must be a FilterSpec field, got {by!r}")
    rows = []
    for depth, layer in enumerate(result.batched):
        if not layer.candidate_specs:  # a sum layer chooses no filters
            continue
        values = torch.tensor([getattr(sp, by) for sp in layer.candidate_specs], dtype=torch.float64)
        levels = sorted(set(values.tolist()))
        picked = values[layer.chosen.flatten(1).cpu()]  # (B, A * S * k)
        for level in levels:
            share = (picked == level).double().mean(1)  # per image
            rows.append({"layer": layer.name, "depth": depth, by: level, "share": float(share.mean()),
                         "spread": float(share.std(unbiased=False))})
    return rows
