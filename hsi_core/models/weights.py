"""One way to load weights into every model of the book (timm's ``load_checkpoint`` with a
``checkpoint_filter_fn`` per model). For example::

    from hsi_core.models.weights import load_state, unwrap_checkpoint
    load_state(net, "cmrnet.pt", filter_fn=unwrap_checkpoint, name="CMRNet weights",
               download="train one with notebook 07")

The steps, in one place: the file must exist (``FileNotFoundError`` naming it and saying what to
download and where to put it); it is read (``torch.load`` with ``weights_only=True`` unless a
format needs more, or a model's own ``reader``); a model's ``filter_fn(state, model)`` turns what
was read into the model's state dict (unwrapping a training checkpoint, renaming foreign keys,
keeping the subset the model uses); the keys and shapes are compared with the model's, and any
difference raises one ``ValueError`` naming the file, what it should hold, and the missing,
unexpected and mis-shaped keys; then ``load_state_dict``.

Models whose constructor arguments live in the checkpoint (``load_hsi``, ``load_small_cnn``) call
the two halves, :func:`read_checkpoint` and :func:`apply_state`, with the model built in between.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

#: ``filter_fn(state, model) -> state dict``: what was read -> the model's state dict (raise
#: ``ValueError`` with the reason when it is not the expected content).
FilterFn = Callable[[Any, nn.Module], Mapping[str, Any]]
#: ``reader(path) -> object``: reads a file that ``torch.load`` alone does not (TorchScript, ``.npz``).
Reader = Callable[[Path], Any]

#: Keys under which checkpoints wrap their state dict: ours (``training.fit``: ``model``; ``save_hsi``:
#: ``state_dict``), UNISAL's training checkpoints (``model_state_dict``), common third-party files.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")


def read_checkpoint(path: str | Path, *, name: str = "weights", download: str = "",
                    weights_only: bool = True, reader: Reader | None = None,
                    map_location: str | torch.device = "cpu") -> Any:
    """The object stored at ``path``: ``FileNotFoundError`` (``"<name> not found at <path>. <download>"``)
    when it is absent, ``ValueError`` naming the file when it cannot be read.

    ``weights_only=False`` is for our own training checkpoints (they hold RNG states); third-party
    files are read with ``weights_only=True``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name} not found at {path}" + (f". {download}" if download else ""))
    if reader is not None:
        return reader(path)  # a reader raises its own ValueError naming the file
    try:
        return torch.load(str(path), map_location=map_location, weights_only=weights_only)
    except Exception as error:  # torch raises several types for a corrupt or foreign file
        raise ValueError(f"{path}: not a readable torch file ({str(error).splitlines()[0][:300]})") from error


def key_differences(state: Mapping[str, Any], model: nn.Module) -> dict[str, list]:
    """Keys of ``model``'s state dict absent from ``state`` (``missing``), keys of ``state`` the model
    lacks (``unexpected``), and ``(key, shape in state, shape in model)`` where both have the key but
    the shapes differ (``shape_mismatch``)."""
    own = model.state_dict()
    shape = lambda v: tuple(v.shape) if hasattr(v, "shape") else None  # noqa: E731
    return {"missing": [k for k in own if k not in state],
            "unexpected": [k for k in state if k not in own],
            "shape_mismatch": [(k, shape(state[k]), tuple(own[k].shape)) for k in own
                               if k in state and shape(state[k]) != tuple(own[k].shape)]}


def _describe(diff: dict[str, list], strict: bool) -> str:
    parts = []
    if strict and diff["missing"]:
        parts.append(f"{len(diff['missing'])} keys missing, e.g. {diff['missing'][:3]}")
    if strict and diff["unexpected"]:
        parts.append(f"{len(diff['unexpected'])} unexpected keys, e.g. {diff['unexpected'][:3]}")
    if diff["shape_mismatch"]:
        examples = ", ".join(f"{k}: file {a}, model {b}" for k, a, b in diff["shape_mismatch"][:3])
        parts.append(f"{len(diff['shape_mismatch'])} keys with a shape mismatch, e.g. {examples}")
    return "; ".join(parts)


