"""HSI, the human saliency imitator (HSI paper, "HSI: Computational Model", Figure 7), and its baseline.

Encoder: open_clip's CLIP RN50 image tower. ``u4`` is ``layer3`` (1024 x 14 x 14 at 224 input; the
paper's fourth convolutional block), average-pooled 2x2 to ``u4'`` (1024 x 7 x 7); ``u5`` is ``layer4``
(2048 x 7 x 7); ``z`` (1024 x 7 x 7) is CLIP's attention pool applied to every spatial token, as in
DenseCLIP: the pool already attends from all 50 tokens (mean token + 49 positions), open_clip keeps only
token 0 (the pooled embedding); we keep tokens 1..49. Nothing in open_clip is forked or patched.

Text: the frozen CLIP text tower embeds "a photo of a {label}" once per vocabulary label; the
embeddings are cached in ``text_embeddings``. Score map (HSI Eq. 1): ``a_ij = <z_ij/|z_ij|, s/|s|>``.

Decoder: ``[u4', u5, z, a]`` (4097 channels) -> conv 3x3 -> ReLU -> conv 1x1 -> sigmoid -> bilinear
up-sampling to 224 x 224. The paper gives neither the hidden width nor the activation between the
two convolutions; we use 256 channels and a ReLU (``hidden=``).

Inputs are RGB images in [0, 1], ``(B, 3, 224, 224)`` (the project convention); the model applies
CLIP's mean/std normalisation itself. ``preprocess`` turns arrays or tensors of any size into that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hsi_core.datasets.hsb import HSB_CLASSES

from hsi_core.models.weights import apply_state, load_state, read_checkpoint, strip_prefixes, unwrap_checkpoint

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
PROMPT = "a photo of a {}"
CLIP_MODEL_NAME = "RN50-quickgelu"
WEIGHTS_HELP = (
    "Download the OpenAI CLIP RN50 checkpoint (RN50.pt, "
    "https://openaipublic.azureedge.net/clip/models/afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt, "
    "the file open_clip uses for 'RN50'/'openai') or an open_clip RN50-quickgelu checkpoint "
    "(e.g. open_clip.create_model('RN50-quickgelu', pretrained='openai') then torch.save(model.state_dict(), path)), "
    "put it anywhere, e.g. weights/RN50.pt in the repository, and pass its path as pretrained= / --clip-weights."
)


# ----------------------------------------------------------------------------- CLIP backbone
def read_clip_file(path: Path) -> Any:
    """What an OpenAI TorchScript archive (its state dict) or a torch file holds."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)   # torch.jit.load is deprecated; OpenAI ships TorchScript
            return torch.jit.load(str(path), map_location="cpu").state_dict()
    except (RuntimeError, ValueError):
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"{path}: not a readable CLIP checkpoint ({error})") from error


def clip_state_filter(checkpoint: Any, model: nn.Module | None = None) -> dict[str, Tensor]:
    """Filter function (``hsi_core.models.weights``): the CLIP state dict inside a checkpoint, without a
    ``module.`` prefix and without OpenAI's non-tensor entries (``input_resolution``, ...)."""
    state = strip_prefixes("module.")(checkpoint, model)
    return {k: v for k, v in state.items() if k not in ("input_resolution", "context_length", "vocab_size")}


def build_clip_rn50(pretrained: str | Path | None = None) -> nn.Module:
    """open_clip ``RN50-quickgelu`` CLIP, with weights from a LOCAL checkpoint or randomly initialised.

    ``pretrained`` is the OpenAI ``RN50.pt`` (TorchScript or state dict) or an open_clip state dict.
    The returned model carries ``weights_loaded`` (bool) and ``weights_source`` (path or "random init").
    Nothing is downloaded: a missing path raises ``FileNotFoundError`` saying where to get the file.
    """
    import logging

    import open_clip

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)   # open_clip warns "initialized randomly"; we record that in weights_source
    try:
        model = open_clip.create_model(CLIP_MODEL_NAME, pretrained=None)
    finally:
        root.setLevel(level)
    model.weights_loaded = False
    model.weights_source = "random init (no CLIP weights given)"
    if pretrained is None:
        return model
    path = Path(pretrained)
    load_state(model, path, filter_fn=clip_state_filter, reader=read_clip_file, name="CLIP RN50 weights",
               expected="a CLIP RN50 checkpoint", download=WEIGHTS_HELP)
    model.weights_loaded = True
    model.weights_source = str(path)
    return model


