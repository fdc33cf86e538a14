"""Frozen copy of hsi_core.loggabor at commit c9323c8 (before issue 19), the baseline of
benchmarks/bench_loggabor.py. Log-gabor filters and the layer-by-layer reconstruction of a deep model's activation maps
(loggabor paper, Section II, Eq. 1-5).

- ``bank``: the 80-filter bank, its readings (minimum wavelength, bandwidth in octaves), the local
  energy with a reflected border (Eq. 1);
- ``graph``: one traced forward pass: the activation maps (after the nonlinearity by default) and
  which layer feeds which;
- ``reconstruct``: Eq. 2-5 for every layer and every image of a batch, following the graph (or the
  execution chain, ``mode="chain"``), and the explainable saliency map.
"""

from .bank import (FilterSpec, auto_pad, bank_specs, energy, filter_bank, filter_table, padded_size,
                   radial_bandwidth_octaves, responses)
from .graph import INPUT, POINTS, Capture, capture_activations, conv_layer_names, explainable_layers, trace
from .reconstruct import (SCALES, LayerReconstruction, LayerResult, Reconstruction, _resize, block_variance,
                          explainable_saliency, layer_filter_summary, minmax, reconstruct, reconstruct_batch,
                          reconstruct_maps, scale_sizes, selected_filter_table)

__all__ = [
    "FilterSpec", "auto_pad", "bank_specs", "energy", "filter_bank", "filter_table", "padded_size",
    "radial_bandwidth_octaves", "responses", "INPUT", "POINTS", "Capture", "capture_activations",
    "conv_layer_names", "explainable_layers", "trace", "SCALES", "LayerReconstruction", "LayerResult", "Reconstruction", "_resize",
    "block_variance", "explainable_saliency", "layer_filter_summary", "minmax", "reconstruct",
    "reconstruct_batch", "reconstruct_maps", "scale_sizes", "selected_filter_table",
]
