"""Log-gabor filters and the layer-by-layer reconstruction of a deep model's activation maps.

**The bank** (loggabor paper, Section II-B1): 5 orientations x 4 wavelengths x 4 bandwidth pairs =
80 filters, built in the frequency domain. The paper leaves units open; we follow Kovesi's
formulation, which it cites:

- frequencies on numpy's ``fftfreq`` grid (cycles per pixel, Nyquist = 0.5);
- radial part ``exp(-ln(rho / f0)^2 / (2 ln(r)^2))`` with ``r = sigma_f / f0`` a *ratio*;
- angular part a Gaussian of the wrapped angle difference ``exp(-dtheta^2 / (2 sigma_theta^2))`` on
  one side only, so the spatial filter is complex: real part even, imaginary part odd (quadrature);
- zero at DC.

"Wavelength 1" is read as Nyquist-normalised: the first wavelength is 2 px (``min_wavelength``), then
x1.5: 2, 3, 4.5, 6.75 px. The bandwidth ratios start at 0.5 and grow x1.5 (0.5, 0.75, 1.125, 1.6875);
the angular widths likewise (0.5 ... 1.6875 rad). A ratio of exactly 1 would be an infinitely narrow
filter and is rejected. The local energy is ``E = sqrt(even^2 + odd^2) = |response|`` (Eq. 1).

**The reconstruction** (Section II-B2-3, Eq. 2-4), for each captured layer in order:

1. every activation map and every candidate response is min-max normalised and resized to each of 5
   scales (x1/4, x1/2, x1, x2, x4 of the activation map; scales where the map is smaller than one
   8x8 block are skipped);
2. block-wise variance in non-overlapping 8x8 blocks; the MAE between the variance maps of each
   activation map and each response (Eq. 2);
3. the 10 responses with the lowest MAE, weighted by 1/MAE normalised to sum 1, summed (Eq. 3);
4. the scales are resized back and fused as ``sqrt(sum_s R_s^2)`` (Eq. 4);
5. the reconstruction MAE against the activation map (both min-max normalised, Eq. 5);
6. the 10 best-reconstructed maps pass through the bank: their energies are the next layer's
   candidate responses (the first layer's candidates are the input image's 80 energies).

The last layer's reconstruction, resized to the input, is the explainable saliency map (for a layer
with several maps, their mean). Everything is batched over maps, filters and scales; ``chunk``
bounds the number of activation maps held at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class FilterSpec:
    orientation: float  # radians
    wavelength: float  # pixels
    sigma_ratio: float  # sigma_f / f0
    sigma_theta: float  # radians


def bank_specs(
    n_orientations: int = 5,
    n_wavelengths: int = 4,
    min_wavelength: float = 2.0,
    wavelength_mult: float = 1.5,
    n_bandwidths: int = 4,
    first_sigma: float = 0.5,
    sigma_mult: float = 1.5,
) -> list[FilterSpec]:
    """The bank's parameters, orientation-major: 5 x 4 x 4 = 80 filters by default."""
    specs = []
    for o in range(n_orientations):
        for w in range(n_wavelengths):
            for b in range(n_bandwidths):
                ratio = first_sigma * sigma_mult**b
                if abs(ratio - 1.0) < 1e-6:
                    raise ValueError("a bandwidth ratio sigma_f/f0 of 1 gives a degenerate filter")
                specs.append(FilterSpec(o * math.pi / n_orientations, min_wavelength * wavelength_mult**w,
                                        ratio, first_sigma * sigma_mult**b))
    return specs


