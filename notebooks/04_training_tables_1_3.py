# %% [markdown]
# # Training HSI: pretraining, five-fold finetuning and Tables 1-3
#
# Does HSI need its two training stages, and does the text help? The HSI paper pretrains the model on
# SALICON's free-viewing fixations, split per object by Algorithm 1 (loss Eq. 11), then finetunes it
# on HSB's explanation-task saliency maps (Eq. 12) in five-fold cross-validation, and reports three
# comparisons: with and without finetuning (Table 1), HSI against an image-only baseline (Table 2),
# and the baseline from pretrained against random weights (Table 3). This chapter runs the same
# pipeline with `hsi_core.training` (`run_hsi_tables`), whose generic `fit` loop gives progress
# bars, a checkpoint every epoch, exact resume after a kill, seeds and DDP.
#
# **Scale.** No CLIP weights are downloaded, so at demo scale the CLIP RN50 image and text encoders
# are **randomly initialised** (every checkpoint records it). The image encoder is frozen and run
# once per image at 96x96 pixels (its BatchNorm statistics estimated on 64 HSB images first, since
# random-init statistics shrink the features to nothing); only the decoder and the label-embedding
# table train, for a few epochs at a higher learning rate (1e-3, no decay), on the demo world's
# 24 + 6 SALICON-style scenes and 160 HSB-style images. The demo objects cover 1-7 % of a scene, so
# Algorithm 1's area threshold is lowered from the paper's T_a = 0.1 to 0.01 (with 0.1 no object
# would pass). The paper trained the whole model from CLIP's weights at 224x224 for 20 + 20 epochs;
# every paper-scale setting is a parameter below.

# %% tags=["parameters"]
data_root = None  # folder with salicon/, coco/, hsb/ laid out as the demo world; None: the demo world
clip_weights = None  # local OpenAI RN50.pt or open_clip RN50-quickgelu state dict; None: random init
image_size = 96  # paper: 224
hidden = 32  # decoder width between its 3x3 and 1x1 convolutions (not given by the paper; model default 256)
freeze_image = True  # paper: False (the image encoder trains)
pretrain_epochs = 4  # paper: 20
finetune_epochs = 4  # paper: 20 per fold
batch_size = 16
lr = 1e-3  # paper: 1e-4
lr_step = 100  # epochs between x0.1 decays; paper: 10
lr_gamma = 0.1
folds = 5  # HSB folds held out in turn; paper: 5
t_a = 0.01  # Algorithm 1 area threshold; paper: 0.1
t_r = 0.05  # Algorithm 1 fixation-share threshold; paper: 0.05
calibration_images = 64  # HSB images for the BatchNorm statistics of a random-init encoder
device = "cpu"
seed = 0
run_dir = "runs/04_hsi_tables"  # checkpoints; a finished run with the same settings is reused
figure_images = 4  # two-object HSB images shown in the Figure 10 panel

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hsi_core import training
from hsi_core.demo import ensure_demo
from hsi_core.io import read_image

pd.set_option("display.precision", 4)
started = time.perf_counter()
root = Path(data_root) if data_root is not None else ensure_demo()
print(f"data: {root}")

# %% [markdown]
# ## Pretraining and finetuning
#
# One call runs every experiment: HSI and the baseline are pretrained (the epoch with the lowest loss
# on the SALICON validation images is kept), then, for each held-out HSB fold, HSI is finetuned from
# its best pretrained weights, HSI is scored without finetuning, and the baseline is finetuned from
# its pretrained and from random decoder weights. Each fold's final epoch is scored on the fold.

# %%
exp = training.run_hsi_tables(
    root, clip_weights=clip_weights, image_size=image_size, hidden=hidden, freeze_image=freeze_image,
    pretrain_epochs=pretrain_epochs, finetune_epochs=finetune_epochs, batch_size=batch_size, lr=lr,
    lr_step=lr_step, lr_gamma=lr_gamma, folds=folds, t_a=t_a, t_r=t_r, calibration_images=calibration_images,
    device=device, seed=seed, run_dir=run_dir, progress=False)
print(f"CLIP weights: {exp.meta['clip_weights_source']}")
print(f"runs in {exp.run_dir}; {time.perf_counter() - started:.0f} s so far")
pd.concat({name: pd.DataFrame(h).set_index("epoch") for name, h in exp.pretrain_history.items()}, axis=1)

# %% [markdown]
# The pretraining losses (Eq. 11 for HSI, Eq. 4 on the free-viewing map for the baseline) are
# negative-correlation losses: lower is better, and the two models' losses are on different scales
# (HSI's adds the per-object term Eq. 8 to the marginal term Eq. 10).

# %%
tables = training.tables_1_3(exp)


