# %% [markdown]
# # Deep saliency models: CMRNet, UNISAL and MSI-Net
#
# The second paper explains three deep saliency networks: its own CMRNet (Section III: three
# cross-concatenated multi-scale residual blocks, a dilated inception module and a light decoder,
# "about 2.5 M parameters"), UNISAL (a MobileNetV2 encoder-decoder) and MSI-Net (VGG16 with dilated
# convolutions and an ASPP module). This chapter builds the three in PyTorch (`hsi_core.models`),
# counts their parameters, trains them with the paper's loss (Eq. 11-12), and asks the question
# every saliency model must answer first: does it beat a Gaussian at the centre of the image?
#
# **Training set.** The paper trains CMRNet on SALICON train and selects the model on SALICON val
# (Section III-B). `train_set="salicon"` does the same: after each epoch the Eq. 11-12 loss on the
# validation images is measured and the best epoch is the model kept
# ({py:mod}`hsi_core.experiments.saliency_models`). `"nus_scene"` trains on part of the NUS Scene set
# (500 real images with the eye fixations of 12 viewers) with no validation set; `"auto"` (default)
# takes SALICON when a full download is given as `salicon_root`, else NUS Scene or, in a fresh
# clone, the demo world's free viewing. Every network is scored on held-out NUS Scene (or demo world)
# images. Below, CMRNet is also trained on the other set (the 10 + 10 image SALICON sample beside the
# repository, or the demo world's SALICON), so both readings are shown.
#
# **Scale.** At demo scale each network is trained from scratch for about a minute at 32x48 pixels.
# The paper trains CMRNet on 10,000 SALICON images for 60 epochs and uses UNISAL and MSI-Net with
# their authors' weights; give `unisal_weights` / `msinet_weights` (local files) to do the same here.

# %% [markdown]
# ## CMRNet, as equations
#
# The log-gabor paper's own network {cite}`malladi2021deriving`, beside UNISAL {cite}`droste2020unisal` and
# MSI-Net {cite}`kroner2020msinet`, stacks cross-concatenated multi-scale residual blocks (LG Eq. 5-10; $\sigma$ is
# the ReLU, $[\cdot, \cdot]$ a concatenation along channels):
#
# $$
# \begin{aligned}
# T_1 &= \sigma(w_{3 \times 3}^1 * M_{n-1} + b^1), & F_1 &= \sigma(w_{5 \times 5}^1 * M_{n-1} + b^1), \\
# T_2 &= \sigma(w_{3 \times 3}^2 * [T_1, F_1] + b^2), & F_2 &= \sigma(w_{5 \times 5}^2 * [T_1, F_1] + b^2), \\
# O' &= w_{1 \times 1}^3 * [T_2, F_2] + b^3, & M_n &= O' \oplus M_{n-1}
# \end{aligned}
# $$ (lg-eq5-10)
#
# ({eq}`lg-eq5-10`: {py:class}`hsi_core.models.cmrnet.CMRBlock`), and is trained with an $l_1$ loss on sum-normalised maps (LG Eq.
# 11-12, {eq}`lg-eq11-12` below: {py:func}`hsi_core.losses.normalized_l1_loss`):
#
# $$
# L(p, g) = \sum_i |p_i - g_i|, \qquad p_i = \frac{x_i^p}{\sum_{i=1}^{N} x_i^p}, \quad g_i = \frac{x_i^g}{\sum_{i=1}^{N} x_i^g}
# $$ (lg-eq11-12)

