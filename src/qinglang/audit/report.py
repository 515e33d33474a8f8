"""The audit report: bilingual HTML (Jinja2, inline CSS and SVG), PDF (WeasyPrint), evidence files.

Everything here is a pure function of the `AuditResult`: no clock, no randomness, no paths in
the output, so the same result gives byte-identical ``report.html``, ``report.pdf``,
``result.json`` and evidence files, and the bundle's manifest hashes are stable.

PDF determinism (WeasyPrint >= 62), four sources of run-to-run change and what pins them:

* ``/CreationDate`` and ``/ModDate``: WeasyPrint writes them only from the document metadata,
  which it reads from the HTML's ``<meta name="dcterms.created">`` / ``dcterms.modified``; the
  template sets both to ``result.as_of`` and `render_pdf` re-asserts them (the Unix epoch for
  HTML without them), so the clock is never used.
* The trailer ``/ID``: passed explicitly with the ``pdf_identifier`` option (a digest of the
  HTML); its second half is pydyf's md5 of the PDF objects, itself deterministic.
* Embedded font subsets: with HarfBuzz-subset (Debian ``libharfbuzz-subset0``, fast) the
  font's own ``head.modified`` is kept; WeasyPrint's fontTools fallback stamps the current time
  into ``head`` unless ``SOURCE_DATE_EPOCH`` is set, so `render_pdf` sets it to ``as_of`` for
  the write (under a lock: the environment is process-wide). Subset font names come from an
  md5 of the font description.
* The XMP packet, with random ``xmp.did:`` UUIDs, is only written for PDF/A and PDF/UA
  variants, which are not used.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any, Final

import jinja2
from markupsafe import Markup, escape

from qinglang.audit.model import (
    AREAS,
    AuditResult,
    Chart,
    EvidenceTable,
    Finding,
    Requirement,
    Source,
    Status,
)
from qinglang.consent.canonical import canonical_json

TEMPLATES: Final = Path(__file__).parent / "templates"
LANGS: Final = ("zh", "en")
EVIDENCE_NAME: Final = re.compile(r"[a-z0-9_]+")
_ENV_LOCK: Final = threading.Lock()

LABELS: Final[dict[str, tuple[str, str]]] = {
    "title": ("未成年人个人信息保护合规审计报告", "Minors' Personal Information Compliance Audit"),
    "cover": ("封面", "Cover"),
    "platform": ("平台", "Platform"),
    "period": ("审计期间", "Period"),
    "as_of": ("数据截止时间", "Records as of"),
    "since": ("活动读取起点", "Activity from"),
    "pack": ("策略包", "Policy pack"),
    "engine": ("引擎版本", "Engine version"),
    "ledger_head": ("账本头", "Ledger head"),
    "no_ledger": ("账本无记录", "ledger has no entries"),
    "summary": ("摘要", "Summary"),
    "requirements": ("要求", "Requirements"),
    "evaluated": ("已评估", "Evaluated"),
    "not_evaluated": ("未评估", "Not evaluated"),
    "findings": ("审计发现", "Findings"),
    "findings_table": ("审计发现一览（不通过在前）", "Findings at a glance (failures first)"),
    "requirement": ("要求", "Requirement"),
    "status": ("结论", "Status"),
    "area": ("领域", "Area"),
    "kind": ("检查方式", "Check"),
    "text": ("内容", "Text"),
    "sources": ("依据", "Sources"),
    "finding": ("发现", "Finding"),
    "figures": ("数据", "Figures"),
    "figure": ("指标", "Figure"),
    "value": ("数值", "Value"),
    "evidence": ("证据文件", "Evidence files"),
    "rows": ("行", "rows"),
    "of_total": ("匹配总数", "matched in total"),
    "charts": ("图表", "Charts"),
    "chart_data": ("图表数据", "Chart data"),
    "label": ("项目", "Label"),
    "appendix_a": ("附录 A：全部要求及依据", "Appendix A: All requirements and sources"),
    "appendix_b": ("附录 B：规则与依据", "Appendix B: Rules and sources"),
    "instruments": ("引用的法律文件", "Instruments cited"),
    "instrument": ("法律文件", "Instrument"),
    "articles": ("条款", "Articles"),
    "cited_by": ("引用要求", "Cited by"),
    "rules": ("策略包规则", "Policy-pack rules"),
    "rule": ("规则", "Rule"),
    "notes": ("说明", "Notes"),
    "unverified": ("未核实", "unverified"),
    "none": ("无", "none"),
    "check": ("检查", "Check"),
    "page": ("页", "Page"),
}

STATUS_LABELS: Final[dict[str, tuple[str, str]]] = {
    Status.PASS.value: ("通过", "PASS"),
    Status.FAIL.value: ("不通过", "FAIL"),
    Status.NOT_EVIDENCED.value: ("无证据", "NOT EVIDENCED"),
    "not_evaluated": ("未评估", "NOT EVALUATED"),
}

AREA_LABELS: Final[dict[str, tuple[str, str]]] = {
    "registration": ("注册", "Registration"),
    "storage": ("存储", "Storage"),
    "use": ("使用", "Use"),
    "sharing": ("共享", "Sharing"),
    "contact": ("联系", "Contact"),
    "content": ("内容", "Content"),
    "time": ("时长", "Time"),
    "spending": ("消费", "Spending"),
    "governance": ("治理", "Governance"),
}

KIND_LABELS: Final[dict[str, tuple[str, str]]] = {
    "automated": ("自动检查", "automated"),
    "configuration": ("配置检查", "configuration"),
    "attested": ("书面证明", "attested"),
}

_SVG_FONTS: Final = "Noto Sans CJK SC, Noto Sans SC, WenQuanYi Zen Hei, sans-serif"
_STATUS_ORDER: Final = {Status.FAIL: 0, Status.NOT_EVIDENCED: 1, Status.PASS: 2}
_SERIES_FILLS: Final = ("#1f4e79", "#c55a11", "#548235", "#7030a0", "#806000", "#2f5597")
"""Series colours; every bar also carries its value as text and each chart has a data table."""


# --- helpers for the template -------------------------------------------------------------


def _pair(zh: str, en: str, lang: str) -> Markup:
    """Both languages, the report's language first, each in its own span."""
    first, second = ((zh, "zh"), (en, "en")) if lang == "zh" else ((en, "en"), (zh, "zh"))
    return Markup('<span lang="{}">{}</span> <span class="alt" lang="{}">{}</span>').format(
        first[1], first[0], second[1], second[0]
    )


