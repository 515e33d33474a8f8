"""The audit report: bilingual HTML, byte-identical PDF with CJK text, evidence files."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from qinglang.audit.model import AuditResult, EvidenceTable, Status
from qinglang.audit.report import (
    render_chart_svg,
    render_html,
    render_pdf,
    result_json,
    write_report,
)
from tests.audit.conftest import CHINESE_PHRASE


def _poppler(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"{tool} not on PATH: apt-get install -y poppler-utils")
    return found


def test_html_is_deterministic(sample_result: AuditResult) -> None:
    assert render_html(sample_result) == render_html(sample_result)
    assert render_html(sample_result, "en") == render_html(sample_result, "en")


def test_html_has_every_requirement_and_status_words(sample_result: AuditResult) -> None:
    html = render_html(sample_result)
    for req in sample_result.requirements:
        assert req.id in html
        assert req.text_zh in html
        assert req.text_en.replace("'", "&#39;") in html
    for word in ("不通过", "FAIL", "通过", "PASS", "无证据", "NOT EVIDENCED"):
        assert word in html
    for section in ("摘要", "Summary", "附录 A", "Appendix A", "附录 B", "Appendix B", "图表"):
        assert section in html


def test_html_is_self_contained_and_bilingual(sample_result: AuditResult) -> None:
    html = render_html(sample_result)
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<link" not in html.lower()
    assert "@page" in html  # the CSS is inlined
    assert '<span lang="zh">摘要</span> <span class="alt" lang="en">Summary</span>' in html
    en = render_html(sample_result, "en")
    assert '<span lang="en">Summary</span> <span class="alt" lang="zh">摘要</span>' in en
    assert '<html lang="en">' in en
    with pytest.raises(ValueError):
        render_html(sample_result, "fr")


def test_html_marks_unverified_citations_and_links_evidence(sample_result: AuditResult) -> None:
    html = render_html(sample_result)
    assert "未核实" in html and "unverified" in html
    assert 'href="evidence/under14_without_consent.csv"' in html
    assert "0.78" in html and "1,534" in html  # figures
    # failed findings come first in the summary table
    summary = html[html.index('class="findings-table"') :]
    assert summary.index("REG-01-under14-guardian-consent") < summary.index(
        "CON-02-stranger-contact"
    )
    assert sample_result.ledger_head is not None
    assert sample_result.ledger_head[1] in html


def test_html_shows_requirements_without_a_finding(sample_result: AuditResult) -> None:
    partial = dataclasses.replace(sample_result, findings=sample_result.findings[:1])
    html = render_html(partial)
    assert "未评估" in html and "NOT EVALUATED" in html
    assert "GOV-03-annual-audit" in html


def test_chart_svg_is_deterministic_with_a_data_table(sample_result: AuditResult) -> None:
    chart = sample_result.charts[0]
    svg = str(render_chart_svg(chart))
    assert svg == str(render_chart_svg(chart))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 2 + 2 * 3  # legend swatches + one bar per label and series
    html = render_html(sample_result)
    table = html[html.index('class="chart-data"') :]
    table = table[: table.index("</table>")]
    for value in ("200", "111", "9", "4"):
        assert f'<td class="num">{value}</td>' in table
    empty = dataclasses.replace(chart, series=(("x", (0.0, 0.0, 0.0)),))
    assert "<svg" in str(render_chart_svg(empty))  # all zeros: no division by zero


def test_pdf_is_byte_identical(sample_result: AuditResult) -> None:
    html = render_html(sample_result)
    first, second = render_pdf(html), render_pdf(render_html(sample_result))
    assert first.startswith(b"%PDF-")
    assert first == second


def test_pdf_is_byte_identical_with_the_fonttools_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without HarfBuzz-subset, fontTools stamps the clock into fonts unless pinned."""
    import itertools
    import types

    import fontTools.misc.timeTools  # type: ignore[import-untyped]
    import weasyprint.pdf.fonts  # type: ignore[import-untyped]

    monkeypatch.setattr(weasyprint.pdf.fonts, "harfbuzz_subset", None)
    # A clock that moves an hour on every reading: any use of it would change the bytes.
    ticks = itertools.count(1_800_000_000, 3600)
    fake_time = types.SimpleNamespace(time=lambda: float(next(ticks)))
    monkeypatch.setattr(fontTools.misc.timeTools, "time", fake_time)
    html = (
        '<html lang="zh"><head><meta name="dcterms.created" content="2026-12-31T16:00:00Z">'
        "</head><body style=\"font-family: 'Noto Sans CJK SC', sans-serif\">"
        "监护人同意 consent</body></html>"
    )
    first = render_pdf(html)
    assert render_pdf(html) == first