# %% tags=["parameters"]
data_root = "auto"  # NUS Scene folder; "auto": ../shared/data/nus-scene if present, else demo world
train_set = "auto"  # "salicon" (train + val, the paper's), "nus_scene", or "auto" (SALICON if salicon_root given)
salicon_root = "auto"  # SALICON folder (annotations/, images/); "auto": the shared sample, else the demo world
val_images = 10  # SALICON val images for model selection (paper: 5,000)
train_images = 64  # paper: SALICON train, 10,000 images
test_images = 100  # held-out images scored at the end
size = [32, 48]  # training and scoring resolution (paper: 480x640 SALICON inputs)
epochs = 12  # paper: 60
batch_size = 4  # paper: 8
# paper (CMRNet): Adam 1e-3; VGG without BatchNorm needs less
lr = {"CMRNet": 1e-3, "UNISAL": 1e-3, "MSI-Net": 1e-4}
# epochs between x0.1 steps (paper: 2 epochs of 1,250 steps; at demo scale it would stop training)
lr_decay_every = 100
unisal_weights = None  # local path to the authors' weights_best.pth (then UNISAL is not trained)
msinet_weights = None  # local path to the state dict from scripts/convert_msinet_weights.py
run_root = "runs/deep_models_demo"  # checkpoints (per data source); finished runs are reused
n_splits = 100  # sAUC draws
device = "cpu"
threads = 1  # torch CPU threads (small convolutions on a busy 2-core machine: one is fastest)
seed = 0

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from hsi_core.models import build_model
from hsi_core.plots import glue

from hsi_core import baselines, evaluation, sources
from hsi_core.experiments import saliency_models


torch.manual_seed(seed)
if threads:
    torch.set_num_threads(threads)
data = sources.free_viewing(data_root)
train_records, test_records = sources.split_records(data.records, train_images, test_images,
                                                    seed=seed, where="chapter 07")
trained_on = saliency_models.resolve_train_set(train_set, salicon_root)
sets_kw = dict(train_images=train_images, val_images=val_images, salicon=salicon_root, free=data,
               train_records=train_records)
training = saliency_models.training_data(trained_on, tuple(size), **sets_kw)  # small: in memory
test_set = evaluation.RecordSet(test_records, tuple(size))  # scored by streaming it
scale = (f"demo scale: trained on {training.name}, {epochs} epochs; {len(test_set)} held-out images of "
         f"{data.name} at {size[0]}x{size[1]}; no pretrained weights"
         if unisal_weights is None and msinet_weights is None else
         f"{len(test_set)} held-out images at {size[0]}x{size[1]}, published weights where given")
# one run folder per training source, so a model trained on the demo world is never reused for real data
run_dir = Path(run_root) / training.tag
glue("scale", str(scale), display=False)
glue("n_splits", n_splits, display=False)
print(f"data: {data.summary()}")
print(scale)

# %% [markdown]
# ## Three architectures and their sizes
#
# CMRNet follows our reading of Section III (stem 3->64, three CMR blocks of 64 channels with two
# max-poolings, a dilated inception module of 80 channels at rates 4, 8 and 16, two 3x3
# convolutions, a 3x3 convolution to one channel, sigmoid and bicubic x4 up-sampling). UNISAL is its
# static-image path (the recurrent part is bypassed for images); MSI-Net is the released
# architecture. The paper's Table IV lists UNISAL at 15.5 M: that is the size of its weight file in
# MB, not its parameter count.

# %%
weights = {"CMRNet": None, "UNISAL": unisal_weights, "MSI-Net": msinet_weights}
models = {name: build_model(name, weights[name]) for name in saliency_models.DEEP_MODELS}
sizes = pd.DataFrame({
    "parameters (M), ours": {n: evaluation.count_parameters(m) / 1e6 for n, m in models.items()},
    "paper / authors": {"CMRNet": "about 2.5", "UNISAL": "15.5 (MB)", "MSI-Net": "24.9 (authors)"}})
n_cmr = evaluation.count_parameters(models["CMRNet"])
print(f"CMRNet: {n_cmr:,} parameters, {100 * (n_cmr / 2.5e6 - 1):+.1f}% from the paper's 2.5 M")
sizes.round(3)

# %% [markdown]
# ## Training with the paper's loss
#
# Eq. 11-12: the L1 distance between the prediction and the ground truth, each divided by its sum,
# so the loss ignores a map's maximum. Adam, through the project's training loop (seeded order,
# checkpoints, resume). A model with published weights given above is not retrained.

