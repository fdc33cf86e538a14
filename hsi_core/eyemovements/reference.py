"""The EMHMM toolbox's reference outputs and the port's agreement with them.

A reference is a folder with the toolbox's ``input.json`` (the study) and ``output.json`` (what
the toolbox computed, with the options it ran with), in the schema of
``reference_data/golden/README.md``. The one shipped with the package (EMHMM v0.80 under GNU
Octave 7.3 on a 12-viewer, 4-image synthetic study, with its provenance) is the default, so a
fresh clone can run the check; :func:`reference_folder` picks, in order,
``$HSI_EMHMM_REFERENCE`` (a user's own toolbox run), ``<shared>/reference/emhmm/golden``
beside the shared data (:func:`hsi_core.paths.shared_data_root`), and the shipped copy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import os

from ..paths import shared_data_root
from .stats import ef_scale, group_logliks
from .vbhmm import HMM, VBOptions, fit_from_gmm
from .vhem import VHEMOptions, step_from_hmms

#: the toolbox's outputs shipped with the package (EMHMM v0.80 under GNU Octave 7.3.0)
SHIPPED_REFERENCE = Path(__file__).resolve().parent / "reference_data" / "golden"
REFERENCE_ENV = "HSI_EMHMM_REFERENCE"


def _has_files(folder: Path) -> bool:
    return (folder / "input.json").is_file() and (folder / "output.json").is_file()


def reference_folder() -> Path:
    """Where the toolbox reference is: ``$HSI_EMHMM_REFERENCE`` (a folder with input.json and
    output.json; a clear error when it lacks them), else ``reference/emhmm/golden`` beside the
    shared data when present, else the copy shipped with the package."""
    env = os.environ.get(REFERENCE_ENV)
    if env:
        folder = Path(env)
        if not _has_files(folder):
            raise FileNotFoundError(f"{folder}: ${REFERENCE_ENV} must name a folder holding the toolbox's "
                                    f"input.json and output.json")
        return folder
    shared = shared_data_root()
    if shared is not None and _has_files(shared.parent / "reference" / "emhmm" / "golden"):
        return shared.parent / "reference" / "emhmm" / "golden"
    return SHIPPED_REFERENCE


@dataclass
class Reference:
    """``paths[image][viewer]`` = list of (n, 2) sequences, ``sizes[image]`` = (height, width),
    and the toolbox's ``output`` (output.json, 1-based indices as MATLAB writes them)."""

    paths: list[list[list[np.ndarray]]]
    sizes: list[tuple[int, int]]
    output: dict
    folder: Path | None = None

    @property
    def k_values(self) -> list[int]:
        """The K candidates the toolbox tried (``options.K_candidates``, else each HMM's model_k)."""
        opts = self.output.get("options", {})
        if "K_candidates" in opts:
            return [int(k) for k in np.atleast_1d(opts["K_candidates"])]
        return [int(k) for k in np.atleast_1d(self.output["individual_hmms"][0][0]["model_k"])]

    @property
    def mu0s(self) -> list[list[float]]:
        """mu0 per stimulus as the run set it (``options.mu0_per_stimulus``, else the centre)."""
        opts = self.output.get("options", {})
        if "mu0_per_stimulus" in opts:
            return [list(np.atleast_1d(m).astype(float)) for m in opts["mu0_per_stimulus"]]
        return [[w / 2, h / 2] for h, w in self.sizes]

    def vb_options(self) -> VBOptions:
        """The VB-HMM options of the toolbox run (``options.vbopt_effective_stim1``, else the
        given ones, else the defaults)."""
        opts = self.output.get("options", {})
        vb = {**opts.get("vbopt_given", {}), **opts.get("vbopt_effective_stim1", {})}
        if vb.get("learn_hyps"):
            raise ValueError("the reference was run with learn_hyps = 1, which the port does not implement")
        d = VBOptions()
        return VBOptions(alpha0=float(vb.get("alpha0", d.alpha0)), epsilon0=float(vb.get("epsilon0", d.epsilon0)),
                         W0=float(vb.get("W0", d.W0)), beta0=float(vb.get("beta0", d.beta0)),
                         v0=float(vb.get("v0", d.v0)), numtrials=int(vb.get("numtrials", d.numtrials)),
                         max_iter=int(vb.get("maxIter", d.max_iter)), min_diff=float(vb.get("minDiff", d.min_diff)))

    @property
    def vb_seed(self) -> int:
        opts = self.output.get("options", {})
        return int({**opts.get("vbopt_given", {}), **opts.get("vbopt_effective_stim1", {})}.get("seed", 1000))

    def vhem_options(self, **overrides) -> VHEMOptions:
        """The co-clustering options of the toolbox run (``options.hemopt_effective``)."""
        h = self.output["options"]["hemopt_effective"]
        d = VHEMOptions()
        kw = dict(n_groups=int(h.get("K", self.output["options"].get("HEM_K", d.n_groups))),
                  trials=int(h.get("trials", d.trials)), tau=int(h.get("tau", d.tau)), Nv=int(h.get("Nv", d.Nv)),
                  reg_cov=float(h.get("reg_cov", d.reg_cov)), termvalue=float(h.get("termvalue", d.termvalue)),
                  max_iter=int(h.get("max_iter", d.max_iter)), min_iter=int(h.get("min_iter", d.min_iter)),
                  seed=int(h.get("seed", d.seed)), initmode=str(h.get("initmode", d.initmode)),
                  init_iter=int(h.get("initopt", {}).get("iter", d.init_iter)))
        kw.update(overrides)
        return VHEMOptions(**kw)


