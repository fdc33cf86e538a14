"""The whole EMHMM co-clustering analysis of a study in one call (the toolbox's
``demo_cocluster.m`` pipeline): individual VB-HMMs, VHEM co-clustering, representative HMMs,
per-fixation log-likelihoods, the EF (AB) scale and the group statistics.

Toolbox call -> this package:

========================================  ====================================================
``read_xls_fixations``                    :func:`.tables.read_fixation_table`
``vbhmm_learn`` (per subject, stimulus)   :func:`.vbhmm.fit_individual`
``vhem_cocluster``                        :func:`.vhem.cocluster`
``vbhmm_ll`` + mean over trials           :func:`.stats.group_logliks`
AB scale of ``demo_cocluster.m``          :func:`.stats.ef_scale`
``stats_ttest`` (right-tailed)            :func:`.stats.group_separation` / :func:`.stats.paired_t`
========================================  ====================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .stats import ef_scale, group_logliks, group_separation
from .tables import FixationTable, read_fixation_table
from .vbhmm import HMM, VBOptions, fit_individual
from .vhem import CoClustering, VHEMOptions, cocluster

#: each step of :func:`analyse_study` and the toolbox function it replaces
TOOLBOX_MAP: list[tuple[str, str]] = [
    ("read_xls_fixations", "hsi_core.eyemovements.read_fixation_table"),
    ("vbhmm_learn (each subject and stimulus)", "hsi_core.eyemovements.fit_individual"),
    ("vhem_cocluster", "hsi_core.eyemovements.cocluster"),
    ("vbhmm_ll, averaged over trials (demo_cocluster.m)", "hsi_core.eyemovements.group_logliks"),
    ("AB scale (demo_cocluster.m)", "hsi_core.eyemovements.ef_scale"),
    ("stats_ttest (right-tailed)", "hsi_core.eyemovements.group_separation"),
    ("demo_cocluster.m as a whole", "hsi_core.eyemovements.analyse_study"),
]


@dataclass
class StudyResult:
    """Everything :func:`analyse_study` computed. ``hmms[image][viewer]`` individual HMMs (None
    without data); ``cocluster`` the co-clustering (labels, Z, LogL, ``group_hmms[image][group]``);
    ``LL[viewer, image, group]`` mean per-fixation log-likelihoods; ``ef[viewer]`` the EF scale
    (NaN for viewers without data), positive = explorative; ``explorative`` the explorative group;
    ``separation`` the per-group right-tailed paired t-tests; names of subjects and stimuli."""

    hmms: list[list[HMM | None]]
    cocluster: CoClustering
    LL: np.ndarray
    ef: np.ndarray
    explorative: int
    separation: list[dict[str, object]]
    subjects: list[str]
    stimuli: list[str]
    options: dict = field(default_factory=dict)

    @property
    def labels(self) -> np.ndarray:
        return self.cocluster.labels

    def viewer_table(self) -> list[dict[str, object]]:
        """One row per viewer: name, group ("explorative"/"focused"/"no data"), EF scale."""
        name = {self.explorative: "explorative", 1 - self.explorative: "focused"}
        return [{"subject": s, "group": name.get(int(g), "no data") if g >= 0 else "no data",
                 "EF scale": None if not np.isfinite(e) else round(float(e), 4)}
                for s, g, e in zip(self.subjects, self.labels, self.ef)]


def _sizes_hw(imgsize, n_images: int) -> list[tuple[int, int]]:
    arr = np.asarray(imgsize, dtype=float)
    if arr.shape == (2,):
        arr = np.repeat(arr[None], n_images, 0)
    if arr.shape != (n_images, 2):
        raise ValueError(f"analyse_study: imgsize must be one [x, y] = (width, height) pair or one per stimulus "
                         f"({n_images}), got shape {arr.shape}")
    return [(int(h), int(w)) for w, h in arr]


def analyse_study(study: FixationTable | str | Path | Sequence[Sequence[Sequence[np.ndarray] | None]],
                  imgsize, *, K: Sequence[int] = (1, 2, 3), n_groups: int = 2, vb: VBOptions = VBOptions(),
                  vhem: VHEMOptions | None = None, seed: int = 1000, outside_tolerance: float | None = None,
                  use_duration: bool = False, explorative_by: str = "transitions", tail: str = "right",
                  progress: bool = False, initmode: str | None = None) -> StudyResult:
    """EMHMM co-clustering of a study in one call, with the toolbox's defaults.

    ``study``: a fixation-table file (CSV, xls/xlsx; :func:`hsi_core.eyemovements.tables.read_fixation_table`), a
    :class:`FixationTable`, or ``paths[stimulus][subject]`` = list of (n, 2+) sequences or None.
    ``imgsize``: the toolbox's ``imgsize`` = [x, y], i.e. (width, height) in pixels, one pair for
    all stimuli or one per stimulus; it sets each stimulus's mu0 to its centre. ``K``: ROI counts
    tried (``vbopt.K``; the HSI paper 1..10). ``vhem``: co-clustering options (default: the
    toolbox's, ``n_groups`` groups, tau = round(median sequence length) as its demo sets).
    ``initmode``: the VHEM start (``hemopt.initmode``; default that of ``vhem``, else ``'auto'``,
    ``vhem_cocluster``'s default; ``demo_cocluster.m`` sets ``'gmmNew'``).
    Images nobody looked at and viewers without data are left out and reported in
    ``result.cocluster.empty_images`` / ``absent_viewers``.

    Args:
        study: a fixation-table path, a :class:`FixationTable` or ``paths[stimulus][subject]``.
        imgsize: ``(width, height)`` in pixels, one pair or one per stimulus.
        K: ROI counts tried per individual HMM.
        n_groups: the number of groups (2: explorative and focused).
        vb: the VB-HMM options (:class:`VBOptions`; the toolbox's defaults).
        vhem: the co-clustering options (:class:`VHEMOptions`; default as above).
        seed: the toolbox's seed (``vbhmm_learn`` re-seeds with it for each K).
        outside_tolerance: ``None`` accepts off-image fixations; a number of pixels raises beyond it.
        use_duration: fit (x, y, duration) instead of (x, y).
        explorative_by: how the explorative group is read off the HMMs (:func:`hsi_core.eyemovements.groups.explorative_index`).
        tail: the tail of the groups' paired t-tests (``"right"``, as ``stats_ttest``).
        progress: show progress bars.

    Returns:
        A :class:`StudyResult`: the individual HMMs, the co-clustering, ``LL``, the EF scale per
        viewer, the explorative group and the group t-tests.

    Raises:
        ValueError: the study is malformed (empty, sizes that do not match, bad fixations).
        FileNotFoundError: ``study`` names a missing file.
    """
    from .groups import explorative_index, median_length

    if isinstance(study, (str, Path)):
        study = read_fixation_table(study)
    if isinstance(study, FixationTable):
        paths, subjects, stimuli = study.paths, study.subjects, study.stimuli
        use_duration = use_duration and study.has_duration
    else:
        paths = [list(row) for row in study]
        subjects = [str(i + 1) for i in range(len(paths[0]))]
        stimuli = [str(j + 1) for j in range(len(paths))]
    sizes = _sizes_hw(imgsize, len(paths))
    hmms = fit_individual(paths, sizes, K_values=tuple(int(k) for k in K), opt=vb, seed=seed,
                          progress=progress, outside_tolerance=outside_tolerance, use_duration=use_duration)
    if vhem is None:
        vhem = VHEMOptions(n_groups=n_groups, tau=median_length(paths))
    elif vhem.n_groups != n_groups:
        vhem = replace(vhem, n_groups=n_groups)
    if initmode is not None:
        vhem = replace(vhem, initmode=initmode)
    co = cocluster(hmms, vhem)
    used = [row if row is not None else None for row in co.group_hmms]
    LL = group_logliks(paths, used)
    present = co.labels >= 0
    ef = np.full(len(subjects), np.nan)
    x = 0
    separation: list[dict[str, object]] = []
    if n_groups == 2:
        x = explorative_index([row for row in co.group_hmms if row is not None], by=explorative_by)
        ef[present] = ef_scale(LL[present][:, :, x].sum(1), LL[present][:, :, 1 - x].sum(1))
        separation = group_separation(LL[present], co.labels[present], x, tail=tail)
    return StudyResult(hmms, co, LL, ef, x, separation, list(subjects), list(stimuli),
                       {"K": list(K), "vb": vb, "vhem": vhem, "seed": seed, "imgsize_xy": np.asarray(imgsize).tolist()})
