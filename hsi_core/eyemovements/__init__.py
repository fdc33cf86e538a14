"""Eye-movement analysis with hidden Markov models: EMHMM with co-clustering (Chuk, Chan & Hsiao
2014; Coviello, Chan & Lanckriet 2014; Hsiao et al. 2021), as the EMHMM toolbox v0.80 computes it,
for the HSI paper's eye-tracking study.

- :mod:`.vbhmm`: one VB-HMM per viewer and image (toolbox priors, 50 restarts, K by L(K) + log K!,
  empty-state removal), batched over viewers, images and restarts.
- :mod:`.vhem`: VHEM co-clustering with one viewer-to-group assignment shared across images,
  many trials, degenerate-trial removal, representative HMMs with ceil(median) ROIs.
- :mod:`.groups`: reading a co-clustering's input and output: the VHEM tau from the sequences
  (:func:`.groups.median_length`) and which group is the explorative one (:func:`.groups.explorative_index`).
- :mod:`.stats`: per-fixation log-likelihoods, the EF scale, paired t with Cohen's d_z, partial
  correlation.
- :mod:`.reference`: the toolbox's reference outputs and the port's errors on its fixtures.
- :mod:`.tables`: fixation tables in the toolbox's columns (``read_xls_fixations``).
- :mod:`.analysis`: :func:`.analysis.analyse_study`, the whole analysis in one call (``demo_cocluster.m``).
- :mod:`.linkage`: the book's earlier average-linkage stand-in (:func:`.linkage.linkage_cocluster`), kept
  only to show it failing.

The toolbox is Copyright (c) 2021 A. B. Chan, J. H. Hsiao, T. Chuk, Lan Hui (BSD-3-style terms);
its H3M/VHEM code is Copyright 2012 Emanuele Coviello, CALab, UCSD. This package is an independent
implementation from the papers, checked against the toolbox's outputs.
"""

from .stats import (TestResult, ef_scale, gaussian_logpdf, group_logliks, group_separation, loglik,
                    one_sample_t, paired_t, partial_correlation, viterbi)
from .vbhmm import HMM, VBOptions, fit_from_gmm, fit_individual, fit_vbhmms, remove_empty, standardize_order
from .vhem import CoClustering, VHEMOptions, cocluster, drop_degenerate, fix_degenerate_states, step_from_hmms
from .reference import (REFERENCE_ENV, SHIPPED_REFERENCE, Reference, deterministic_errors, fit_like_toolbox,
                        load_reference, recorded_hmm, reference_folder)
from .tables import FixationTable, read_fixation_table, write_fixation_table
from .groups import explorative_index, median_length
from .analysis import TOOLBOX_MAP, StudyResult, analyse_study
from .linkage import Study, ViewerHMM, divergence_matrix, fit_all, linkage_cocluster

__all__ = [
    "HMM", "VBOptions", "fit_from_gmm", "fit_individual", "fit_vbhmms", "remove_empty", "standardize_order",
    "CoClustering", "VHEMOptions", "cocluster", "drop_degenerate", "step_from_hmms",
    "TestResult", "group_separation", "viterbi", "ef_scale", "gaussian_logpdf", "group_logliks", "loglik", "one_sample_t", "paired_t",
    "partial_correlation", "Study", "ViewerHMM", "divergence_matrix", "fit_all", "linkage_cocluster",
    "explorative_index", "median_length", "Reference", "deterministic_errors", "load_reference",
    "recorded_hmm", "reference_folder", "fit_like_toolbox", "REFERENCE_ENV", "SHIPPED_REFERENCE",
    "fix_degenerate_states", "FixationTable", "read_fixation_table", "write_fixation_table", "TOOLBOX_MAP",
    "StudyResult", "analyse_study",
]