def dense_attention_pool(attnpool: nn.Module, x: Tensor) -> Tensor:
    """CLIP's attention pool evaluated at every token (DenseCLIP): ``(B, C, h, w)`` -> ``(B, D, 1 + h*w)``.

    Token 0 is open_clip's pooled image embedding; tokens 1.. are the spatial ``z``. The positional
    embedding is resized bicubically when ``h x w`` differs from the grid it was trained on.
    """
    b, c, h, w = x.shape
    tokens = x.flatten(2).permute(2, 0, 1)                                    # (hw, B, C)
    tokens = torch.cat([tokens.mean(0, keepdim=True), tokens], 0)             # (1 + hw, B, C)
    pos = attnpool.positional_embedding
    grid = int(round((pos.shape[0] - 1) ** 0.5))
    if (h, w) != (grid, grid):
        spatial = pos[1:].T.reshape(1, c, grid, grid)
        spatial = F.interpolate(spatial, size=(h, w), mode="bicubic", align_corners=False).reshape(c, h * w).T
        pos = torch.cat([pos[:1], spatial], 0)
    tokens = tokens + pos[:, None, :].to(tokens.dtype)
    out, _ = F.multi_head_attention_forward(
        query=tokens, key=tokens, value=tokens, embed_dim_to_check=c, num_heads=attnpool.num_heads,
        q_proj_weight=attnpool.q_proj.weight, k_proj_weight=attnpool.k_proj.weight,
        v_proj_weight=attnpool.v_proj.weight, in_proj_weight=None,
        in_proj_bias=torch.cat([attnpool.q_proj.bias, attnpool.k_proj.bias, attnpool.v_proj.bias]),
        bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
        out_proj_weight=attnpool.c_proj.weight, out_proj_bias=attnpool.c_proj.bias,
        use_separate_proj_weight=True, training=False, need_weights=False)
    return out.permute(1, 2, 0)                                               # (B, D, 1 + hw)


def score_map(z: Tensor, text: Tensor) -> Tensor:
    """HSI Eq. 1: cosine similarity of every ``z_ij`` with text embeddings.

    ``z (B, D, h, w)`` with ``text (B, D)`` -> ``(B, h, w)``; with ``text (B, N, D)`` -> ``(B, N, h, w)``.
    """
    zn = F.normalize(z, dim=1)
    if text.ndim == 2:
        return torch.einsum("bdhw,bd->bhw", zn, F.normalize(text, dim=-1))
    return torch.einsum("bdhw,bnd->bnhw", zn, F.normalize(text, dim=-1))


def preprocess(images: Any, image_size: int = 224) -> Tensor:
    """Images as the model takes them: float ``(B, 3, S, S)`` RGB in [0, 1], resized bilinearly.

    Accepts a uint8 ``(H, W, 3)`` array, a list of them (any sizes), or a float tensor
    ``(3, H, W)``/``(B, 3, H, W)`` in [0, 1]. CLIP's mean/std normalisation happens inside the model.
    """
    if isinstance(images, Tensor):
        t = images.float()
        if t.ndim == 3:
            t = t.unsqueeze(0)
        if t.ndim != 4 or t.shape[1] != 3:
            raise ValueError(f"preprocess: expected (B, 3, H, W) or (3, H, W) images, got {tuple(images.shape)}")
        if t.numel() and (t.min() < 0 or t.max() > 1):
            raise ValueError("preprocess: float images must lie in [0, 1] (divide uint8 images by 255)")
        return F.interpolate(t, size=(image_size, image_size), mode="bilinear", align_corners=False).clamp(0, 1)
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    batch = []
    for i, img in enumerate(images):
        arr = np.asarray(img)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"preprocess: image {i} must be (H, W, 3) RGB, got shape {arr.shape}")
        t = torch.from_numpy(np.array(arr)).permute(2, 0, 1).float()
        t = t / 255.0 if arr.dtype == np.uint8 else t
        batch.append(preprocess(t, image_size))
    if not batch:
        raise ValueError("preprocess: no images")
    return torch.cat(batch)


