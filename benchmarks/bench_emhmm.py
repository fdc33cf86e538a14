"""EMHMM on the toolbox's reference study: the port's time beside the toolbox's, same options.

The reference study (``../shared/reference/emhmm/golden``: 12 viewers x 4 images x 6 trials,
2,585 fixations) took the EMHMM toolbox v0.80 262 s under GNU Octave 7.3 on 2 busy cores
(individual VB-HMMs 185 s, co-clustering 76 s; ``output.json`` ``meta.runtime_seconds``). This runs
the port with the same options (K = 1..3, 50 restarts per K, VHEM with 2 groups, 50 trials,
tau = 9) in one process and checks that the results agree as the golden test requires (same K
where the toolbox's margin exceeds 2 nats, same partition, same EF-sign per viewer). The
toolbox's time is a recorded number from another run, not re-measured here (Octave is not
installed); both are wall-clock seconds on this kind of machine. Goal: under 10 s.

    python benchmarks/bench_emhmm.py [--memory-only | --paper-scale]

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


def synthetic_viewer_hmms(n_images: int, viewers: int = 40, rois: int = 10, seed: int = 0) -> list[list[em.HMM]]:
    """``hmms[image][viewer]``: random 10-ROI HMMs on a 500 px image, the worst case of K 1..10."""
    rng = np.random.default_rng(seed)
    return [[em.HMM(prior=rng.dirichlet(np.ones(rois)), trans=rng.dirichlet(np.ones(rois), rois),
                    means=rng.uniform(0, 500, (rois, 2)), covs=np.repeat((400 * np.eye(2))[None], rois, 0),
                    N=np.full(rois, 5.0)) for _ in range(viewers)] for _ in range(n_images)]


def memory(n_images: int, trials: int, max_bytes: int, iters: int = 3, initmode: str = "base") -> dict:
    """Peak traced memory (numpy's allocations) and peak resident memory of co-clustering 40
    viewers x ``n_images`` with 10-ROI HMMs; ``iters`` VHEM iterations per trial."""
    import resource
    import tracemalloc

    hmms = synthetic_viewer_hmms(n_images)
    opt = em.VHEMOptions(trials=trials, tau=10, max_iter=iters, max_bytes=max_bytes, initmode=initmode)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    t0 = time.perf_counter()
    em.cocluster(hmms, opt)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"images": n_images, "viewers": 40, "rois": 10, "trials": trials, "max_iter": iters,
            "initmode": initmode, "max_bytes": max_bytes, "peak_bytes": peak, "peak_GB": round(peak / 1e9, 3),
            "peak_rss_GB_process": round(max(rss_before, rss_after) / 1e9, 3), "seconds": round(seconds, 1),
            "seconds_per_image_trial_iteration": round(seconds / (n_images * trials * iters), 4),
            "per_image_stats_GB_at_500_images_100_trials_kept_per_trial_chunk":
                round(8 * 4 * 500 * 40 * 2 * 10 * (10 + 4 + 2 + 2) / 1e9, 3)}


def individual_rate(pairs: int = 8, K_values: tuple[int, ...] = tuple(range(1, 11)), seed: int = 0) -> dict:
    """Seconds per viewer-image VB-HMM fit with K 1..10 and the toolbox's 50 restarts, on
    synthetic viewers (2 trials of 12 fixations each, 3 clusters on a 500 x 500 image)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(80, 420, (3, 2))
    paths = [[[centres[rng.integers(0, 3, 12)] + rng.normal(0, 25, (12, 2)) for _ in range(2)]
              for _ in range(pairs)]]
    t0 = time.perf_counter()
    em.fit_individual(paths, [(500, 500)], K_values=K_values)
    seconds = time.perf_counter() - t0
    return {"pairs": pairs, "K_values": list(K_values), "restarts": em.VBOptions().numtrials,
            "sequences_per_pair": 2, "fixations_per_sequence": 12, "seconds": round(seconds, 1),
            "seconds_per_pair": round(seconds / pairs, 3)}


def paper_scale() -> dict:
    """Peak memory measured at the paper's size (500 images x 40 viewers, 10-ROI HMMs) with a few
    trials and iterations; time extrapolated from measured rates, with the assumptions beside it."""
    # Smallest first: the process's peak resident memory (ru_maxrss) is then the largest run's.
    auto = memory(50, 3, 1 << 30, iters=2, initmode="auto")
    vb = individual_rate()
    base = memory(500, 3, 1 << 30, iters=2, initmode="base")
    per_iter = base["seconds_per_image_trial_iteration"]
    # 'auto' adds its three starts per trial and image: the difference of the two rates, per trial.
    start_cost = max(auto["seconds"] / (50 * 3) - 2 * per_iter, 0.0)
    estimate = {}
    for iters in (20, 100):
        seconds = 500 * 40 * vb["seconds_per_pair"] + 500 * 100 * (iters * per_iter + start_cost)
        estimate[f"hours_one_core_{iters}_vhem_iterations"] = round(seconds / 3600, 1)
    return {
        "benchmark": "EMHMM at paper scale: 500 images x 40 viewers, K 1..10, 100 VHEM trials",
        "cocluster_peak_500_images": base,
        "cocluster_auto_start_50_images": auto,
        "individual_fits": vb,
        "estimate": estimate,
        "assumptions": ("peak memory measured at 500 images with 3 trials (two trial chunks at the default "
                        "max_bytes of 1 GiB; more trials add chunks, not memory); time = 20,000 viewer-image "
                        "fits at the measured rate + 500 images x 100 trials x (iterations x the measured "
                        "seconds per image, trial and iteration + the measured 'auto' start cost per image "
                        "and trial); every trial runs the given number of VHEM iterations (max_iter 100 is "
                        "the toolbox's cap); one core, no parallelism"),
        "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }


def main() -> int:
    import sys

    if "--paper-scale" in sys.argv:
        result = paper_scale()
        atomic_write_json(REPO_ROOT / "benchmarks" / "results" / "emhmm_paper_scale.json", result)
        print(json.dumps(result, indent=1))
        return 0
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
