"""Which layer feeds which: one forward pass that records the activation maps and the data flow.

The loggabor paper runs its reconstruction "in parallel to" the network (Section II-B): a layer's
candidate responses are the energies of the reconstructions of the layers that feed it. To know
those, ``trace`` runs the model once under a ``TorchFunctionMode`` that tags every tensor with the
set of captured layers it was computed from (``"input"`` for the image): concatenations,
additions, residuals, slicing and resizing all propagate the union of their inputs' tags, so a
layer's feeders are the nearest captured layers upstream of it along every path, through any
code (no symbolic tracing, so models with data-dependent Python such as padding to a multiple of
32 are handled). Tensors made from parameters alone (UNISAL's Gaussian priors) carry no tag.

**Where a layer's activation map is taken** (``point``): ``"conv"`` is the module's own output;
``"bn"`` the output of the normalisation that directly follows it; ``"activation"`` (default, the
paper's figures) the output of the nonlinearity that follows it, through an optional normalisation
and dropout. When no such operation follows (e.g. MobileNetV2's linear bottleneck convolutions, a
convolution whose output is summed first), the latest available point is used and ``points`` says
which.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn as nn
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

INPUT = "input"
POINTS = ("conv", "bn", "activation")
_ACTIVATIONS = {"relu", "relu_", "relu6", "hardtanh", "hardtanh_", "sigmoid", "sigmoid_", "tanh", "tanh_",
                "gelu", "silu", "leaky_relu", "leaky_relu_", "elu", "elu_", "softplus", "hardswish", "mish",
                "selu", "celu"}
_NORMS = {"batch_norm", "instance_norm", "group_norm", "layer_norm"}
_PASS = {"dropout", "dropout2d", "dropout1d", "dropout3d", "feature_dropout", "alpha_dropout", "contiguous"}


def conv_layer_names(model: nn.Module) -> list[str]:
    """Names of every ``nn.Conv2d`` in the model, in registration order."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


def default_layer_names(model: nn.Module, *, blocks: bool = True) -> list[str]:
    """The layers ``trace`` records by default: every convolution and (``blocks``) the block outputs a
    model names in ``explained_blocks`` (CMRNet's M_n after the residual add, LG Eq. 10,
    and its DIM output: the maps "after each such prominent block" of Fig. 6a). A block's feeders are
    the captured layers its output is computed from, and the layers after it read the block."""
    extra = [n for n in getattr(model, "explained_blocks", ()) if blocks]
    return conv_layer_names(model) + [n for n in extra if n not in conv_layer_names(model)]


@dataclass
class Capture:
    """What ``trace`` recorded, in execution order."""

    activations: dict[str, Tensor] = field(default_factory=dict)  # name -> (B, C, h, w)
    feeds: dict[str, list[str]] = field(default_factory=dict)  # name -> feeding layers or "input"
    points: dict[str, str] = field(default_factory=dict)  # name -> "conv" / "bn" / "activation"
    not_maps: dict[str, str] = field(default_factory=dict)  # name -> why it is not a map (e.g. not 4-D)


class _Tracker(TorchFunctionMode):
    def __init__(self, point: str) -> None:
        super().__init__()
        self.point = point
        self._tags: dict[int, tuple[Any, frozenset[str]]] = {}
        self._chain: dict[int, tuple[Any, str]] = {}
        self.stage: dict[str, list[tuple[str, Tensor]]] = {}  # per call of the module

    def _lookup(self, table: dict, t: Tensor) -> Any:
        entry = table.get(id(t))
        return entry[1] if entry is not None and entry[0]() is t else None

    def tags(self, t: Tensor) -> frozenset[str]:
        return self._lookup(self._tags, t) or frozenset()

    def tag(self, t: Tensor, tags: frozenset[str]) -> None:
        self._tags[id(t)] = (weakref.ref(t), tags)

    def chain(self, t: Tensor, name: str) -> None:
        self._chain[id(t)] = (weakref.ref(t), name)

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        tensors = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, Tensor)]
        fname = getattr(func, "__name__", "")
        kind = ("activation" if fname in _ACTIVATIONS else "bn" if fname in _NORMS
                else "pass" if fname in _PASS else None)
        owner = self._lookup(self._chain, tensors[0]) if kind and tensors else None
        inplace = fname.endswith("_") or bool(kwargs.get("inplace", False))
        if owner is not None and inplace and self.point != "activation":
            stage, t = self.stage[owner][-1]
            if t is tensors[0]:
                self.stage[owner][-1] = (stage, t.clone())
        out = func(*args, **kwargs)
        tags = frozenset().union(*(self.tags(t) for t in tensors)) if tensors else frozenset()
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, Tensor)]
        for o in outs:
            self.tag(o, tags)
        if owner is not None and len(outs) == 1:
            order = POINTS.index(self.point)
            if kind == "pass":
                self.chain(outs[0], owner)
                if self.stage[owner][-1][1] is tensors[0]:
                    self.stage[owner][-1] = (self.stage[owner][-1][0], outs[0])
            elif POINTS.index(kind) <= order:
                self.stage[owner][-1] = (kind, outs[0])
                if kind == "bn":  # an activation may still follow
                    self.chain(outs[0], owner)
        return out


