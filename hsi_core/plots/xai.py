"""Figures for the XAI benchmark chapter (HSI paper, Figures 1 and 11) and the extended ranking."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hsi_core.plots import as_display_image, overlay


def figure1(image: Any, maps: Mapping[str, Any], label: str) -> plt.Figure:
    """Figure 1: an image classified as ``label`` (a) and each XAI method's explanation (b-d)."""
    fig, axes = plt.subplots(1, 1 + len(maps), figsize=(2.4 * (1 + len(maps)), 2.6))
    axes[0].imshow(as_display_image(image))
    axes[0].set_title(f"(a) '{label}'", fontsize=9)
    axes[0].set_axis_off()
    for k, (name, m) in enumerate(maps.items(), start=1):
        overlay(axes[k], image, m)
        axes[k].set_title(f"({chr(97 + k)}) {name}", fontsize=9)
    fig.tight_layout()
    return fig


def figure11(images: Sequence[Any], labels: Sequence[str], hsi_maps: Any, xai_maps: Mapping[str, Any]) -> plt.Figure:
    """Figure 11: per row, the image (a), the HSI map (b) and the XAI maps (c-e), as overlays."""
    cols = ["(a) image", "(b) HSI"] + [f"({chr(99 + k)}) {name}" for k, name in enumerate(xai_maps)]
    fig, axes = plt.subplots(len(images), len(cols), figsize=(2.2 * len(cols), 2.2 * len(images)), squeeze=False)
    for r, image in enumerate(images):
        axes[r, 0].imshow(as_display_image(image))
        axes[r, 0].set_axis_off()
        axes[r, 0].text(-0.05, 0.5, labels[r], transform=axes[r, 0].transAxes, ha="right", va="center",
                        rotation=90, fontsize=9)
        overlay(axes[r, 1], image, np.asarray(hsi_maps[r]))
        for c, m in enumerate(xai_maps.values(), start=2):
            overlay(axes[r, c], image, np.asarray(m[r]))
    for c, title in enumerate(cols):
        axes[0, c].set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _rank_label(method: str, rank: Any, tied_with: str) -> str:
    """``"RISE (#1)"``; ``"#1="`` for a tied rank, ``"#-"`` for an undefined one."""
    if pd.isna(rank):
        return f"{method} (#-)"
    return f"{method} (#{int(rank)}{'=' if tied_with else ''})"


def ranking_forest(extended: pd.DataFrame) -> plt.Figure:
    """One panel per metric: each method's mean score against the HSI map with its bootstrap 95% CI
    (tied ranks marked ``=``; a NaN CI, fewer than two images, drawn without a bar)."""
    metrics = list(dict.fromkeys(extended["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.6 * len(metrics), 2.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        part = extended[extended.metric == metric].sort_values("rank", kind="stable")
        y = np.arange(len(part))[::-1]
        err = np.nan_to_num(np.stack([part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]]).astype(float),
                            nan=0.0)
        ax.errorbar(part["mean"], y, xerr=err, fmt="o", capsize=3)
        ax.set_yticks(y)
        ax.set_yticklabels([_rank_label(m, r, t) for m, r, t in
                            zip(part["method"], part["rank"], part.get("tied_with", [""] * len(part)))], fontsize=8)
        ax.set_title(f"{metric} ({part['better'].iloc[0]} = closer)", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig
