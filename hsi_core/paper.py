"""The two papers' published numbers, as data: one place for every value the chapters print beside ours.

HSI paper (Yang et al., AAAI HCOMP 2022): Tables 1-4 and the statistics of its eye-tracking study.
Log-gabor paper: Tables I-III (SIM, CC, sAUC, AUC-Judd per model and dataset) and Table IV.
Values are copied from the papers' text in ``../shared/papers/``; nothing here is computed from data:
:func:`beside_paper` only lays our numbers beside them (the one "ours beside the paper" table of the book).
"""

from __future__ import annotations

from typing import Any, Sequence

# ----------------------------------------------------------------------------- HSI paper
#: Tables 1-3: five-fold means on HSB (CC, KLdiv, NSS, SIM).
HSI_TABLES_1_3: dict[str, dict[str, dict[str, float]]] = {
    "Table 1": {"w. finetuning": {"CC": 0.8819, "KLdiv": 0.2162, "NSS": 2.3505, "SIM": 0.7563},
                "w.o. finetuning": {"CC": 0.7317, "KLdiv": 0.5168, "NSS": 1.9357, "SIM": 0.6012}},
    "Table 2": {"baseline": {"CC": 0.8754, "KLdiv": 0.2239, "NSS": 2.3366, "SIM": 0.7533},
                "ours (HSI)": {"CC": 0.8819, "KLdiv": 0.2162, "NSS": 2.3505, "SIM": 0.7563}},
    "Table 3": {"random": {"CC": 0.7729, "KLdiv": 0.4539, "NSS": 1.9538, "SIM": 0.6626},
                "pretrain": {"CC": 0.8754, "KLdiv": 0.2239, "NSS": 2.3366, "SIM": 0.7533}},
}

#: Algorithm 1's thresholds and Gaussian sigma (pixels on SALICON's 640x480 maps), as the text sets them.
HSI_ALGORITHM1: dict[str, float] = {"T_a": 0.1, "T_r": 0.05, "sigma": 19.0}

#: Table 4: MAE between each XAI method's maps and HSI's (ResNet-50, 1,000 ImageNet val images).
HSI_TABLE_4: dict[str, dict[str, float]] = {
    "RISE": {"rank": 1, "MAE": 0.44}, "Grad-CAM": {"rank": 2, "MAE": 0.70}, "GBP": {"rank": 3, "MAE": 0.89},
}

#: The eye-tracking study's statistics, as printed.
HSI_EYE_MOVEMENTS: dict[str, str] = {
    "task effect (pilot, 20 viewers)": "t(19) = -5.01, p < .001, d = -1.12",
    "group separation, explorative (pilot, 40 viewers)": "t(27) = 8.478, p < .001, d = 1.602",
    "group separation, focused (pilot, 40 viewers)": "t(11) = 8.499, p < .001, d = 2.453",
    "groups (pilot, from the degrees of freedom of its t-tests)": "28 explorative / 12 focused",
    "groups (HSB study, from the degrees of freedom of its t-tests)": "47 explorative / 15 focused",
    "group separation, explorative (HSB, 62 viewers)": "t(46) = 15.47, p < .001, d = 2.26",
    "group separation, focused (HSB, 62 viewers)": "t(14) = 6.94, p < .001, d = 1.79",
    "EF scale vs explanation rating (partial correlation)": "r(59) = .48",
}

#: The eye-tracking set-up of the pilot study (its "Methods"), and the Gaussian of Figures 5-6: screen in
#: pixels and millimetres, viewing distance, the image frame in pixels and in degrees of visual angle (dva),
#: the Gaussian's SD in dva and in pixels, as printed.
HSI_VIEWING: dict[str, Any] = {
    "screen_px": (1024, 768), "screen_mm": (255.0, 195.0), "distance_mm": 600.0, "frame_px": (400, 520),
    "frame_dva": (9.51, 12.36), "sigma_dva": 0.5, "sigma_px": 21,
}


def hsi_cc_gap_table2() -> float:
    """HSI Table 2: CC of HSI minus CC of the image-only baseline (how much the label adds, in the paper)."""
    rows = HSI_TABLES_1_3["Table 2"]
    return rows["ours (HSI)"]["CC"] - rows["baseline"]["CC"]


