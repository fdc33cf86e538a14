"""Settings the papers fix, pinned where the code uses them: a default that drifts from the paper (or a
helper that stops computing what its name says) fails here even when every function still runs.

Each test names the planted bug it catches."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from hsi_core import evaluation, paper, pseudo_labels


def _object(height: int, width: int, area_share: float) -> np.ndarray:
    """A square mask covering ``area_share`` of an (height, width) image, top-left corner."""
    side = int(round(np.sqrt(area_share * height * width)))
    mask = np.zeros((height, width), dtype=bool)
    mask[:side, :side] = True
    return mask


def _fixations_on(mask: np.ndarray, share: float, total: int = 200, seed: int = 0) -> np.ndarray:
    """A binary fixation map with ``total`` fixated pixels, ``share`` of them inside ``mask``."""
    rng = np.random.default_rng(seed)
    inside, outside = np.flatnonzero(mask), np.flatnonzero(~mask)
    n_in = int(round(share * total))
    fix = np.zeros(mask.size, dtype=bool)
    fix[rng.choice(inside, n_in, replace=False)] = True
    fix[rng.choice(outside, total - n_in, replace=False)] = True
    return fix.reshape(mask.shape)


def test_algorithm1_defaults_are_the_papers_thresholds():
    """Catches T_A 0.1 -> 0.05, T_R 0.05 -> 0.02 or sigma 19 -> other, in the constants or in any
    default that should use them (algorithm1, prepare)."""
    expected = paper.HSI_ALGORITHM1
    assert (pseudo_labels.T_A, pseudo_labels.T_R, pseudo_labels.SIGMA) == (expected["T_a"], expected["T_r"], expected["sigma"])
    for function in (pseudo_labels.algorithm1, pseudo_labels.prepare):
        params = inspect.signature(function).parameters
        assert params["t_a"].default == expected["T_a"], function.__name__
        assert params["t_r"].default == expected["T_r"], function.__name__
        assert params["sigma"].default == expected["sigma"], function.__name__


@pytest.mark.parametrize("area_share,fixation_share,kept", [
    (0.07, 0.5, False),   # below T_a = 0.1 (kept if T_a were 0.05)
    (0.13, 0.5, True),
    (0.25, 0.03, False),  # below T_r = 0.05 (kept if T_r were 0.02)
    (0.25, 0.08, True),
])
def test_algorithm1_with_its_defaults_applies_both_tests(area_share, fixation_share, kept):
    """Behaviour, not constants: an object between the paper's threshold and a plausible wrong one
    (T_a 0.05, T_r 0.02) is dropped; one just above the paper's kept."""
    mask = _object(96, 128, area_share)
    fix = _fixations_on(mask, fixation_share)
    labels = pseudo_labels.algorithm1(fix, [("thing", mask)])
    assert (len(labels) == 1) is kept
    if kept:
        assert labels[0].area_ratio == pytest.approx(mask.mean())
        assert labels[0].fixation_ratio == pytest.approx(fixation_share, abs=1e-9)


def test_inference_time_reports_the_median_not_the_mean_or_max(monkeypatch):
    """A scripted clock (no real timing): per-call durations 0.9 (warm-up), 0.1, 0.5, 0.2 seconds on a
    batch of 2. The median per image is 0.1; the mean (0.133) or the max (0.25), or counting the
    warm-up, is caught."""
    import time

    durations = iter([0.9, 0.1, 0.5, 0.2])
    clock = {"now": 0.0}

    def predict(x):
        clock["now"] += next(durations)   # the call "takes" its scripted time on the fake clock
        return x

    monkeypatch.setattr(time, "perf_counter", lambda: clock["now"])
    per_image = evaluation.inference_time(predict, torch.zeros(2, 3, 4, 4), repeats=3, warmup=1)
    assert per_image == pytest.approx(0.2 / 2)
