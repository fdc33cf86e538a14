"""hsi_core.experiments.xai_benchmark: Table 4 and the extended ranking on maps whose right order is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hsi_core.experiments import xai_benchmark as bx
from hsi_core import maps

from hsi_core.paths import shared_data_root

#: The paper's text sits beside the shared data (``paths.shared_data_root``, so ``HSI_SHARED_DATA`` moves it too).
_SHARED = shared_data_root()
PAPER = (_SHARED.parent if _SHARED is not None else Path("/nonexistent")) / "papers" / "hsi-human-saliency-imitator.txt"


def blobs(n: int = 40, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size).double(), torch.arange(size).double(), indexing="ij")
    cy, cx = torch.rand(n, 1, 1, generator=g) * size, torch.rand(n, 1, 1, generator=g) * size
    return torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 5.0 ** 2))


def graded_methods(hsi: torch.Tensor, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    noise = lambda: torch.rand(hsi.shape, generator=g, dtype=torch.float64)  # noqa: E731
    return {"close": hsi + 0.1 * noise(), "middle": hsi + 0.6 * noise(), "far": noise()}


def test_table4_ranks_the_known_order() -> None:
    hsi = blobs()
    t4 = bx.table4(graded_methods(hsi), hsi)
    assert list(t4["Method"]) == ["close", "middle", "far"]
    assert list(t4["Ranking"]) == [1, 2, 3]
    assert t4["MAE"].is_monotonic_increasing


def test_extended_ranking_agrees_and_is_stable_when_the_order_is_clear() -> None:
    hsi = blobs()
    res = bx.run_benchmark(graded_methods(hsi), hsi, n_boot=500)
    assert res.n_images == 40 and res.n_excluded == 0
    ranks = bx.ranking_table(res.extended)
    for metric in bx.METRICS:
        assert list(ranks[metric].loc[["close", "middle", "far"]]) == [1, 2, 3], metric
    np.testing.assert_allclose(res.kendall.to_numpy(), 1.0)
    assert (res.extended["ci_low"] <= res.extended["mean"]).all()
    assert (res.extended["mean"] <= res.extended["ci_high"]).all()
    assert (res.extended["rank_stability"] > 0.95).all()
    # Table 4 is the MAE slice of the extended ranking
    mae = res.extended[res.extended.metric == "MAE"].set_index("method")["mean"]
    np.testing.assert_allclose(res.table4.set_index("Method")["MAE"], mae.loc[res.table4["Method"]])


def test_reversed_rankings_give_negative_tau() -> None:
    ext = pd.DataFrame({"metric": ["A"] * 3 + ["B"] * 3, "method": list("xyz") * 2, "rank": [1, 2, 3, 3, 2, 1]})
    tau = bx.kendall_matrix(ext)
    assert tau.loc["A", "B"] == pytest.approx(-1.0) and tau.loc["A", "A"] == 1.0


def test_bootstrap_ci_width_matches_the_standard_error() -> None:
    rng = np.random.default_rng(0)
    scores = {"MAE": pd.DataFrame({"m": rng.normal(0.5, 0.1, 400), "n": rng.normal(0.6, 0.1, 400)})}
    ext = bx.extended_ranking(scores, n_boot=4000, seed=1)
    width = (ext["ci_high"] - ext["ci_low"]).to_numpy()
    expected = 2 * 1.96 * 0.1 / np.sqrt(400)
    np.testing.assert_allclose(width, expected, rtol=0.15)


def _pysaliency_metrics():
    np.trapz = getattr(np, "trapz", np.trapezoid)          # pysaliency 0.2 imports np.trapz (numpy 2 removed it)
    return pytest.importorskip("pysaliency.metrics")


@pytest.mark.parametrize("undefined", ["pysaliency", "skip"])
def test_a_blank_map_is_a_failure_of_its_method_scored_where_defined(undefined: str) -> None:
    """Planted bugs caught: the image dropped for every method and metric (the old ``valid_images`` filter:
    n_images 9, the other methods' means change); a blank map's MAE left out (its failures cost nothing);
    the failure not counted; CC/NSS/SIM of a blank map not scored as pysaliency scores a constant map."""
    hsi = blobs(10)
    methods = graded_methods(hsi)
    methods["far"][3] = 0.0                                     # e.g. a Grad-CAM map killed by the ReLU
    methods["far"][5] = 0.7                                     # a constant, non-zero map
    res = bx.run_benchmark(methods, hsi, n_boot=200, undefined=undefined)
    assert res.n_images == 10 and res.n_excluded == 0
    fails = res.failures.set_index("method")
    assert fails.loc["far", "blank"] == 2 and fails.loc["close", "blank"] == 0 and fails.loc["HSI", "blank"] == 0
    assert fails.loc["far", "blank maps"] == "2 of 10 maps blank"
    assert res.table4.set_index("Method").loc["far", "blank maps"] == "2 of 10"
    # the other methods are scored on all 10 images, exactly as without the failing method
    alone = bx.run_benchmark({k: v for k, v in methods.items() if k != "far"}, hsi, n_boot=200, undefined=undefined)
    for metric in bx.METRICS:
        pd.testing.assert_frame_equal(res.scores[metric][["close", "middle"]], alone.scores[metric])
    ext = res.extended.set_index(["metric", "method"])
    mm = (hsi - hsi.amin((1, 2), keepdim=True)) / (hsi.amax((1, 2), keepdim=True) - hsi.amin((1, 2), keepdim=True))
    for i in (3, 5):                                            # scored where defined, in both conventions
        assert res.scores["MAE"].loc[i, "far"] == pytest.approx(float(mm[i].mean()), rel=1e-12)
        uniform = torch.full_like(hsi[i], 1.0)
        assert res.scores["KL"].loc[i, "far"] == pytest.approx(float(bx.metrics.kl_div(uniform, hsi[i])), rel=1e-12)
    assert ext.loc[("MAE", "far"), "n"] == 10 and ext.loc[("KL", "far"), "n"] == 10
    if undefined == "skip":
        for metric in ("CC", "SIM", "NSS"):
            assert np.isnan(res.scores[metric].loc[[3, 5], "far"]).all() and ext.loc[(metric, "far"), "n"] == 8
            assert ext.loc[(metric, "far"), "mean"] == pytest.approx(res.scores[metric]["far"].drop([3, 5]).mean())
    else:
        pm = _pysaliency_metrics()
        fix = maps.top_fraction_fixations(hsi, 0.05, method="count")
        # the all-zero map (i = 3) against pysaliency itself; pysaliency's own CC/NSS of the 0.7 map (i = 5)
        # are rounding noise (0.7 - mean(0.7) = +-1e-16, divided by a std of 1e-16), so that one must equal
        # the zero map's scores: a constant map is one distribution whatever its value
        flat = methods["far"][3].numpy()
        assert res.scores["CC"].loc[3, "far"] == pytest.approx(pm.CC(flat, hsi[3].numpy()), abs=1e-12)
        ys, xs = np.nonzero(fix[3].numpy())
        assert res.scores["NSS"].loc[3, "far"] == pytest.approx(float(np.mean(pm.NSS(flat, xs, ys))), abs=1e-12)
        for i in (3, 5):
            assert res.scores["SIM"].loc[i, "far"] == pytest.approx(pm.SIM(methods["far"][i].numpy(), mm[i].numpy()),
                                                                    rel=1e-9)
        assert res.scores["CC"].loc[5, "far"] == res.scores["CC"].loc[3, "far"] == 0
        assert res.scores["NSS"].loc[5, "far"] == res.scores["NSS"].loc[3, "far"] == 0
        assert (ext.xs("far", level="method")["n"] == 10).all()
    with pytest.raises(ValueError, match="HSI maps \\[2\\] are blank"):
        bx.per_image_scores(methods, torch.cat([hsi[:2], torch.zeros_like(hsi[:1]), hsi[3:]]))


def test_a_blank_hsi_map_excludes_its_image_for_every_method_and_is_counted() -> None:
    hsi = blobs(10)
    methods = graded_methods(hsi)
    hsi = hsi.clone()
    hsi[4] = 0.25
    res = bx.run_benchmark(methods, hsi, n_boot=100)
    assert res.n_images == 9 and res.n_excluded == 1 == res.n_hsi_blank
    assert res.failures.set_index("method").loc["HSI", "blank maps"] == "1 of 10 maps blank"
    assert all(len(t) == 9 for t in res.scores.values())


def test_ties_are_reported_as_ties_not_broken_by_column_order() -> None:
    """Planted bug caught: ranks by argsort (the old ``_ranks``): two methods with the same maps get ranks 1 and 2
    in column order, and the resamples keep that order, so the tie looks like a stable ranking."""
    hsi = blobs(12)
    g = graded_methods(hsi)
    methods = {"twin_b": g["middle"], "twin_a": g["middle"].clone(), "far": g["far"]}
    res = bx.run_benchmark(methods, hsi, n_boot=200)
    ext = res.extended.set_index(["metric", "method"])
    for metric in bx.METRICS:
        assert ext.loc[(metric, "twin_a"), "rank"] == ext.loc[(metric, "twin_b"), "rank"] == 1, metric
        assert ext.loc[(metric, "far"), "rank"] == 3, metric                    # competition ranking: 1, 1, 3
        assert ext.loc[(metric, "twin_a"), "tied_with"] == "twin_b" and ext.loc[(metric, "far"), "tied_with"] == ""
    t4 = res.table4.set_index("Method")
    assert t4.loc["twin_a", "Ranking"] == t4.loc["twin_b", "Ranking"] == 1 and t4.loc["twin_a", "tied with"] == "twin_b"
    readings = bx.table4_readings(methods, hsi)
    assert (readings[readings.Method != "far"]["rank"] == 1).all()
    assert bx.table4_readings_verdict(readings)["readings"]["min-max"]["ranking"] == "twin_b = twin_a < far"
    np.testing.assert_array_equal(bx.competition_ranks(np.array([0.2, 0.1, 0.2, np.nan]), True), [2, 1, 2, np.nan])
    np.testing.assert_array_equal(bx.competition_ranks(np.array([0.2, 0.1, 0.2]), False), [1, 3, 1])


def test_kendall_tau_b_equals_scipy_with_ties() -> None:
    """Planted bug caught: tau-a (ties not in the denominator) or ties counted as concordant."""
    from scipy.stats import kendalltau

    rng = np.random.default_rng(0)
    a, b = rng.integers(1, 4, size=(200, 5)).astype(float), rng.integers(1, 4, size=(200, 5)).astype(float)
    ours = bx.kendall_tau_b(a, b)
    theirs = np.array([kendalltau(x, y).statistic for x, y in zip(a, b)])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert np.isnan(bx.kendall_tau_b(np.ones(3), np.arange(3.0)))


def test_kendall_interval_comes_from_the_shared_resamples() -> None:
    """Planted bugs caught: tau's interval taken from the point rankings (always [tau, tau]); resamples drawn
    independently per metric (two metrics with the same scores would then disagree on some resamples)."""
    rng = np.random.default_rng(0)
    base = rng.normal(0.5, 0.1, size=(60, 3))
    close = pd.DataFrame({"x": base[:, 0], "y": base[:, 0] + rng.normal(0, 0.05, 60), "z": base[:, 2] + 0.5})
    scores = {"MAE": close, "KL": close.copy(), "CC": -close}
    ci = bx.kendall_intervals(scores, n_boot=400, seed=1).set_index(["metric_a", "metric_b"])
    same = ci.loc[("MAE", "KL")]
    assert same["tau"] == 1 and same["ci_low"] == 1 and same["share_same"] == 1  # same scores, same resamples
    flipped = ci.loc[("MAE", "CC")]
    assert flipped["tau"] == 1 and flipped["ci_low"] == 1                        # CC is higher-better: -MAE agrees
    noisy = {"MAE": close, "SIM": pd.DataFrame({"x": base[:, 0] + rng.normal(0, 0.05, 60), "y": base[:, 0],
                                                "z": base[:, 2] + 0.5})}
    row = bx.kendall_intervals(noisy, n_boot=400, seed=1).iloc[0]
    # x and y are indistinguishable, so their order flips between resamples under either metric: tau's
    # interval reaches below its point value (1/3 on a flip of x and y with z apart)
    assert row["ci_low"] < row["ci_high"] and row["ci_low"] <= 1 / 3 + 1e-12 and 0 < row["share_same"] < 1
    res = bx.run_benchmark(graded_methods(blobs()), blobs(), n_boot=200)
    assert set(zip(res.kendall_ci.metric_a, res.kendall_ci.metric_b)) == \
        {(a, b) for i, a in enumerate(bx.METRICS) for b in bx.METRICS[i + 1:]}
    assert (res.kendall_ci["ci_low"] == 1).all()                                 # a clear order is certain


@pytest.mark.parametrize("case", ["all methods blank", "all hsi blank", "one image", "one method blank"])
def test_table4_survives_degenerate_maps(case: str) -> None:
    """Issue #17 item 2: no exception once the maps exist; degenerate parts are NaN and counted."""
    import matplotlib

    matplotlib.use("Agg")
    from hsi_core.plots.xai import ranking_forest

    hsi = blobs(6)
    methods = graded_methods(hsi)
    if case == "all methods blank":
        methods = {k: torch.zeros_like(v) for k, v in methods.items()}
    elif case == "all hsi blank":
        hsi = torch.full_like(hsi, 0.5) + 6e-8 * torch.rand(hsi.shape, dtype=torch.float64)
    elif case == "one image":
        hsi, methods = hsi[:1], {k: v[:1] for k, v in methods.items()}
    else:
        methods["far"] = torch.zeros_like(methods["far"])
    res = bx.run_benchmark(methods, hsi, n_boot=50)
    beside = bx.table4_beside_paper(res.table4)
    readings = bx.table4_readings(methods, hsi)
    verdict = bx.table4_readings_verdict(readings)
    ranking_forest(res.extended)
    bx.ranking_table(res.extended)
    assert isinstance(verdict["sentence"], str) and len(beside) >= 3
    fails = res.failures.set_index("method")["blank"]
    if case == "all methods blank":
        assert (fails.drop("HSI") == 6).all()
        assert (res.table4["Ranking"] == 1).all()                     # three identical all-zero maps: a three-way tie
    if case == "all hsi blank":
        assert res.n_images == 0 and res.n_excluded == 6 and res.table4["MAE"].isna().all()
        assert verdict["closest"] is None
    if case == "one image":
        assert res.n_images == 1 and res.extended["ci_low"].isna().all() and res.kendall_ci["ci_low"].isna().all()
    if case == "one method blank":
        assert fails["far"] == 6 and res.table4.set_index("Method").loc["far", "blank maps"] == "6 of 6"


def test_rise_seed_spread_rows_and_summary() -> None:
    hsi = blobs(12)
    g = graded_methods(hsi)
    spread = bx.rise_seed_spread({0: g["middle"], 1: g["middle"] + 0.05 * torch.rand(hsi.shape, dtype=torch.float64)},
                                 {"close": g["close"], "far": g["far"]}, hsi, n_boot=200)
    assert list(spread["seed"]) == [0, 1] and (spread["rank"] == 2).all()
    direct = bx.run_benchmark({"close": g["close"], "far": g["far"], "RISE": g["middle"]}, hsi, n_boot=200)
    assert spread.loc[0, "MAE"] == direct.table4.set_index("Method").loc["RISE", "MAE"]
    summary = bx.seed_spread_summary(spread)
    assert summary["movement"] == pytest.approx(abs(spread.loc[1, "MAE"] - spread.loc[0, "MAE"]))
    assert summary["ranks"] == [2] and "2 mask seeds" in summary["sentence"]


def test_nss_pseudo_fixations_and_bad_input() -> None:
    hsi = blobs(3)
    fix = maps.top_fraction_fixations(hsi, 0.1, method="count")
    assert fix.flatten(1).sum(1).tolist() == [round(0.1 * 32 * 32)] * 3
    assert all(hsi[i][fix[i]].min() >= hsi[i][~fix[i]].max() for i in range(3))
    with pytest.raises(ValueError, match="shape"):
        bx.run_benchmark({"a": torch.rand(3, 16, 16)}, hsi)
    with pytest.raises(ValueError, match="NaN"):
        bx.run_benchmark({"a": torch.full((3, 32, 32), float("nan"))}, hsi)
    with pytest.raises(ValueError, match="not among"):
        bx.class_targets(["goldfish"], ["ant", "zebra"])
    assert bx.class_targets(["zebra", "ant"], ["ant", "zebra"]).tolist() == [1, 0]


def test_paper_table4_matches_the_paper_text() -> None:
    if not PAPER.is_file():
        pytest.skip(f"{PAPER} absent")
    text = PAPER.read_text()
    for _, row in bx.PAPER_TABLE4.iterrows():
        assert f"{row.Ranking}\t{row.Method}\t{row.MAE:.2f}" in text
    beside = bx.table4_beside_paper(pd.DataFrame({"Ranking": [1, 2, 3], "Method": ["GBP", "RISE", "Grad-CAM"],
                                                  "MAE": [0.1, 0.2, 0.3]}))
    assert beside.loc["RISE", ("MAE", "paper")] == 0.44 and beside.loc["RISE", ("MAE", "ours")] == 0.2
    assert beside.loc["RISE", ("Ranking", "paper")] == 1 and beside.loc["RISE", ("Ranking", "ours")] == 2
    assert list(beside.index) == list(bx.PAPER_TABLE4["Method"])


def test_table4_readings_compute_each_normalisation_and_can_reorder() -> None:
    """#12 item 6: a map that is the HSI map plus a constant offset is perfect under min-max and far under
    raw [0, 1] (max-scaled, no minimum removed); a sparse map scores the blank MAE. Values checked by hand."""
    hsi = blobs(6)
    offset = hsi + 2.0                                  # RISE-like: the right shape on a large floor
    sparse = torch.zeros_like(hsi)
    sparse[:, 16, 16] = 1.0                             # GBP-like: a few bright pixels
    sparse[:, 0, 0] = 0.5
    table = bx.table4_readings({"RISE": offset, "GBP": sparse}, hsi)
    got = table.set_index(["reading", "Method"])["MAE"]
    mm = lambda t: (t - t.amin((1, 2), keepdim=True)) / (t.amax((1, 2), keepdim=True) - t.amin((1, 2), keepdim=True))  # noqa: E731
    mx = lambda t: t / t.amax((1, 2), keepdim=True)    # noqa: E731
    sm = lambda t: t / t.sum((1, 2), keepdim=True)     # noqa: E731
    for reading, f in (("min-max", mm), ("raw [0, 1]", mx), ("sum-to-one", sm)):
        for name, m in (("RISE", offset), ("GBP", sparse)):
            assert got[(reading, name)] == pytest.approx(float((f(m) - f(hsi)).abs().mean()), rel=1e-9)
    assert got[("min-max", "RISE")] == pytest.approx(0.0, abs=1e-12)
    ranks = table.set_index(["reading", "Method"])["rank"]
    assert ranks[("min-max", "RISE")] == 1 and ranks[("raw [0, 1]", "RISE")] == 2   # the reading reorders
    blank = table.set_index("reading")["blank MAE"]
    assert blank["min-max"].iloc[0] == pytest.approx(float(mm(hsi).mean()))
    verdict = bx.table4_readings_verdict(table)
    assert verdict["readings"]["min-max"]["ranking"] == "RISE < GBP"
    assert verdict["readings"]["min-max"]["paper_ranking"] and not verdict["readings"]["raw [0, 1]"]["paper_ranking"]
    assert verdict["closest"] in ("min-max", "raw [0, 1]", "sum-to-one") and "closest" in verdict["sentence"]
    with pytest.raises(ValueError, match="non-negative"):
        bx.table4_readings({"RISE": offset - 10.0, "GBP": sparse}, hsi)


@pytest.mark.gpu_check
def test_gpu_check_train_quick_hsi_runs_on_the_device(tmp_path: Path, demo_world: Path, device: str) -> None:
    """#11: the quick HSI (BatchNorm recalibration of a random CLIP encoder, encoding, decoder training) runs
    on the check's device; on CUDA this failed with images on the GPU and the CLIP mean/std on the CPU."""
    model = bx.train_quick_hsi(demo_world, tmp_path / "quick", image_size=64, epochs=1, hidden=8,
                               calibration_images=4, batch_size=8, device=device, progress=False)
    assert model.mean.device.type == torch.device(device).type
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64, device=device), torch.tensor([0, 1], device=device))["saliency"]
    assert out.shape == (2, 64, 64) and torch.isfinite(out).all()