# %%
histories = {}
for name, model in models.items():
    if weights[name] is not None:
        model.to(device).eval()
        continue
    start = time.perf_counter()
    histories[name] = saliency_models.train_saliency_model(
        model, training.train, run_dir=run_dir / name, epochs=epochs, batch_size=batch_size,
        lr=lr[name], lr_step=lr_decay_every, device=device, seed=seed, val_items=training.val)
    final = histories[name][-1]["train_loss"]
    kept = (f"; model kept: epoch {1 + int(np.argmin([h['val_loss'] for h in histories[name]]))} "
            "(lowest validation loss)" if training.val is not None else "; model kept: the last epoch")
    print(f"{name}: {len(histories[name])} epochs, final training loss {final:.3f}{kept} "
          f"({time.perf_counter() - start:.0f} s here; a reused run takes no time)")
fig, ax = plt.subplots(figsize=(5, 3))
for k, (name, history) in enumerate(histories.items()):
    epochs_done = [h["epoch"] for h in history]
    ax.plot(epochs_done, [h["train_loss"] for h in history], marker="o", color=f"C{k}", label=f"{name} (train)")
    if training.val is not None:
        ax.plot(epochs_done, [h["val_loss"] for h in history], ls="--", color=f"C{k}", label=f"{name} (val)")
ax.set_xlabel("epoch"); ax.set_ylabel("loss (Eq. 11)"); ax.legend(fontsize=7); fig.tight_layout()

# %% [markdown]
# ## Held-out images: deep models against the centre bias and classical models
#
# SIM and CC against the fixations blurred with SALICON's 19/640 of the width, AUC-Judd at the
# fixated pixels (without MIT's random jitter: tied values count together; the jitter reading is
# shown below), and the shuffled AUC under two readings of its negatives
# (`hsi_core.evaluation`): **sAUC** is pysaliency's (every fixation of every other held-out image,
# with its multiplicity, scored exactly) and **sAUC (mit)** the MIT benchmark's (the fixated
# locations of 10 random other images, each once, {glue:text}`n_splits` draws of as many negatives
# as fixations). The held-out images are streamed from disk through a DataLoader.

# %%
predictors = {**{name: models[name] for name in models},
              "ITTI (ours)": baselines.itti_koch,
              "Spectral residual (ours)": baselines.spectral_residual,
              "centre bias": baselines.centre_bias}
columns = ["SIM", "CC", "sAUC", "sAUC (mit)", "AUC-Judd", "AUC-Judd (jitter)", "NSS", "KL"]
results, jittered = {}, {}
for name, fn in predictors.items():
    results[name] = evaluation.evaluate(fn, test_set, sauc=("pysaliency", "mit"), n_splits=n_splits,
                                        device=device, seed=seed)
    jittered[name] = evaluation.evaluate(fn, test_set, sauc=None, judd_jitter=True, device=device,
                                         seed=seed)
    for row, jit in zip(results[name], jittered[name]):
        row["AUC-Judd (jitter)"] = jit["AUC-Judd"]
table = evaluation.mean_table(results, columns=columns)
print(f"Table 7.1 (no paper counterpart): held-out {data.name} images, {scale}. "
      "sAUC: pysaliency negatives (all other images' fixations, with multiplicity); "
      f"sAUC (mit): 10 random other images' fixated locations, {n_splits} draws; "
      f"AUC-Judd without jitter, and with MIT's jitter (seed {seed}). Flat maps are scored as "
      "pysaliency scores them and counted.")
print("Coverage:", evaluation.coverage_note(table, columns))
table[[*columns, "images", "flat maps"]].round(3)

# %%
cmr, centre = table.loc["CMRNet"], table.loc["centre bias"]
for metric in ("CC", "AUC-Judd", "sAUC"):
    verdict = "beats" if cmr[metric] > centre[metric] else "does not beat"
    print(f"CMRNet {verdict} the centre bias in {metric}: "
          f"{cmr[metric]:.3f} vs {centre[metric]:.3f}")
