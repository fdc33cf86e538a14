"""``hsi_core.paper.beside_paper``, the one "ours beside the paper" table (HSI Tables 1-4, LG Tables I-III).

Each test names the bug it catches: the paper's and our columns swapped, an ours-only row dropped, a
paper-only row marked measured, rows matched by position instead of by name, a deprecated wrapper
that changed its numbers."""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from hsi_core import paper
from hsi_core.experiments import hsi_tables

METRICS = ("SIM", "CC", "sAUC", "AUC-Judd")


def _ours() -> pd.DataFrame:
    """Our numbers for two models of LG Table I, in another order than the paper's, one model the paper
    does not have, and a metric it does not report. Values far from the paper's so a swap shows."""
    return pd.DataFrame({"SIM": [0.11, 0.12, 0.13], "CC": [0.21, 0.22, 0.23], "sAUC": [0.31, 0.32, 0.33],
                         "AUC-Judd": [0.41, 0.42, 0.43], "sAUC (mit)": [0.51, 0.52, 0.53],
                         "flat maps": ["0 of 4", "1 of 4", "2 of 4"]},
                        index=["UNISAL", "Centre bias", "ITTI"])


def test_each_value_sits_in_its_named_row_and_side():
    """Swapped columns, or rows matched by position (our ITTI is our last row, the paper's first)."""
    ours, published = _ours(), paper.table("loggabor SALICON val")
    table = paper.beside_paper(ours, published, metrics=[*METRICS, "sAUC (mit)"], extra=["flat maps"],
                               missing=None)
    for name in ours.index:
        for metric in METRICS:
            assert table.loc[name, (metric, "ours")] == ours.loc[name, metric], (name, metric)
        assert table.loc[name, ("", "flat maps")] == ours.loc[name, "flat maps"]
    for name in published.index:
        for metric in METRICS:
            assert table.loc[name, (metric, "paper")] == published.loc[name, metric], (name, metric)
    assert table.loc["ITTI", ("SIM", "paper")] == 0.495 and table.loc["ITTI", ("SIM", "ours")] == 0.13


def test_rows_are_the_papers_then_ours_only_with_their_source():
    """An ours-only row dropped, a paper-only row marked measured (or a measured one reported)."""
    ours, published = _ours(), paper.table("loggabor SALICON val")
    table = paper.beside_paper(ours, published, metrics=METRICS, extra=["flat maps"],
                               measured_label="measured (demo scale)")
    assert list(table.index) == [*published.index, "Centre bias"]
    source = table[("", "source")]
    assert set(source[source == "measured (demo scale)"].index) == set(ours.index)
    assert set(source[source == "reported"].index) == set(published.index) - set(ours.index)
    assert table.loc["Centre bias", ("SIM", "paper")] == "—"      # ours-only: no paper value
    assert table.loc["HFT", ("SIM", "ours")] == "—" and table.loc["HFT", ("", "flat maps")] == "—"
    only_paper = paper.beside_paper(None, published, metrics=METRICS)
    assert (only_paper[("", "source")] == "reported").all() and list(only_paper.index) == list(published.index)


def test_columns_metrics_the_paper_lacks_and_gaps():
    """A metric the paper does not report gets no paper column; a complete column stays numeric, a column
    with a gap shows ``missing``; ``decimals`` rounds before."""
    ours = _ours()
    table = paper.beside_paper(ours, "loggabor SALICON val", metrics=["CC", "sAUC (mit)"], extra=["flat maps"])
    assert list(table.columns) == [("CC", "ours"), ("CC", "paper"), ("sAUC (mit)", "ours"),
                                   ("", "flat maps"), ("", "source")]
    full = paper.beside_paper(ours.loc[["ITTI", "UNISAL"]], paper.table("loggabor SALICON val").loc[["ITTI", "UNISAL"]],
                              metrics=METRICS, decimals=1)
    assert full[("SIM", "ours")].dtype == float and full.loc["ITTI", ("SIM", "ours")] == 0.1
    held_out = paper.beside_paper(ours, None, metrics=METRICS)
    assert not any(side == "paper" for _, side in held_out.columns)
    empty = paper.beside_paper(ours, pd.DataFrame(columns=list(METRICS)), metrics=METRICS)
    assert (empty[("CC", "paper")] == "—").all() and list(empty.index) == list(ours.index)