def test_config_hash_follows_the_settings_that_change_results():
    """``XAIBenchmarkConfig.key()`` names the run directory. Catches: a run-only setting (device, batch
    sizes, run_dir) hashed, so moving to a GPU would recompute everything; a result setting (RISE's N,
    the classifier's weights) left out, so maps made with other settings would be reused; bad values
    accepted."""
    base = bx.XAIBenchmarkConfig()
    assert base.key() == bx.XAIBenchmarkConfig().key() and len(base.key()) == 10
    for run_only in ({"device": "cuda"}, {"xai_batch_size": 64}, {"generation_batch_size": 256}):
        assert bx.XAIBenchmarkConfig(**run_only).key() == base.key(), run_only
    for result in ({"rise_masks": 4000}, {"resnet_weights": "/weights/resnet50-11ad3fa6.pth"}, {"nss_top": 0.1},
                   {"rise_occluder": "mean"}, {"n_images": 10}, {"seed": 1}):
        assert bx.XAIBenchmarkConfig(**result).key() != base.key(), result
    assert bx.XAIBenchmarkConfig(run_dir="x").run_directory().name == base.key()
    for bad in ({"nss_top": 0.0}, {"nss_top": 1.5}, {"n_boot": 0}, {"rise_occluder": "grey"}, {"n_images": 0},
                {"rise_p1": 1.0}):
        with pytest.raises(ValueError, match="XAIBenchmarkConfig"):
            bx.XAIBenchmarkConfig(**bad)
    with pytest.raises(AttributeError):
        base.rise_masks = 5  # frozen