def filter_bank(size: tuple[int, int], specs: Sequence[FilterSpec] | None = None, *,
                device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Transfer functions ``(G, H, W)`` on the ``fftfreq`` grid of an ``H x W`` image."""
    specs = list(specs) if specs is not None else bank_specs()
    height, width = size
    fy = torch.fft.fftfreq(height, device=device, dtype=dtype).view(-1, 1)
    fx = torch.fft.fftfreq(width, device=device, dtype=dtype).view(1, -1)
    rho = torch.sqrt(fx**2 + fy**2)
    rho[0, 0] = 1.0  # avoid log(0); DC is zeroed below
    theta = torch.atan2(-fy, fx)
    f0 = torch.tensor([1.0 / s.wavelength for s in specs], device=device, dtype=dtype).view(-1, 1, 1)
    log_ratio = torch.log(torch.tensor([s.sigma_ratio for s in specs], device=device, dtype=dtype)).view(-1, 1, 1)
    theta0 = torch.tensor([s.orientation for s in specs], device=device, dtype=dtype).view(-1, 1, 1)
    sigma_theta = torch.tensor([s.sigma_theta for s in specs], device=device, dtype=dtype).view(-1, 1, 1)
    radial = torch.exp(-torch.log(rho / f0) ** 2 / (2 * log_ratio**2))
    dtheta = torch.atan2(torch.sin(theta - theta0), torch.cos(theta - theta0))  # wrapped to [-pi, pi]
    angular = torch.exp(-(dtheta**2) / (2 * sigma_theta**2))
    bank = radial * angular
    bank[:, 0, 0] = 0.0
    return bank


def responses(images: Tensor, bank: Tensor) -> Tensor:
    """Complex responses ``(B, G, H, W)`` of ``(B, H, W)`` or ``(B, C, H, W)`` images (channels
    averaged): real part even, imaginary part odd. One batched FFT for all filters."""
    x = images.mean(1) if images.ndim == 4 else images
    if x.ndim != 3:
        raise ValueError(f"responses: expected (B, H, W) or (B, C, H, W), got {tuple(images.shape)}")
    if tuple(x.shape[-2:]) != tuple(bank.shape[-2:]):
        raise ValueError(f"responses: images {tuple(x.shape[-2:])} and bank {tuple(bank.shape[-2:])} differ in size")
    spectrum = torch.fft.fft2(x.to(bank.dtype))
    return torch.fft.ifft2(spectrum.unsqueeze(1) * bank.unsqueeze(0))


def energy(images: Tensor, bank: Tensor | None = None) -> Tensor:
    """Local energy ``sqrt(even^2 + odd^2)`` (Eq. 1), ``(B, G, H, W)``."""
    if bank is None:
        bank = filter_bank(tuple(images.shape[-2:]), device=images.device)
    return responses(images, bank).abs()


# ----------------------------------------------------------------------------- activations
def conv_layer_names(model: nn.Module) -> list[str]:
    """Names of every ``nn.Conv2d`` in the model, in registration order."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


@torch.no_grad()
def capture_activations(model: nn.Module, images: Tensor, layer_names: Sequence[str] | None = None) -> dict[str, Tensor]:
    """Forward hooks on the named modules (default: every convolution): their outputs, in the order
    they ran, as ``{name: (B, C, h, w)}``."""
    modules = dict(model.named_modules())
    names = list(layer_names) if layer_names is not None else conv_layer_names(model)
    missing = [n for n in names if n not in modules]
    if missing:
        raise ValueError(f"capture_activations: no modules named {missing[:5]}")
    captured: dict[str, Tensor] = {}
    handles = [modules[n].register_forward_hook(lambda _m, _i, out, n=n: captured.setdefault(n, out.detach()))
               for n in names]
    try:
        model(images)
    finally:
        for handle in handles:
            handle.remove()
    return {n: captured[n] for n in captured if captured[n].ndim == 4}


# ----------------------------------------------------------------------------- reconstruction
def minmax(maps: Tensor, eps: float = 1e-12) -> Tensor:
    """Min-max normalise each map of ``(..., H, W)`` to [0, 1] (a constant map becomes 0)."""
    flat = maps.flatten(-2)
    lo = flat.amin(-1, keepdim=True).unsqueeze(-1)
    hi = flat.amax(-1, keepdim=True).unsqueeze(-1)
    return (maps - lo) / (hi - lo + eps)


def block_variance(maps: Tensor, block: int = 8) -> Tensor:
    """Variance in non-overlapping ``block x block`` blocks, flattened: ``(N, n_blocks)``."""
    x = maps.unsqueeze(1) if maps.ndim == 3 else maps
    mean = F.avg_pool2d(x, block)
    return (F.avg_pool2d(x * x, block) - mean * mean).clamp_min(0).flatten(1)


def _resize(maps: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


def reconstruct_maps(activations: Tensor, candidates: Tensor, *, top_k: int = 10, scales: Sequence[float] = SCALES,
                     block: int = 8, chunk: int = 64, eps: float = 1e-8) -> tuple[Tensor, Tensor, Tensor]:
    """Reconstruct ``(A, h, w)`` activation maps from ``(G, H, W)`` candidate responses (Eq. 2-4).

    Returns the fused reconstructions ``(A, h, w)`` (min-max normalised), the chosen candidate
    indices ``(A, S, top_k)`` and their weights ``(A, S, top_k)``. Resizing is linear, so the
    weighted sum at a scale, resized back, equals the weighted sum of the candidates resized to the
    scale and back: that is how it is computed, at the activation map's own size. ``chunk`` bounds
    how many maps (and candidates) are resized at once."""
    n_maps, h, w = activations.shape
    acts = minmax(activations)
    cands = minmax(candidates)
    used = [s for s in scales if min(round(h * s), round(w * s)) >= block]
    if not used:
        raise ValueError(f"reconstruct_maps: a {h}x{w} map is smaller than one {block}x{block} block at every scale")
    k = min(top_k, cands.shape[0])
    fused = torch.zeros_like(acts)
    chosen = torch.zeros((n_maps, len(used), k), dtype=torch.long, device=acts.device)
    weights = torch.zeros((n_maps, len(used), k), dtype=acts.dtype, device=acts.device)
    for si, s in enumerate(used):
        size = (round(h * s), round(w * s))
        var_c = []
        for start in range(0, cands.shape[0], chunk):
            resized = _resize(cands[start : start + chunk], size)
            var_c.append(block_variance(resized, block))
        var_c = torch.cat(var_c)
        cand_back = _resize_chunks(cands, size, (h, w), chunk)
        for start in range(0, n_maps, chunk):
            part = slice(start, start + chunk)
            var_a = block_variance(_resize(acts[part], size), block)
            mae = torch.cdist(var_a, var_c, p=1) / var_a.shape[1]  # (a, G): Eq. 2
            best, idx = torch.topk(mae, k, dim=1, largest=False)
            wts = 1.0 / (best + eps)
            wts = wts / wts.sum(1, keepdim=True)
            fused[part] += torch.einsum("ak,akhw->ahw", wts, cand_back[idx]) ** 2  # Eq. 3, resized back
            chosen[part, si] = idx
            weights[part, si] = wts
    return minmax(fused.sqrt()), chosen, weights  # Eq. 4


def _resize_chunks(maps: Tensor, size: tuple[int, int], back: tuple[int, int], chunk: int) -> Tensor:
    """Resize to ``size`` and back to ``back``, a chunk of maps at a time."""
    return torch.cat([_resize(_resize(maps[i : i + chunk], size), back) for i in range(0, maps.shape[0], chunk)])


@dataclass
class LayerReconstruction:
    name: str
    activations: Tensor  # (A, h, w)
    reconstructions: Tensor  # (A, h, w), min-max normalised
    mae: Tensor  # (A,), Eq. 5 on min-max normalised maps
    chosen: Tensor  # (A, S, top_k) candidate indices
    weights: Tensor  # (A, S, top_k)
    candidate_specs: list[FilterSpec]  # the filter behind each candidate index
    kept: Tensor  # indices of the maps passed on to the next layer


@dataclass
class Reconstruction:
    layers: list[LayerReconstruction] = field(default_factory=list)
    saliency: Tensor | None = None  # (H, W) explainable saliency map of the input

    def layer_mae(self) -> dict[str, float]:
        return {layer.name: float(layer.mae.mean()) for layer in self.layers}


@torch.no_grad()
def reconstruct(model: nn.Module, image: Tensor, layer_names: Sequence[str] | None = None, *, top_k: int = 10,
                n_keep: int = 10, scales: Sequence[float] = SCALES, block: int = 8, chunk: int = 64,
                specs: Sequence[FilterSpec] | None = None) -> Reconstruction:
    """The whole method on one image ``(C, H, W)`` (or ``(1, C, H, W)``) and a model."""
    x = image.unsqueeze(0) if image.ndim == 3 else image
    if x.shape[0] != 1:
        raise ValueError("reconstruct: one image at a time (use explainable_saliency for a batch)")
    specs = list(specs) if specs is not None else bank_specs()
    acts = capture_activations(model, x, layer_names)
    if not acts:
        raise ValueError("reconstruct: no 4-D activations were captured")
    bank_cache: dict[tuple[int, int], Tensor] = {}

    def bank_for(size: tuple[int, int]) -> Tensor:
        if size not in bank_cache:
            bank_cache[size] = filter_bank(size, specs, device=x.device)
        return bank_cache[size]

    candidates = energy(x, bank_for(tuple(x.shape[-2:])))[0]  # (80, H, W): the input's energies
    candidate_specs = list(specs)
    result = Reconstruction()
    for name, act in acts.items():
        maps = act[0].float()
        recon, chosen, weights = reconstruct_maps(maps, candidates, top_k=top_k, scales=scales, block=block, chunk=chunk)
        mae = (minmax(maps) - recon).abs().flatten(1).mean(1)
        kept = torch.argsort(mae)[: min(n_keep, len(mae))]
        result.layers.append(LayerReconstruction(name, maps, recon, mae, chosen, weights, candidate_specs, kept))
        size = tuple(recon.shape[-2:])
        candidates = energy(recon[kept], bank_for(size)).flatten(0, 1)  # (n_keep * 80, h, w)
        candidate_specs = [s for _ in range(len(kept)) for s in specs]
    last = result.layers[-1].reconstructions.mean(0, keepdim=True)
    result.saliency = minmax(_resize(last, tuple(x.shape[-2:]))[0])
    return result


def explainable_saliency(model: nn.Module, images: Tensor, layer_names: Sequence[str] | None = None, **kwargs) -> Tensor:
    """The explainable saliency maps ``(B, H, W)`` of a batch, one reconstruction per image."""
    return torch.stack([reconstruct(model, img, layer_names, **kwargs).saliency for img in images])


def selected_filter_table(layer: LayerReconstruction) -> dict[str, Tensor]:
    """Per chosen filter of a layer (all maps, scales and ranks, weighted): the orientation,
    wavelength and bandwidth of the filters it picked, as weighted samples."""
    specs = layer.candidate_specs
    idx = layer.chosen.flatten().tolist()
    w = layer.weights.flatten()
    return {
        "orientation": torch.tensor([specs[i].orientation for i in idx]),
        "wavelength": torch.tensor([specs[i].wavelength for i in idx]),
        "sigma_ratio": torch.tensor([specs[i].sigma_ratio for i in idx]),
        "sigma_theta": torch.tensor([specs[i].sigma_theta for i in idx]),
        "weight": w.cpu(),
    }


def radial_bandwidth_octaves(sigma_ratio: float) -> float:
    """The radial bandwidth of a log-gabor filter in octaves: ``2 sqrt(2 / ln 2) |ln(sigma_f / f0)|``."""
    return 2.0 * math.sqrt(2.0 / math.log(2.0)) * abs(math.log(sigma_ratio))


def layer_filter_summary(result: Reconstruction) -> list[dict[str, float | str | int]]:
    """Per layer: the reconstruction MAE and the weighted means of the chosen filters' wavelength,
    radial bandwidth (octaves) and angular width."""
    rows = []
    for depth, layer in enumerate(result.layers):
        table = selected_filter_table(layer)
        w = table["weight"] / table["weight"].sum()
        bandwidth = torch.tensor([radial_bandwidth_octaves(float(r)) for r in table["sigma_ratio"]])
        rows.append({
            "layer": layer.name, "depth": depth, "maps": int(layer.activations.shape[0]),
            "size": "x".join(str(d) for d in layer.activations.shape[-2:]),
            "reconstruction MAE": float(layer.mae.mean()),
            "wavelength (px)": float((w * table["wavelength"]).sum()),
            "radial bandwidth (octaves)": float((w * bandwidth).sum()),
            "angular width (rad)": float((w * table["sigma_theta"]).sum()),
        })
    return rows
