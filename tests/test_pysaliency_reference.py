"""Our pysaliency-convention variants equal pysaliency 0.2.22 on real NUS Scene fixations.

pysaliency is a test reference only (the ``test`` extra), like phasepack. It still calls
``np.trapz``, which numpy 2 removed; the alias is set here, in the test, never in the library.

Scored: 30 real NUS Scene images of 256x256 (the set's most common size; at one size pysaliency's
move of other images' fixations onto a grid and ours are the same) at full resolution, five kinds of
prediction (a centre prior, one half of the viewers, a map with many ties, the image's intensity,
and a flat map for every third image), against every image's fixations. Each switch
(``nss_convention``, ``judd_convention``, ``sim_convention``, ``coordinates``, ``dataset_mean``) is
checked in its pysaliency setting against pysaliency to 1e-6 (float64 on both sides: the
differences are rounding, about 1e-13), and in its MIT setting shown to differ (so the switch is
live). Each assertion names the planted bug it catches.
"""

from __future__ import annotations

import numpy as np
import pytest

if not hasattr(np, "trapz"):  # numpy 2: pysaliency's ROC code calls np.trapz
    np.trapz = np.trapezoid

pysaliency = pytest.importorskip("pysaliency")
# pysaliency's KL takes log(0) of a density with zeros before its regularisation (harmless there)
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero encountered in log:RuntimeWarning")

from hsi_core import datasets, evaluation, metrics  # noqa: E402
from hsi_core.baselines import centre_bias_map  # noqa: E402
from hsi_core.fixations import saliency_map, split_half  # noqa: E402
from hsi_core.io import read_image  # noqa: E402

SIZE = (256, 256)
N_IMAGES = 30
TOL = 1e-6
PYSALIENCY = dict(nss_convention="pysaliency", judd_convention="pysaliency", sim_convention="pysaliency")


class _Maps(pysaliency.SaliencyMapModel):
    """Precomputed maps as a pysaliency model; stimulus ``i`` carries ``i`` in its first pixel."""

    def __init__(self, maps: list[np.ndarray]) -> None:
        super().__init__(caching=False)
        self.maps = maps

    def _saliency_map(self, stimulus: np.ndarray) -> np.ndarray:
        return self.maps[int(stimulus[0, 0, 0])]


@pytest.fixture(scope="module")
def nus(shared_root):
    root = shared_root / "nus-scene"
    stimuli = datasets.nus_scene_stimuli(root)
    records = [r for r in datasets.scanpath_records(root / "tidy/fixations.mat", stimuli, limit=120)
               if (r.height, r.width) == SIZE][:N_IMAGES]
    assert len(records) == N_IMAGES
    pool = evaluation.FixationPool.from_records(records, coordinates="truncate")
    counts = np.stack([pool.counts(i, SIZE) for i in range(N_IMAGES)])
    sigma = evaluation.SIGMA_FRACTION * SIZE[1]
    gt = np.stack([saliency_map(c > 0, sigma) for c in counts]).astype(np.float64)
    centre = np.broadcast_to(centre_bias_map(*SIZE).astype(np.float64), (N_IMAGES, *SIZE))
    half = np.stack([split_half(r.viewers, SIZE, sigma, seed=i)[0] for i, r in enumerate(records)]).astype(np.float64)
    intensity = np.stack([read_image(r.image_path).astype(np.float64).mean(2) for r in records])
    flat = half.copy()
    flat[::3] = 0.5
    kinds = {"centre": np.ascontiguousarray(centre), "half": half, "tied": np.round(half * 6) / 6,
             "intensity": intensity, "flat every third": flat}
    points = [np.concatenate(r.viewers) for r in records]
    fixations = pysaliency.Fixations.create_without_history(
        np.concatenate([p[:, 0] for p in points]), np.concatenate([p[:, 1] for p in points]),
        np.concatenate([np.full(len(p), i) for i, p in enumerate(points)]))
    stim = pysaliency.Stimuli([np.full((*SIZE, 3), i, np.uint8) for i in range(N_IMAGES)])
    return {"records": records, "pool": pool, "counts": counts, "gt": gt, "kinds": kinds,
            "fixations": fixations, "stimuli": stim, "points": points}


def _rows(nus, pred, *, coordinates="truncate", **conventions):
    pool = nus["pool"] if coordinates == "truncate" else evaluation.FixationPool.from_records(nus["records"])
    counts = np.stack([pool.counts(i, SIZE) for i in range(N_IMAGES)])
    return evaluation.score_maps(pred, nus["gt"], counts, range(N_IMAGES), pool, own_counts=True, **conventions)


