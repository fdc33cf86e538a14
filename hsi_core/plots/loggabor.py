"""Figures for the log-gabor chapter."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch

from hsi_core import loggabor


def plot_bank(bank: torch.Tensor, specs: Sequence[loggabor.FilterSpec], *, n_bandwidths: int = 4) -> plt.Figure:
    """Transfer functions (centred spectra) of the bank: rows = orientation x bandwidth, columns = wavelength."""
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
            ax.set_title(f"{spec.orientation * 180 / 3.14159:.0f}°\nλ={spec.wavelength:g}", fontsize=6)
        if col == 0:
            ax.set_ylabel(f"σf/f0\n{spec.sigma_ratio:g}", fontsize=6)
    fig.tight_layout(pad=0.1)
    return fig


def plot_layers(result: loggabor.Reconstruction, layer_names: Sequence[str], *, maps_per_layer: int = 2) -> plt.Figure:
    """For each named layer, its best-reconstructed activation maps beside their reconstructions."""
    layers = [layer for layer in result.layers if layer.name in layer_names]
    fig, axes = plt.subplots(len(layers), 2 * maps_per_layer, figsize=(2.0 * 2 * maps_per_layer, 1.8 * len(layers)), squeeze=False)
    for r, layer in enumerate(layers):
        for j, idx in enumerate(layer.kept[:maps_per_layer].tolist()):
            axes[r, 2 * j].imshow(loggabor.minmax(layer.activations[idx]).cpu(), cmap="gray")
            axes[r, 2 * j + 1].imshow(layer.reconstructions[idx].cpu(), cmap="gray")
            axes[r, 2 * j].set_title(f"{layer.name} #{idx}", fontsize=7)
            axes[r, 2 * j + 1].set_title(f"log-gabor, MAE {float(layer.mae[idx]):.3f}", fontsize=7)
        for ax in axes[r]:
            ax.set_axis_off()
    fig.tight_layout()
    return fig