per_image = pd.DataFrame({"CMRNet": [r["CC"] for r in results["CMRNet"]],
                          "centre": [r["CC"] for r in results["centre bias"]]})
share = 100 * (per_image.CMRNet > per_image.centre).mean()
print(f"CC higher than the centre bias on {share:.0f}% of held-out images")
jitter_gap = (table["AUC-Judd (jitter)"] - table["AUC-Judd"]).abs().max()
print(f"largest change of a model's AUC-Judd from MIT's jitter: {jitter_gap:.4f}")
glue("centre_sauc", centre["sAUC"], display=False)
glue("centre_sauc_mit", centre["sAUC (mit)"], display=False)
glue("centre_judd", centre["AUC-Judd"], display=False)
glue("jitter_gap", jitter_gap, display=False)
for metric, key in (("CC", "cc"), ("sAUC", "sauc")):
    beats = "beats" if cmr[metric] > centre[metric] else "does not beat"
    glue(f"cmr_beats_centre_{key}", str(beats), display=False)

# %% [markdown]
# **Reading the shuffled AUC.** The centre bias reaches AUC-Judd {glue:text}`centre_judd:.3f` but
# sAUC {glue:text}`centre_sauc:.3f` under pysaliency's negatives: those negatives follow where
# people look on average, so a prior that only knows that average scores chance (0.5), which is
# what the shuffled AUC is for. Under the MIT benchmark's negatives it scores
# {glue:text}`centre_sauc_mit:.3f`: each of the 10 other images' fixated locations counts once
# however often it was fixated, so the negatives are spread wider than fixations are and a centre
# prior keeps part of its advantage. MIT's jitter moves a model's AUC-Judd by at most
# {glue:text}`jitter_gap:.4f` here. CMRNet {glue:text}`cmr_beats_centre_cc` the centre bias in CC
# and {glue:text}`cmr_beats_centre_sauc` it in sAUC ({glue:text}`scale`).

# %%
shown = min(4, len(test_set))
items = [test_set[i] for i in range(shown)]
n_cols = 2 + len(predictors) - 1
fig, axes = plt.subplots(shown, n_cols, figsize=(1.6 * n_cols, 1.3 * shown))
batch = torch.stack([it["image"] for it in items]).to(device)
shown_models = [n for n in predictors if n != "centre bias"]
with torch.no_grad():
    maps = {n: predictors[n](batch).cpu() for n in shown_models}
for i in range(shown):
    axes[i, 0].imshow(items[i]["image"].permute(1, 2, 0))
    axes[i, 1].imshow(items[i]["saliency"], cmap="gray")
    for j, n in enumerate(shown_models):
        axes[i, 2 + j].imshow(maps[n][i], cmap="gray")
for j, title in enumerate(["image", "fixations (blurred)"] + shown_models):
    axes[0, j].set_title(title, fontsize=7)
for a in axes.flat:
    a.set_axis_off()
fig.tight_layout()

# %% [markdown]
# **Figure 7.1 (no paper counterpart).** Held-out images, their blurred fixations, and each model's
# map ({glue:text}`scale`).

# %% [markdown]
# ## CMRNet trained as the paper trains it, and on NUS Scene
#
# The paper trains CMRNet on SALICON train and keeps the epoch with the lowest loss on SALICON val.
# CMRNet is trained here on both training sets with the same recipe and scored on the same held-out
# images: the chapter's set (`train_set`) above, and the other one now.

# %%
other = "nus_scene" if trained_on == "salicon" else "salicon"
alternative = saliency_models.training_data(other, tuple(size), **sets_kw)
cmr_runs = {trained_on: (training, models["CMRNet"], histories.get("CMRNet"))}
torch.manual_seed(seed)
other_cmr = build_model("CMRNet")
other_history = saliency_models.train_saliency_model(
    other_cmr, alternative.train, run_dir=Path(run_root) / alternative.tag / "CMRNet", epochs=epochs,
    batch_size=batch_size, lr=lr["CMRNet"], lr_step=lr_decay_every, device=device, seed=seed,
    val_items=alternative.val)
