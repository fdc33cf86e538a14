# %% [markdown]
# # The HSI model
#
# HSI (the human saliency imitator, Figure 7 of the HSI paper) predicts where a person looks while
# explaining why an image shows a label. It is a CLIP encoder with a very small decoder:
#
# - **image**: CLIP's ResNet-50. $u_4$ (output of `layer3`, the paper's fourth block) is average-pooled
#   by two to $u_4'$; $u_5$ is `layer4`; $z$ is CLIP's attention pool applied to *every* spatial token
#   (as DenseCLIP does), a language-compatible $7\times7$ feature map;
# - **text**: the frozen CLIP text encoder embeds "a photo of a {label}"; the embeddings of a label
#   vocabulary are computed once and cached;
# - **score map** (Eq. 1): $a_{ij} = \langle z_{ij}/\|z_{ij}\|,\ s/\|s\| \rangle$;
# - **decoder**: $[u_4', u_5, z, a]$ -> conv $3\times3$ -> conv $1\times1$ -> sigmoid -> bilinear up-sampling to
#   $224\times224$. The paper gives neither the hidden width nor an activation between the two
#   convolutions; we use 256 channels and a ReLU.
#
# The image-only **baseline** of Tables 2-3 drops the text and the score map.
#
# This chapter builds both models, traces the shapes through them (Figure 7 as a table and a
# diagram), counts parameters per part, and checks that $z$'s first token is CLIP's own image embedding.

# %% [markdown]
# ## The model, as equations
#
# HSI Eq. 1 is the score map between CLIP's {cite}`radford2021clip` dense image embedding $\mathbf z$ (its attention
# pool applied to every token, as in DenseCLIP {cite}`rao2022denseclip`) and the text embedding $s$ of the label
# {cite}`yang2022hsi`:
#
# $$
# a_{i,j} = \Big\langle \frac{z_{i,j}}{\|z_{i,j}\|}, \frac{s}{\|s\|} \Big\rangle
# $$ (hsi-eq1)
#
# computed by {py:func}`hsi_core.models.hsi.score_map`. HSI Eq. 2 writes the free-viewing (marginal) saliency map
# as a mixture of the label-conditional maps the decoder predicts:
#
# $$
# P(S \mid x_{i,j}) = \sum_{obj_n \in \mathcal{T}_{obj}} P(S \mid obj_n, x_{i,j}) \, P(obj_n \mid x_{i,j})
# $$ (hsi-eq2)
#
# and HSI Eq. 3 takes the mixing weights from the score maps of the $N$ labels of an image, a softmax over the
# labels times a softmax over the pixels, up-sampled:
#
# $$
# \tilde P(obj_n \mid x_{i,j}) = \mathrm{Up}\big[\sigma(\mathcal{I}(\mathbf z, \mathbf s))_n \times \sigma(\mathcal{I}(\mathbf z, s_n))_{i,j}\big]
# $$ (hsi-eq3)
#
# computed by {py:func}`hsi_core.losses.object_probability`; {eq}`hsi-eq2` with {eq}`hsi-eq3` is the marginal map
# of the pretraining loss ({eq}`hsi-eq9`, {py:func}`hsi_core.losses.marginal_saliency`).

# %% tags=["parameters"]
clip_weights = None   # local path to OpenAI RN50.pt or an open_clip RN50-quickgelu checkpoint; None = random init
device = "cpu"
batch_size = 2        # images traced through the model
demo_root = None      # None: data/demo in the repository
seed = 0

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from hsi_core.plots import glue

from hsi_core import demo, losses
from hsi_core.datasets import HSB_CLASSES, load_hsb
from hsi_core.io import read_image
from hsi_core.models.hsi import HSI, HSIBaseline, preprocess, score_map

torch.manual_seed(seed)
world = demo.ensure_demo(demo_root)
model = HSI(clip_weights, labels=HSB_CLASSES, device=device).eval()
baseline = HSIBaseline(clip_weights, labels=HSB_CLASSES, device=device).eval()
print("CLIP weights:", model.weights_source, "| loaded:", model.weights_loaded)
print("label embedding table trainable:", model.train_text_embeddings)

# %% [markdown]
# Without CLIP weights (the default here: this book downloads nothing) every CLIP part is randomly
# initialised, so the text embeddings carry no meaning. At demo scale the cached label-embedding table
# is therefore made trainable; with real weights it stays frozen, as in the paper.