# ----------------------------------------------------------------------------- decoder
def image_features(enc: dict[str, Tensor]) -> Tensor:
    """``[u4', u5, z]`` from ``HSI.encode_image``'s dict, concatenated: ``(B, 4096, h, w)`` (Figure 7)."""
    return torch.cat([enc["u4p"], enc["u5"], enc["z"]], 1)


def run_decoder(decoder: nn.Sequential, features: Tensor, a: Tensor | None, image_size: int, *,
                return_intermediates: bool = False) -> Tensor | dict[str, Tensor]:
    """HSI's decoder (conv 3x3, ReLU, conv 1x1, sigmoid, bilinear up-sampling; HSI "Decoder", Figure 7) on
    ``[features, a]`` -> ``(B, S, S)`` in (0, 1). Shared by ``HSI.decode`` and decoders trained apart from the
    encoder (``hsi_tables.HSIHead``).

    It runs in float32 even under bfloat16 autocast: bf16 keeps 8 bits of a sigmoid output, so maps that vary
    little become exactly flat, and the decoder is a small part of the cost (the encoder stays in bf16).
    ``return_intermediates``: a dict with the decoder's ``input`` ``(B, 4097, h, w)``, ``hidden`` (after the
    3x3 convolution and ReLU), ``logits`` (after the 1x1 convolution) and ``saliency`` (the same map).
    """
    with torch.autocast(features.device.type, enabled=False):
        x = features.float() if a is None else torch.cat([features.float(), a.unsqueeze(1).float()], 1)
        if return_intermediates:
            hidden = decoder[1](decoder[0](x))
            logits = decoder[2](hidden)
        else:
            logits = decoder(x)
        out = F.interpolate(torch.sigmoid(logits), size=(image_size, image_size), mode="bilinear",
                            align_corners=False)[:, 0]
    if return_intermediates:
        return {"input": x, "hidden": hidden, "logits": logits, "saliency": out}
    return out


# ----------------------------------------------------------------------------- models
class _TextTower:
    """Holds the CLIP text tower outside the module tree: it is frozen, used only to embed new labels,
    and kept out of state dicts and checkpoints (which store the cached embeddings instead)."""

    def __init__(self, clip: nn.Module) -> None:
        import open_clip

        self.clip = clip
        self.tokenizer = open_clip.get_tokenizer(CLIP_MODEL_NAME)
        for name, p in clip.named_parameters():
            if not name.startswith("visual."):
                p.requires_grad_(False)

    @torch.no_grad()
    def embed(self, labels: Sequence[str]) -> Tensor:
        tokens = self.tokenizer([PROMPT.format(label) for label in labels])
        # every submodule's own mode is restored: the image encoder is shared with the HSI module,
        # and one flag for the whole CLIP would put an HSI in eval mode back in train mode
        modes = [(m, m.training) for m in self.clip.modules()]
        self.clip.eval()
        try:
            out = self.clip.encode_text(tokens.to(self.clip.token_embedding.weight.device)).float().cpu()
        finally:
            for m, mode in modes:
                m.training = mode
        return out


