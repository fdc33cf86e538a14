"""Log-gabor filters and the layer-by-layer reconstruction of a deep model's activation maps
(loggabor paper, Section II, LG Eq. 1-5).

- ``bank``: the 80-filter bank, its readings (minimum wavelength, bandwidth in octaves), the local
  energy with a reflected border (LG Eq. 1);
- ``graph``: one traced forward pass: the activation maps (after the nonlinearity by default) and
  which layer feeds which;
- ``resample``: the five scales as linear operators (two x2 steps or one step; closed-form block
  variances of resized maps);
- ``stability``: the explanation of an input scaled by 1 + 1e-6 against the unperturbed one (CC,
  near-ties, moved choices), and a rerun on an emulated other CPU;
- ``reconstruct``: LG Eq. 2-5 for every layer and every image of a batch, following the graph (or the
  execution chain, ``mode="chain"``), with tie-tolerant choices, and the explainable saliency map.
"""

from .bank import (FFT_LENGTHS, SIGMA_THETA_UNITS, FilterBank, FilterSpec, auto_pad, bank_specs, energy, filter_bank, filter_table, padded_size,
                   radial_bandwidth_octaves, responses)
from .graph import (ADD_READINGS, INPUT, POINTS, SUM_POINT, Capture, capture_activations, conv_layer_names, default_layer_names,
                    explainable_layers, replay, trace)
from .reconstruct import (CARRY_GRID, DEFAULT_BATCH_SIZE, MINMAX_EPS, NORMALISATIONS, PRECISIONS, SCALES, TIE_RTOL, WEIGHT_FLOOR, LayerReconstruction, LayerResult, Reconstruction, block_variance,
                          default_batch_size, explainable_saliency, filter_choice_shares, layer_filter_summary, reconstruct, reconstruct_batch,
                          reconstruct_maps, resized_block_variance, scale_sizes, selected_filter_table,
                          smallest_with_ties, used_scales)
from .stability import (EMULATED_CPU_ENV, choice_changes, correlation, emulated_cpu_rerun, near_ties, near_tied_share,
                        perturbation_stability)
from .resample import STEPS, resize_matrix, round_trip_matrix, scale_length, to_scale_matrix

__all__ = [
    "FFT_LENGTHS", "SIGMA_THETA_UNITS", "FilterBank", "FilterSpec", "auto_pad", "bank_specs", "energy", "filter_bank", "filter_table", "padded_size",
    "radial_bandwidth_octaves", "responses", "CARRY_GRID", "DEFAULT_BATCH_SIZE", "default_batch_size", "ADD_READINGS", "SUM_POINT", "INPUT", "MINMAX_EPS", "NORMALISATIONS", "POINTS", "PRECISIONS", "Capture", "capture_activations",
    "conv_layer_names", "default_layer_names", "explainable_layers", "replay", "trace", "SCALES", "TIE_RTOL", "WEIGHT_FLOOR", "LayerReconstruction", "LayerResult",
    "Reconstruction", "block_variance", "explainable_saliency", "filter_choice_shares", "layer_filter_summary", "reconstruct",
    "reconstruct_batch", "reconstruct_maps", "resized_block_variance", "scale_sizes", "selected_filter_table",
    "smallest_with_ties", "used_scales", "STEPS", "resize_matrix", "round_trip_matrix", "scale_length",
    "to_scale_matrix", "choice_changes", "correlation", "EMULATED_CPU_ENV", "emulated_cpu_rerun", "near_ties", "near_tied_share", "perturbation_stability",
]


def __getattr__(name: str):
    # loggabor.minmax and loggabor.resize moved to hsi_core.maps; kept for one release
    if name in ("minmax", "resize"):
        import warnings

        from hsi_core import maps

        warnings.warn(f"hsi_core.loggabor.{name} is deprecated and goes in the next release: use hsi_core.maps.{name}"
                      + ("(maps, eps=1e-12)" if name == "minmax" else ""), DeprecationWarning, stacklevel=2)
        return (lambda m, eps=MINMAX_EPS: maps.minmax(m, eps)) if name == "minmax" else maps.resize
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
