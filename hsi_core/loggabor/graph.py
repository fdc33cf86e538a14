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

**Additions** (``adds``). A layer fed by an addition of captured layers' maps (a residual add, the
DIM's sum of branches) reads the sum, not its terms. With ``adds="rebuilt_sum"`` (default) every such
addition becomes a layer of its own, ``point == "sum"``: ``Capture.terms`` names the captured layers
summed (an n-ary sum, e.g. Python's ``sum`` of three branches, is one layer) and the layers after it
are fed by the sum; a block whose output is the sum (CMRNet's M_n = O' + M_(n-1), LG Eq. 10) is that
sum layer under the block's name. The reconstruction rebuilds a sum layer as the sum of its terms'
reconstructions (``reconstruct``). An addition is a sum layer only when each term is a captured
layer's map, directly or through operations on that map alone (CMRNet's max-pooled M_(n-1), a
slice, ``0 + x``: ``Capture.term_ops``, applied to the reconstruction by ``replay``); otherwise, and
with ``adds="union"`` (the first version), the layers after it are fed by the union of the terms'
feeders. A
concatenation needs no layer of its own: each of its channels is a channel of one of its parts, so
the union of the parts' candidates is exact.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn as nn
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_unflatten

INPUT = "input"
POINTS = ("conv", "bn", "activation")
#: How an addition of captured layers is read (module docstring): as a layer rebuilt from the sum of
#: its terms' reconstructions, or the first version's union of the terms' feeders.
ADD_READINGS = ("rebuilt_sum", "union")
SUM_POINT = "sum"
_ADDS = {"add", "__add__", "__radd__", "add_", "__iadd__"}
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
    terms: dict[str, list[str]] = field(default_factory=dict)  # sum layer -> the captured layers it adds
    term_ops: dict[str, list[tuple]] = field(default_factory=dict)  # per term: operations on its map (replay)


