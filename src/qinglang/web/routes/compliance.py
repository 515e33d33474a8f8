"""The compliance dashboard of the console: the platform's key figures now and per week or month,
each as a server-rendered chart (inline SVG, no script) with its caption and a table of the
same numbers.

Aggregates only (``qinglang.store.dashboard``): no account, name or birth date reaches the page.
Roles ``compliance`` and ``platform_admin``; every figure is of the user's own platform.
The dashboard also shows the rectification plan (measures by status, the overdue ones) and links
to each audit run's page (``/audits/{id}``: its counts and the status of every requirement;
another platform's run, or none, is the console's 404 page).
See docs/console.md ("Compliance dashboard").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from qinglang import __version__
from qinglang.api.service import Service, now_utc
from qinglang.review.priority import PRIORITIES
from qinglang.store import dashboard as dash
from qinglang.store.models import MEASURE_STATUSES, AuditMeasure, AuditRun, Platform
from qinglang.web.auth import CurrentUser, require_role, service_of
from qinglang.web.i18n import lang_of, translator
from qinglang.web.render import render, static_asset

PREFIX: Final = "/console/compliance"
router = APIRouter(prefix=PREFIX, include_in_schema=False)

Officer = Annotated[CurrentUser, Depends(require_role("compliance", "platform_admin"))]

ASSETS: Final = {"compliance.css": "text/css", "compliance.js": "text/javascript"}
"""The dashboard's stylesheet and script (in templates/compliance/, served as files: the
console's Content-Security-Policy allows no inline style or script)."""
COLOURS: Final = ("#0b4fc0", "#a4231b", "#1d5b2c", "#7a4a00", "#5b2a86")
"""Series colours (each ≥ 4.5:1 on white); the tables carry the same numbers."""
WIDTH: Final = 480
"""Width of every chart's viewBox (the SVG scales to its container: width 100%)."""


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a chart: its label, values (None: no value) and colour."""

    label: str
    values: Sequence[float | None]
    colour: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart: an id, caption, text description, category labels, series and value format."""

    id: str
    caption: str
    desc: str
    labels: Sequence[str]
    series: Sequence[Series]
    fmt: Callable[[float | None], str]
    layout: str = "stacked"
    """stacked or grouped columns (over periods), or bars (one row per label)."""
    label_heading: str = ""
    drawn: int = 0
    """How many series the SVG draws (0: all; the table always shows all)."""

    @property
    def drawn_series(self) -> Sequence[Series]:
        """The series the SVG draws (and its legend lists)."""
        return self.series[: self.drawn] if self.drawn else self.series

    @property
    def svg(self) -> Markup:
        """The chart as inline SVG with <title> and <desc>."""
        if self.layout == "bars":
            return _bars_svg(self)
        return _columns_svg(self)

    @property
    def rows(self) -> list[tuple[str, list[str]]]:
        """The table's rows: label and each series' value, formatted."""
        return [
            (label, [self.fmt(s.values[i]) for s in self.series])
            for i, label in enumerate(self.labels)
        ]


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))


def _open(chart: Chart, height: int) -> list[str]:
    cid = escape(chart.id)
    return [
        f'<svg class="cp-svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-labelledby="{cid}-t {cid}-d" focusable="false">',
        f'<title id="{cid}-t">{escape(chart.caption)}</title>',
        f'<desc id="{cid}-d">{escape(chart.desc)}</desc>',
    ]


def _nice_max(top: float) -> float:
    """A round upper bound of the axis (1, 2, 5 × a power of ten)."""
    if top <= 0:
        return 1.0
    power = 10 ** (len(str(int(top))) - 1) if top >= 1 else 1
    for step in (1, 2, 5, 10):
        if step * power >= top:
            return float(step * power)
    return float(10 * power)