class HSI(nn.Module):
    """HSI (Figure 7): CLIP RN50 image features + label score map -> saliency map for that label.

    ``pretrained``: local CLIP RN50 checkpoint (see ``build_clip_rn50``); ``None`` = random init, recorded
    in ``weights_loaded`` / ``weights_source``. ``labels``: the label vocabulary; ``label_ids`` index it.
    ``train_text_embeddings``: without CLIP weights the text tower is random, so by default (``None``)
    the cached label embeddings become a trainable table; with weights they stay frozen, as in the paper.
    ``freeze_image`` freezes the image tower (the paper trains it; useful for quick CPU runs).
    """

    uses_text = True

    def __init__(self, pretrained: str | Path | None = None, labels: Sequence[str] = HSB_CLASSES,
                 image_size: int = 224, freeze_text: bool = True, device: str | torch.device | None = None,
                 *, train_text_embeddings: bool | None = None, freeze_image: bool = False, hidden: int = 256) -> None:
        super().__init__()
        if image_size % 32:
            raise ValueError(f"HSI: image_size must be a multiple of 32, got {image_size}")
        if not freeze_text:
            raise ValueError("HSI: the paper keeps the text encoder fixed; freeze_text=False is not supported "
                             "(use train_text_embeddings=True to train the label embedding table)")
        clip = build_clip_rn50(pretrained)
        self.weights_loaded: bool = clip.weights_loaded
        self.weights_source: str = clip.weights_source
        self.image_size = image_size
        self.hidden = hidden
        self.visual = clip.visual
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
        in_channels = 1024 + 2048 + 1024 + (1 if self.uses_text else 0)
        self.decoder = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(inplace=True),
                                     nn.Conv2d(hidden, 1, 1))
        if freeze_image:
            for p in self.visual.parameters():
                p.requires_grad_(False)
        self.freeze_image = freeze_image
        self.labels: list[str] = []
        self.train_text_embeddings = False
        if self.uses_text:
            self._text = _TextTower(clip)
            if train_text_embeddings is None:
                train_text_embeddings = not self.weights_loaded
            self.train_text_embeddings = bool(train_text_embeddings)
            self.set_labels(labels)
        if device is not None:
            self.to(device)

    # -- vocabulary
    def set_labels(self, labels: Sequence[str]) -> None:
        """Embed the vocabulary once with the frozen text tower and cache it (``text_embeddings``, ``(N, 1024)``).
        Call before building an optimiser: a trainable table is replaced."""
        labels = [str(label) for label in labels]
        if not labels or len(set(labels)) != len(labels):
            raise ValueError(f"HSI: the label vocabulary must be non-empty and without duplicates, got {labels[:5]}...")
        device = self.decoder[0].weight.device
        emb = self._text.embed(labels).to(device)
        if "text_embeddings" in self._parameters:
            del self._parameters["text_embeddings"]
        if "text_embeddings" in self._buffers:
            del self._buffers["text_embeddings"]
        if self.train_text_embeddings:
            self.text_embeddings = nn.Parameter(emb)
        else:
            self.register_buffer("text_embeddings", emb)
        self.labels = labels

    def label_ids(self, names: Sequence[str]) -> Tensor:
        """Indices of label names in the vocabulary (``ValueError`` naming unknown labels)."""
        unknown = [n for n in names if n not in self.labels]
        if unknown:
            raise ValueError(f"labels {unknown} are not in the model's vocabulary {self.labels}")
        return torch.tensor([self.labels.index(n) for n in names], dtype=torch.long)

    # -- encoder
    def encode_image(self, images: Tensor) -> dict[str, Tensor]:
        """``[0, 1]`` images -> ``u4'`` (B,1024,h,w), ``u5`` (B,2048,h,w), ``z`` (B,1024,h,w), ``pooled`` (B,1024)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"HSI: expected (B, 3, H, W) images in [0, 1], got {tuple(images.shape)}")
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"HSI: expected {self.image_size}x{self.image_size} images, got {tuple(images.shape[-2:])}; "
                             "use hsi_core.models.hsi.preprocess")
        v = self.visual
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        x = v.stem(x.to(v.conv1.weight.dtype))
        u4 = v.layer3(v.layer2(v.layer1(x)))
        u5 = v.layer4(u4)
        tokens = dense_attention_pool(v.attnpool, u5)
        b, d, _ = tokens.shape
        z = tokens[:, :, 1:].reshape(b, d, *u5.shape[-2:])
        return {"u4": u4, "u4p": F.avg_pool2d(u4, 2), "u5": u5, "z": z, "pooled": tokens[:, :, 0]}

    def features(self, enc: dict[str, Tensor]) -> Tensor:
        """The image part of the decoder's input: ``[u4', u5, z]`` of ``encode_image`` concatenated,
        ``(B, 4096, h, w)`` (HSI, "Image encoder", Figure 7; the score map of HSI Eq. 1 joins in ``decode``)."""
        return image_features(enc)

    def decode(self, features: Tensor, a: Tensor | None, *,
               return_intermediates: bool = False) -> Tensor | dict[str, Tensor]:
        """``G_decoder`` (HSI, "Decoder", Figure 7) on ``[features, a]``: the saliency map ``p`` ``(B, S, S)``
        in (0, 1), the conditional map ``P(S | obj, x)`` of HSI Eq. 2 for the label whose score map ``a``
        ``(B, h, w)`` (HSI Eq. 1) is given; ``a=None`` for the baseline. See :func:`run_decoder`."""
        return run_decoder(self.decoder, features, a, self.image_size, return_intermediates=return_intermediates)

    def _check_ids(self, label_ids: Tensor, batch_shape: tuple[int, ...]) -> Tensor:
        if label_ids is None:
            raise ValueError("HSI: label_ids are required (use HSIBaseline for label-free prediction)")
        label_ids = torch.as_tensor(label_ids, dtype=torch.long, device=self.text_embeddings.device)
        if tuple(label_ids.shape) != batch_shape:
            raise ValueError(f"HSI: label_ids of shape {tuple(label_ids.shape)}, expected {batch_shape}")
        if label_ids.numel() and (label_ids.min() < 0 or label_ids.max() >= len(self.labels)):
            raise ValueError(f"HSI: label ids must lie in [0, {len(self.labels)}), got {label_ids.tolist()}")
        return label_ids

    def forward(self, images: Tensor, label_ids: Tensor | None = None) -> dict[str, Tensor]:
        """``images (B, 3, S, S)`` in [0, 1], ``label_ids (B,)`` -> ``saliency (B, S, S)`` in (0, 1),
        ``score_map`` a ``(B, h, w)`` (HSI Eq. 1), ``z (B, 1024, h, w)``."""
        enc = self.encode_image(images)
        ids = self._check_ids(label_ids, (images.shape[0],))
        a = score_map(enc["z"], self.text_embeddings[ids].to(enc["z"].dtype))
        return {"saliency": self.decode(self.features(enc), a), "score_map": a, "z": enc["z"]}

    def object_scores(self, images_or_z: Tensor, label_ids: Tensor) -> Tensor:
        """HSI Eq. 1 for several labels per image: ``label_ids (B, N)`` -> score maps ``(B, N, h, w)``
        (input to HSI Eq. 3).
        Takes images, or ``z`` from a forward pass to avoid encoding twice."""
        z = images_or_z if images_or_z.shape[1] != 3 else self.encode_image(images_or_z)["z"]
        ids = self._check_ids(label_ids, tuple(label_ids.shape))
        return score_map(z, self.text_embeddings[ids].to(z.dtype))

    def forward_objects(self, images: Tensor, label_ids: Tensor) -> dict[str, Tensor]:
        """Conditional maps for ``N`` labels per image in one pass (pretraining, HSI Eq. 8-9).

        ``label_ids (B, N)`` -> ``saliency (B, N, S, S)``, ``score_maps (B, N, h, w)``, ``z``. The encoder
        runs once; the first decoder convolution is linear in its input, so its image part is computed once
        and only the score-map channel's contribution is added per label (identical to decoding each pair).
        """
        if label_ids.ndim != 2 or label_ids.shape[0] != images.shape[0]:
            raise ValueError(f"HSI.forward_objects: label_ids must be (B, N), got {tuple(label_ids.shape)}")
        enc = self.encode_image(images)
        ids = self._check_ids(label_ids, tuple(label_ids.shape))
        a = score_map(enc["z"], self.text_embeddings[ids].to(enc["z"].dtype))        # (B, N, h, w)
        conv1 = self.decoder[0]
        b, n, h, w = a.shape
        with torch.autocast(a.device.type, enabled=False):  # float32 decoder, as run_decoder
            feats = self.features(enc).float()
            image_part = F.conv2d(feats, conv1.weight[:, :-1], conv1.bias, padding=1)
            text_part = F.conv2d(a.float().reshape(b * n, 1, h, w), conv1.weight[:, -1:], padding=1)
            x = image_part.unsqueeze(1) + text_part.view(b, n, -1, h, w)
            logits = self.decoder[2](self.decoder[1](x.flatten(0, 1)))
            out = F.interpolate(torch.sigmoid(logits), size=(self.image_size, self.image_size), mode="bilinear",
                                align_corners=False)
        return {"saliency": out.view(b, n, self.image_size, self.image_size), "score_maps": a, "z": enc["z"]}

    def config(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild the model (and says whether CLIP weights were used)."""
        return {"kind": type(self).__name__, "labels": list(self.labels), "image_size": self.image_size,
                "hidden": self.hidden, "train_text_embeddings": self.train_text_embeddings,
                "freeze_image": self.freeze_image, "clip_weights_loaded": self.weights_loaded,
                "clip_weights_source": self.weights_source}

    def parameter_counts(self) -> dict[str, dict[str, int]]:
        """Parameters per part, trainable vs frozen (the text tower lives outside the module)."""
        parts: dict[str, list[nn.Parameter]] = {
            "image encoder (CLIP RN50 incl. attention pool)": list(self.visual.parameters()),
            "decoder": list(self.decoder.parameters()),
        }
        if self.uses_text:
            parts["label embedding table"] = [self.text_embeddings] if isinstance(self.text_embeddings, nn.Parameter) \
                else [nn.Parameter(self.text_embeddings, requires_grad=False)]
            text = [p for n, p in self._text.clip.named_parameters() if not n.startswith("visual.")]
            parts["text encoder (CLIP transformer, frozen)"] = text
        return {name: {"trainable": sum(p.numel() for p in ps if p.requires_grad),
                       "frozen": sum(p.numel() for p in ps if not p.requires_grad)} for name, ps in parts.items()}