def _iso(value: datetime) -> str:
    """ISO 8601 in UTC with a Z (naive datetimes are taken as UTC)."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fmt(value: int | float | str | None) -> str:
    """A figure's value as text: integers with thousands separators, floats to 2 places."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    return value


def _num(value: float) -> str:
    """A coordinate for SVG: fixed two decimals, no '-0.00'."""
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def render_chart_svg(chart: Chart) -> Markup:
    """A deterministic horizontal grouped bar chart as inline SVG (values are also in a table)."""
    label_w, bar_w, value_w = 190.0, 330.0, 70.0
    bar_h, gap, group_gap = 14.0, 2.0, 10.0
    n_series = max(1, len(chart.series))
    legend_h = 18.0 * n_series + 6.0
    group_h = n_series * (bar_h + gap) - gap
    height = legend_h + len(chart.labels) * (group_h + group_gap) + 4.0
    width = label_w + bar_w + value_w
    peak = max((v for _, values in chart.series for v in values if v > 0), default=0.0)
    scale = bar_w / peak if peak > 0 else 0.0

    parts: list[str] = []
    title = f"{chart.title_zh} {chart.title_en}"
    parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" width="{_num(width)}" '
        f'height="{_num(height)}" aria-labelledby="chart-{escape(chart.id)}-title">'
    )
    parts.append(f'<title id="chart-{escape(chart.id)}-title">{escape(title)}</title>')
    # Presentation attributes, not CSS: WeasyPrint's SVG renderer ignores the page stylesheet.
    parts.append(f'<g font-family="{_SVG_FONTS}" font-size="11" fill="#1a1a1a">')
    for i, (name, _values) in enumerate(chart.series):
        y = 4.0 + 18.0 * i
        fill = _SERIES_FILLS[i % len(_SERIES_FILLS)]
        parts.append(
            f'<rect x="{_num(label_w)}" y="{_num(y)}" width="12" height="12" fill="{fill}"/>'
            f'<text x="{_num(label_w + 18)}" y="{_num(y + 10)}" >'
            f"{escape(name)}</text>"
        )
    parts.append(
        f'<line x1="{_num(label_w)}" y1="{_num(legend_h)}" x2="{_num(label_w)}" '
        f'y2="{_num(height - 2)}" stroke="#333" stroke-width="1"/>'
    )
    for row, label in enumerate(chart.labels):
        top = legend_h + row * (group_h + group_gap)
        parts.append(
            f'<text x="{_num(label_w - 6)}" y="{_num(top + group_h / 2 + 4)}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        for i, (name, values) in enumerate(chart.series):
            value = values[row] if row < len(values) else 0.0
            y = top + i * (bar_h + gap)
            w = max(0.0, value) * scale
            fill = _SERIES_FILLS[i % len(_SERIES_FILLS)]
            parts.append(
                f'<rect x="{_num(label_w)}" y="{_num(y)}" width="{_num(w)}" '
                f'height="{_num(bar_h)}" fill="{fill}">'
                f"<title>{escape(label)} · {escape(name)}: {escape(_fmt(value))}</title></rect>"
                f'<text x="{_num(label_w + w + 4)}" y="{_num(y + bar_h - 3)}">'
                f"{escape(_fmt(value))}</text>"
            )
    parts.append("</g></svg>")
    return Markup("".join(parts))


@dataclasses.dataclass(frozen=True, slots=True)
class _Row:
    """A requirement with its finding (None: not evaluated), ready for the template."""

    requirement: Requirement
    finding: Finding | None

    @property
    def status(self) -> str:
        """The status key, "not_evaluated" when there is no finding."""
        return self.finding.status.value if self.finding else "not_evaluated"


def _instruments(requirements: Iterable[Requirement]) -> list[dict[str, Any]]:
    """Instruments cited, sorted, each with its articles and the requirements citing it."""
    by_instrument: dict[str, dict[str, Any]] = {}
    for req in requirements:
        for src in req.sources:
            entry = by_instrument.setdefault(
                src.instrument, {"articles": set(), "unverified": set(), "requirements": set()}
            )
            entry["articles"].add(src.article)
            if not src.verified:
                entry["unverified"].add(src.article)
            entry["requirements"].add(req.id)
    return [
        {
            "instrument": name,
            "articles": sorted(v["articles"]),
            "unverified": sorted(v["unverified"]),
            "requirements": sorted(v["requirements"]),
        }
        for name, v in sorted(by_instrument.items())
    ]


def _rules(requirements: Iterable[Requirement]) -> list[tuple[str, list[str]]]:
    """Policy-pack rules, sorted, each with the requirements it implements."""
    by_rule: dict[str, set[str]] = {}
    for req in requirements:
        for rule in req.rule_ids:
            by_rule.setdefault(rule, set()).add(req.id)
    return [(rule, sorted(ids)) for rule, ids in sorted(by_rule.items())]


@cache
def _environment() -> jinja2.Environment:
    """The Jinja2 environment over the audit templates (autoescaped, strict undefined)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = _fmt
    env.globals["chart_svg"] = render_chart_svg
    return env


def render_html(result: AuditResult, lang: str = "zh") -> str:
    """The bilingual report as one self-contained HTML page (inline CSS and SVG, no script)."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, not {lang!r}")
    env = _environment()
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")

    def t(key: str) -> Markup:
        return _pair(*LABELS[key], lang)

    def bi(zh: str, en: str) -> Markup:
        return _pair(zh, en, lang)

    def status_label(key: str) -> Markup:
        return _pair(*STATUS_LABELS[key], lang)

    def area_label(key: str) -> Markup:
        zh, en = AREA_LABELS.get(key, (key, key))
        return _pair(zh, en, lang)

    def kind_label(key: str) -> Markup:
        zh, en = KIND_LABELS.get(key, (key, key))
        return _pair(zh, en, lang)

    def source_text(src: Source) -> str:
        return f"《{src.instrument}》{src.article}"

    requirements = {r.id: r for r in result.requirements}
    rows = [_Row(r, result.finding(r.id)) for r in result.requirements]
    orphans = [f for f in result.findings if f.requirement_id not in requirements]
    areas = [a for a in AREAS if any(r.requirement.area == a for r in rows if r.finding)]
    extra_areas = sorted(
        {r.requirement.area for r in rows if r.finding and r.requirement.area not in AREAS}
    )
    by_area = [
        (area, [r for r in rows if r.finding and r.requirement.area == area])
        for area in [*areas, *extra_areas]
    ]
    ordered = sorted(
        (f for f in result.findings),
        key=lambda f: _STATUS_ORDER[f.status],
    )
    counts = result.counts()
    evidence = {e.name: e for e in result.evidence}
    html = env.get_template("report.html").render(
        r=result,
        lang=lang,
        css=Markup(css),
        t=t,
        bi=bi,
        status_label=status_label,
        area_label=area_label,
        kind_label=kind_label,
        source_text=source_text,
        as_of=_iso(result.as_of),
        since=None if result.since is None else _iso(result.since),
        counts={s.value: n for s, n in counts.items()},
        statuses=[s.value for s in (Status.FAIL, Status.NOT_EVIDENCED, Status.PASS)],
        n_not_evaluated=sum(1 for r in rows if r.finding is None),
        requirements=requirements,
        rows=rows,
        by_area=by_area,
        orphans=orphans,
        ordered=ordered,
        evidence=evidence,
        instruments=_instruments(result.requirements),
        rules=_rules(result.requirements),
    )
    return html