# ----------------------------------------------------------------------------- log-gabor paper
#: Column order of Tables I-III.
LOGGABOR_TABLE_METRICS = ("SIM", "CC", "sAUC", "AUC-Judd")

#: Tables I-III: (SIM, CC, sAUC, AUC-Judd) per model, on SALICON val, MIT1003 and MIT300.
LOGGABOR_TABLES_I_III: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "SALICON val": {
        "ITTI": (0.495, 0.636, 0.710, 0.744), "ICL": (0.553, 0.697, 0.72, 0.839), "HFT": (0.549, 0.676, 0.722, 0.867),
        "SIMgrouping": (0.441, 0.656, 0.771, 0.794), "RARE": (0.513, 0.731, 0.768, 0.847),
        "Explainable CMRNet": (0.533, 0.7, 0.76, 0.804), "Explainable UNISAL": (0.549, 0.720, 0.771, 0.815),
        "Explainable MSI-Net": (0.54, 0.705, 0.769, 0.804), "CMRNet": (0.728, 0.846, 0.788, 0.886),
        "UNISAL": (0.741, 0.861, 0.812, 0.897), "MSI-Net": (0.732, 0.851, 0.797, 0.890)},
    "MIT1003": {
        "ITTI": (0.362, 0.576, 0.610, 0.674), "ICL": (0.420, 0.637, 0.617, 0.769), "HFT": (0.416, 0.616, 0.619, 0.797),
        "SIMgrouping": (0.308, 0.596, 0.668, 0.724), "RARE": (0.380, 0.617, 0.665, 0.777),
        "Explainable CMRNet": (0.415, 0.64, 0.653, 0.738), "Explainable UNISAL": (0.426, 0.668, 0.673, 0.748),
        "Explainable MSI-Net": (0.435, 0.70, 0.693, 0.761), "CMRNet": (0.68, 0.81, 0.78, 0.887),
        "UNISAL": (0.691, 0.85, 0.79, 0.897), "MSI-Net": (0.70, 0.87, 0.81, 0.91)},
    "MIT300": {
        "ITTI": (0.405, 0.495, 0.55, 0.70), "ICL": (0.472, 0.562, 0.6, 0.75), "HFT": (0.319, 0.379, 0.502, 0.652),
        "SIMgrouping": (0.343, 0.433, 0.504, 0.654), "RARE": (0.506, 0.595, 0.64, 0.806),
        "Explainable CMRNet": (0.504, 0.64, 0.635, 0.804), "Explainable UNISAL": (0.524, 0.70, 0.675, 0.824),
        "Explainable MSI-Net": (0.515, 0.683, 0.668, 0.814), "CMRNet": (0.68, 0.77, 0.70, 0.85),
        "UNISAL": (0.71, 0.80, 0.72, 0.87), "MSI-Net": (0.691, 0.787, 0.716, 0.863)},
}

#: Table IV: (size as printed, M parameters or MB; seconds per image).
LOGGABOR_TABLE_IV: dict[str, tuple[str, float]] = {
    "CMRNet": ("2.5", 0.02), "DINet": ("27.04", 0.06), "SAM-ResNet": ("70.09", 0.09), "DSCLRCN": (">33.71", 0.27),
    "DVA": ("25.07", 0.03), "UNISAL": ("15.5", 0.028)}


def table(name: str) -> Any:
    """A published table as a pandas DataFrame: ``"HSI Table 1"`` .. ``"HSI Table 4"``,
    ``"loggabor SALICON val"`` / ``"loggabor MIT1003"`` / ``"loggabor MIT300"``, ``"loggabor Table IV"``."""
    import pandas as pd

    if name.startswith("HSI Table ") and name.removeprefix("HSI ") in HSI_TABLES_1_3:
        return pd.DataFrame(HSI_TABLES_1_3[name.removeprefix("HSI ")]).T
    if name == "HSI Table 4":
        return pd.DataFrame(HSI_TABLE_4).T
    if name.startswith("loggabor ") and name.removeprefix("loggabor ") in LOGGABOR_TABLES_I_III:
        rows = LOGGABOR_TABLES_I_III[name.removeprefix("loggabor ")]
        return pd.DataFrame.from_dict(rows, orient="index", columns=list(LOGGABOR_TABLE_METRICS))
    if name == "loggabor Table IV":
        return pd.DataFrame.from_dict(LOGGABOR_TABLE_IV, orient="index", columns=["size (M or MB)", "s/image"])
    known = [f"HSI {t}" for t in HSI_TABLES_1_3] + ["HSI Table 4"] + \
        [f"loggabor {d}" for d in LOGGABOR_TABLES_I_III] + ["loggabor Table IV"]
    raise ValueError(f"unknown published table {name!r}; one of {known}")