class HSIBaseline(HSI):
    """The image-only baseline of HSI Tables 2-3: same encoder and decoder on ``[u4', u5, z]``, no text, no score map.
    ``label_ids`` are accepted and ignored so both models share one training loop."""

    uses_text = False

    def __init__(self, pretrained: str | Path | None = None, labels: Sequence[str] = HSB_CLASSES,
                 image_size: int = 224, freeze_text: bool = True, device: str | torch.device | None = None,
                 *, train_text_embeddings: bool | None = None, freeze_image: bool = False, hidden: int = 256) -> None:
        super().__init__(pretrained, labels, image_size, freeze_text, None, train_text_embeddings=False,
                         freeze_image=freeze_image, hidden=hidden)
        self.labels = [str(label) for label in labels]
        if device is not None:
            self.to(device)

    def forward(self, images: Tensor, label_ids: Tensor | None = None) -> dict[str, Tensor]:
        """``images (B, 3, S, S)`` in [0, 1] -> ``saliency (B, S, S)``, ``z``; ``score_map`` is ``None``."""
        enc = self.encode_image(images)
        return {"saliency": self.decode(self.features(enc), None), "score_map": None, "z": enc["z"]}

    def forward_objects(self, images: Tensor, label_ids: Tensor) -> dict[str, Tensor]:
        """The same map repeated for each of the ``N`` labels (the baseline cannot condition on them)."""
        out = self.forward(images)
        n = label_ids.shape[1]
        return {"saliency": out["saliency"].unsqueeze(1).expand(-1, n, -1, -1), "score_maps": None, "z": out["z"]}

    def object_scores(self, images_or_z: Tensor, label_ids: Tensor) -> Tensor:
        raise ValueError("HSIBaseline has no text encoder and no score maps")