@torch.no_grad()
def trace(model: nn.Module, images: Tensor, layer_names: Sequence[str] | None = None, *,
          point: str = "activation", autocast: bool = False, repeated: str = "first") -> Capture:
    """Run ``model(images)`` once and record, for each named module (default: every convolution),
    its activation map at ``point`` and the captured layers (or ``"input"``) that feed it.

    ``autocast``: run the forward pass under bf16 autocast on CUDA (maps are returned in float32).
    ``repeated``: a module called more than once keeps its ``"first"`` call, or (``"concat"``) its
    calls concatenated along the batch (a model that loops over its images one at a time)."""
    if repeated not in ("first", "concat"):
        raise ValueError(f"trace: repeated must be 'first' or 'concat', got {repeated!r}")
    if point not in POINTS:
        raise ValueError(f"trace: point must be one of {POINTS}, got {point!r}")
    modules = dict(model.named_modules())
    names = list(layer_names) if layer_names is not None else default_layer_names(model)
    missing = [n for n in names if n not in modules]
    if missing:
        raise ValueError(f"capture_activations: no modules named {missing[:5]}")
    containers = {n for n in names if any(True for _ in modules[n].children())}
    tracker = _Tracker(point)
    feeds: dict[str, list[str]] = {}
    order: list[str] = []
    not_maps: dict[str, str] = {}

    def pre_hook(name: str, inputs: tuple) -> None:
        if name in feeds:
            return
        tags = frozenset().union(*(tracker.tags(t) for t in tree_flatten(inputs)[0] if isinstance(t, Tensor)))
        feeds[name] = sorted(tags, key=lambda n: (n != INPUT, order.index(n) if n in order else -1))

    def hook(name: str, output: Any) -> None:
        if name in not_maps or (name in order and repeated == "first"):
            return
        if not isinstance(output, Tensor) or output.ndim != 4:
            not_maps[name] = f"output is not a (B, C, h, w) map ({type(output).__name__})"
            return
        if name not in order:
            order.append(name)
        if name in containers:  # a block: fed by what its output is computed from (e.g. both terms of an add)
            tags = tracker.tags(output)
            feeds[name] = sorted(tags, key=lambda n: (n != INPUT, order.index(n) if n in order else -1))
        tracker.tag(output, frozenset({name}))
        tracker.chain(output, name)
        tracker.stage.setdefault(name, []).append(("conv", output))

    handles = []
    for n in names:
        handles.append(modules[n].register_forward_pre_hook(lambda _m, i, n=n: pre_hook(n, i)))
        handles.append(modules[n].register_forward_hook(lambda _m, _i, o, n=n: hook(n, o)))
    use_autocast = autocast and images.device.type == "cuda"
    try:
        with tracker, torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_autocast):
            tracker.tag(images, frozenset({INPUT}))
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    capture = Capture(not_maps=not_maps)
    for name in order:
        calls = tracker.stage[name]
        capture.activations[name] = torch.cat([t.detach().float() for _, t in calls])
        capture.points[name] = calls[0][0]
        capture.feeds[name] = feeds.get(name) or [INPUT]
    return capture


def capture_activations(model: nn.Module, images: Tensor, layer_names: Sequence[str] | None = None, *,
                        point: str = "activation") -> dict[str, Tensor]:
    """The named modules' (default: every convolution) activation maps at ``point``, in the order
    they ran, as ``{name: (B, C, h, w)}``."""
    return trace(model, images, layer_names, point=point).activations


def explainable_layers(model: nn.Module, size: tuple[int, int], *, max_layers: int | None = None,
                       min_side: int = 2, point: str = "activation") -> list[str]:
    """Convolutions of ``model`` to rebuild for a ``size`` input: those whose map is at least
    ``min_side`` pixels on each side (2: one 8x8 block at the x4 scale, the smallest the method can
    use), evenly thinned to at most ``max_layers`` (``None``: all), the last one kept. In graph mode
    a thinned list still follows the graph: a layer's feeders are the nearest listed layers upstream."""
    import numpy as np

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        acts = capture_activations(model, torch.zeros(1, 3, *size, device=device), conv_layer_names(model),
                                   point=point)
    finally:
        model.train(was_training)
    names = [n for n, a in acts.items() if min(a.shape[-2:]) >= min_side]
    if not names:
        raise ValueError(f"explainable_layers: no convolution output is {min_side}x{min_side} or larger at {size}")
    if max_layers is None or len(names) <= max_layers:
        return names
    picks = np.unique(np.round(np.linspace(0, len(names) - 1, max_layers)).astype(int))
    return [names[i] for i in picks]