def verdict(table: pd.DataFrame, better: str, worse: str) -> str:
    ours = table.xs("ours", level="source")
    wins = [c for c in training.TABLE_COLUMNS
            if (ours.loc[better, c] < ours.loc[worse, c]) == (c in training.LOWER_IS_BETTER)]
    return f"'{better}' beats '{worse}' on {len(wins)} of 4 metrics ({', '.join(wins) or 'none'}); the paper: on all 4."


# %% [markdown]
# ## Table 1: with and without finetuning

# %%
print(verdict(tables["Table 1"], "w. finetuning", "w.o. finetuning"))
tables["Table 1"]

# %% [markdown]
# Finetuning on the explanation-task maps helps here as in the paper, and by more: the demo's
# free-viewing scenes differ from its HSB images more than SALICON differs from HSB (other sizes,
# several objects), and our pretraining is four epochs on 24 scenes. Our absolute values are far
# below the paper's because the encoder is random and frozen and the maps are 96x96: the decoder
# sees a 3x3 grid of random features, so every map is coarse.

# %% [markdown]
# ## Table 2: image-text relations (HSI against the image-only baseline)

# %%
print(verdict(tables["Table 2"], "ours (HSI)", "baseline"))
tables["Table 2"]

# %% [markdown]
# Over all HSB images the gap is small, as in the paper (0.0065 in CC there): most images hold one
# object, where the label adds nothing. The label matters where an image holds two objects of
# different classes and the viewers explained one of them; the demo world plants such images, so we
# can score them apart:

# %%
if exp.two_objects is None:
    print("no planted truth.json: the two-object split is only available on the demo world")
else:
    two = training.subset_means(exp, ["HSI w. finetuning", "baseline (pretrained)"], exp.two_objects)
    one = training.subset_means(exp, ["HSI w. finetuning", "baseline (pretrained)"], ~exp.two_objects)
    split = pd.concat({f"two objects ({exp.two_objects.sum()} images)": two,
                       f"one object ({(~exp.two_objects).sum()} images)": one})
    display(split)

# %% [markdown]
# On two-object images HSI's score map (Eq. 1) lets the decoder move towards the labelled object;
# the baseline can only spread its map over both. With a random text encoder the label embeddings
# start as random vectors and are learnt with the decoder (a trainable table, our choice without CLIP
# weights); with CLIP's weights they stay frozen, as in the paper.

# %% [markdown]
# ## Table 3: pretrained against random initial weights (baseline)

# %%
print(verdict(tables["Table 3"], "pretrain", "random"))
tables["Table 3"]

# %% [markdown]
# In the paper "random" means no SALICON pretraining; here both rows share the same random frozen
# encoder and differ only in the decoder's starting weights, so the gap measures what four epochs of
# SALICON-style pretraining give the decoder. The paper's larger gap also includes training a whole
# CLIP-initialised network on 128 images, where it notes the risk of overfitting.

# %% [markdown]
# ## Figure 10: predicted and human saliency maps
#
# Held-out two-object HSB images (each predicted by the fold model that did not see it): the image
# with its label, the human map, HSI's map for that label and the baseline's map. At demo scale the
# decoder works on a 3x3 grid (96 px input), so the maps are blocky blurs of that grid; the paper's
# Figure 10 comes from a 7x7 grid of trained CLIP features.

# %%
flags = exp.two_objects if exp.two_objects is not None else np.ones(len(exp.hsb), bool)
shown = [i for i in np.flatnonzero(flags) if i in exp.predictions["HSI w. finetuning"]][:figure_images]
fig, axes = plt.subplots(len(shown), 4, figsize=(10, 2.6 * len(shown)), squeeze=False)
for row, i in zip(axes, shown):
    item = exp.hsb.items[i]
    panels = [read_image(item.image_path), exp.hsb[i]["saliency"].numpy(),
              exp.predictions["HSI w. finetuning"][i].numpy(), exp.predictions["baseline (pretrained)"][i].numpy()]
    titles = [f"label: {item.label}", "human (HSB)", "HSI", "baseline"]
    for ax, panel, title in zip(row, panels, titles):
        ax.imshow(panel, cmap=None if panel.ndim == 3 else "inferno", aspect="auto")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
fig.suptitle("Figure 10 (demo scale, random-init CLIP): held-out predictions", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Paper scale
#
# Set `data_root` to a folder holding SALICON (`salicon/images/{train,val}`, `salicon/annotations/
# fixations_{train,val}2014.json`), the COCO 2014 instances (`coco/annotations/instances_{train,val}2014.json`)
# and HSB (`hsb/`), `clip_weights` to the OpenAI RN50 checkpoint, and `image_size=224`, `hidden=256`,
# `freeze_image=False`, `pretrain_epochs=20`, `finetune_epochs=20`, `lr=1e-4`, `lr_step=10`, `t_a=0.1`,
# `device="cuda"`. Multi-GPU: the same `fit` runs under `torchrun` with DistributedDataParallel.

# %%
print(f"notebook wall time: {time.perf_counter() - started:.0f} s")
