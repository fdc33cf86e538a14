"""The EMHMM toolbox's reference outputs (``../shared/reference/emhmm/golden``: EMHMM v0.80 under
GNU Octave on a 12-viewer, 4-image synthetic study) and the port's agreement with them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .stats import ef_scale, group_logliks
from .vbhmm import HMM, fit_from_gmm
from .vhem import VHEMOptions, step_from_hmms


@dataclass
class Reference:
    """``paths[image][viewer]`` = list of (n, 2) sequences, ``sizes[image]`` = (height, width),
    and the toolbox's ``output`` (output.json, 1-based indices as MATLAB writes them)."""

    paths: list[list[list[np.ndarray]]]
    sizes: list[tuple[int, int]]
    output: dict


def load_reference(root: str | Path) -> Reference:
    """Read ``root/golden/input.json`` and ``output.json`` (``root`` = ../shared/reference/emhmm)."""
    golden = Path(root) / "golden"
    for name in ("input.json", "output.json"):
        if not (golden / name).is_file():
            raise FileNotFoundError(f"{golden / name}: the EMHMM reference is missing this file")
    inp = json.loads((golden / "input.json").read_text())
    out = json.loads((golden / "output.json").read_text())
    paths = [[[np.array(t, float) for t in s["fixations"][j]] for s in inp["subjects"]]
             for j in range(len(inp["stimuli"]))]
    sizes = [(s["size"][1], s["size"][0]) for s in inp["stimuli"]]
    return Reference(paths, sizes, out)


def recorded_hmm(r: dict) -> HMM:
    """A toolbox HMM as output.json records it (1-element arrays are written as scalars)."""
    k = np.atleast_1d(np.asarray(r["prior"], float)).size
    return HMM(prior=np.atleast_1d(np.asarray(r["prior"], float)), trans=np.reshape(r["trans"], (k, k)),
               means=np.reshape(r["means"], (k, 2)), covs=np.reshape(r["covs"], (k, 2, 2)),
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
    for case in out["deterministic"]["vbhmm_initgmm"]:
        j, i = case["stimulus"] - 1, case["subject"] - 1
        h, w = ref.sizes[j]
        g = case["initgmm"]
        ours = fit_from_gmm(ref.paths[j][i], g["mean"], g["cov"], g["prior"], [w / 2, h / 2])
        worst = max([worst] + [_rel(getattr(ours, f), case["hmm"][f])
                               for f in ("LL", "prior", "trans", "means", "covs", "N", "M")])
    errors["VB-HMM from a fixed initial GMM"] = worst
    step = out["deterministic"]["vhem_step_fixed_init"]
    ind = [[recorded_hmm(r) for r in row] for row in out["individual_hmms"]]
    start = [[ind[j][i - 1] for i in pair] for j, pair in enumerate(step["init_pairs_subject_index"])]
    hem = out["options"]["hemopt_effective"]
    opt = VHEMOptions(tau=hem["tau"], Nv=hem["Nv"], reg_cov=hem["reg_cov"], termvalue=hem["termvalue"],
                      max_iter=hem["max_iter"], min_iter=hem["min_iter"])
    res = step_from_hmms(ind, start, opt)
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