def _epoch(w3c: str) -> int:
    """Seconds since the Unix epoch of a W3C date-time (0 when it cannot be parsed)."""
    try:
        moment = datetime.fromisoformat(w3c)
    except ValueError:
        return 0
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


@contextmanager
def _source_date_epoch(epoch: int) -> Iterator[None]:
    """Set SOURCE_DATE_EPOCH for the block (process-wide, so under a lock), then restore it."""
    with _ENV_LOCK:
        before = os.environ.get("SOURCE_DATE_EPOCH")
        os.environ["SOURCE_DATE_EPOCH"] = str(max(0, epoch))
        try:
            yield
        finally:
            if before is None:
                del os.environ["SOURCE_DATE_EPOCH"]
            else:
                os.environ["SOURCE_DATE_EPOCH"] = before


def render_pdf(html: str) -> bytes:
    """The PDF of a rendered report: A4, CJK fonts, byte-identical for the same HTML."""
    from weasyprint import HTML  # type: ignore[import-untyped]  # heavy import, only when needed

    document = HTML(string=html, base_url=None).render()
    # The template's dcterms.created/modified carry result.as_of; never let them be the clock.
    metadata = document.metadata
    metadata.created = metadata.created or "1970-01-01T00:00:00Z"
    metadata.modified = metadata.modified or metadata.created
    identifier = hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode("ascii")
    # Font subsets: HarfBuzz-subset keeps the font's own head.modified; the fontTools fallback
    # stamps the clock unless SOURCE_DATE_EPOCH is set, so pin it to the document's date.
    with _source_date_epoch(_epoch(metadata.created)):
        pdf: bytes = document.write_pdf(pdf_identifier=identifier)
    return pdf


