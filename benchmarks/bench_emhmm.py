"""EMHMM on the toolbox's reference study: the port's time beside the toolbox's, same options.

The reference study (``../shared/reference/emhmm/golden``: 12 viewers x 4 images x 6 trials,
2,585 fixations) took the EMHMM toolbox v0.80 262 s under GNU Octave 7.3 on 2 busy cores
(individual VB-HMMs 185 s, co-clustering 76 s; ``output.json`` ``meta.runtime_seconds``). This runs
the port with the same options (K = 1..3, 50 restarts per K, VHEM with 2 groups, 50 trials,
tau = 9) in one process and checks that the results agree as the golden test requires (same K
where the toolbox's margin exceeds 2 nats, same partition, same EF-sign per viewer). The
toolbox's time is a recorded number from another run, not re-measured here (Octave is not
installed); both are wall-clock seconds on this kind of machine. Goal: under 10 s.

    python benchmarks/bench_emhmm.py [--memory-only]

Memory at paper scale (500 images, 40 viewers, K 1..10, 100 VHEM trials): the VHEM E-step works on
chunks of images and trials within ``VHEMOptions.max_bytes`` (default 1 GiB). The second part
measures the peak (tracemalloc, numpy's allocations) of co-clustering 40 synthetic viewer HMMs with
10 ROIs each, at a scaled-down number of images, trials and iterations (the peak is per chunk, so it
does not grow with the images or trials beyond the kept per-image statistics, which are also
reported, extrapolated to 500 images x 100 trials).

Writes ``benchmarks/results/emhmm.json`` (atomic) and prints it.
"""

from __future__ import annotations

import json
import os
import platform
import time

import numpy as np
from sklearn.metrics import adjusted_rand_score

from hsi_core import eyemovements as em
from hsi_core.io import atomic_write_json
from hsi_core.paths import REPO_ROOT


def memory(n_images: int, trials: int, max_bytes: int, iters: int = 3) -> dict:
    """Peak traced memory and time of co-clustering 40 viewers x ``n_images`` with 10-ROI HMMs."""
    import dataclasses
    import tracemalloc

    rng = np.random.default_rng(0)
    hmms = []
    for _ in range(n_images):
        row = []
        for _ in range(40):
            k = 10
            trans = rng.dirichlet(np.ones(k), k)
            row.append(em.HMM(prior=rng.dirichlet(np.ones(k)), trans=trans, means=rng.uniform(0, 500, (k, 2)),
                              covs=np.repeat((400 * np.eye(2))[None], k, 0), N=np.full(k, 5.0)))
        hmms.append(row)
    opt = em.VHEMOptions(trials=trials, tau=10, max_iter=iters, max_bytes=max_bytes)
    tracemalloc.start()
    t0 = time.perf_counter()
    em.cocluster(hmms, opt)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"images": n_images, "viewers": 40, "rois": 10, "trials": trials, "max_iter": iters,
            "max_bytes": max_bytes, "peak_bytes": peak, "peak_GB": round(peak / 1e9, 3), "seconds": round(seconds, 1),
            "per_image_stats_GB_at_500_images_100_trials_kept_per_trial_chunk":
                round(8 * 4 * 500 * 40 * 2 * 10 * (10 + 4 + 2 + 2) / 1e9, 3)}


def main() -> int:
    import sys

    mem = [memory(4, 4, 1 << 30), memory(8, 4, 1 << 30), memory(8, 4, 1 << 28)]
    print(json.dumps({"memory": mem, "load_average_1min": round(os.getloadavg()[0], 2)}, indent=1))
    if "--memory-only" in sys.argv:
        atomic_write_json(REPO_ROOT / "benchmarks" / "results" / "emhmm_memory.json",
                          {"memory": mem, "load_average_1min": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count()})
        return 0
    ref = em.load_reference()
    out, paths, sizes = ref.output, ref.paths, ref.sizes
    hem = out["options"]["hemopt_effective"]

    t0, c0 = time.perf_counter(), time.process_time()
    hmms = em.fit_like_toolbox(ref)
    t1, c1 = time.perf_counter(), time.process_time()
    co = em.cocluster(hmms, ref.vhem_options())
    LL = em.group_logliks(paths, co.group_hmms)
    ab = em.ef_scale(LL[:, :, 0].sum(1), LL[:, :, 1].sum(1))
    t2, c2 = time.perf_counter(), time.process_time()

    same_k = all(hmms[j][i].n_rois == out["chosen_K"][j][i]
                 for j, row in enumerate(out["individual_hmms"]) for i, r in enumerate(row)
                 if np.diff(np.sort(r["model_LL"])[::-1][:2]).item() < -2.0)
    theirs = np.array(out["cocluster"]["label"]) - 1
    flip = co.labels[0] != theirs[0]
    toolbox = out["meta"]["runtime_seconds"]
    result = {
        "benchmark": "EMHMM reference study (12 viewers x 4 images x 6 trials), K=1..3, 50 restarts, 50 VHEM trials",
        "toolbox_seconds": round(toolbox["total"], 1),
        "toolbox_individual_seconds": round(toolbox["individual_hmms"], 1),
        "toolbox_cocluster_seconds": round(toolbox["cocluster"], 1),
        "port_seconds": round(t2 - t0, 2),
        "port_individual_seconds": round(t1 - t0, 2),
        "port_cocluster_seconds": round(t2 - t1, 2),
        "port_cpu_seconds": round(c2 - c0, 2),
        "speedup": round(toolbox["total"] / (t2 - t0), 1),
        "same_k_clear_margin": bool(same_k),
        "same_partition": bool(adjusted_rand_score(theirs, co.labels) == 1.0),
        "same_ef_signs": bool(np.array_equal(np.sign(-ab if flip else ab), np.sign(out["loglik"]["AB"]))),
        "port_LogL": round(co.LogL, 3),
        "toolbox_LogL": round(out["cocluster"]["LogL"], 3),
        "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "memory": mem,
        "note": "toolbox time recorded by the reference run (GNU Octave 7.3.0, 2 busy cores, nice); port timed here",
    }
    atomic_write_json(REPO_ROOT / "benchmarks" / "results" / "emhmm.json", result)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
