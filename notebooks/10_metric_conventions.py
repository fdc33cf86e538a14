# %% [markdown]
# # Metric conventions: MIT and pysaliency, measured
#
# Two reference implementations define the saliency metrics the tables of this book use: the MIT
# saliency benchmark's MATLAB code and pysaliency (the code behind the MIT/Tuebingen benchmark).
# They agree on CC, KL and the exact shuffled AUC, and differ on NSS, AUC-Judd and SIM, on how a
# dataset mean weighs images, on how a fractional fixation becomes a pixel, and on what a flat map
# scores. The page {doc}`../conventions` lists the definitions; this chapter measures each
# difference on real fixations, one switch at a time (`hsi_core.metrics`, `hsi_core.evaluation`),
# so a reader can tell which of our numbers are comparable with which benchmark's.
# tests/test_pysaliency_reference.py checks that our pysaliency settings equal pysaliency 0.2.22 to
# 1e-6 on real NUS Scene images.

# %% [markdown]
# ## The AUC, as an equation
#
# AUC-Judd {cite}`judd2009learning,judd2012benchmark` treats the saliency map as a classifier of pixels: the
# fixated pixels $\mathcal F$ are the positives, every other pixel a negative, and each saliency value at a
# fixation is a threshold $\theta$:
#
# $$
# \mathrm{AUC} = \int_0^1 \mathrm{TPR} \; d\,\mathrm{FPR}, \qquad
# \mathrm{TPR}(\theta) = \frac{|\{i \in \mathcal F : P_i \ge \theta\}|}{|\mathcal F|}, \qquad
# \mathrm{FPR}(\theta) = \frac{|\{i \notin \mathcal F : P_i \ge \theta\}|}{|\{i \notin \mathcal F\}|}
# $$ (metric-auc-judd)
#
# computed by {py:func}`hsi_core.metrics.auc_judd` (the trapezoid rule over the thresholds, as MIT's `AUC_Judd.m`).
# Whether $\mathcal F$ holds fixated *pixels* (MIT) or *fixations* with their multiplicity (pysaliency
# {cite}`kummerer2018benchmarking`) is one of the conventions this chapter measures; the shuffled AUC
# ({eq}`metric-sauc`) draws its negatives from other images instead {cite}`bylinskii2019metrics`. The log-gabor
# paper reports both AUCs {cite}`malladi2021deriving`, the HSI paper neither {cite}`yang2022hsi`.

# %% tags=["parameters"]
data_root = "auto"  # NUS Scene: "auto" (the shared sample, else the demo world); or a NUS Scene folder
n_images = 40  # images scored (paper scale: None = all 500)
max_side = 160  # maps are scored on a grid whose longer side is at most this (pixels)
seed = 0

# %%
import numpy as np
import pandas as pd
from PIL import Image

from hsi_core import evaluation, sources
from hsi_core.baselines import centre_bias_map
from hsi_core.fixations import saliency_map, split_half
from hsi_core.plots import glue

data = sources.free_viewing(data_root)
records = [r.scaled(max_side) for r in data.records[:n_images]]
scale = f"{data.name}, {len(records)} images, longer side {max_side} px (demo scale, no model weights)"
print(scale)

# %% [markdown]
# ## Three maps per image, scored under each setting
#
# Per image: a centre prior, the image's intensity (a map whose minimum is not 0, where SIM's
# min-max matters) and one half of the viewers predicting the other half (the split-half map of
# `hsi_core.fixations.split_half`). The ground truth is every viewer's fixations blurred with
# SALICON's 19/640 of the width. Each setting below is our default (MIT) with one switch set to
# pysaliency's reading; the last one is pysaliency's reading throughout.

# %%
SWITCHES = {"nss": ("nss_convention", "NSS"), "judd": ("judd_convention", "AUC-Judd"),
            "sim": ("sim_convention", "SIM"), "coordinates": ("coordinates", "NSS")}
PYSALIENCY = {"nss_convention": "pysaliency", "judd_convention": "pysaliency", "sim_convention": "pysaliency",
              "coordinates": "truncate"}
pools = {c: evaluation.FixationPool.from_records(records, coordinates=c) for c in ("round", "truncate")}


def maps_of(i, record):
    h, w = record.height, record.width
    with Image.open(record.image_path) as image:
        intensity = np.asarray(image.convert("L").resize((w, h), Image.BILINEAR), dtype=np.float64)
    half = split_half(record.viewers, (h, w), evaluation.SIGMA_FRACTION * w, seed=seed + i)[0]
    return {"centre bias": centre_bias_map(h, w).astype(np.float64), "intensity": intensity,
            "one half of the viewers": np.asarray(half, np.float64)}


def score(setting):
    """Rows (one per image and map) under ``setting`` (our defaults updated by it)."""
    setting = dict(setting)
    pool = pools[setting.pop("coordinates", "round")]
    rows = []
    for i, record in enumerate(records):
        h, w = record.height, record.width
        counts = pool.counts(i, (h, w))
        gt = saliency_map(counts > 0, evaluation.SIGMA_FRACTION * w).astype(np.float64)
        maps = maps_of(i, record)
        scored = evaluation.score_maps(np.stack(list(maps.values())), np.stack([gt] * len(maps)),
                                       np.stack([counts] * len(maps)), [i] * len(maps), pool, own_counts=True,
                                       **setting)
        rows += [{"map": name, **row} for name, row in zip(maps, scored)]
    return pd.DataFrame(rows)