# --- files --------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Dataclasses, enums, dates and tuples as plain JSON values (datetimes ISO in UTC)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return _jsonable(value.value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def result_json(result: AuditResult) -> bytes:
    """The whole result as canonical JSON (sorted keys, UTF-8, ISO dates), newline-terminated."""
    return (canonical_json(_jsonable(result)) + "\n").encode("utf-8")


def evidence_csv(table: EvidenceTable) -> bytes:
    """An evidence table as plain UTF-8 CSV with a header row and \\n line endings."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(["" if v is None else _csv_cell(v) for v in row])
    return buf.getvalue().encode("utf-8")


def _csv_cell(value: str | int | float) -> str:
    """A CSV cell: floats via repr (round-trips), everything else via str."""
    return repr(value) if isinstance(value, float) else str(value)


def evidence_json(table: EvidenceTable) -> bytes:
    """An evidence table as canonical JSON, newline-terminated."""
    return (canonical_json(_jsonable(table)) + "\n").encode("utf-8")


def _check_names(tables: Sequence[EvidenceTable]) -> None:
    """Evidence names are file stems: [a-z0-9_]+ and unique."""
    seen: set[str] = set()
    for table in tables:
        if not EVIDENCE_NAME.fullmatch(table.name):
            raise ValueError(f"evidence table name {table.name!r} is not [a-z0-9_]+")
        if table.name in seen:
            raise ValueError(f"evidence table name {table.name!r} is used twice")
        seen.add(table.name)


def write_report(
    result: AuditResult, out: Path, evidence: bool = True, pdf: bool = True
) -> list[Path]:
    """Write report.html, report.pdf (unless not `pdf`), result.json and evidence/*.csv|json;
    return them sorted."""
    _check_names(result.evidence)
    out.mkdir(parents=True, exist_ok=True)
    html = render_html(result)
    files: dict[Path, bytes] = {out / "report.html": html.encode("utf-8")}
    if pdf:
        files[out / "report.pdf"] = render_pdf(html)
    files[out / "result.json"] = result_json(result)
    if evidence:
        for table in result.evidence:
            files[out / "evidence" / f"{table.name}.csv"] = evidence_csv(table)
            files[out / "evidence" / f"{table.name}.json"] = evidence_json(table)
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return sorted(files)
