# %% [markdown]
# # Data and metrics
#
# Every later chapter compares saliency maps with human fixations. Before any model, two questions:
# *do the loaders read each dataset's published format correctly*, and *what do the metrics say about
# maps that know nothing about the image?* This chapter loads every dataset it finds, shows images
# with their fixations and saliency maps, and scores three simple baselines with the
# MIT/Tuebingen benchmark metrics (`hsi_core.metrics`):
#
# - **centre bias**: a Gaussian at the image centre (people look at the middle of pictures);
# - **uniform**: a flat map, the chance level (AUC 0.5; CC and NSS have no variance to use: they are
#   scored 0 as pysaliency scores them, see the conventions page);
# - **one half of the viewers** predicting the other half: an estimate of how well any model can do.
#
# The tables below are our measurements on sample data, not tables of either paper.

# %% [markdown]
# ## The metrics, as equations
#
# Both papers score maps with the MIT saliency benchmark's metrics {cite}`judd2012benchmark,bylinskii2019metrics`,
# which pysaliency reimplements {cite}`kummerer2018benchmarking`. For a predicted map $P$, a ground-truth
# saliency map $Q$ and a binary fixation map $F$ with $N = \sum_i F_i$ fixated pixels ($i$ runs over pixels):
#
# $$
# \mathrm{CC}(P, Q) = \frac{\operatorname{cov}(P, Q)}{\sigma(P)\,\sigma(Q)}
# $$ (metric-cc)
#
# $$
# \mathrm{NSS}(P, F) = \frac{1}{N} \sum_i \bar P_i \, F_i, \qquad \bar P = \frac{P - \mu(P)}{\sigma(P)}
# $$ (metric-nss)
#
# $$
# \mathrm{KL}(P, Q) = \sum_i Q_i \log\Big(\epsilon + \frac{Q_i}{P_i + \epsilon}\Big)
# $$ (metric-kl)
#
# $$
# \mathrm{SIM}(P, Q) = \sum_{i, j} \min\Big(\frac{p'_{i,j}}{\sum_{i,j} p'_{i,j}}, \frac{q'_{i,j}}{\sum_{i,j} q'_{i,j}}\Big),
# \qquad p' = \frac{p - \min(p)}{\max(p) - \min(p)}, \quad q' = \frac{q - \min(q)}{\max(q) - \min(q)}
# $$ (metric-sim)
#
# {eq}`metric-cc` is HSI Eq. 6, computed by {py:func}`hsi_core.metrics.cc` (the paper prints
# $\operatorname{cov}(P) \times \operatorname{cov}(Q)$ below the line; its text calls the metric Pearson's correlation,
# which divides by the standard deviations). {eq}`metric-nss` is HSI Eq. 7, computed by
# {py:func}`hsi_core.metrics.nss`. {eq}`metric-kl` is HSI Eq. 5 with $P$ and $Q$ each divided by its sum, computed
# by {py:func}`hsi_core.metrics.kl_div` {cite}`yang2022hsi`. {eq}`metric-sim` is the HSI paper's SIM (its "Metric"
# paragraph, unnumbered) without the factor $\frac{1}{W \times H}$ printed in front of the sum, which would keep SIM
# below $1/(WH)$ where its Table 1 reports 0.7563; {py:func}`hsi_core.metrics.sim` computes MIT's `similarity.m`,
# which has no such factor. The log-gabor paper scores SIM, CC, sAUC and AUC-Judd with these definitions
# {cite}`malladi2021deriving`; the two AUCs are defined in the metric-conventions chapter ({eq}`metric-auc-judd`).

# %% tags=["parameters"]
demo_root = None  # None: data/demo in the repository, generated on first use
shared_root = "auto"  # "auto": ../shared/data beside the repository when present; None to skip real data
images_per_dataset = 8  # images scored per dataset (paper scale: None = all)
max_side = 320  # maps are scored on a grid whose longer side is at most this (pixels)
n_splits = 100  # sAUC draws (used by the "mit" convention)
sauc = "pysaliency"  # sAUC negatives: "pysaliency" (all other images' fixations) or "mit" (10 other images)
seed = 0

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hsi_core import datasets, demo, evaluation, plots
from hsi_core.fixations import saliency_map
from hsi_core.io import read_image
from hsi_core.paths import shared_data_root
from hsi_core.plots import glue

world = demo.ensure_demo(demo_root)
real = shared_data_root() if shared_root == "auto" else (Path(shared_root) if shared_root else None)
print("demo world:", world)
print("real sample data:", real if real else "not found (only the demo world is used)")

