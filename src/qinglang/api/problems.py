"""Errors as RFC 9457 problem details (`application/problem+json`) that name the offending field."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error to answer with a problem document; `errors` lists {field, message} pairs."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers


def field_problem(status: int, field: str, message: str, title: str = "Invalid request") -> Problem:
    """A problem about one named field."""
    return Problem(status, title, f"{field}: {message}", [{"field": field, "message": message}])


def identity_number_problem(exc: Any, field: str) -> Problem:
    """A 422 problem for an invalid identity number: the field, the reason and both messages."""
    return Problem(
        422,
        "Invalid identity number",
        f"{field}: {exc.message_en}",
        [
            {
                "field": field,
                "reason": exc.reason,
                "message": exc.message_en,
                "message_zh": exc.message_zh,
            }
        ],
    )


def unauthorised(detail: str) -> Problem:
    """A 401 problem about the API key (the `Authorization` header)."""
    return Problem(
        401,
        "Unauthorised",
        detail,
        [{"field": "Authorization", "message": detail}],
        headers={"WWW-Authenticate": 'Bearer realm="qinglang"'},
    )


def problem_response(p: Problem, request: Request) -> JSONResponse:
    """Render a problem document."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": p.title,
        "status": p.status,
        "detail": p.detail,
        "instance": request.url.path,
    }
    if p.errors:
        body["errors"] = p.errors
    return JSONResponse(body, status_code=p.status, media_type=MEDIA_TYPE, headers=p.headers)


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(x) for x in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Register handlers so that every error leaves as problem+json, never as a stack trace."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errs):
            e = next(e for e in errs if e.get("type") == "json_invalid")
            msg = f"request body is not valid JSON ({e.get('ctx', {}).get('error', 'parse error')})"
            return problem_response(field_problem(400, "body", msg, "Invalid JSON"), request)
        items = [{"field": _loc_to_field(e["loc"]), "message": e["msg"]} for e in errs]
        detail = "; ".join(f"{i['field']}: {i['message']}" for i in items)
        return problem_response(Problem(422, "Invalid request", detail, items), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        return problem_response(Problem(exc.status_code, title, str(exc.detail)), request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(
            Problem(500, "Internal error", "the server failed; nothing was written"), request
        )
