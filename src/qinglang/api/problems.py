"""Errors as RFC 9457 problem details (`application/problem+json`) that name the offending field."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

MEDIA_TYPE = "application/problem+json"
SCHEMA_REF = "#/components/schemas/Problem"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document; `errors` names the offending fields.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "the request path"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "description": "one error: usually the field and the message, at times more",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "index": {"type": "integer"},
                },
                "additionalProperties": True,
            },
        },
    },
}
DESCRIPTIONS = {
    400: "Invalid JSON",
    401: "Missing, invalid or revoked API key",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Payload too large",
    422: "Invalid request",
    502: "The upstream system failed",
    504: "The upstream system timed out",
}


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


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses: problem documents."""
    return {
        status: {
            "description": DESCRIPTIONS[status],
            "content": {MEDIA_TYPE: {"schema": {"$ref": SCHEMA_REF}}},
        }
        for status in statuses
    }


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


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """The methods of the request's path: as the OpenAPI document declares them (where a
    concrete path such as /v1/age/score beats a template such as /v1/age/{account}), else
    every method some route serves there."""
    path = request.url.path
    documented: dict[str, Any] = request.app.openapi().get("paths", {})
    candidates = [t for t in documented if _template(t).fullmatch(path)]
    if candidates:
        best = min(candidates, key=lambda t: (t.count("{"), t))
        return [m for m in _METHODS if m.lower() in documented[best]]
    routes = request.app.router.routes
    return [
        m
        for m in _METHODS
        if any(r.matches({**request.scope, "method": m})[0] is Match.FULL for r in routes)
    ]


def _template(path: str) -> re.Pattern[str]:
    """A regular expression matching the paths of an OpenAPI path template."""
    parts = re.split(r"(\{[^}/]+\})", path)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))


def _document_problems(app: FastAPI) -> None:
    """Add the Problem schema to the app's OpenAPI document (the routes' responses refer to it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = build()
            doc.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Register handlers so that every error leaves as problem+json, never as a stack trace."""
    _document_problems(app)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = list(exc.errors())
        bad_json = next((e for e in errs if e.get("type") == "json_invalid"), None)
        if bad_json is not None:
            why = bad_json.get("ctx", {}).get("error", "parse error")
            msg = f"request body is not valid JSON ({why})"
            return problem_response(field_problem(400, "body", msg, "Invalid JSON"), request)
        items = [{"field": _loc_to_field(e["loc"]), "message": e["msg"]} for e in errs]
        detail = "; ".join(f"{i['field']}: {i['message']}" for i in items)
        return problem_response(Problem(422, "Invalid request", detail, items), request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not read the body (not UTF-8, say)
            msg = f"request body is not valid JSON ({exc.detail})"
            return problem_response(field_problem(400, "body", msg, "Invalid JSON"), request)
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem_response(
            Problem(exc.status_code, title, str(exc.detail), None, headers), request
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(
            Problem(500, "Internal error", "the server failed; nothing was written"), request
        )
