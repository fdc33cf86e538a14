"""One name per concept: a metric's direction is defined once (``metrics.lower_is_better``), the
papers' tables are read from ``hsi_core.paper``, and the old names still work for one release with a
DeprecationWarning."""
import warnings

import pytest

from hsi_core import evaluation, metrics, paper
from hsi_core.experiments import hsi_tables, xai_benchmark

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from hsi_core import benchmark_xai  # the old path, for the names deprecated there


def test_lower_is_better_is_one_definition_for_every_spelling():
    # KL and MAE are dissimilarities; every other metric of the set (and of the papers' tables) is a
    # similarity. Planted bugs caught: a similarity marked lower-is-better, or "KLdiv" not read as KL.
    assert {m for m in metrics.METRIC_SET if metrics.lower_is_better(m)} == {"KL", "MAE"}
    assert metrics.lower_is_better("KLdiv") and not metrics.lower_is_better("sAUC (pysaliency)")
    assert [c for c in hsi_tables.TABLE_COLUMNS if metrics.lower_is_better(c)] == ["KLdiv"]
    assert [m for m in xai_benchmark.METRICS if metrics.lower_is_better(m)] == ["MAE", "KL"]
    with pytest.raises(ValueError, match="unknown metric 'KLD'"):
        metrics.lower_is_better("KLD")


@pytest.mark.parametrize("module,name,expected", [
    (evaluation, "PAPER_TABLES", paper.LOGGABOR_TABLES_I_III),
    (evaluation, "PAPER_TABLE_IV", paper.LOGGABOR_TABLE_IV),
    (hsi_tables, "PAPER_TABLES", paper.HSI_TABLES_1_3),
    (hsi_tables, "LOWER_IS_BETTER", ("KLdiv",)),
    (benchmark_xai, "LOWER_IS_BETTER", {"MAE": True, "CC": False, "KL": True, "SIM": False, "NSS": False}),
])
def test_deprecated_names_warn_and_keep_their_values(module, name, expected):
    with pytest.warns(DeprecationWarning, match=name):
        value = getattr(module, name)
    assert value == expected


def test_unknown_attributes_still_raise():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for module in (evaluation, hsi_tables, benchmark_xai):
            with pytest.raises(AttributeError):
                getattr(module, "NO_SUCH_NAME")