class _Tracker(TorchFunctionMode):
    def __init__(self, point: str, adds: str = "rebuilt_sum", repeated: str = "first") -> None:
        super().__init__()
        self.point = point
        self.adds = adds
        self.repeated = repeated
        self._tags: dict[int, tuple[Any, frozenset[str]]] = {}
        self._chain: dict[int, tuple[Any, str]] = {}
        self._derived: dict[int, tuple[Any, tuple[str, tuple]]] = {}
        self.stage: dict[str, list[tuple[str, Tensor]]] = {}  # per call of the module
        self.modules: list[str] = []  # the modules being run, innermost last (names the sums)
        # sum layer -> ((term layer, operations on its map), ...), module it was made in
        self.sums: dict[str, tuple[list[tuple[str, tuple]], str]] = {}
        self.order: list[str] = []  # captured layers and sums, in execution order
        self.add_counts: dict[str, int] = {}  # additions so far in each running module's call

    def owner_of(self, t: Tensor) -> str | None:
        """The captured layer (or sum) whose recorded map is exactly ``t``."""
        for name, calls in self.stage.items():
            if calls and calls[-1][1] is t:
                return name
        return None

    def term_of(self, t: Tensor) -> tuple[str, tuple] | None:
        """``t`` as (captured layer, operations of that map alone that made ``t``), or ``None``."""
        owner = self.owner_of(t)
        if owner is not None:
            return owner, ()
        return self._lookup(self._derived, t)

    def derive(self, func: Any, args: tuple, kwargs: dict, source: Tensor, out: Any) -> None:
        """Record ``out = func(source, ...)`` when ``source`` is a captured map or made from one
        alone, so that the same operations can be applied to its reconstruction (``replay``)."""
        term = self.term_of(source)
        if term is None or not isinstance(out, Tensor) or out.ndim != 4 or out.shape[:2] != source.shape[:2]:
            return
        leaves, spec = tree_flatten((args, kwargs))
        slot = next(i for i, leaf in enumerate(leaves) if leaf is source)
        leaves = [None if i == slot else leaf for i, leaf in enumerate(leaves)]
        self._derived[id(out)] = (weakref.ref(out), (term[0], term[1] + ((func, spec, leaves, slot),)))

    def _sum(self, tensors: list[Tensor], terms: list[tuple[str, tuple] | None], out: Any) -> str | None:
        """Record an addition of captured layers' maps as a sum layer (module docstring); its name."""
        if not isinstance(out, Tensor) or out.ndim != 4 or len(tensors) < 2:
            return None
        if any(t.shape != out.shape for t in tensors) or any(term is None for term in terms):
            return None
        tag_sets = [self.tags(t) for t in tensors]
        union = frozenset().union(*tag_sets)
        if not all(tag_sets) or any(s == union for s in tag_sets):
            return None
        module = self.modules[-1] if self.modules else ""
        found: dict[str, tuple] = {}  # term layer -> operations on its map
        merged = None
        for name, ops in terms:
            # a partial sum made in the same module call (Python's sum over branches): one n-ary sum
            if not ops and merged is None and name in self.sums and self.sums[name][1] == module:
                merged = name
                for term, term_ops in self.sums[name][0]:
                    found.setdefault(term, term_ops)
            else:
                found.setdefault(name, ops)
        parts = list(found.items())
        if merged is not None:  # the n-ary sum runs where its last term is added
            self.sums[merged] = (parts, module)
            self.stage[merged][-1] = (SUM_POINT, out)
            self.order.remove(merged)
            self.order.append(merged)
            return merged
        count = self.add_counts.get(module, 0)
        self.add_counts[module] = count + 1
        name = (f"{module}.add" if module else "add") + (str(count + 1) if count else "")
        if name not in self.stage:
            self.sums[name] = (parts, module)
            self.stage[name] = [(SUM_POINT, out)]
            self.order.append(name)
        elif self.repeated == "concat":
            self.stage[name].append((SUM_POINT, out))
        return name

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
        inplace = (fname.endswith("_") and not fname.endswith("__")) or fname.startswith("__i") \
            or bool(kwargs.get("inplace", False))
        if owner is not None and inplace and self.point != "activation":
            stage, t = self.stage[owner][-1]
            if t is tensors[0]:
                self.stage[owner][-1] = (stage, t.clone())
        is_sum = fname in _ADDS and self.adds == "rebuilt_sum" and kwargs.get("alpha", 1) == 1
        terms = [self.term_of(t) for t in tensors] if is_sum else []
        owned = self.owner_of(tensors[0]) if is_sum and inplace and tensors else None
        if owned is not None:  # an in-place add must not overwrite the recorded map
            copy = tensors[0].clone()
            self.tag(copy, self.tags(tensors[0]))
            self.stage[owned][-1] = (self.stage[owned][-1][0], copy)
            tensors = [copy] + tensors[1:]
        out = func(*args, **kwargs)
        tags = frozenset().union(*(self.tags(t) for t in tensors)) if tensors else frozenset()
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, Tensor)]
        summed = self._sum(tensors, terms, out) if is_sum else None
        if summed is not None:
            tags = frozenset({summed})
        elif self.adds == "rebuilt_sum" and len(tensors) == 1 and not inplace:
            self.derive(func, args, kwargs, tensors[0], out)
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
          point: str = "activation", autocast: bool = False, repeated: str = "first",
          adds: str = "rebuilt_sum") -> Capture:
    """Run ``model(images)`` once and record, for each named module (default: every convolution),
    its activation map at ``point`` and the captured layers (or ``"input"``) that feed it.

    ``autocast``: run the forward pass under bf16 autocast on CUDA (maps are returned in float32;
    a float64 model's in float64).
    ``repeated``: a module called more than once keeps its ``"first"`` call, or (``"concat"``) its
    calls concatenated along the batch (a model that loops over its images one at a time).
    ``adds``: ``"rebuilt_sum"`` (default) records additions of captured maps as sum layers,
    ``"union"`` does not (module docstring)."""
    if repeated not in ("first", "concat"):
        raise ValueError(f"trace: repeated must be 'first' or 'concat', got {repeated!r}")
    if point not in POINTS:
        raise ValueError(f"trace: point must be one of {POINTS}, got {point!r}")
    if adds not in ADD_READINGS:
        raise ValueError(f"trace: adds must be one of {ADD_READINGS}, got {adds!r}")
    modules = dict(model.named_modules())
    names = list(layer_names) if layer_names is not None else default_layer_names(model)
    missing = [n for n in names if n not in modules]
    if missing:
        raise ValueError(f"capture_activations: no modules named {missing[:5]}")
    containers = {n for n in names if any(True for _ in modules[n].children())}
    tracker = _Tracker(point, adds, repeated)
    feeds: dict[str, list[str]] = {}
    order = tracker.order
    not_maps: dict[str, str] = {}

    def ranked(tags: frozenset[str]) -> list[str]:
        return sorted(tags, key=lambda n: (n != INPUT, order.index(n) if n in order else -1))

    def pre_hook(name: str, inputs: tuple) -> None:
        if name in feeds:
            return
        feeds[name] = ranked(frozenset().union(*(tracker.tags(t) for t in tree_flatten(inputs)[0]
                                                 if isinstance(t, Tensor))))

    def hook(name: str, output: Any) -> None:
        if name in not_maps or (name in order and repeated == "first"):
            return
        if not isinstance(output, Tensor) or output.ndim != 4:
            not_maps[name] = f"output is not a (B, C, h, w) map ({type(output).__name__})"
            return
        summed = tracker.owner_of(output) if name in containers else None
        if summed in tracker.sums and name not in order:
            # a block whose output is a sum (M_n = O' + M_(n-1)): the sum layer under the block's name
            order[order.index(summed)] = name
            tracker.stage[name] = tracker.stage.pop(summed)
            tracker.sums[name] = tracker.sums.pop(summed)
            tracker.tag(output, frozenset({name}))
            return
        if name not in order:
            order.append(name)
        if name in containers:  # a block: fed by what its output is computed from (e.g. both terms of an add)
            feeds[name] = ranked(tracker.tags(output))
        tracker.tag(output, frozenset({name}))
        tracker.chain(output, name)
        tracker.stage.setdefault(name, []).append(("conv", output))

    def enter(name: str) -> None:
        tracker.modules.append(name)
        tracker.add_counts.pop(name, None)

    def leave() -> None:  # a hook that returned a value would replace the module's output
        tracker.modules.pop()

    handles = []
    for n, module in modules.items():
        handles.append(module.register_forward_pre_hook(lambda _m, _i, n=n: enter(n)))
        handles.append(module.register_forward_hook(lambda _m, _i, _o: leave()))
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
        # float64 forward passes keep their precision (``reconstruct(precision="float64")``)
        capture.activations[name] = torch.cat([t.detach().to(torch.float64 if t.dtype == torch.float64
                                                              else torch.float32) for _, t in calls])
        capture.points[name] = calls[0][0]
        if name in tracker.sums:
            capture.terms[name] = [term for term, _ in tracker.sums[name][0]]
            capture.term_ops[name] = [ops for _, ops in tracker.sums[name][0]]
            capture.feeds[name] = list(capture.terms[name])
        else:
            capture.feeds[name] = feeds.get(name) or [INPUT]
    return capture


def replay(ops: tuple, maps: Tensor) -> Tensor:
    """Apply the operations ``trace`` recorded between a captured map and a sum's term (pooling,
    resizing, ``0 + x``) to ``maps``, e.g. the map's reconstruction."""
    for func, spec, leaves, slot in ops:
        leaves = list(leaves)
        leaves[slot] = maps
        args, kwargs = tree_unflatten(leaves, spec)
        maps = func(*args, **kwargs)
    return maps


def capture_activations(model: nn.Module, images: Tensor, layer_names: Sequence[str] | None = None, *,
                        point: str = "activation") -> dict[str, Tensor]:
    """The named modules' (default: every convolution) activation maps at ``point``, in the order
    they ran, as ``{name: (B, C, h, w)}``."""
    return trace(model, images, layer_names, point=point, adds="union").activations


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