@pytest.mark.parametrize("kind", ["centre", "half", "tied", "intensity", "flat every third"])
def test_pysaliency_conventions_equal_pysaliency(nus, kind):
    pred = nus["kinds"][kind]
    model, gold = _Maps(list(pred)), _Maps(list(nus["gt"]))
    stim, fix = nus["stimuli"], nus["fixations"]
    rows = _rows(nus, pred, **PYSALIENCY)
    per_fixation = evaluation.summarize(rows, dataset_mean="fixation")
    per_image = evaluation.summarize(rows)
    assert per_image["n_CC"] == per_image["n_NSS"] == N_IMAGES  # flat maps scored, never dropped
    # nss_convention="pysaliency" + dataset_mean: catches the MIT std (ddof=1), each fixated pixel
    # once, rounding instead of truncation, and a per-image mean where pysaliency weighs fixations
    assert per_fixation["NSS"] == pytest.approx(model.NSS(stim, fix, average="fixation"), abs=TOL)
    assert per_image["NSS"] == pytest.approx(model.NSS(stim, fix, average="image"), abs=TOL)
    # judd_convention="pysaliency": catches positives counted per pixel, and unfixated negatives lost
    assert per_image["AUC-Judd"] == pytest.approx(model.AUC_Judd(stim, fix, jitter=False), abs=TOL)
    # sAUC (ours is pysaliency's by default): catches an image's own fixations among its negatives
    assert per_fixation["sAUC"] == pytest.approx(model.sAUC(stim, fix, average="fixation"), abs=TOL)
    assert per_image["sAUC"] == pytest.approx(model.sAUC(stim, fix, average="image"), abs=TOL)
    # CC (one convention) and undefined="pysaliency": catches a flat map dropped or scored other than 0
    assert per_image["CC"] == pytest.approx(model.CC(stim, gold), abs=TOL)
    # sim_convention="pysaliency": catches a min-max before the sum normalisation
    assert per_image["SIM"] == pytest.approx(model.SIM(stim, gold), abs=TOL)
    kl = np.mean([pysaliency.metrics.MIT_KLDiv(p, g) for p, g in zip(pred, nus["gt"])])
    assert per_image["KL"] == pytest.approx(kl, abs=TOL)


def test_single_metrics_equal_pysaliency_per_image(nus):
    """The single-metric functions' pysaliency conventions, image by image (pysaliency's functions on
    truncated coordinates)."""
    from pysaliency.roc import general_roc

    pred = nus["kinds"]["intensity"]
    for i in range(0, N_IMAGES, 5):
        p, counts, g = pred[i], nus["counts"][i], nus["gt"][i]
        xs, ys = np.trunc(nus["points"][i][:, 0]).astype(int), np.trunc(nus["points"][i][:, 1]).astype(int)
        assert metrics.nss(p, counts, convention="pysaliency") == pytest.approx(
            pysaliency.metrics.NSS(p, xs, ys).mean(), abs=1e-9)
        unfixated = p[counts == 0]
        assert metrics.auc_judd(p, counts, convention="pysaliency") == pytest.approx(
            general_roc(p[ys, xs].astype(float), unfixated.astype(float), judd=1)[0], abs=1e-9)
        assert metrics.sim(p, g, convention="pysaliency") == pytest.approx(pysaliency.metrics.SIM(p, g), abs=1e-9)
        assert metrics.cc(p, g) == pytest.approx(pysaliency.metrics.CC(p, g), abs=1e-9)
        assert metrics.cc(np.full_like(p, 3.0), g, undefined="pysaliency") == pysaliency.metrics.CC(np.full_like(p, 3.0), g)


def test_each_switch_changes_the_score(nus):
    """Each switch's MIT setting differs from pysaliency on these real maps (so each switch is live and
    the equality above is not a coincidence of the data)."""
    # (SIM needs a map whose minimum is not 0: a blurred fixation map's is, and min-max changes nothing)
    for switch, metric, kind in (("nss_convention", "NSS", "half"), ("judd_convention", "AUC-Judd", "half"),
                                 ("sim_convention", "SIM", "intensity")):
        pred = nus["kinds"][kind]
        reference = evaluation.summarize(_rows(nus, pred, **PYSALIENCY), dataset_mean="fixation")
        mit = evaluation.summarize(_rows(nus, pred, **{**PYSALIENCY, switch: "mit"}), dataset_mean="fixation")
        assert abs(mit[metric] - reference[metric]) > 1e-4, switch
    pred = nus["kinds"]["half"]
    reference = evaluation.summarize(_rows(nus, pred, **PYSALIENCY), dataset_mean="fixation")
    rounded = evaluation.summarize(_rows(nus, pred, coordinates="round", **PYSALIENCY), dataset_mean="fixation")
    assert abs(rounded["NSS"] - reference["NSS"]) > 1e-4
    per_image = evaluation.summarize(_rows(nus, pred, **PYSALIENCY))
    assert abs(per_image["NSS"] - reference["NSS"]) > 1e-4