# %% [markdown]
# ## Shapes through the model (Figure 7)

# %%
items = load_hsb(world / "hsb")[:batch_size]
images = preprocess([read_image(it.image_path) for it in items]).to(device)
label_ids = model.label_ids([it.label for it in items]).to(device)
with torch.no_grad():
    enc = model.encode_image(images)
    out = model(images, label_ids)
    feats = model.features(enc)
    stages = model.decode(feats, out["score_map"], return_intermediates=True)
    hidden, logits = stages["hidden"], stages["logits"]


def shape(t: torch.Tensor) -> str:
    return " x ".join(str(s) for s in t.shape[1:])


trace = pd.DataFrame([
    ("input image (RGB in [0, 1])", "x", shape(images)),
    ("CLIP RN50 layer3 (4th block)", "u4", shape(enc["u4"])),
    ("2x2 average pool", "u4'", shape(enc["u4p"])),
    ("CLIP RN50 layer4 (5th block)", "u5", shape(enc["u5"])),
    ("attention pool on every token", "z", shape(enc["z"])),
    ("attention pool, token 0", "z-bar (CLIP embedding)", shape(enc["pooled"])),
    ("text tower, 'a photo of a {label}'", "s", shape(model.text_embeddings[label_ids])),
    ("cosine(z_ij, s), Eq. 1", "a", "1 x " + shape(out["score_map"])),
    ("concatenation", "[u4', u5, z, a]", shape(torch.cat([feats, out["score_map"].unsqueeze(1)], 1))),
    ("conv 3x3 + ReLU", "", shape(hidden)),
    ("conv 1x1, sigmoid", "", shape(logits)),
    ("bilinear up-sampling", "p", "1 x " + shape(out["saliency"])),
], columns=["stage", "tensor", "shape (per image)"])
trace

# %%
fig, ax = plt.subplots(figsize=(11, 3.6))
ax.set_xlim(0, 11)
ax.set_ylim(0, 4)
ax.axis("off")
boxes = {
    "image\n3x224x224": (0.2, 2.6), "CLIP RN50\nlayer1-3": (1.8, 2.6), "u4 1024x14x14\n-> u4' 1024x7x7": (3.6, 3.2),
    "layer4\nu5 2048x7x7": (3.6, 2.0), "attention pool\n(all tokens)\nz 1024x7x7": (5.5, 2.0),
    "label\n'a photo of a ...'": (0.2, 0.4), "CLIP text\n(frozen, cached)\ns 1024": (1.8, 0.4),
    "score map a\ncos(z_ij, s)\n1x7x7": (5.5, 0.4), "concat\n4097x7x7": (7.4, 2.0),
    "conv3x3, conv1x1,\nsigmoid, upsample\np 1x224x224": (9.1, 2.0),
}
for text, (x, y) in boxes.items():
    ax.text(x, y, text, fontsize=8, va="center", bbox=dict(boxstyle="round", fc="#eef3fb", ec="#4a6fa5"))
arrows = [((1.3, 2.6), (1.8, 2.6)), ((3.0, 2.7), (3.6, 3.1)), ((3.0, 2.5), (3.6, 2.1)), ((4.8, 2.0), (5.5, 2.0)),
          ((1.45, 0.4), (1.8, 0.4)), ((3.2, 0.4), (5.5, 0.4)), ((6.2, 1.55), (6.2, 0.85)), ((5.3, 3.2), (7.4, 2.2)),
          ((6.9, 2.0), (7.4, 2.0)), ((6.9, 0.5), (7.5, 1.7)), ((8.6, 2.0), (9.1, 2.0))]
for start, end in arrows:
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color="#555"))
ax.annotate("", xy=(7.6, 1.75), xytext=(4.3, 1.7),   # u5 -> concat, passing below the attention pool
            arrowprops=dict(arrowstyle="->", color="#555", connectionstyle="arc3,rad=0.25"))
ax.set_title("HSI (Figure 7): multimodal encoder and minimal decoder; the baseline drops the text branch", fontsize=10)
plt.show()

# %% [markdown]
# ## Parameters per part

