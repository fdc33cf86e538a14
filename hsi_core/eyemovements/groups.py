"""Reading a co-clustering: the VHEM tau its input sets, and which of its unlabelled groups is the
explorative one (the HSI paper reads the groups off the HMMs)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def median_length(paths: Sequence[Sequence[Any]]) -> int:
    """round(median sequence length) over every sequence of ``paths[image][viewer]`` (the toolbox
    demo's tau)."""
    lengths = [len(s) for row in paths for p in row if p is not None for s in p if len(s)]
    # (images and viewers without data contribute nothing)
    if not lengths:
        raise ValueError("median_length: no fixation sequences")
    return int(np.round(np.median(lengths)))


def explorative_index(groups: Sequence[Any], by: str = "transitions") -> int:
    """Which group of a co-clustering is the explorative one; the groups come unlabelled, and the
    paper reads them off the HMMs. ``by="transitions"`` (default): the group whose HMMs stay less in
    the same ROI (lower mean self-transition probability, averaged over images), i.e. that moves
    between ROIs more; ``by="area"``: the group with larger ROIs (mean sqrt det of the
    covariances), the reading of the book's earlier version."""
    groups = [row for row in groups if row is not None]  # images nobody looked at
    score = np.zeros(len(groups[0]))
    for row in groups:
        for g, h in enumerate(row):
            if by == "transitions":
                score[g] -= np.mean(np.diag(h.trans))
            elif by == "area":
                score[g] += np.mean(np.sqrt(np.linalg.det(h.covs)))
            else:
                raise ValueError(f"explorative_index: by must be 'transitions' or 'area', got {by!r}")
    return int(np.argmax(score))
