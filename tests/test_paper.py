"""The published numbers in hsi_core.paper are the papers' own: each table is compared with the text of
the paper in shared/papers beside the samples (``hsi_core.paths.shared_folder``, so ``$HSI_SHARED_DATA``
moves it too; skipped when absent). A typo in a copied value fails here."""

from __future__ import annotations

import re

import pytest

from hsi_core import paper
from hsi_core.paths import shared_folder


def _text(name: str) -> str:
    papers = shared_folder("papers")
    path = papers / name if papers is not None else None
    if path is None or not path.is_file():
        pytest.skip(f"shared/papers/{name} is absent (a fresh clone): the published tables cannot be checked")
    return re.sub(r"</?b>", "", path.read_text())


def _rows_after(text: str, caption: str) -> dict[str, list[str]]:
    """The tab-separated rows of the table under ``caption``, keyed by method name (references and
    '(Ours)' dropped)."""
    block = text[text.index(caption):].split("\n\n", 3)
    rows = {}
    for line in "\n".join(block[1:3]).splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            name = re.sub(r"\s*(\[\d+\]|\(Ours\))\s*", "", fields[0]).strip()
            rows[name] = fields[1:]
    return rows


@pytest.mark.parametrize("dataset,caption", [
    ("SALICON val", "TABLE I:"), ("MIT1003", "TABLE II:"), ("MIT300", "TABLE III:"),
])
def test_loggabor_tables_I_to_III(dataset, caption):
    rows = _rows_after(_text("loggabor-explainable-saliency.txt"), caption)
    ours = paper.LOGGABOR_TABLES_I_III[dataset]
    assert set(ours) == set(rows) - {"Methods"}
    for model, values in ours.items():
        printed = [float(v) for v in rows[model][1:5]]  # after the DNN Y/N column
        assert list(values) == printed, model


def test_loggabor_table_IV():
    rows = _rows_after(_text("loggabor-explainable-saliency.txt"), "TABLE IV:")
    for model, (size, seconds) in paper.LOGGABOR_TABLE_IV.items():
        assert rows[model][0].strip() == size and float(rows[model][1]) == seconds, model


def test_hsi_tables():
    text = _text("hsi-human-saliency-imitator.txt")
    lines = {tuple(line.split("\t")[1:]) for line in text.splitlines() if "\t" in line}
    for table, rows in paper.HSI_TABLES_1_3.items():
        for setting, values in rows.items():
            printed = tuple(f"{values[m]:.4f}" for m in ("CC", "KLdiv", "NSS", "SIM"))
            assert printed in lines, (table, setting)
    for method, row in paper.HSI_TABLE_4.items():
        assert f"{row['rank']}\t{method}\t{row['MAE']:.2f}" in text, method
    for statistic in paper.HSI_EYE_MOVEMENTS.values():
        for number in re.findall(r"[-\d.]+\d", statistic.split(" (")[0]):
            if "/" not in statistic:
                assert number.lstrip("-") in text, statistic


def test_unknown_table_is_an_error():
    assert list(paper.table("loggabor MIT300").columns) == list(paper.LOGGABOR_TABLE_METRICS)
    with pytest.raises(ValueError, match="unknown published table"):
        paper.table("Table 5")


def test_hsi_algorithm1_settings():
    """T_a, T_r and sigma of HSI Algorithm 1 as the HSI paper states them (section on pseudo-labels)."""
    text = _text("hsi-human-saliency-imitator.txt")
    found = re.search(r"T_a = ([\d.]+)\$, \$T_r = ([\d.]+)\$.*?sigma for gaussian filter is set to (\d+)", text)
    assert found, "the paper's sentence on HSI Algorithm 1's thresholds was not found"
    t_a, t_r, sigma = (float(v) for v in found.groups())
    assert paper.HSI_ALGORITHM1 == {"T_a": t_a, "T_r": t_r, "sigma": sigma}


def test_hsi_viewing_setup():
    """The pilot study's set-up and the Gaussian of Figures 5-6 as the HSI paper prints them."""
    text = _text("hsi-human-saliency-imitator.txt")
    v = paper.HSI_VIEWING
    assert f"{v['frame_px'][0]}×{v['frame_px'][1]} pixel frame" in text
    assert f"{v['screen_mm'][0]:g} mm × {v['screen_mm'][1]:g} mm laptop with {v['screen_px'][0]}×{v['screen_px'][1]}" in text
    assert f"{v['frame_dva'][0]} degrees of visual angle (dva) horizontally and {v['frame_dva'][1]} dva vertically" in text
    assert f"{v['distance_mm'] / 10:g} cm viewing distance" in text
    assert f"SD equivalent to {v['sigma_dva']} dva or {v['sigma_px']} pixels" in text
    assert abs(paper.hsi_cc_gap_table2() - (0.8819 - 0.8754)) < 1e-12
