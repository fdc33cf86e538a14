"""Fixation tables in the toolbox's xlsx form (``read_xls_fixations.m`` columns). The workbook is
written here by hand (a minimal Office Open XML package, inline strings), so the test needs no
spreadsheet writer; reading it needs pandas with openpyxl, which is optional: without it the
reader must say so, naming the file."""

import importlib.util
import zipfile
from xml.sax.saxutils import escape

import numpy as np
import pytest

from hsi_core import eyemovements as em

HAS_OPENPYXL = importlib.util.find_spec("openpyxl") is not None

_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
</Types>"""
_ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
_WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"
 xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"""
_WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
</Relationships>"""


def _cell(ref, value):
    if isinstance(value, str):
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
    return f'<c r="{ref}"><v>{value!r}</v></c>'


def write_xlsx(path, rows):
    """A one-sheet workbook holding ``rows`` (lists of str / int / float) from cell A1."""
    cols = "ABCDEFGHIJ"
    body = "".join(f'<row r="{r + 1}">' + "".join(_cell(f"{cols[c]}{r + 1}", v) for c, v in enumerate(row)) + "</row>"
                   for r, row in enumerate(rows))
    sheet = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             f"<sheetData>{body}</sheetData></worksheet>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _ROOT_RELS)
        z.writestr("xl/workbook.xml", _WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        z.writestr("xl/worksheets/sheet1.xml", sheet)
    return path


#: two subjects (one named, one numbered), two stimuli, subject 1 with two trials on stimulus "a"
ROWS = [["SubjectID", "TrialID", "StimuliID", "FixX", "FixY", "FixD"],
        ["s1", 1, "a", 10.5, 20.0, 200],
        ["s1", 1, "a", 30.0, 40.0, 150],
        ["s1", 2, "a", 50.0, 60.0, 300],
        [2, 1, "a", 70.0, 80.0, 250],
        [2, 1, "b", 90.0, 100.0, 100],
        ["s1", 3, "b", 110.0, 120.0, 120]]


@pytest.mark.skipif(not HAS_OPENPYXL, reason="reading .xlsx needs openpyxl, which is not installed")
def test_an_xlsx_table_reads_as_the_toolbox_reads_it(tmp_path):
    table = em.read_fixation_table(write_xlsx(tmp_path / "fix.xlsx", ROWS))
    assert table.subjects == ["s1", "2"] and table.stimuli == ["a", "b"] and table.has_duration
    np.testing.assert_array_equal(table.paths[0][0][0], [[10.5, 20.0, 200], [30.0, 40.0, 150]])
    np.testing.assert_array_equal(table.paths[0][0][1], [[50.0, 60.0, 300]])
    np.testing.assert_array_equal(table.paths[1][1][0], [[90.0, 100.0, 100]])
    assert table.trials[0][0] == ["1", "2"]
    # the same rows as CSV read identically
    csv = tmp_path / "fix.csv"
    csv.write_text("\n".join(",".join(str(v) for v in row) for row in ROWS) + "\n")
    other = em.read_fixation_table(csv)
    for j in range(2):
        for i in range(2):
            for a, b in zip(table.paths[j][i] or [], other.paths[j][i] or []):
                np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not HAS_OPENPYXL, reason="reading .xlsx needs openpyxl, which is not installed")
def test_an_xlsx_table_without_a_column_names_the_file_and_the_column(tmp_path):
    rows = [[c for c in row if c != "FixY"] for row in [ROWS[0]]] + [row[:4] + row[5:] for row in ROWS[1:]]
    bad = write_xlsx(tmp_path / "no_fixy.xlsx", rows)
    with pytest.raises(ValueError, match=r"no_fixy\.xlsx: need exactly one column 'FixY'"):
        em.read_fixation_table(bad)


@pytest.mark.skipif(HAS_OPENPYXL, reason="openpyxl is installed: the missing-reader message cannot occur")
def test_without_openpyxl_an_xlsx_table_is_a_clear_error_naming_the_file(tmp_path):
    path = write_xlsx(tmp_path / "fix.xlsx", ROWS)
    with pytest.raises(ValueError, match=r"fix\.xlsx: reading \.xlsx needs pandas with openpyxl"):
        em.read_fixation_table(path)


def test_a_missing_table_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.xlsx: no such fixation table"):
        em.read_fixation_table(tmp_path / "absent.xlsx")
