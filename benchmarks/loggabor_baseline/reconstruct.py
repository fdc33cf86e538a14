"""The layer-by-layer reconstruction (loggabor paper, Section II-B2-3, Eq. 2-5), batched.

For each captured layer, in execution order, and every image of a batch at once:

1. every activation map and every candidate response is min-max normalised and resized to each of 5
   scales (x1/4, x1/2, x1, x2, x4 of the activation map; scales where the map is smaller than one
   8x8 block are not used);
2. block-wise variance in non-overlapping 8x8 blocks; the MAE between the variance maps of each
   activation map and each candidate (Eq. 2);
3. the ``top_k = 10`` candidates with the lowest MAE, weighted by 1/MAE normalised to sum 1, summed
   (Eq. 3);
4. the scales are resized back and fused as ``sqrt(sum_s R_s^2)`` (Eq. 4);
5. the reconstruction MAE against the activation map (both min-max normalised, Eq. 5);
6. the ``n_keep = 10`` best-reconstructed maps pass through the bank: their energies (Eq. 1) are
   candidates for the layers they feed.

**Which candidates** (``mode``): ``"graph"`` (default; the paper's "in parallel to" the network) gives
a layer the energies of the kept reconstructions of the layers that actually feed it (``graph.trace``),
or the input's 80 energies when it reads the image, and the union of both inputs' candidates at a
concatenation or an addition. ``"chain"`` gives it those of the layer that ran just before it (the
first version of this module: the network flattened into one chain).

**Layers that cannot be rebuilt** (a map smaller than one block at every scale: a global-pooling
branch such as MSI-Net's ASPP image-mean branch, or the deepest maps at small inputs) are skipped
with the reason in ``Reconstruction.skipped`` and passed through: in graph mode the layers they feed
use the skipped layer's own candidates instead; in chain mode the chain goes on from the last
rebuilt layer.

The last rebuilt layer's reconstruction (mean over its maps), resized to the input and min-max
normalised, is the explainable saliency map. Everything runs on the images' device in float32
(block variances in bf16 change the top-10 choices); ``batch_size`` bounds the images processed
together and ``chunk`` the (image, map) pairs resized at once: together they bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .bank import FilterSpec, bank_specs, energy, filter_bank, padded_size, radial_bandwidth_octaves
from .graph import INPUT, trace

SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


def minmax(maps: Tensor, eps: float = 1e-12) -> Tensor:
    """Min-max normalise each map of ``(..., H, W)`` to [0, 1] (a constant map becomes 0)."""
    flat = maps.flatten(-2)
    lo = flat.amin(-1, keepdim=True).unsqueeze(-1)
    hi = flat.amax(-1, keepdim=True).unsqueeze(-1)
    return (maps - lo) / (hi - lo + eps)


def block_variance(maps: Tensor, block: int = 8) -> Tensor:
    """Variance in non-overlapping ``block x block`` blocks, flattened: ``(..., n_blocks)``."""
    lead = maps.shape[:-2]
    x = maps.reshape(-1, 1, *maps.shape[-2:])
    mean = F.avg_pool2d(x, block)
    return (F.avg_pool2d(x * x, block) - mean * mean).clamp_min(0).reshape(*lead, -1)


def _resize(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of ``(..., H, W)`` maps to ``size``."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    lead = maps.shape[:-2]
    out = F.interpolate(maps.reshape(-1, 1, *maps.shape[-2:]), size=size, mode="bilinear", align_corners=False)
    return out.reshape(*lead, *size)


def scale_sizes(size: tuple[int, int], scales: Sequence[float] = SCALES, block: int = 8) -> list[tuple[int, int]]:
    """The sizes at which an ``h x w`` map is compared (those with at least one whole block)."""
    h, w = size
    return [(round(h * s), round(w * s)) for s in scales if min(round(h * s), round(w * s)) >= block]


def reconstruct_batch(acts: Tensor, groups: Sequence[Tensor], *, top_k: int = 10, scales: Sequence[float] = SCALES,
                      block: int = 8, chunk: int = 1024, eps: float = 1e-8, keys: Sequence[object] | None = None,
                      cache: dict | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Reconstruct ``(B, A, h, w)`` activation maps from candidate groups ``(B, G_i, H_i, W_i)``
    (sizes may differ between groups; candidate ``g`` indexes their concatenation), Eq. 2-4.

    Returns the fused reconstructions ``(B, A, h, w)`` (min-max normalised), the chosen candidate
    indices ``(B, A, S, k)`` and their weights ``(B, A, S, k)``. Resizing is linear, so the weighted
    sum at a scale, resized back, is the weighted sum of the chosen candidates taken to the scale
    and back: that is how it is computed, at the map's own size, for the chosen candidates only.
    ``chunk`` bounds the (image, map) or (image, candidate) pairs resized at once. With ``keys`` (one
    per group) the candidates' block variances are kept in ``cache`` under ``(key, size)``, for the
    other layers of the same size that share a feeder (both paths of a CMR block, ASPP branches)."""
    n_img, n_maps, h, w = acts.shape
    sizes = scale_sizes((h, w), scales, block)
    if not sizes:
        raise ValueError(f"reconstruct_maps: a {h}x{w} map is smaller than one {block}x{block} block at every scale")
    acts = minmax(acts)
    groups = [minmax(g) for g in groups]
    counts = [g.shape[1] for g in groups]
    n_cand = sum(counts)
    offsets = torch.tensor([0] + counts[:-1], device=acts.device).cumsum(0)
    k = min(top_k, n_cand)
    fused = torch.zeros_like(acts)
    chosen = torch.zeros((n_img, n_maps, len(sizes), k), dtype=torch.long, device=acts.device)
    weights = torch.zeros((n_img, n_maps, len(sizes), k), dtype=acts.dtype, device=acts.device)
    for si, size in enumerate(sizes):
        var_c = []
        for gi, g in enumerate(groups):
            key = None if keys is None or cache is None else (keys[gi], size)
            if key is not None and key in cache:
                var_c.append(cache[key])
                continue
            flat = g.reshape(-1, *g.shape[-2:])
            step = max(1, chunk // 4)
            var_c.append(torch.cat([block_variance(_resize(flat[i : i + step], size), block)
                                    for i in range(0, flat.shape[0], step)]).view(n_img, g.shape[1], -1))
            if key is not None:
                cache[key] = var_c[-1]
        var_c = torch.cat(var_c, 1)  # (B, G, n_blocks)
        var_a = block_variance(_resize(acts, size), block)  # (B, A, n_blocks)
        step = max(1, chunk // max(1, n_img))
        for start in range(0, n_maps, step):
            part = slice(start, start + step)
            mae = torch.cdist(var_a[:, part], var_c, p=1) / var_a.shape[-1]  # (B, a, G): Eq. 2
            best, idx = torch.topk(mae, k, dim=-1, largest=False)
            wts = 1.0 / (best + eps)
            chosen[:, part, si] = idx
            weights[:, part, si] = wts / wts.sum(-1, keepdim=True)
        # Eq. 3 at the map's own size: only the chosen candidates go to the scale and back
        flat_idx = (torch.arange(n_img, device=acts.device).view(-1, 1, 1) * n_cand + chosen[:, :, si]).flatten(1)
        for start in range(0, n_maps, step):
            part = slice(start, start + step)
            sel = flat_idx[:, start * k : (start + step) * k]
            used, position = torch.unique(sel, return_inverse=True)
            back = torch.empty((used.numel(), h, w), dtype=acts.dtype, device=acts.device)
            img, cand = used // n_cand, used % n_cand
            grp = torch.searchsorted(offsets, cand, right=True) - 1
            for gi, g in enumerate(groups):
                mask = grp == gi
                if mask.any():
                    rows = g[img[mask], cand[mask] - offsets[gi]]
                    back[mask] = _resize(_resize(rows, size), (h, w))
            picked = back[position]  # (B, a * k, h, w)
            picked = picked.view(n_img, -1, k, h, w)
            fused[:, part] += torch.einsum("bak,bakhw->bahw", weights[:, part, si], picked) ** 2
    return minmax(fused.sqrt()), chosen, weights  # Eq. 4


def reconstruct_maps(activations: Tensor, candidates: Tensor, *, top_k: int = 10, scales: Sequence[float] = SCALES,
                     block: int = 8, chunk: int = 1024, eps: float = 1e-8) -> tuple[Tensor, Tensor, Tensor]:
    """One image: ``(A, h, w)`` activation maps from ``(G, H, W)`` candidates (Eq. 2-4); returns
    reconstructions ``(A, h, w)``, chosen indices and weights ``(A, S, k)``."""
    recon, chosen, weights = reconstruct_batch(activations[None], [candidates[None]], top_k=top_k, scales=scales,
                                               block=block, chunk=chunk, eps=eps)
    return recon[0], chosen[0], weights[0]


@dataclass
class LayerReconstruction:
    """One layer of one image (the view the figures use)."""

    name: str
    activations: Tensor | None  # (A, h, w)
    reconstructions: Tensor | None  # (A, h, w), min-max normalised
    mae: Tensor  # (A,), Eq. 5 on min-max normalised maps
    chosen: Tensor  # (A, S, top_k) candidate indices
    weights: Tensor  # (A, S, top_k)
    candidate_specs: list[FilterSpec]  # the filter behind each candidate index
    kept: Tensor  # indices of the maps passed on
    sources: list[str] = field(default_factory=list)  # layers (or "input") whose energies were candidates
    point: str = "conv"  # where the activation map was taken


@dataclass
class LayerResult:
    """One layer, every image: tensors with a leading batch dimension."""

    name: str
    sources: list[str]
    point: str
    mae: Tensor  # (B, A)
    chosen: Tensor  # (B, A, S, k)
    weights: Tensor  # (B, A, S, k)
    kept: Tensor  # (B, n_keep)
    candidate_specs: list[FilterSpec]
    activations: Tensor | None = None  # (B, A, h, w) when keep_maps
    reconstructions: Tensor | None = None

    def image(self, b: int) -> LayerReconstruction:
        return LayerReconstruction(
            self.name, None if self.activations is None else self.activations[b],
            None if self.reconstructions is None else self.reconstructions[b], self.mae[b], self.chosen[b],
            self.weights[b], self.candidate_specs, self.kept[b], self.sources, self.point)


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
        """Mean reconstruction MAE (Eq. 5) of each layer, over its maps and the batch's images."""
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
                        keep_maps: bool) -> tuple[list[LayerResult], dict[str, str], Tensor]:
    capture = trace(model, x, layer_names, point=point, autocast=autocast, repeated=repeated)
    if not capture.activations:
        raise ValueError("reconstruct: no 4-D activations were captured")
    order = list(capture.activations)
    skipped = dict(capture.not_maps)
    for name, act in capture.activations.items():
        if not scale_sizes(tuple(act.shape[-2:]), scales, block):
            skipped[name] = (f"a {act.shape[-2]}x{act.shape[-1]} map is smaller than one {block}x{block} block "
                             "at every scale; passed through")
    sources = _sources(capture.feeds, order, skipped, mode)
    if not sources:
        raise ValueError(f"reconstruct: no layer can be rebuilt ({next(iter(skipped.values()))})")
    last_use = {s: i for i, name in enumerate(sources) for s in sources[name]}
    banks: dict[tuple[int, int], Tensor] = {}

    def energies(maps: Tensor) -> Tensor:  # (N, h, w) -> (N, G, h, w), Eq. 1
        size = padded_size(tuple(maps.shape[-2:]), pad, specs)
        if size not in banks:
            banks[size] = filter_bank(size, specs, device=maps.device)
        return energy(maps, banks[size], pad=pad, specs=specs)

    candidates: dict[str, Tensor] = {}
    variances: dict[tuple[str, tuple[int, int]], Tensor] = {}  # block variances shared by layers
    n_img = x.shape[0]
    results: list[LayerResult] = []
    for i, name in enumerate(sources):
        for s in sources[name]:
            if s == INPUT and s not in candidates:
                candidates[s] = energies(x.float().mean(1))
        maps = capture.activations[name]
        groups = [candidates[s] for s in sources[name]]
        recon, chosen, weights = reconstruct_batch(maps, groups, top_k=top_k, scales=scales, block=block, chunk=chunk,
                                                   keys=sources[name], cache=variances)
        mae = (minmax(maps) - recon).abs().flatten(2).mean(2)  # Eq. 5
        kept = torch.argsort(mae, dim=1)[:, : min(n_keep, mae.shape[1])]
        cand_specs = [sp for s in sources[name] for _ in range(1 if s == INPUT else n_keep) for sp in specs]
        results.append(LayerResult(name, list(sources[name]), capture.points[name], mae, chosen, weights, kept,
                                   cand_specs, maps if keep_maps else None, recon if keep_maps else None))
        for s in sources[name]:
            if last_use[s] <= i:
                candidates.pop(s, None)
                for key in [key for key in variances if key[0] == s]:
                    del variances[key]
        if name in last_use:
            best = torch.gather(recon, 1, kept.view(n_img, -1, 1, 1).expand(-1, -1, *recon.shape[-2:]))
            candidates[name] = energies(best.flatten(0, 1)).view(n_img, -1, *recon.shape[-2:])
        capture.activations[name] = None  # free the map unless kept above
    last = results[-1]
    final = (last.reconstructions if keep_maps else recon).mean(1)
    saliency = minmax(_resize(final, tuple(x.shape[-2:])))
    return results, {k: v for k, v in skipped.items()}, saliency


def reconstruct(model: nn.Module, images: Tensor, layer_names: Sequence[str] | None = None, *,
                mode: str = "graph", point: str = "activation", top_k: int = 10, n_keep: int = 10,
                scales: Sequence[float] = SCALES, block: int = 8, chunk: int = 1024, batch_size: int = 16,
                specs: Sequence[FilterSpec] | None = None, pad: int | str = "auto", autocast: bool = False,
                repeated: str = "first", keep_maps: bool = True,
                device: torch.device | str | None = None) -> Reconstruction:
    """The whole method (Section II-B, Eq. 1-5) on images ``(B, C, H, W)`` (or one ``(C, H, W)``).

    One forward pass per ``batch_size`` images records the named layers' maps (default every
    convolution) at ``point`` and which layer feeds which; then each layer is rebuilt for all those
    images at once, from the candidates ``mode`` gives it (module docstring). ``pad`` is the border
    of the energies (``bank.energy``); ``autocast`` runs the model's forward pass in bf16 on CUDA;
    ``repeated``: see ``graph.trace``;
    ``keep_maps=False`` keeps only MAEs, choices and the saliency maps (less memory). ``device``:
    where the images go (the model must already be there); default the images' device."""
    x = images.unsqueeze(0) if images.ndim == 3 else images
    if x.ndim != 4:
        raise ValueError(f"reconstruct: expected images (B, C, H, W) or (C, H, W), got {tuple(images.shape)}")
    if top_k < 1 or n_keep < 1 or batch_size < 1 or chunk < 1:
        raise ValueError("reconstruct: top_k, n_keep, batch_size and chunk must be >= 1")
    if mode not in ("graph", "chain"):
        raise ValueError(f"reconstruct: mode must be 'graph' or 'chain', got {mode!r}")
    if device is not None:
        x = x.to(device)
    specs = list(specs) if specs is not None else bank_specs()
    parts, skipped, saliency = [], {}, []
    for start in range(0, x.shape[0], batch_size):
        layers, skipped, sal = _reconstruct_images(
            model, x[start : start + batch_size], layer_names, mode=mode, point=point, top_k=top_k, n_keep=n_keep,
            scales=scales, block=block, chunk=chunk, specs=specs, pad=pad, autocast=autocast, repeated=repeated,
            keep_maps=keep_maps)
        parts.append(layers)
        saliency.append(sal)
    result = Reconstruction(skipped=skipped, saliency=torch.cat(saliency), mode=mode)
    for d, first in enumerate(parts[0]):
        def cat(attr: str) -> Tensor | None:
            values = [getattr(p[d], attr) for p in parts]
            return None if values[0] is None else torch.cat(values)
        result.batched.append(LayerResult(first.name, first.sources, first.point, cat("mae"), cat("chosen"),
                                          cat("weights"), cat("kept"), first.candidate_specs, cat("activations"),
                                          cat("reconstructions")))
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
    the chosen filters' wavelength, radial bandwidth (octaves) and angular width."""
    rows = []
    for depth, layer in enumerate(result.batched):
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