def load_reference(root: str | Path | None = None) -> Reference:
    """Read ``input.json`` and ``output.json`` from ``root`` (the folder holding them, or its
    parent holding ``golden/``); ``root=None``: :func:`reference_folder`."""
    golden = reference_folder() if root is None else Path(root)
    if not _has_files(golden) and _has_files(golden / "golden"):
        golden = golden / "golden"
    for name in ("input.json", "output.json"):
        if not (golden / name).is_file():
            raise FileNotFoundError(f"{golden / name}: the EMHMM reference is missing this file")
    inp = json.loads((golden / "input.json").read_text())
    out = json.loads((golden / "output.json").read_text())
    paths = [[[np.array(t, float) for t in s["fixations"][j]] for s in inp["subjects"]]
             for j in range(len(inp["stimuli"]))]
    sizes = [(s["size"][1], s["size"][0]) for s in inp["stimuli"]]
    return Reference(paths, sizes, out, golden)


def recorded_hmm(r: dict) -> HMM:
    """A toolbox HMM as output.json records it (1-element arrays are written as scalars)."""
    k = np.atleast_1d(np.asarray(r["prior"], float)).size
    means = np.reshape(np.asarray(r["means"], float), (k, -1))
    D = means.shape[1]
    return HMM(prior=np.atleast_1d(np.asarray(r["prior"], float)), trans=np.reshape(r["trans"], (k, k)),
               means=means, covs=np.reshape(r["covs"], (k, D, D)),
               N=np.atleast_1d(np.asarray(r["N"], float)) if "N" in r else None)


def _rel(ours, theirs) -> float:
    ours, theirs = np.ravel(np.asarray(ours, float)), np.ravel(np.asarray(theirs, float))
    return float(np.max(np.abs(ours - theirs) / np.abs(theirs)))


def deterministic_errors(ref: Reference) -> dict[str, float]:
    """Largest relative error of the port on the toolbox's deterministic fixtures (VB-HMM from a
    fixed initial GMM; the VHEM loop from fixed starting group HMMs), on the per-fixation
    log-likelihoods of the recorded group HMMs and on the EF (AB) scale."""
    out = ref.output
    errors: dict[str, float] = {}
    worst = 0.0
    vb = ref.vb_options()
    for case in out["deterministic"]["vbhmm_initgmm"]:
        j, i = case["stimulus"] - 1, case["subject"] - 1
        g = case["initgmm"]
        ours = fit_from_gmm(ref.paths[j][i], g["mean"], g["cov"], g["prior"], ref.mu0s[j], vb)
        worst = max([worst] + [_rel(getattr(ours, f), case["hmm"][f])
                               for f in ("LL", "prior", "trans", "means", "covs", "N", "M")])
    errors["VB-HMM from a fixed initial GMM"] = worst
    step = out["deterministic"]["vhem_step_fixed_init"]
    ind = [[recorded_hmm(r) for r in row] for row in out["individual_hmms"]]
    start = [[ind[j][i - 1] for i in pair] for j, pair in enumerate(step["init_pairs_subject_index"])]
    res = step_from_hmms(ind, start, ref.vhem_options())
    worst = max(_rel(res["LogL"], step["LogL"]), _rel(res["Z"], step["Z"]))
    for j, row in enumerate(step["group_hmms"]):
        for k, r in enumerate(row):
            theirs = recorded_hmm(r)
            worst = max([worst] + [_rel(getattr(res["group_hmms"][j][k], f), getattr(theirs, f))
                                   for f in ("prior", "trans", "means", "covs")])
    errors["VHEM loop from a fixed start"] = worst
    groups = [[recorded_hmm(r) for r in row] for row in out["cocluster"]["group_hmms"]]
    LL = group_logliks(ref.paths, groups)
    errors["per-fixation log-likelihoods"] = _rel(LL, np.array(out["loglik"]["LL"]))
    errors["EF (AB) scale"] = _rel(ef_scale(LL[:, :, 0].sum(1), LL[:, :, 1].sum(1)), out["loglik"]["AB"])
    return errors


def fit_like_toolbox(ref: Reference, chunk: int = 64) -> list[list[HMM | None]]:
    """The individual VB-HMMs of the reference study from random starts, with the run's K
    candidates, options, seed and per-stimulus mu0 (``hmms[stimulus][subject]``)."""
    from .vbhmm import fit_vbhmms

    opt, K = ref.vb_options(), ref.k_values
    out: list[list[HMM | None]] = []
    for j, row in enumerate(ref.paths):
        present = [i for i, p in enumerate(row) if p]
        fitted: list[HMM] = []
        for c in range(0, len(present), chunk):
            part = present[c:c + chunk]
            fitted += fit_vbhmms([row[i] for i in part], [ref.mu0s[j]] * len(part), K, opt, ref.vb_seed)
        hm: list[HMM | None] = [None] * len(row)
        for i, h in zip(present, fitted):
            hm[i] = h
        out.append(hm)
    return out