settings = {"MIT (our default)": {}, **{f"{switch}: pysaliency" if k != "coordinates" else "coordinates: truncated":
                                        {switch: PYSALIENCY[switch]} for k, (switch, _) in SWITCHES.items()},
            "pysaliency throughout": PYSALIENCY}
scores = {name: score(s) for name, s in settings.items()}
base = scores["MIT (our default)"]

# %% [markdown]
# ## Each switch alone
#
# Per image and map, how far a switch moves the score from our default; and how far it moves the
# mean over the dataset (the tables' numbers).

# %%
lines = []
for (label, (switch, metric)), name in zip(SWITCHES.items(), list(settings)[1:-1]):
    delta = scores[name][metric] - base[metric]
    lines.append({"switch": switch, "metric": metric, "MIT mean": base[metric].mean(),
                  "pysaliency mean": scores[name][metric].mean(), "mean |Δ| per image": delta.abs().mean(),
                  "max |Δ| per image": delta.abs().max(), "Δ of the mean": delta.mean()})
    glue(f"max_{label}", float(delta.abs().max()), display=False)
    glue(f"mean_{label}", float(delta.mean()), display=False)
# CC, KL and sAUC have one definition in both references; truncated coordinates still move them
# (the fixated pixels, and so the ground-truth map and the negatives, change)
for metric in ("CC", "KL", "sAUC"):
    delta = scores["coordinates: truncated"][metric] - base[metric]
    lines.append({"switch": "coordinates", "metric": metric,
                  "MIT mean": base[metric].mean(), "pysaliency mean": base[metric].mean() + delta.mean(),
                  "mean |Δ| per image": delta.abs().mean(), "max |Δ| per image": delta.abs().max(),
                  "Δ of the mean": delta.mean()})
switch_table = pd.DataFrame(lines)
print(f"Table 10.1 (no paper counterpart): each switch alone, {scale}.")
switch_table.round(4)

# %% [markdown]
# ## The dataset mean: per image or per fixation
#
# The MIT benchmark (and our tables) average a metric over images; pysaliency's `NSS` and `sAUC`
# default to `average="fixation"`, which weighs each image by its number of fixations.

# %%
rows = scores["pysaliency throughout"].to_dict("records")
means = []
for name in ("centre bias", "intensity", "one half of the viewers"):
    own = [r for r in rows if r["map"] == name]
    per_image, per_fixation = evaluation.summarize(own), evaluation.summarize(own, dataset_mean="fixation")
    for metric in ("NSS", "sAUC"):
        means.append({"map": name, "metric": metric, "per image": per_image[metric],
                      "per fixation": per_fixation[metric], "Δ": per_fixation[metric] - per_image[metric]})
mean_table = pd.DataFrame(means)
glue("max_dataset_mean", float(mean_table["Δ"].abs().max()), display=False)
print(f"Table 10.2: per-image and per-fixation means under pysaliency's conventions, {scale}.")
mean_table.round(4)

# %% [markdown]
# ## A flat map
#
# A model that collapses predicts a constant map. CC, NSS and MIT's SIM are undefined for it; the
# default policy `undefined="pysaliency"` scores it as pysaliency does, and `undefined="skip"`
# leaves it out of its row. Either way the summaries count it.

# %%
flat_rows = []
for policy in evaluation.UNDEFINED_POLICIES:
    out = []
    for i, record in enumerate(records):
        h, w = record.height, record.width
        counts = pools["round"].counts(i, (h, w))
        gt = saliency_map(counts > 0, evaluation.SIGMA_FRACTION * w).astype(np.float64)
        out += evaluation.score_maps(np.full((1, h, w), 0.5), gt[None], counts[None], [i], pools["round"],
                                     own_counts=True, undefined=policy)
    summary = evaluation.summarize(out, ["CC", "NSS", "SIM", "AUC-Judd", "sAUC"])
    flat_rows.append({"undefined": policy, **{k: summary[k] for k in ("CC", "NSS", "SIM", "AUC-Judd", "sAUC")},
                      "n_CC": summary["n_CC"], "flat maps": summary["flat maps"], "images": summary["images"]})
flat_table = pd.DataFrame(flat_rows).set_index("undefined")
glue("flat_sim", float(flat_table.loc["pysaliency", "SIM"]), display=False)
glue("flat_n_cc_skip", int(flat_table.loc["skip", "n_CC"]), display=False)
glue("n_images", len(records), display=False)
print(f"Table 10.3: a flat prediction under each policy, {scale}.")
flat_table.round(4)

# %% [markdown]
# ## Reading
#
# On {glue:text}`n_images` images, pysaliency's NSS (each fixation, numpy's biased std) moves a
# score by up to {glue:text}`max_nss:.3f` from MIT's (each fixated pixel once, MATLAB's std), its
# AUC-Judd (each fixation a positive) by up to {glue:text}`max_judd:.4f`, and SIM without the
# min-max by up to {glue:text}`max_sim:.3f`; truncating fractional coordinates instead of rounding
# them moves NSS by up to {glue:text}`max_coordinates:.3f`. Weighing images by their fixations moves
# a dataset mean by up to {glue:text}`max_dataset_mean:.4f`. A flat map scores CC 0, NSS 0 and SIM
# {glue:text}`flat_sim:.3f` under the default policy; under `"skip"` its CC mean covers
# {glue:text}`flat_n_cc_skip` images, and the summaries say so. Our tables use the MIT readings,
# per-image means and rounded coordinates; pysaliency's are one switch each away.
