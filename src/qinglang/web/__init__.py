"""The web console under ``/console``: server-rendered Jinja2 pages enhanced with htmx.

:func:`mount` adds the console to the API's FastAPI app: the routers named in
:data:`qinglang.web.routes.ROUTERS`, the static files at ``/console/static`` and error pages
for console paths (the JSON API keeps its problem+json errors). See docs/console.md.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

PREFIX: Final = "/console"
log = logging.getLogger(__name__)

Handler = Callable[[Request, Any], Awaitable[Response] | Response]


def is_console(request: Request) -> bool:
    """Whether the request is for a console page (not the JSON API)."""
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def mount(app: FastAPI) -> None:
    """Add the console to the app: routers, static files, settings, HTML error pages."""
    from qinglang.web import auth
    from qinglang.web.i18n import catalogue
    from qinglang.web.routes import ROUTERS

    catalogue()  # a malformed catalogue fails at start-up, not on a page
    if getattr(app.state, "console_settings", None) is None:
        app.state.console_settings = auth.ConsoleSettings.from_env()
    areas: list[str] = []
    for name in ROUTERS:
        module = importlib.import_module(f"qinglang.web.routes.{name}")
        router = module.router
        full = all(getattr(r, "path", PREFIX).startswith(PREFIX) for r in router.routes)
        app.include_router(router, prefix="" if full else PREFIX, include_in_schema=False)
        areas.append(name)
    app.state.console_areas = tuple(areas)
    app.mount(
        f"{PREFIX}/static",
        StaticFiles(packages=[("qinglang.web", "static")]),
        name="console-static",
    )
    _install_handlers(app)


async def _call(handler: Handler, request: Request, exc: Any) -> Response:
    result = handler(request, exc)
    if isinstance(result, Response):
        return result
    return await result


def error_page(request: Request, status: int, headers: dict[str, str] | None = None) -> Response:
    """A console error page (403, 404, 405, 422, 500, …); never a stack trace."""
    from qinglang.web import auth
    from qinglang.web.render import render

    try:
        try:
            auth.current_user(request)
        except Exception:
            request.state.console_user = None
        template = {403: "errors/403.html", 404: "errors/404.html"}.get(status, "errors/error.html")
        kind = status if status in (405, 422, 429, 500) else "other"
        context = {"status": status, "kind": kind}
        response = render(request, template, context, status_code=status)
    except Exception:
        log.exception("console error page failed")
        response = HTMLResponse(
            f"<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>{status}</title>"
            f"<h1>{status}</h1><p>出错了 / Something went wrong.</p>"
            "<p><a href='/console/'>返回 / Back</a></p></html>",
            status_code=status,
        )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _install_handlers(app: FastAPI) -> None:
    from qinglang.web import auth

    handlers = app.exception_handlers
    api_http = handlers.get(StarletteHTTPException)
    api_validation = handlers.get(RequestValidationError)
    api_unexpected = handlers.get(Exception)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        if is_console(request) or api_http is None:
            return error_page(request, exc.status_code, dict(exc.headers or {}))
        return await _call(api_http, request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        if is_console(request) or api_validation is None:
            return error_page(request, 422)
        return await _call(api_validation, request, exc)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        if is_console(request) or api_unexpected is None:
            log.error("console page failed", exc_info=exc)
            return error_page(request, 500)
        return await _call(api_unexpected, request, exc)

    @app.exception_handler(auth.LoginRequired)
    async def on_login_required(request: Request, exc: auth.LoginRequired) -> Response:
        url = auth.login_url(exc.next_path)
        if request.headers.get("HX-Request"):
            return Response(status_code=200, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)

    @app.exception_handler(auth.Forbidden)
    async def on_forbidden(request: Request, exc: auth.Forbidden) -> Response:
        return error_page(request, 403)
