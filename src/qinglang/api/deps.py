"""Request dependencies: the process's service and the authenticated platform."""

from __future__ import annotations

import hmac
import json
import re
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from qinglang.api.problems import Problem, field_problem, unauthorised
from qinglang.api.service import Service
from qinglang.store.models import Platform


async def get_service(request: Request) -> Service:
    """The service object of this process."""
    service: Service = request.app.state.service
    return service


# Declared for OpenAPI (either one authenticates); the values are read from the raw headers.
_BEARER = HTTPBearer(
    scheme_name="PlatformKey",
    description="The platform's API key: `Authorization: Bearer <key>`",
    auto_error=False,
)
_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    scheme_name="PlatformKeyHeader",
    description="The platform's API key in its own header",
    auto_error=False,
)
_ADMIN = HTTPBearer(
    scheme_name="AdminToken",
    description="The operator's token (QINGLANG_ADMIN_TOKEN): `Authorization: Bearer <token>`",
    auto_error=False,
)


def _bearer(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


async def api_key(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)],
    x_api_key: Annotated[str | None, Security(_KEY_HEADER)],
) -> str:
    """The API key sent with the request (401 problem when there is none)."""
    key = _bearer(request.headers.get("authorization"), x_api_key)
    if key is None:
        raise unauthorised("missing API key: send 'Authorization: Bearer <key>'")
    return key


def current_platform(
    service: Annotated[Service, Depends(get_service)], key: Annotated[str, Depends(api_key)]
) -> Platform:
    """The platform whose API key authenticates this request (401 problem otherwise)."""
    with service.tx() as session:
        return service.authenticate(session, key)


def require_admin(
    request: Request,
    service: Annotated[Service, Depends(get_service)],
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_ADMIN)],
) -> None:
    """Operator-only endpoints: the admin token from QINGLANG_ADMIN_TOKEN."""
    token = service.settings.admin_token
    if token is None:
        raise Problem(
            403,
            "Registration disabled",
            "set QINGLANG_ADMIN_TOKEN to register platforms over HTTP, "
            "or use 'qinglang platform create'",
        )
    given = _bearer(request.headers.get("authorization"), None)
    if given is None or not hmac.compare_digest(given, token):
        raise unauthorised("admin token missing or wrong")


# A JSON escape that may decode to text no database stores: NUL, or a (lone) surrogate.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def _query_names(route: APIRoute) -> set[str]:
    """The query parameters the route (or one of its dependencies) declares."""
    names: set[str] = set()
    dependants = [route.dependant]
    while dependants:
        dependant = dependants.pop()
        names |= {p.alias for p in dependant.query_params}
        dependants.extend(dependant.dependencies)
    return names


def _text_problem(value: str) -> str | None:
    """Why the database cannot store this text (None: it can)."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def _bad_text(value: Any, path: str) -> tuple[str, str] | None:
    """The first (field, message) in a JSON document whose text cannot be stored."""
    if isinstance(value, str):
        problem = _text_problem(value)
        return None if problem is None else (path or "body", problem)
    if isinstance(value, dict):
        for key, item in value.items():
            field = f"{path}.{key}" if path else str(key)
            problem = _text_problem(key)
            found = (field, f"key {problem}") if problem else _bad_text(item, field)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _bad_text(item, f"{path}.{i}" if path else str(i))
            if found:
                return found
    return None


async def storable_text(request: Request) -> None:
    """Refuse path, query or JSON text the route reads that the database cannot store (422
    naming the field); what the route does not declare it ignores, and so does this."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        problem = _text_problem(value) if isinstance(value, str) else None
        if problem and (name in request.path_params or name in _query_names(route)):
            raise field_problem(422, name, problem)
    if route.body_field is None:
        return
    body = await request.body()
    if body and _SUSPECT_ESCAPE.search(body):
        try:
            doc = json.loads(body)
        except ValueError:
            return  # not JSON: FastAPI answers 400
        found = _bad_text(doc, "")
        if found:
            raise field_problem(422, *found)


PlatformDep = Annotated[Platform, Depends(current_platform)]
ServiceDep = Annotated[Service, Depends(get_service)]
ApiKeyDep = Annotated[str, Depends(api_key)]
