"""The one precision policy of the book: when bfloat16 autocast and channels-last tensors are on.

``resolve_speedups(device, amp, channels_last)`` is the single decision; ``training.fit``, the HSI
tables, ``predict`` and ``generation`` all ask it:

* ``None`` (the default): on for CUDA, off on the CPU (bfloat16 on a CPU without AMX is slower than
  float32, and the CPU is where the exact-resume guarantees of ``training`` are tested);
* ``True`` / ``False``: exactly that, on any device: an explicit ``amp=True`` on the CPU runs
  bfloat16 autocast there (PyTorch supports it), it is not silently ignored.

The two switches are independent; ``predict`` exposes one knob (``amp``) and turns channels-last off
with it (:func:`inference_speedups`).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ContextManager

import torch


def resolve_speedups(device: str | torch.device, amp: bool | None = None,
                     channels_last: bool | None = None) -> tuple[bool, bool]:
    """``(amp, channels_last)`` in effect on ``device``: each ``None`` means on for CUDA only; a bool is kept."""
    on_gpu = torch.device(device).type == "cuda"
    return (on_gpu if amp is None else bool(amp), on_gpu if channels_last is None else bool(channels_last))


def inference_speedups(device: str | torch.device, amp: bool | None) -> tuple[bool, bool]:
    """The policy with one knob (prediction, generation): ``amp=False`` turns channels-last off as well;
    otherwise :func:`resolve_speedups` with channels-last at its device default."""
    return resolve_speedups(device, amp, False if amp is False else None)


def autocast(device: str | torch.device, amp: bool) -> ContextManager[Any]:
    """bfloat16 autocast on ``device`` when ``amp``, else nothing."""
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16) if amp else nullcontext()