def _columns_svg(chart: Chart) -> Markup:
    """Columns per period: stacked (counts that add up) or grouped side by side."""
    left, right, top, bottom, height = 44, 8, 10, 56, 240
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    n = max(1, len(chart.labels))
    drawn = chart.drawn_series
    values = [[v or 0.0 for v in s.values] for s in drawn]
    if chart.layout == "stacked":
        peak = max([sum(col) for col in zip(*values, strict=True)] or [0.0])
    else:
        peak = max([max(v) for v in values if v] or [0.0])
    ymax = _nice_max(peak)
    out = _open(chart, height)
    tick = _num if chart.fmt is _count else chart.fmt
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}" '
            'stroke="#c9ced6" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#1b1b1b">{escape(tick(ymax * frac))}</text>'
        )
    band = plot_w / n
    groups = len(values) if chart.layout == "grouped" else 1
    bar_w = band * 0.7 / groups
    for i, label in enumerate(chart.labels):
        x0 = left + band * i + band * 0.15
        base: float = top + plot_h
        for k, s in enumerate(drawn):
            v = values[k][i]
            h = plot_h * v / ymax if ymax else 0.0
            if chart.layout == "grouped":
                x, y = x0 + bar_w * k, base - h
            else:
                x, y = x0, base - h
                base = y
            if h > 0:
                out.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                    f'fill="{s.colour}"/>'
                )
        cx = left + band * (i + 0.5)
        ly = top + plot_h + 14
        out.append(
            f'<text x="{cx:.1f}" y="{ly}" text-anchor="end" font-size="11" fill="#1b1b1b" '
            f'transform="rotate(-40 {cx:.1f} {ly})">{escape(label)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def _bars_svg(chart: Chart) -> Markup:
    """Horizontal bars, one row per label (one series), the value at the end of the bar."""
    label_w, value_w, row_h, top = 150, 70, 28, 6
    height = top * 2 + row_h * max(1, len(chart.labels))
    s = chart.series[0]
    peak = max([v or 0.0 for v in s.values] or [0.0])
    ymax = 1.0 if chart.fmt is _pct else _nice_max(peak)
    plot_w = WIDTH - label_w - value_w
    out = _open(chart, height)
    for i, label in enumerate(chart.labels):
        y = top + row_h * i
        v = s.values[i]
        w = plot_w * (v or 0.0) / ymax if ymax else 0.0
        out.append(
            f'<text x="{label_w - 6}" y="{y + 18}" text-anchor="end" font-size="13" '
            f'fill="#1b1b1b">{escape(label)}</text>'
        )
        out.append(f'<rect x="{label_w}" y="{y + 5}" width="{plot_w}" height="18" fill="#f3f5f8"/>')
        if w > 0:
            out.append(
                f'<rect x="{label_w}" y="{y + 5}" width="{w:.1f}" height="18" fill="{s.colour}"/>'
            )
        out.append(
            f'<text x="{label_w + w + 4:.1f}" y="{y + 18}" font-size="13" '
            f'fill="#1b1b1b">{escape(chart.fmt(v))}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def _count(value: float | None) -> str:
    return "—" if value is None else str(round(value))


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{_num(round(value * 100, 1))}%"


def _hours_of(t: Callable[..., str]) -> Callable[[float | None], str]:
    def fmt(value: float | None) -> str:
        """Hours in the reader's language, or a dash."""
        return "—" if value is None else t("compliance.unit.hours", n=_num(round(value, 1)))

    return fmt


def _rate(value: float) -> str:
    """A sample rate as a percentage, small rates kept (0.01 % stays 0.01 %)."""
    return f"{value * 100:.4g}%"


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 3600


def _series_desc(t: Callable[..., str], series: Sequence[Series], span: str) -> str:
    """A description listing each series' total over the periods."""
    parts = [
        t("compliance.chart.total", label=s.label, n=_count(sum(v or 0 for v in s.values)))
        for s in series
    ]
    return t("compliance.chart.desc_totals", totals="; ".join(parts), span=span)


def _pairs_desc(
    t: Callable[..., str],
    chart_labels: Sequence[str],
    s: Series,
    fmt: Callable[[float | None], str],
) -> str:
    """A description listing each label's value."""
    parts = [f"{label}: {fmt(v)}" for label, v in zip(chart_labels, s.values, strict=True)]
    return t("compliance.chart.desc_values", values="; ".join(parts))


def build(
    t: Callable[..., str],
    period: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    """The page's charts and headline figures from the dashboard's query results."""
    ps: list[dash.Period] = data["periods"]
    labels = [p.label for p in ps]
    span = t(f"compliance.period.last_{period}")
    heading = t(f"compliance.col.{period}")
    hours = _hours_of(t)
    charts: dict[str, Chart] = {}

    src: dash.AgeSources = data["sources"]
    s_labels = [t(f"compliance.source.{c.source}") for c in src.by_source]
    s_series = Series(t("compliance.col.accounts"), [c.accounts for c in src.by_source], COLOURS[0])
    charts["sources"] = Chart(
        "cp-sources",
        t("compliance.sources.caption"),
        _pairs_desc(t, s_labels, s_series, _count),
        s_labels,
        [s_series],
        _count,
        "bars",
        t("compliance.col.source"),
    )

    asm: dash.Assessments = data["assessments"]
    a_series = [
        Series(t(f"compliance.state.{state}"), asm.entered[state], COLOURS[i])
        for i, state in enumerate(dash.ASSESSMENT_STATES)
    ]
    charts["assessments"] = Chart(
        "cp-assessments",
        t("compliance.assessments.caption"),
        _series_desc(t, a_series, span),
        labels,
        a_series,
        _count,
        "stacked",
        heading,
    )

    cov: dash.ConsentCoverage = data["consents"]
    c_labels = [c.category for c in cov.categories]
    c_series = Series(t("compliance.col.share"), [c.share for c in cov.categories], COLOURS[2])
    charts["coverage"] = Chart(
        "cp-coverage",
        t("compliance.consents.caption", age=cov.child_below),
        _pairs_desc(t, c_labels, c_series, _pct)
        if c_labels
        else t("compliance.consents.none", age=cov.child_below),
        c_labels,
        [c_series],
        _pct,
        "bars",
        t("compliance.col.category"),
    )
    cs_series = [
        Series(t("compliance.col.went_stale"), cov.went_stale, COLOURS[3]),
        Series(t("compliance.col.withdrawn"), cov.withdrawn, COLOURS[1]),
    ]
    charts["consent_changes"] = Chart(
        "cp-consent-changes",
        t("compliance.consents.changes_caption"),
        _series_desc(t, cs_series, span),
        labels,
        cs_series,
        _count,
        "grouped",
        heading,
    )

    blocked: dash.BlockedContacts = data["blocked"]
    b_series = [
        Series(t("compliance.col.denied"), blocked.denied, COLOURS[1]),
    ]
    charts["blocked"] = Chart(
        "cp-blocked",
        t("compliance.blocked.caption"),
        _series_desc(t, b_series, span),
        labels,
        [*b_series, Series(t("compliance.col.sampled"), blocked.sampled, COLOURS[0])],
        _count,
        "stacked",
        heading,
        drawn=1,  # the chart shows denials; the table also lists every sampled decision
    )

    alerts: dash.AlertFigures = data["alerts"]
    al_series = [
        Series(t(f"compliance.priority.{p}"), alerts.raised[p], COLOURS[i])
        for i, p in enumerate(PRIORITIES)
    ]
    charts["alerts"] = Chart(
        "cp-alerts",
        t("compliance.alerts.caption"),
        _series_desc(t, al_series, span),
        labels,
        al_series,
        _count,
        "stacked",
        heading,
    )
    tm_series = [
        Series(t("compliance.col.median"), [_hours(x.median) for x in alerts.timing], COLOURS[0]),
        Series(t("compliance.col.p90"), [_hours(x.p90) for x in alerts.timing], COLOURS[3]),
    ]
    charts["timing"] = Chart(
        "cp-timing",
        t("compliance.alerts.timing_caption"),
        t("compliance.chart.desc_table", span=span),
        labels,
        tm_series,
        hours,
        "grouped",
        heading,
    )
    sla_series = [Series(t("compliance.col.within_sla"), alerts.within_sla, COLOURS[2])]
    charts["sla"] = Chart(
        "cp-sla",
        t("compliance.alerts.sla_caption"),
        t("compliance.chart.desc_table", span=span),
        labels,
        sla_series,
        _pct,
        "grouped",
        heading,
    )

    rights: dash.RightsFigures = data["rights"]
    r_series = [
        Series(t("compliance.col.received"), rights.received, COLOURS[0]),
        Series(t("compliance.col.completed"), rights.completed, COLOURS[2]),
        Series(t("compliance.col.refused"), rights.refused, COLOURS[1]),
    ]
    charts["rights"] = Chart(
        "cp-rights",
        t("compliance.rights.caption"),
        _series_desc(t, r_series, span),
        labels,
        r_series,
        _count,
        "grouped",
        heading,
    )
    charts["on_time"] = Chart(
        "cp-on-time",
        t("compliance.rights.on_time_caption"),
        t("compliance.chart.desc_table", span=span),
        labels,
        [Series(t("compliance.col.on_time"), rights.on_time_rate, COLOURS[2])],
        _pct,
        "grouped",
        heading,
    )
    return {
        "charts": charts,
        "pct": _pct,
        "rate": _rate,
        "hours": hours,
        "to_hours": _hours,
    }


def figures(service: Service, s: Session, platform_id: int, period: str) -> dict[str, Any]:
    """Every figure of the dashboard for one platform (read in one transaction)."""
    platform = s.get(Platform, platform_id)
    assert platform is not None
    policy = service.policy_for(platform)
    now = now_utc()
    ps = dash.periods(period, now, policy.tz)
    today = now.astimezone(policy.tz).date()
    return {
        "now": now,
        "periods": ps,
        "sample_rate": platform.decision_sample_rate,
        "sources": dash.age_sources(s, platform_id),
        "assessments": dash.assessments(s, platform_id, ps),
        "consents": dash.consent_coverage(s, platform_id, policy, ps, now),
        "blocked": dash.blocked_contacts(s, platform, ps),
        "alerts": dash.alert_figures(s, platform_id, ps, now, policy),
        "rights": dash.rights_figures(s, platform_id, ps, now),
        "reports": dash.audit_reports(s, platform_id),
        "rectification": dash.rectification(s, platform_id, today),
        "measure_statuses": MEASURE_STATUSES,
    }


def parse_period(value: str | None) -> str:
    """week or month from the GET form (anything else: week)."""
    return value if value in dash.PERIODS else "week"


@router.get("")
async def dashboard(request: Request, user: Officer) -> Response:
    """The dashboard for the last 12 weeks (``?period=week``) or months (``?period=month``)."""
    period = parse_period(request.query_params.get("period"))
    service = service_of(request)

    def read() -> dict[str, Any]:
        """Every figure in one read transaction."""
        with service.tx() as s:
            return figures(service, s, user.platform_id, period)

    data = await run_in_threadpool(read)
    t = translator(lang_of(request))
    ctx = {
        **data,
        **build(t, period, data),
        "period": period,
        "periods_offered": dash.PERIODS,
        "priorities": PRIORITIES,
        "states": dash.ASSESSMENT_STATES,
        "asset_version": __version__,
        "scan_cap": dash.SCAN_CAP,
        "labels": labels(t),
    }
    return render(request, "compliance/dashboard.html", ctx)


def labels(t: Callable[..., str]) -> dict[str, dict[str, str]]:
    """Names of measure statuses, areas and finding statuses in the reader's language."""
    return {
        "measure_status": {
            "open": t("compliance.measure_status.open"),
            "in_progress": t("compliance.measure_status.in_progress"),
            "done": t("compliance.measure_status.done"),
            "closed": t("compliance.measure_status.closed"),
        },
        "area": {
            "registration": t("compliance.area.registration"),
            "storage": t("compliance.area.storage"),
            "use": t("compliance.area.use"),
            "sharing": t("compliance.area.sharing"),
            "contact": t("compliance.area.contact"),
            "content": t("compliance.area.content"),
            "time": t("compliance.area.time"),
            "spending": t("compliance.area.spending"),
            "governance": t("compliance.area.governance"),
        },
        "finding": {
            "pass": t("compliance.audit.status.pass"),
            "fail": t("compliance.audit.status.fail"),
            "not_evidenced": t("compliance.audit.status.not_evidenced"),
        },
    }


def _requirements() -> dict[str, Any]:
    """Requirement id → requirement of the shipped catalogue ({} if it cannot be loaded)."""
    try:
        from qinglang.audit.catalogue import load_catalogue

        return {r.id: r for r in load_catalogue()}
    except Exception:
        return {}


def audit_run(s: Session, platform_id: int, run_id: int) -> dict[str, Any] | None:
    """One audit run of the platform: counts, each requirement's status, measures it opened."""
    run = s.get(AuditRun, run_id)
    if run is None or run.platform_id != platform_id:
        return None
    reqs = _requirements()
    order = {rid: i for i, rid in enumerate(reqs)}
    statuses = dict(run.statuses or {})
    rows = [
        {"id": rid, "status": str(st), "requirement": reqs.get(rid)}
        for rid, st in sorted(
            statuses.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])
        )
    ]
    measures = list(
        s.execute(
            select(AuditMeasure)
            .where(AuditMeasure.platform_id == platform_id, AuditMeasure.run_id == run.id)
            .order_by(AuditMeasure.id)
        ).scalars()
    )
    return {
        "run": run,
        "rows": rows,
        "measures": [
            {"code": m.code, "area": m.area, "status": m.status, "due_date": m.due_date}
            for m in measures
        ],
    }


@router.get("/audits/{run_id}")
async def audit_page(request: Request, run_id: str, user: Officer) -> Response:
    """One audit run of the user's platform: its counts and each requirement's status."""
    if not run_id.isdigit() or len(run_id) > 18:
        raise HTTPException(status_code=404)
    service = service_of(request)

    def read() -> dict[str, Any] | None:
        """The run, in one read transaction."""
        with service.tx() as s:
            return audit_run(s, user.platform_id, int(run_id))

    data = await run_in_threadpool(read)
    if data is None:
        raise HTTPException(status_code=404)
    ctx = {**data, "asset_version": __version__, "labels": labels(translator(lang_of(request)))}
    return render(request, "compliance/audit.html", ctx)


@router.get("/assets/{name}")
async def asset(name: str) -> Response:
    """The dashboard's stylesheet or script (no data: no sign-in needed)."""
    return static_asset("compliance", name, ASSETS)