def apply_state(model: nn.Module, checkpoint: Any, *, source: str | Path = "<state>", filter_fn: FilterFn | None = None,
                strict: bool = True, expected: str | None = None) -> nn.Module:
    """Load ``filter_fn(checkpoint, model)`` (or ``checkpoint``) into ``model`` and return it.

    Every difference between the filtered keys and the model's (missing and unexpected keys when
    ``strict``; wrong shapes always) raises one ``ValueError``: ``"<source>: not <expected>: ..."``.
    """
    expected = expected or f"a {type(model).__name__} state dict"
    try:
        state = filter_fn(checkpoint, model) if filter_fn is not None else checkpoint
    except ValueError as error:
        raise ValueError(f"{source}: not {expected}: {error}") from error
    if not isinstance(state, Mapping) or not state:
        raise ValueError(f"{source}: not {expected}: the file holds no state dict "
                         f"(got {type(state).__name__}{' (empty)' if isinstance(state, Mapping) else ''})")
    problem = _describe(key_differences(state, model), strict)
    if problem:
        raise ValueError(f"{source}: not {expected}: {problem}")
    model.load_state_dict(dict(state), strict=strict)
    return model


def load_state(model: nn.Module, path: str | Path, *, filter_fn: FilterFn | None = None, strict: bool = True,
               name: str | None = None, expected: str | None = None, download: str = "",
               weights_only: bool = True, reader: Reader | None = None,
               map_location: str | torch.device = "cpu") -> nn.Module:
    """Weights from the local file ``path`` into ``model`` (returned): :func:`read_checkpoint`, then
    :func:`apply_state`.

    Args:
        filter_fn: ``(what was read, model) -> state dict`` (e.g. :func:`unwrap_checkpoint`).
        strict: every key of the model must be in the file and no other (shapes are always checked).
        name: what the file is, for the missing-file message (default ``"<Model> weights"``).
        expected: what the file must hold, for the mismatch message (default ``"a <Model> state dict"``).
        download: where the file is published and where to put it (appended to the missing-file message).
        weights_only, reader, map_location: how the file is read (see :func:`read_checkpoint`).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: the file is unreadable, or its keys or shapes do not fit the model.
    """
    checkpoint = read_checkpoint(path, name=name or f"{type(model).__name__} weights", download=download,
                                 weights_only=weights_only, reader=reader, map_location=map_location)
    return apply_state(model, checkpoint, source=path, filter_fn=filter_fn, strict=strict, expected=expected)


# ----------------------------------------------------------------------------- filter functions
def unwrap_checkpoint(checkpoint: Any, model: nn.Module | None = None) -> Mapping[str, Any]:
    """The state dict inside a checkpoint dict (under one of ``WRAPPER_KEYS``: a ``training.fit``
    checkpoint's ``model``, ``save_hsi``'s ``state_dict``, UNISAL's ``model_state_dict``), or the
    checkpoint itself when it is a bare state dict."""
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"expected a dict, got {type(checkpoint).__name__}")
    for key in WRAPPER_KEYS:
        if isinstance(checkpoint.get(key), Mapping):
            return checkpoint[key]
    return checkpoint


def strip_prefixes(*prefixes: str) -> FilterFn:
    """A filter removing ``prefixes`` from the start of every key (``"module."``: DDP/DataParallel;
    ``"model."``: a wrapper module such as ``hsi_tables.HSIFull``), after :func:`unwrap_checkpoint`."""

    def filter_fn(checkpoint: Any, model: nn.Module | None = None) -> dict[str, Any]:
        state = unwrap_checkpoint(checkpoint, model)
        out = {}
        for key, value in state.items():
            for prefix in prefixes:
                key = key.removeprefix(prefix)
            out[key] = value
        return out

    return filter_fn


def keep_model_keys(checkpoint: Any, model: nn.Module) -> dict[str, Any]:
    """The subset of an (unwrapped) state dict that ``model`` has: for files that hold more than the model
    uses (UNISAL's RNN and video-source keys). Missing keys are still reported by :func:`apply_state`."""
    state = unwrap_checkpoint(checkpoint, model)
    own = model.state_dict()
    return {k: v for k, v in state.items() if k in own}