cmr_runs[other] = (alternative, other_cmr, other_history)
train_rows = {}
for key, (source, model, history) in cmr_runs.items():
    scores = evaluation.mean_table({key: evaluation.evaluate(model, test_set, sauc=("pysaliency",),
                                                             n_splits=n_splits, device=device, seed=seed)})
    kept_epoch = ("" if history is None else len(history) if source.val is None
                  else 1 + int(np.argmin([h["val_loss"] for h in history])))
    train_rows[key] = {"trained on": source.name, "model selection": "SALICON val" if source.val else "last epoch",
                       "epoch kept": kept_epoch, **{m: scores.loc[key, m] for m in ("CC", "AUC-Judd", "sAUC")}}
by_source = pd.DataFrame(train_rows).T
glue("salicon_train_n", str(len(cmr_runs["salicon"][0].train)), display=False)
best_source = by_source["CC"].astype(float).idxmax()
glue("train_set_best", "SALICON (the paper's recipe)" if best_source == "salicon" else "NUS Scene",
     display=False)
glue("train_set_ccs", ", ".join(f"{k}: {float(r['CC']):.3f}" for k, r in by_source.iterrows()), display=False)
by_source.round(3)

# %% [markdown]
# **Table 7.2 (no paper counterpart).** CMRNet trained on each training set, with SALICON val
# selecting the epoch kept where it is the training set, scored on the same held-out images
# ({glue:text}`scale`). CC: {glue:text}`train_set_ccs`; the higher comes from
# {glue:text}`train_set_best`. The SALICON run trains on {glue:text}`salicon_train_n` images (the
# paper: 10,000), so this compares the recipes' plumbing, not the paper's training.

# %%
paper = saliency_models.paper_table("SALICON val")
for key, name in (("cmr", "CMRNet"), ("unisal", "UNISAL"), ("msi", "MSI-Net")):
    glue(f"paper_{key}_cc", paper.loc[name, "CC"], display=False)
    glue(f"paper_{key}_judd", paper.loc[name, "AUC-Judd"], display=False)
    glue(f"ours_{key}_cc", table.loc[name, "CC"], display=False)
names = list(models)
pd.DataFrame({"CC, ours": table.loc[names, "CC"], "CC, paper (Table I)": paper.loc[names, "CC"],
              "AUC-Judd, ours": table.loc[names, "AUC-Judd"],
              "AUC-Judd, paper (Table I)": paper.loc[names, "AUC-Judd"]}).round(3)

# %% [markdown]
# **Against the paper.** The paper's Table I (SALICON val) gives CMRNet CC
# {glue:text}`paper_cmr_cc:.3f` and AUC-Judd {glue:text}`paper_cmr_judd:.3f`, UNISAL
# {glue:text}`paper_unisal_cc:.3f` / {glue:text}`paper_unisal_judd:.3f` and MSI-Net
# {glue:text}`paper_msi_cc:.3f` / {glue:text}`paper_msi_judd:.3f`, for networks trained on 10,000
# SALICON images at 480x640 (CMRNet, 60 epochs) or pretrained by their authors. Ours
# ({glue:text}`scale`) reach CC {glue:text}`ours_cmr_cc:.3f` (CMRNet),
# {glue:text}`ours_unisal_cc:.3f` (UNISAL) and {glue:text}`ours_msi_cc:.3f` (MSI-Net) on a
# different set, so the absolute scores are not comparable and their ranking means little at this
# scale: UNISAL and MSI-Net are designed around ImageNet-pretrained encoders, which this project
# does not download. What the demo checks is the pipeline: trained on some images, does a network
# beat the centre prior on others? The verdict lines above answer it from the numbers.