# %% [markdown]
# ## The demo world
#
# A fresh clone has no eye-tracking data, so every chapter also runs on a synthetic world generated
# from a seed by `hsi_core.demo` and written in the real formats (SALICON + COCO, HSB, an ImageNet
# folder, NUS-Scene-style scanpaths). Each of the 20 HSB classes is a glyph of its own shape, colour
# and texture; `truth.json` records what was planted (objects and their polygons, labels, the viewer
# groups and their strategies), so later chapters can check that a method recovers it. One image per
# class (the ImageNet-style folder):

# %%
glyphs = sorted((world / "imagenet").glob("*.JPEG"))
fig, axes = plt.subplots(2, 10, figsize=(12, 2.8))
for ax, path in zip(axes.ravel(), glyphs):
    ax.imshow(read_image(path))
    ax.set_title(path.stem.split("_", 1)[1].replace("_", " "), fontsize=7)
    ax.axis("off")
fig.tight_layout()
truth = demo.load_truth(world)
print("planted:", {k: v for k, v in truth["parameters"].items()})
print("viewer groups:", pd.Series(truth["scanpaths"]["viewer_groups"]).value_counts().to_dict())

# %% [markdown]
# ## Loading every dataset
#
# Each dataset becomes a list of *fixation records*: an image, its size, and its fixations, per
# viewer where the format keeps them (SALICON workers, NUS Scene viewers) or as a binary map
# (MIT1003 `FIXATIONLOCS`, FIGRIM `fixLocs`). SALICON's train and val files store their pairs in
# opposite orders (`[row, col]` and `[x, y]`); the loader detects which. The NUS Scene file stores
# `row, col, start, duration` (not `x, y, start, end` as its notes say): see `hsi_core.datasets`.

# %%
records: dict[str, list[datasets.FixationRecord]] = {}
records["demo: SALICON-style free viewing"] = datasets.salicon_records(
    world / "salicon/annotations/fixations_train2014.json", world / "salicon/images/train", limit=images_per_dataset)
records["demo: scanpaths, explanation task"] = datasets.scanpath_records(
    world / "scanpaths/explanation/fixations.mat", sorted((world / "scanpaths/stimuli").glob("*.jpg")), limit=images_per_dataset)
if real is not None:
    sal = real / "salicon-samples"
    records["SALICON val samples"] = datasets.salicon_records(
        sal / "annotations/fixations_val2014_examples.json", sal / "images/val", limit=images_per_dataset)
    records["SALICON train samples"] = datasets.salicon_records(
        sal / "annotations/fixations_train2014_examples.json", sal / "images/train", limit=images_per_dataset)
    nus = real / "nus-scene"
    records["NUS Scene"] = datasets.scanpath_records(
        nus / "tidy/fixations.mat", datasets.nus_scene_stimuli(nus), limit=images_per_dataset)
    records["FIGRIM (amusement park)"] = datasets.fixation_map_records(
        datasets.load_figrim(real / "figrim-samples", "amusement_park"), datasets.figrim_fixations, limit=images_per_dataset)
    records["MIT1003 (i210, with fixation locations)"] = datasets.fixation_map_records(
        datasets.load_mit1003(real / "mit1003-subset/demo"), lambda it: it.fixations())

summary = pd.DataFrame([
    {"dataset": name, "images": len(recs),
     "viewers per image": np.mean([len(r.viewers) for r in recs]) if recs[0].viewers else "binary map",
     "fixated pixels per image": np.mean([r.fixation_map().sum() for r in recs]).round(0)}
    for name, recs in records.items()
])
summary

# %% [markdown]
# Besides these, the loaders read the HSB layout (`hsi_core.datasets.load_hsb`: the demo world's
# 20 classes x 8 images in 5 folds), COCO instance masks (`load_coco_masks`, the input of HSI's
# Algorithm 1), the 100 MIT1003 density maps, and ImageNet folders:

# %%
hsb = datasets.load_hsb(world / "hsb")
counts = pd.crosstab(pd.Series([it.label for it in hsb], name="class"), pd.Series([it.fold for it in hsb], name="fold"))
print(f"HSB (demo): {len(hsb)} images; every class in every fold: {bool((counts > 0).all().all())}")
if real is not None:
    coco_path = real / "coco-tiny/instances_train2017_small.json"
    coco = datasets.load_coco(coco_path)
    n_objects = sum(len(datasets.load_coco_masks(coco_path, i, coco=coco)) for i in coco.imgs)
    print(f"COCO tiny: {len(coco.imgs)} images, {n_objects} objects after merging instances per category")
    print(f"MIT1003 subset: {len(datasets.load_mit1003(real / 'mit1003-subset'))} stimuli with density maps")
    print(f"ImageNet samples: {len(datasets.list_imagenet_images(real / 'imagenet-samples'))} images")