def test_bad_input_names_the_problem():
    ours = _ours()
    with pytest.raises(ValueError, match="no column"):
        paper.beside_paper(ours.drop(columns="CC"), None, metrics=METRICS)
    with pytest.raises(ValueError, match="repeats the names"):
        paper.beside_paper(pd.concat([ours, ours.iloc[:1]]), None, metrics=METRICS)
    with pytest.raises(ValueError, match="unknown published table"):
        paper.beside_paper(ours, "loggabor MIT2000", metrics=METRICS)


def _fake_experiment() -> SimpleNamespace:
    """Per-image metrics of ``run_hsi_tables``'s five runs, two folds, random values; one flat map."""
    rng = np.random.default_rng(3)
    runs = ["HSI w. finetuning", "HSI w.o. finetuning", "baseline (pretrained)", "baseline (random decoder)",
            "baseline (random, whole model)"]
    per_image = {}
    for run in runs:
        frame = pd.DataFrame(rng.random((6, 4)), columns=list(hsi_tables.TABLE_COLUMNS))
        frame["fold"], frame["index"], frame["flat"] = [0, 0, 0, 1, 1, 1], range(6), [False] * 5 + [run == runs[1]]
        per_image[run] = frame
    return SimpleNamespace(per_image=per_image)


def test_hsi_tables_1_3_hold_the_fold_means_and_the_papers_values():
    """Tables 1-3 in the one-row-per-setting layout: our numbers are ``fold_table`` of the right run, the
    paper's are ``HSI_TABLES_1_3``'s; the deprecated ``comparison_table`` still gives the old layout."""
    exp = _fake_experiment()
    tables = hsi_tables.tables_1_3(exp, random="decoder")
    runs = {"Table 1": {"w. finetuning": "HSI w. finetuning", "w.o. finetuning": "HSI w.o. finetuning"},
            "Table 2": {"baseline": "baseline (pretrained)", "ours (HSI)": "HSI w. finetuning"},
            "Table 3": {"random": "baseline (random decoder)", "pretrain": "baseline (pretrained)"}}
    for name, rows in runs.items():
        table = tables[name]
        assert list(table.index) == list(paper.HSI_TABLES_1_3[name]) and table.index.name == "setting"
        for setting, run in rows.items():
            means = hsi_tables.fold_table(exp.per_image[run])
            for metric in hsi_tables.TABLE_COLUMNS:
                assert table.loc[setting, (metric, "ours")] == pytest.approx(means[metric], rel=1e-12)
                assert table.loc[setting, (metric, "paper")] == paper.HSI_TABLES_1_3[name][setting][metric]
            assert table.loc[setting, ("", "flat maps")] == hsi_tables.flat_count(exp.per_image[run])
        assert (table[("", "source")] == "measured").all()
    assert tables["Table 1"].loc["w.o. finetuning", ("", "flat maps")] == "1 of 6 maps flat"

    ours = {"w. finetuning": {"CC": 0.1, "KLdiv": 0.2, "NSS": 0.3, "SIM": 0.4}}
    with pytest.warns(DeprecationWarning, match="beside_paper"):
        old = hsi_tables.comparison_table(ours, paper.HSI_TABLES_1_3["Table 1"], flat={"w. finetuning": "0 of 9"})
    assert list(old.index) == [("w. finetuning", "ours"), ("w. finetuning", "paper")]
    assert old.loc[("w. finetuning", "ours"), "CC"] == 0.1 and old.loc[("w. finetuning", "paper"), "CC"] == 0.8819
    assert old.loc[("w. finetuning", "ours"), "flat maps"] == "0 of 9"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hsi_tables.tables_1_3(exp)      # the new path warns about nothing
    assert not math.isnan(float(tables["Table 2"].loc["ours (HSI)", ("CC", "ours")]))