# ----------------------------------------------------------------------------- checkpoints
def save_hsi(model: HSI, path: str | Path, **meta: Any) -> Path:
    """Save ``{'config', 'state_dict', 'meta'}`` atomically; the config records whether CLIP weights were used."""
    from hsi_core.io import atomic_save_torch

    return atomic_save_torch({"config": model.config(), "state_dict": model.state_dict(), "meta": meta}, path)


def hsi_state_filter(checkpoint: Any, model: nn.Module | None = None) -> dict[str, Tensor]:
    """Filter function (``hsi_core.models.weights``): the HSI state dict of a ``save_hsi`` file
    (``state_dict``) or of a ``training.fit`` checkpoint of ``hsi_tables.HSIFull`` (``model``, every key
    under ``model.``, the wrapper's attribute)."""
    if not isinstance(checkpoint, dict) or not any(isinstance(checkpoint.get(k), dict) for k in ("state_dict", "model")):
        raise ValueError("no 'state_dict' or 'model' entry in the checkpoint")
    state = unwrap_checkpoint(checkpoint, model)
    if state and all(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items()}
    return dict(state)


def load_hsi(path: str | Path, device: str | torch.device | None = None,
             clip_weights: str | Path | None = None, labels: Sequence[str] | None = None) -> HSI:
    """Rebuild an ``HSI``/``HSIBaseline`` saved by ``save_hsi``, or a ``training.fit`` checkpoint
    (``best.pt``/``last.pt`` of ``hsi_tables.HSIFull``: weights under ``model.``, the model's
    ``config`` in its ``meta``). ``clip_weights`` re-attaches a real text tower for new labels.

    ``labels``: the labels the model must explain. The checkpoint's vocabulary comes first (its ids do
    not move); labels it lacks are embedded with the frozen CLIP text tower, which needs real
    ``clip_weights`` and a frozen label table, else ``ValueError`` naming them. ``HSIBaseline``
    ignores labels."""
    wanted = list(dict.fromkeys(labels or []))
    path = Path(path)
    ckpt = read_checkpoint(path, name="HSI checkpoint", weights_only=False,
                           download="Train one with hsi_core.training, or save a model with hsi_core.models.hsi.save_hsi")
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: expected a dict checkpoint, got {type(ckpt).__name__}")
    meta = ckpt.get("meta") if isinstance(ckpt.get("meta"), dict) else {}
    config = ckpt.get("config") or meta.get("config") or {}
    try:
        state = hsi_state_filter(ckpt)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    if state and not any(k.startswith("visual.") for k in state):
        raise ValueError(f"{path}: a decoder-only checkpoint (hsi_tables.HSIHead, trained on cached features of a "
                         "frozen encoder) holds no image encoder; load the run's hsi_finetuned.pt instead")
    kind = config.get("kind", "HSIBaseline" if "text_embeddings" not in state else "HSI")
    cls = {"HSI": HSI, "HSIBaseline": HSIBaseline}.get(kind)
    if cls is None:
        raise ValueError(f"{path}: unknown model kind {kind!r}")
    labels = config.get("labels", list(HSB_CLASSES))
    model = cls(clip_weights, labels=labels, image_size=config.get("image_size", 224),
                hidden=config.get("hidden", 256), freeze_image=config.get("freeze_image", False),
                train_text_embeddings=config.get("train_text_embeddings", False) if cls is HSI else False)
    apply_state(model, state, source=path, expected=f"a checkpoint of this {kind}")
    model.weights_loaded = bool(config.get("clip_weights_loaded", False))
    model.weights_source = str(config.get("clip_weights_source", "unknown"))
    missing = [label for label in wanted if label not in model.labels]
    if missing and model.uses_text:
        if model.train_text_embeddings or clip_weights is None:
            raise ValueError(f"{path}: labels {missing} are not in the checkpoint's vocabulary {model.labels}; "
                             "pass clip_weights (--clip-weights: real CLIP RN50) to embed new labels with a "
                             "frozen text tower")
        model.set_labels(model.labels + missing)
    return model.to(device) if device is not None else model
