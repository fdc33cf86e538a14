"""Fixation tables as the EMHMM toolbox reads them (``read_xls_fixations.m``): one row per fixation
with the columns SubjectID, TrialID, FixX, FixY and optionally FixD (duration, ms) and StimuliID
(the co-clustering demos' stimulus column). Rows of one subject and trial are in viewing order.

CSV is read with the standard library; .xls/.xlsx through pandas (with openpyxl or xlrd installed),
else a clear error. Subjects, trials and stimuli are numbered in order of first appearance, as
the toolbox does; their names are kept.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

REQUIRED = ("SubjectID", "TrialID", "FixX", "FixY")


@dataclass
class FixationTable:
    """``paths[stimulus][subject]`` = list of (n, 2) or (n, 3) sequences (x, y[, duration]) or None;
    ``subjects``, ``stimuli`` the names in order of appearance; ``trials[stimulus][subject]`` the
    trial names of each sequence. Without a StimuliID column there is one stimulus, ``""``."""

    paths: list[list[list[np.ndarray] | None]]
    subjects: list[str]
    stimuli: list[str]
    trials: list[list[list[str]]]
    has_duration: bool


def _name(value) -> str:
    """Subject/trial ids as the toolbox turns numbers into strings (``sprintf('%g')``)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return f"{float(value):g}"
    text = str(value).strip()
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def _rows(path: Path) -> tuple[list[str], list[list]]:
    suffix = path.suffix.lower()
    if suffix in (".xls", ".xlsx"):
        try:
            import pandas as pd
            frame = pd.read_excel(path)
        except ImportError as exc:
            raise ValueError(f"{path}: reading {suffix} needs pandas with openpyxl (xlsx) or xlrd (xls): {exc}; "
                             f"save the sheet as CSV instead") from exc
        return [str(c) for c in frame.columns], frame.values.tolist()
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"{path}: the fixation table is empty") from None
        return header, [r for r in reader if any(c.strip() for c in r)]


def read_fixation_table(path: str | Path) -> FixationTable:
    """Read a fixation table (CSV, or xls/xlsx when pandas can) with the toolbox's columns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such fixation table")
    header, rows = _rows(path)
    for col in REQUIRED:
        if header.count(col) != 1:
            raise ValueError(f"{path}: need exactly one column {col!r} (found columns {header})")
    if header.count("FixD") > 1:
        raise ValueError(f"{path}: more than one FixD column")
    idx = {c: header.index(c) for c in REQUIRED}
    dur = header.index("FixD") if "FixD" in header else None
    stim = header.index("StimuliID") if "StimuliID" in header else None
    subjects: list[str] = []
    stimuli: list[str] = [] if stim is not None else [""]
    seqs: dict[tuple[int, int], dict[str, list]] = {}
    for r, row in enumerate(rows, start=2):
        try:
            values = [float(row[idx["FixX"]]), float(row[idx["FixY"]])]
            if dur is not None:
                values.append(float(row[dur]))
        except (ValueError, TypeError, IndexError):
            raise ValueError(f"{path}: row {r}: FixX, FixY{', FixD' if dur is not None else ''} must be numbers, "
                             f"got {row}") from None
        if not np.isfinite(values).all():
            raise ValueError(f"{path}: row {r}: NaN or infinite fixation values {values}")
        sid = _name(row[idx["SubjectID"]])
        if sid not in subjects:
            subjects.append(sid)
        j = 0
        if stim is not None:
            name = _name(row[stim])
            if name not in stimuli:
                stimuli.append(name)
            j = stimuli.index(name)
        trial = seqs.setdefault((j, subjects.index(sid)), {})
        trial.setdefault(_name(row[idx["TrialID"]]), []).append(values)
    if not seqs:
        raise ValueError(f"{path}: the fixation table has no fixations")
    paths: list[list[list[np.ndarray] | None]] = [[None] * len(subjects) for _ in stimuli]
    trials: list[list[list[str]]] = [[[] for _ in subjects] for _ in stimuli]
    for (j, i), per_trial in seqs.items():
        paths[j][i] = [np.array(v, dtype=np.float64) for v in per_trial.values()]
        trials[j][i] = list(per_trial)
    return FixationTable(paths, subjects, stimuli, trials, dur is not None)


def write_fixation_table(path: str | Path, paths: Sequence[Sequence[Sequence[np.ndarray] | None]],
                         subjects: Sequence[str] | None = None, stimuli: Sequence[str] | None = None,
                         duration: bool = False) -> Path:
    """Write ``paths[stimulus][subject]`` as a CSV fixation table in the toolbox's columns (plus
    StimuliID), trials numbered 1.. per subject and stimulus; the inverse of
    :func:`read_fixation_table`."""
    from hsi_core.io import atomic_write_text
    import io

    subjects = [str(i + 1) for i in range(len(paths[0]))] if subjects is None else list(subjects)
    stimuli = [str(j + 1) for j in range(len(paths))] if stimuli is None else list(stimuli)
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["SubjectID", "TrialID", "StimuliID", "FixX", "FixY"] + (["FixD"] if duration else []))
    for j, row in enumerate(paths):
        for i, p in enumerate(row):
            for t, s in enumerate(p or []):
                for f in np.asarray(s, float):
                    out.writerow([subjects[i], f"{stimuli[j]}-{t + 1}", stimuli[j]] +
                                 [repr(float(v)) for v in f[: 3 if duration else 2]])
    atomic_write_text(Path(path), buf.getvalue())
    return Path(path)
