"""Figures for the log-gabor chapter (the loggabor paper's Figures 1 and 5: activation maps beside
their log-gabor reconstructions at several depths; graph vs chain reconstructions)."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from hsi_core import loggabor
from hsi_core.maps import minmax


def plot_bank(bank: torch.Tensor, specs: Sequence[loggabor.FilterSpec], *, n_bandwidths: int = 4) -> plt.Figure:
    """Transfer functions (centred spectra) of the bank: rows = bandwidth (with its octaves),
    columns = orientation x wavelength."""
    orientations = sorted({round(s.orientation, 6) for s in specs})
    wavelengths = sorted({round(s.wavelength, 6) for s in specs})
    ratios = sorted({round(s.sigma_ratio, 6) for s in specs})
    fig, axes = plt.subplots(len(ratios), len(orientations) * len(wavelengths),
                             figsize=(0.75 * len(orientations) * len(wavelengths), 0.8 * len(ratios)), squeeze=False)
    for g, spec in enumerate(specs):
        row = ratios.index(round(spec.sigma_ratio, 6))
        col = orientations.index(round(spec.orientation, 6)) * len(wavelengths) + wavelengths.index(round(spec.wavelength, 6))
        ax = axes[row, col]
        ax.imshow(torch.fft.fftshift(bank[g]).cpu(), cmap="magma")
        ax.set_xticks([])
        ax.set_yticks([])
        if row == 0:
            ax.set_title(f"{math.degrees(spec.orientation):.0f}°\nλ={spec.wavelength:g}", fontsize=6)
        if col == 0:
            octaves = loggabor.radial_bandwidth_octaves(spec.sigma_ratio)
            ax.set_ylabel(f"σf/f0 {spec.sigma_ratio:g}\n{octaves:.2f} oct", fontsize=6)
    fig.tight_layout(pad=0.1)
    return fig


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


def most_varied_map(layer: loggabor.LayerReconstruction) -> int:
    """The map of a layer with the most structure: the highest standard deviation after min-max
    normalisation (the best-rebuilt maps of a random network are often nearly empty)."""
    return int(minmax(layer.activations, loggabor.MINMAX_EPS).flatten(1).std(1).argmax())


def depth_picks(result: loggabor.Reconstruction, n: int) -> list[int]:
    """``n`` layer indices evenly spread over the rebuilt layers, first and last included."""
    count = len(result.batched)
    return sorted(set(np.round(np.linspace(0, count - 1, min(n, count))).astype(int).tolist()))


def plot_depths(results: Mapping[str, loggabor.Reconstruction], *, n_depths: int = 5, image: int = 0) -> plt.Figure:
    """Like the paper's Figures 1 and 5: per model two rows, the most varied activation map of
    layers at ``n_depths`` depths and its reconstruction, with the layer name and the map's MAE."""
    fig, axes = plt.subplots(2 * len(results), n_depths, figsize=(1.9 * n_depths, 1.75 * 2 * len(results)),
                             squeeze=False)
    for r, (model, result) in enumerate(results.items()):
        picks = depth_picks(result, n_depths)
        for c in range(n_depths):
            top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
            top.set_axis_off()
            bottom.set_axis_off()
            if c >= len(picks):
                continue
            layer = result.batched[picks[c]].image(image)
            idx = most_varied_map(layer)
            top.imshow(minmax(layer.activations[idx], loggabor.MINMAX_EPS).cpu(), cmap="gray")
            bottom.imshow(layer.reconstructions[idx].cpu(), cmap="gray")
            top.set_title(f"{model}: {_short(layer.name)}\n#{idx}, {layer.point}", fontsize=6)
            bottom.set_title(f"log-gabor, MAE {float(layer.mae[idx]):.3f}", fontsize=6)
    fig.tight_layout(pad=0.3)
    return fig


def plot_graph_vs_chain(graph: loggabor.Reconstruction, chain: loggabor.Reconstruction, names: Sequence[str], *,
                        image: int = 0) -> plt.Figure:
    """Per named layer: an activation map, its reconstruction following the graph and following the
    execution chain (the same map, the layer's most varied), with each one's MAE and sources."""
    by_graph = {layer.name: layer for layer in graph.batched}
    by_chain = {layer.name: layer for layer in chain.batched}
    names = [n for n in names if n in by_graph and n in by_chain]
    fig, axes = plt.subplots(len(names), 3, figsize=(6.6, 1.9 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        g, c = by_graph[name].image(image), by_chain[name].image(image)
        idx = most_varied_map(g)
        panels = [(minmax(g.activations[idx], loggabor.MINMAX_EPS), f"{_short(name, 28)} #{idx}"),
                  (g.reconstructions[idx], f"graph ({_short(', '.join(g.sources), 26)})\nMAE {float(g.mae[idx]):.3f}"),
                  (c.reconstructions[idx], f"chain ({_short(', '.join(c.sources), 26)})\nMAE {float(c.mae[idx]):.3f}")]
        for ax, (img, title) in zip(axes[r], panels):
            ax.imshow(img.cpu(), cmap="gray")
            ax.set_title(title, fontsize=6)
            ax.set_axis_off()
    fig.tight_layout(pad=0.3)
    return fig


def plot_stability(table, *, goal: float = 0.99) -> plt.Figure:
    """Per network: the CC of each image's explainable map with that of the input scaled by 1 + 1e-6
    (dots), the goal line, and the share of top-k choices that were near-tied (bars, right axis).
    ``table``: a DataFrame with columns ``model``, ``image``, ``cc``, ``near-tied share``."""
    models = list(dict.fromkeys(table["model"]))
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    twin = ax.twinx()
    for i, name in enumerate(models):
        rows = table[table["model"] == name]
        ax.scatter(np.full(len(rows), i) + np.linspace(-0.12, 0.12, len(rows)), rows["cc"], color="C0", zorder=3)
        twin.bar(i + 0.3, float(rows["near-tied share"].mean()), width=0.2, color="C1", alpha=0.6)
    ax.axhline(goal, color="k", lw=0.8, ls="--")
    ax.set_xticks(range(len(models)), models)
    ax.set_ylabel("CC (perturbed vs not)", color="C0")
    twin.set_ylabel("near-tied top-k share", color="C1")
    ax.set_ylim(min(-0.05, float(table["cc"].min()) - 0.05), 1.02)
    fig.tight_layout()
    return fig


def plot_filter_choices(shares: Mapping[str, "object"], by: str = "wavelength") -> plt.Figure:
    """One panel per network: depth (rows) x ``by`` value (columns), the mean share of the layer's
    choices that picked that value (colour), the spread over images written in each cell when the
    panel is small enough. ``shares``: model -> DataFrame from ``loggabor.filter_choice_shares``."""
    fig, axes = plt.subplots(1, len(shares), figsize=(3.2 * len(shares), 3.6), squeeze=False)
    for ax, (name, frame) in zip(axes[0], shares.items()):
        mean = frame.pivot(index="depth", columns=by, values="share")
        spread = frame.pivot(index="depth", columns=by, values="spread")
        image = ax.imshow(mean.values, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        labels = [f"{math.degrees(v):.0f}°" if by in ("orientation", "sigma_theta") else f"{v:g}" for v in mean.columns]
        ax.set_xticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel(by)
        ax.set_ylabel("depth")
        ax.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_title(name, fontsize=9)
        if mean.shape[0] <= 30:
            for (r, c), s in np.ndenumerate(spread.values):
                ax.text(c, r, f"±{s:.2f}", ha="center", va="center", fontsize=4, color="w")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="share of choices")
    return fig