# %% [markdown]
# ## Fixations and saliency maps
#
# One image per dataset: the fixations (yellow), and the saliency map obtained by blurring them with
# a Gaussian of 19/640 of the image width (SALICON's sigma, 19 px on its 640-px images).

# %%
fig, axes = plt.subplots(2, len(records), figsize=(2.6 * len(records), 4.6), squeeze=False)
for col, (name, recs) in enumerate(records.items()):
    record = recs[0]
    image = read_image(record.image_path)
    fix = record.fixation_map()
    rows, cols = np.nonzero(fix)
    scale = [image.shape[1] / record.width, image.shape[0] / record.height]
    plots.plot_fixations(axes[0, col], image, np.c_[cols, rows] * scale, size=2)
    axes[0, col].set_title(name, fontsize=8)
    plots.overlay(axes[1, col], image, saliency_map(fix, evaluation.SIGMA_FRACTION * record.width))
fig.tight_layout()

# %% [markdown]
# ## Baselines per dataset
#
# Our measurement on the sample data (`images_per_dataset` images each), not a table of either paper.
# Mean over images; higher is better except for KL. A flat map is scored by the default policy
# `undefined="pysaliency"` (CC 0, NSS 0; the conventions page); entries still undefined are left
# blank: a dataset of one image has no other images for sAUC.

# %%
rows = []
for name, recs in records.items():
    for row in evaluation.baseline_scores(recs, max_side=max_side, n_splits=n_splits, seed=seed, sauc=sauc):
        rows.append({"dataset": name, **row})
table = (pd.DataFrame(rows).drop(columns="image").groupby(["dataset", "baseline"], sort=False).mean()
         [["CC", "KL", "SIM", "NSS", "AUC-Judd", "sAUC"]].round(3))
table.astype(object).where(table.notna(), "—")

# %% [markdown]
# **Reading the table.** The verdicts below are computed from the table: whether the centre bias
# beats chance (0.5) under AUC-Judd, how much of that survives under sAUC (whose negatives are other
# images' fixations, which share the centre bias; convention: the `sauc` parameter, see `hsi_core.metrics`),
# and under how many metrics one half of the viewers predicts the other half better than both baselines.

# %%
higher_is_better = {"CC": True, "KL": False, "SIM": True, "NSS": True, "AUC-Judd": True, "sAUC": True}
for name in records:
    if name not in table.index.get_level_values(0):
        continue
    rows_of = table.loc[name]
    centre = rows_of.loc["centre bias"]
    verdict = [f"{name}: centre bias AUC-Judd {centre['AUC-Judd']:.3f} "
               f"({'above' if centre['AUC-Judd'] > 0.5 else 'not above'} chance)"]
    if pd.notna(centre["sAUC"]):
        verdict.append(f"sAUC {centre['sAUC']:.3f} (|sAUC - 0.5| = {abs(centre['sAUC'] - 0.5):.3f})")
    if "one half of the viewers" in rows_of.index:
        half = rows_of.loc["one half of the viewers"]
        others = rows_of.drop(index="one half of the viewers")
        # a baseline with no value under a metric (a flat map has no CC) does not count against it
        defined = [m for m in higher_is_better if pd.notna(half[m]) and others[m].notna().any()]
        wins = [m for m in defined if (half[m] > others[m].max() if higher_is_better[m] else half[m] < others[m].min())]
        verdict.append(f"one half of the viewers beats every baseline under {len(wins)} of the {len(defined)} "
                       f"metrics defined for both ({', '.join(wins)})")
    print("; ".join(verdict))

demo_free_viewing = "demo: SALICON-style free viewing"
centre_auc_demo = float(table.loc[(demo_free_viewing, "centre bias"), "AUC-Judd"])
glue("centre_auc_judd_demo", centre_auc_demo, display=False)
glue("centre_above_chance_demo", "above" if centre_auc_demo > 0.5 else "not above", display=False)

# %% [markdown]
# On the demo world's SALICON-style free viewing, the centre bias scores AUC-Judd
# {glue:text}`centre_auc_judd_demo:.3f`, {glue:text}`centre_above_chance_demo` chance (0.5).
#
# For reference, the MIT benchmark lists a centre-bias baseline on MIT300 at AUC-Judd 0.78, sAUC 0.51,
# CC 0.38, NSS 0.92 (different data and resolution from ours; demo scale here, no weights involved).