# %%
def count_table(m: HSI) -> pd.DataFrame:
    rows = [{"part": k, "trainable": v["trainable"], "frozen": v["frozen"]} for k, v in m.parameter_counts().items()]
    table = pd.DataFrame(rows)
    table.loc[len(table)] = {"part": "total", "trainable": table.trainable.sum(), "frozen": table.frozen.sum()}
    table["trainable (M)"] = (table.trainable / 1e6).round(2)
    table["frozen (M)"] = (table.frozen / 1e6).round(2)
    return table[["part", "trainable (M)", "frozen (M)"]]


print("HSI")
display(count_table(model))
print("baseline (no text, no score map)")
display(count_table(baseline))
counts = {part: c["trainable"] + c["frozen"] for part, c in model.parameter_counts().items()}
first_conv = next(m for m in model.decoder.modules() if isinstance(m, torch.nn.Conv2d))
glue("image_tower_m", counts["image encoder (CLIP RN50 incl. attention pool)"] / 1e6, display=False)
glue("text_tower_m", counts["text encoder (CLIP transformer, frozen)"] / 1e6, display=False)
glue("decoder_m", counts["decoder"] / 1e6, display=False)
glue("decoder_in_channels", first_conv.in_channels, display=False)
glue("first_conv_share", 100 * sum(p.numel() for p in first_conv.parameters()) / counts["decoder"], display=False)

# %% [markdown]
# The paper reports no parameter counts. Ours: the image tower is CLIP RN50's
# ({glue:text}`image_tower_m:.1f` M, attention pool included) and the text tower CLIP's
# ({glue:text}`text_tower_m:.1f` M, frozen, kept out of HSI's checkpoints: they store the cached label
# embeddings). The decoder has {glue:text}`decoder_m:.2f` M parameters, of which its first convolution
# (3x3 over {glue:text}`decoder_in_channels` input channels) holds {glue:text}`first_conv_share:.1f` %.

# %% [markdown]
# ## Checks
#
# 1. $z$'s first token (the mean token's attention output) must equal open_clip's pooled embedding.
# 2. The score map is Eq. 1 with the label's cached embedding.
# 3. The conditional maps of several labels per image (pretraining, Eq. 8-9) decode in one pass.

# %%
with torch.no_grad():
    pooled = model.visual((images - model.mean) / model.std)
    objs = model.forward_objects(images, torch.stack([label_ids, label_ids.flip(0)], 1))
    eq1 = score_map(enc["z"], model.text_embeddings[label_ids])
checks = pd.DataFrame([
    ("max |z token 0 - open_clip pooled|", float((enc["pooled"] - pooled).abs().max())),
    ("max |a - Eq. 1 by hand|", float((out["score_map"] - eq1).abs().max())),
    ("max |forward_objects[:, 0] - forward|", float((objs["saliency"][:, 0] - out["saliency"]).abs().max())),
], columns=["check", "value"])
checks["passed (< 1e-5)"] = checks["value"] < 1e-5
display(checks)
print("verdict:", "all three checks pass" if checks["passed (< 1e-5)"].all()
      else f"FAILED: {list(checks.loc[~checks['passed (< 1e-5)'], 'check'])}")

# %%
prob = losses.object_probability(objs["score_maps"], (224, 224))
marginal = losses.marginal_saliency(objs["saliency"], prob)
fig, axes = plt.subplots(1, 4, figsize=(11, 2.8))
axes[0].imshow(images[0].permute(1, 2, 0).cpu())
axes[0].set_title(f"label: {items[0].label}", fontsize=9)
axes[1].imshow(out["score_map"][0].cpu(), cmap="viridis")
axes[1].set_title("score map a (7x7, Eq. 1)", fontsize=9)
axes[2].imshow(out["saliency"][0].cpu(), cmap="jet")
axes[2].set_title("p (untrained decoder)", fontsize=9)
axes[3].imshow(prob[0, 0].cpu(), cmap="magma")
axes[3].set_title("P~(obj | x), Eq. 3", fontsize=9)
for ax in axes:
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# With random weights these maps show only the plumbing: the score map and the prediction become
# meaningful after training (chapter "Training and Tables 1-3") or with real CLIP weights
# (`clip_weights=`).
#
# ## Inference speed

# %%
with torch.no_grad():
    model(images[:1], label_ids[:1])
    start = time.perf_counter()
    model(images, label_ids)
    elapsed = time.perf_counter() - start
print(f"{batch_size / elapsed:.1f} images/s on {device} at batch size {batch_size}: one timed call on a machine "
      "that may be shared; benchmarks/bench_hsi_inference.py measures batch sizes 1 and 16 properly")
