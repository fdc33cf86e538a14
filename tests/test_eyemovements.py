import csv

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from hsi_core import datasets, demo
from hsi_core import eyemovements as em


@pytest.fixture(scope="module")
def scanpaths(demo_world):
    tasks = {t: datasets.load_scanpaths(demo_world / f"scanpaths/{t}/fixations.mat") for t in ("free_viewing", "explanation")}
    groups = [r["group"] for r in csv.DictReader(open(demo_world / "scanpaths/viewers.csv"))]
    truth = demo.load_truth(demo_world)["scanpaths"]
    return tasks, groups, (truth["height"], truth["width"])


def test_recovers_the_planted_viewer_groups(scanpaths):
    tasks, groups, size = scanpaths
    n = 6
    study = em.Study([[p[:, :2] for p in row] for row in tasks["free_viewing"][:n]], [size] * n)
    hmms = em.fit_all(study, k_max=3, progress=False)
    labels = em.co_cluster(em.divergence_matrix(study, hmms))
    assert adjusted_rand_score(groups, labels) >= 0.8
    reps = em.representative_hmms(study, hmms, labels)
    explorative = em.explorative_group(reps)
    members = {groups[i] for i in np.flatnonzero(labels == explorative)}
    assert members == {"explorative"}


def test_finds_the_planted_task_difference(scanpaths):
    tasks, groups, size = scanpaths
    n, viewers = 8, len(groups)
    study = em.Study([[tasks[t][i][v][:, :2] for t in tasks for v in range(viewers)] for i in range(n)], [size] * n)
    hmms = em.fit_all(study, k_max=3, progress=False)
    labels = em.co_cluster(em.divergence_matrix(study, hmms))
    reps = em.representative_hmms(study, hmms, labels)
    e, f = em.group_log_likelihoods(study, reps, em.explorative_group(reps))
    ef = em.ef_scale(e, f)
    result = em.paired_t(ef[viewers:], ef[:viewers])  # explanation vs free viewing, per viewer
    assert result.t < 0 and result.p < 0.05 and result.d < 0
    rows = em.group_separation(study, reps, labels, em.explorative_group(reps))
    assert [r["group"] for r in rows] == ["explorative", "focused"]


def test_roi_count_selection_recovers_known_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[40, 40], [160, 50], [100, 150]])
    for k_true in (1, 3):
        states = rng.integers(0, k_true, 60)
        path = centres[states] + rng.normal(0, 4, (60, 2))
        model = em.fit_hmm([path], 200, 200, k_max=5)
        assert model.n_rois == k_true


def test_ef_scale():
    assert em.ef_scale(-100.0, -200.0) == pytest.approx(100 / 300)
    assert em.ef_scale(-200.0, -100.0) == pytest.approx(-100 / 300)
    np.testing.assert_allclose(em.ef_scale(np.array([-1.0, -3.0]), np.array([-3.0, -1.0])), [0.5, -0.5])
    with pytest.raises(ValueError):
        em.ef_scale(0.0, 0.0)


def test_bad_scanpaths():
    with pytest.raises(ValueError, match="1 fixation"):
        em.fit_hmm([np.array([[10.0, 10.0]])], 100, 100)
    with pytest.raises(ValueError, match="outside"):
        em.fit_hmm([np.array([[10.0, 10.0], [150.0, 20.0]])], 100, 100)
    with pytest.raises(ValueError, match="NaN"):
        em.fit_hmm([np.array([[10.0, np.nan], [15.0, 20.0]])], 100, 100)
    with pytest.raises(ValueError, match="at least 2"):
        em.paired_t([1.0], [2.0])


def test_statistics_against_scipy_and_hand_values():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1, 1, 20), rng.normal(0, 1, 20)
    r = em.paired_t(a, b)
    diff = a - b
    assert r.df == 19 and r.d == pytest.approx(diff.mean() / diff.std(ddof=1))
    assert r.t == pytest.approx(diff.mean() / (diff.std(ddof=1) / np.sqrt(20)))
    z = rng.normal(size=200)
    x = z + rng.normal(size=200)
    y = z + rng.normal(size=200)
    c = np.corrcoef([x, y, z])
    expected = (c[0, 1] - c[0, 2] * c[1, 2]) / np.sqrt((1 - c[0, 2] ** 2) * (1 - c[1, 2] ** 2))
    partial, df, p = em.partial_correlation(x, y, z)
    assert partial == pytest.approx(expected, abs=1e-10) and df == 197
    assert c[0, 1] > 0.3 and abs(partial) < c[0, 1]  # removing the shared covariate weakens it
