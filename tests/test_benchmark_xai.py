"""hsi_core.benchmark_xai: Table 4 and the extended ranking on maps whose right order is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hsi_core import benchmark_xai as bx

PAPER = Path(__file__).resolve().parents[2] / "shared" / "papers" / "hsi-human-saliency-imitator.txt"


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


def test_constant_maps_are_excluded_and_counted_not_hidden() -> None:
    hsi = blobs(10)
    methods = graded_methods(hsi)
    methods["far"][3] = 0.0                                     # e.g. a Grad-CAM map killed by the ReLU
    res = bx.run_benchmark(methods, hsi, n_boot=100)
    assert res.n_excluded == 1 and res.n_images == 9
    with pytest.raises(ValueError):
        bx.per_image_scores(methods, hsi)                       # the raw call refuses the constant map


def test_nss_pseudo_fixations_and_bad_input() -> None:
    hsi = blobs(3)
    fix = bx.top_fraction_fixations(hsi, 0.1)
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
    assert beside.set_index("Method").loc["RISE", "paper MAE"] == 0.44
    assert beside.set_index("Method").loc["RISE", "our rank"] == 2


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
