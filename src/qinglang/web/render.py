"""Page rendering: one Jinja2 environment (autoescaped, templates from the package) and
:func:`render`, which gives every template ``t``, ``lang``, ``user``, ``csrf_token``, ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from qinglang import __version__
from qinglang.web import auth
from qinglang.web.i18n import (
    LANG_COOKIE,
    html_lang,
    lang_of,
    normalise_lang,
    translator,
)

DISPLAY_ZONE: Final = ZoneInfo("Asia/Shanghai")
"""Times on pages are shown in China Standard Time (UTC+8)."""

SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def format_time(value: datetime | date | None, with_seconds: bool = False) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM`` in China Standard Time (a date as ``YYYY-MM-DD``)."""
    if value is None:
        return "—"
    if not isinstance(value, datetime):
        return value.isoformat()
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    local = aware.astimezone(DISPLAY_ZONE)
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def static_url(path: str) -> str:
    """URL of a console static file (versioned, so a new release is not served from cache)."""
    return f"/console/static/{path}?v={__version__}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The console's Jinja2 environment (templates packaged in ``qinglang.web/templates``)."""
    env = Environment(
        loader=PackageLoader("qinglang.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    env.filters["dt"] = format_time
    return env


def lang_switch_url(request: Request, lang: str) -> str:
    """This page's URL (same query) in another language."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    params.append(("lang", lang))
    return f"{request.url.path}?{urlencode(params)}"


def nav_items(request: Request, user: auth.CurrentUser | None) -> list[dict[str, Any]]:
    """The areas this user may open (only areas that are mounted), marking the current one."""
    if user is None:
        return []
    mounted = getattr(request.app.state, "console_areas", ())
    path = request.url.path
    items = []
    for name, href, label, roles in auth.AREAS:
        if name in mounted and user.role in roles:
            items.append(
                {
                    "href": href,
                    "label": label,
                    "current": path == href or path.startswith(href + "/"),
                }
            )
    return items


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a console page: the context plus ``t``, ``lang``, ``user``, ``csrf_token``,
    ``now`` (and ``request``, ``html_lang``, ``nav``, ``lang_url``); sets ``ql_lang`` when the
    page was asked for with ``?lang=``."""
    lang = lang_of(request)
    user = getattr(request.state, "console_user", None)
    if not isinstance(user, auth.CurrentUser):
        user = None
    csrf = user.csrf_token if user is not None else getattr(request.state, "login_csrf", "")
    values: dict[str, Any] = {
        "request": request,
        "t": translator(lang),
        "lang": lang,
        "html_lang": html_lang(lang),
        "user": user,
        "csrf_token": csrf,
        "now": datetime.now(UTC),
        "nav": nav_items(request, user),
        "lang_url": lambda code: lang_switch_url(request, code),
    }
    values.update(context or {})
    html = environment().get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers=dict(SECURITY_HEADERS))
    asked = normalise_lang(request.query_params.get("lang"))
    if asked is not None:
        set_lang_cookie(request, response, asked)
    return response


def set_lang_cookie(request: Request, response: Response, lang: str) -> None:
    """Remember ``lang`` for a year in the console's language cookie."""
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=365 * 24 * 3600,
        path="/console",
        samesite="lax",
        secure=auth.is_https(request),
    )


def static_asset(area: str, name: str, assets: Mapping[str, str]) -> Response:
    """Serve ``templates/<area>/<name>`` if ``assets`` lists it (else 404), cacheable for a day."""
    media_type = assets.get(name)
    if media_type is None:
        raise HTTPException(status_code=404)
    source = resources.files("qinglang.web").joinpath("templates", area, name)
    return Response(
        source.read_text("utf-8"),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