def test_pdf_metadata_dates_are_as_of(sample_result: AuditResult) -> None:
    pdfinfo = _poppler("pdfinfo")
    data = render_pdf(render_html(sample_result))
    out = subprocess.run(
        [pdfinfo, "-isodates", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()
    assert re.search(r"CreationDate:\s+2026-12-31T16:00:00", out), out
    assert re.search(r"ModDate:\s+2026-12-31T16:00:00", out), out
    assert "A4" in out


def test_pdf_text_has_chinese(sample_result: AuditResult) -> None:
    pdftotext = _poppler("pdftotext")
    data = render_pdf(render_html(sample_result))
    text = subprocess.run(
        [pdftotext, "-enc", "UTF-8", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode("utf-8")
    assert CHINESE_PHRASE in text
    assert "摘要 Summary" in text
    assert "Page 1 of" in text  # the @page footer
    assert "REG-01-under14" in text


def test_write_report(sample_result: AuditResult, tmp_path: Path) -> None:
    written = write_report(sample_result, tmp_path / "out")
    out = tmp_path / "out"
    assert written == sorted(written)
    assert [p.relative_to(out).as_posix() for p in written] == [
        "evidence/under14_without_consent.csv",
        "evidence/under14_without_consent.json",
        "report.html",
        "report.pdf",
        "result.json",
    ]
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF-")

    raw = (out / "result.json").read_bytes()
    doc = json.loads(raw)
    assert raw == result_json(sample_result)
    assert (
        raw.decode("utf-8")
        == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
    )
    assert doc["as_of"] == "2026-12-31T16:00:00Z"
    assert doc["start"] == "2026-01-01"
    assert doc["findings"][0]["status"] == "fail"
    assert doc["ledger_head"] == list(sample_result.ledger_head or ())
    assert "未取得监护人同意" in raw.decode("utf-8")  # UTF-8, not \u escapes

    csv_bytes = (out / "evidence/under14_without_consent.csv").read_bytes()
    assert not csv_bytes.startswith(b"\xef\xbb\xbf")
    assert b"\r" not in csv_bytes
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8"))))
    table = sample_result.evidence[0]
    assert rows[0] == list(table.columns)
    assert len(rows) == 1 + len(table.rows)
    ev = json.loads((out / "evidence/under14_without_consent.json").read_bytes())
    assert ev["columns"] == list(table.columns) and ev["total"] == 12

    again = write_report(sample_result, tmp_path / "again")
    for a, b in zip(written, again, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_write_report_without_evidence(sample_result: AuditResult, tmp_path: Path) -> None:
    written = write_report(sample_result, tmp_path, evidence=False)
    assert [p.name for p in written] == ["report.html", "report.pdf", "result.json"]
    assert not (tmp_path / "evidence").exists()


def test_write_report_without_pdf_writes_the_rest_the_same(
    sample_result: AuditResult, tmp_path: Path
) -> None:
    full = write_report(sample_result, tmp_path / "full")
    short = write_report(sample_result, tmp_path / "short", pdf=False)
    assert [p.name for p in full if p.name != "report.pdf"] == [p.name for p in short]
    for a, b in zip((p for p in full if p.name != "report.pdf"), short, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


@pytest.mark.parametrize("name", ["../escape", "Upper", "with space", ""])
def test_write_report_rejects_bad_evidence_names(
    sample_result: AuditResult, tmp_path: Path, name: str
) -> None:
    bad = EvidenceTable(name=name, title_zh="x", title_en="x", columns=("a",), rows=())
    with pytest.raises(ValueError, match="evidence table name"):
        write_report(dataclasses.replace(sample_result, evidence=(bad,)), tmp_path)
    assert not (tmp_path / "report.pdf").exists()


def test_counts_match_statuses(sample_result: AuditResult) -> None:
    html = render_html(sample_result)
    counts = sample_result.counts()
    for status in Status:
        cell = f'status-{status.value}-count">{counts[status]}</td>'
        assert cell in html
