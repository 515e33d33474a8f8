"""Sign-in, sign-out, the console's start page (redirects by role) and the language switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from qinglang.web import auth
from qinglang.web.i18n import normalise_lang
from qinglang.web.render import render, set_lang_cookie

router = APIRouter()


@router.get("/console")
@router.get("/console/")
def start(request: Request) -> Response:
    """The start page: the signed-in user's area, or the login page."""
    user = auth.current_user(request)
    if user is None:
        return RedirectResponse("/console/login", status_code=303)
    return RedirectResponse(auth.home_of(user), status_code=303)


@router.get("/console/login")
def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form (a signed-in user goes straight on)."""
    user = auth.current_user(request)
    if user is not None:
        return RedirectResponse(auth.safe_next(next) or auth.home_of(user), status_code=303)
    token = auth.login_csrf_token(request)
    response = render(request, "auth/login.html", {"next": auth.safe_next(next)})
    auth.set_login_csrf_cookie(request, response, token)
    return response


@router.post("/console/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the credentials; on success start a session and go to ``next`` or the role's area."""
    expected = request.cookies.get(auth.LOGIN_CSRF_COOKIE)
    if not auth.tokens_match(expected, csrf_token):
        raise auth.Forbidden("csrf")
    request.state.console_user = None
    token = auth.login_csrf_token(request)
    t_next = auth.safe_next(next)
    context: dict[str, object] = {"next": t_next, "username": username.strip()[:64]}
    if not username.strip() or not password:
        context["error_key"] = "auth.login.missing"
        return _form_again(request, context, 422, token)
    old = request.cookies.get(auth.SESSION_COOKIE)
    if old:
        await run_in_threadpool(auth.end_current_session, request)
    result = await run_in_threadpool(
        auth.attempt_login,
        auth.service_of(request),
        auth.settings_of(request),
        username,
        password,
        auth.client_address(request),
    )
    if result.outcome == "throttled":
        context["error_key"] = "auth.login.throttled"
        headers = {
            "Retry-After": str(int(auth.settings_of(request).throttle_window.total_seconds()))
        }
        return _form_again(request, context, 429, token, headers)
    if result.outcome != "ok" or result.user is None or result.token is None:
        context["error_key"] = "auth.login.invalid"
        return _form_again(request, context, 401, token)
    response = RedirectResponse(t_next or auth.home_of(result.user), status_code=303)
    auth.set_session_cookie(request, response, result.token)
    return response


def _form_again(
    request: Request,
    context: dict[str, object],
    status: int,
    token: str,
    headers: dict[str, str] | None = None,
) -> Response:
    from qinglang.web.i18n import lang_of, translate

    context["error"] = translate(str(context.pop("error_key")), lang_of(request))
    response = render(request, "auth/login.html", context, status_code=status)
    auth.set_login_csrf_cookie(request, response, token)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


@router.post("/console/logout", dependencies=[Depends(auth.csrf_checked)])
def logout(request: Request) -> Response:
    """End the session (deleted from the database) and go to the login page."""
    auth.end_current_session(request)
    response = RedirectResponse("/console/login", status_code=303)
    auth.clear_session_cookie(request, response)
    return response


@router.get("/console/lang/{code}")
def switch_language(request: Request, code: str, next: str | None = None) -> Response:
    """Remember the chosen language (``zh`` or ``en``) and go back to ``next``."""
    lang = normalise_lang(code)
    response = RedirectResponse(auth.safe_next(next) or "/console/", status_code=303)
    if lang is not None:
        set_lang_cookie(request, response, lang)
    return response