# ----------------------------------------------------------------------------- ours beside the paper
def beside_paper(ours: Any, published: Any, *, metrics: Sequence[str], extra: Sequence[str] = (),
                 measured_label: str = "measured", reported_label: str = "reported",
                 missing: str | None = "—", decimals: int | None = None) -> Any:
    """Our numbers beside the paper's, one row per model / setting / method, matched by name.

    Args:
        ours: our results, a DataFrame indexed by name (model, setting or method) with a column for
            each of ``metrics`` and ``extra``; ``None`` when nothing was measured (every row reported).
        published: the paper's values, a DataFrame indexed by the same names with a column per metric
            it reports, or the name of one of this module's tables (``table(name)``); ``None`` when
            the paper has no such table (no paper columns at all).
        metrics: the metrics to compare, in column order. A metric the published table lacks gets no
            paper column; published columns outside ``metrics`` are not shown.
        extra: columns of ``ours`` copied after the metrics (e.g. ``"flat maps"``, a CI).
        measured_label: the ``source`` of a row we measured (whether or not the paper reports it).
        reported_label: the ``source`` of a row only the paper has.
        missing: what a value absent from one side shows; ``None`` leaves NaN. Only columns with a
            gap become text, so a complete column stays numeric.
        decimals: round the numbers to this many decimals first (``None``: as they are).

    Returns:
        A DataFrame whose rows are the published names in the paper's order, then names only we
        have, in our order; columns a MultiIndex ``(metric, "ours")``, ``(metric, "paper")`` per
        metric, then ``("", e)`` for each of ``extra`` and ``("", "source")``.

    Raises:
        ValueError: ``ours`` lacks one of ``metrics``/``extra``, or a table repeats a name.
    """
    import pandas as pd

    if isinstance(published, str):
        published = table(published)
    for side, frame in (("ours", ours), ("published", published)):
        if frame is not None and not frame.index.is_unique:
            dup = sorted(map(str, frame.index[frame.index.duplicated()].unique()))
            raise ValueError(f"beside_paper: {side} repeats the names {dup}; rows are matched by name")
    if ours is not None:
        absent = [c for c in (*metrics, *extra) if c not in ours.columns]
        if absent:
            raise ValueError(f"beside_paper: ours has no column {absent} (has {list(ours.columns)})")
    ours_names = list(ours.index) if ours is not None else []
    names = list(published.index) if published is not None else []
    names += [n for n in ours_names if n not in set(published.index if published is not None else ())]
    measured = set(ours_names)

    columns: dict[tuple[str, str], list[Any]] = {}
    for metric in metrics:
        columns[(metric, "ours")] = [ours.at[n, metric] if n in measured else float("nan") for n in names]
        if published is not None and metric in published.columns:
            columns[(metric, "paper")] = [published.at[n, metric] if n in published.index else float("nan")
                                          for n in names]
    for column in extra:
        columns[("", column)] = [ours.at[n, column] if n in measured else float("nan") for n in names]
    columns[("", "source")] = [measured_label if n in measured else reported_label for n in names]

    out = pd.DataFrame(columns, index=pd.Index(names, name=(ours.index.name if ours is not None else None)
                                               or (published.index.name if published is not None else None)))
    out.columns = pd.MultiIndex.from_tuples(list(columns))
    out = out.infer_objects()
    if decimals is not None:
        out = out.round(decimals)
    if missing is not None:
        for column in out.columns:
            if out[column].isna().any():
                out[column] = out[column].astype(object).where(out[column].notna(), missing)
    return out
