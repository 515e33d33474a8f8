"""Request dependencies: the process's service and the authenticated platform."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from qinglang.api.problems import Problem
from qinglang.api.service import Service
from qinglang.store import repo
from qinglang.store.models import Platform


def get_service(request: Request) -> Service:
    """The service object of this process."""
    service: Service = request.app.state.service
    return service


def _bearer(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def _unauthorised(detail: str) -> Problem:
    return Problem(
        401,
        "Unauthorised",
        detail,
        [{"field": "Authorization", "message": detail}],
        headers={"WWW-Authenticate": 'Bearer realm="qinglang"'},
    )


def current_platform(
    service: Annotated[Service, Depends(get_service)],
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Platform:
    """The platform whose API key authenticates this request (401 problem otherwise)."""
    key = _bearer(authorization, x_api_key)
    if key is None:
        raise _unauthorised("missing API key: send 'Authorization: Bearer <key>'")
    with service.tx() as session:
        platform = repo.platform_for_api_key(session, key)
    if platform is None:
        raise _unauthorised("API key is not valid or was revoked")
    return platform


def require_admin(
    service: Annotated[Service, Depends(get_service)],
    authorization: Annotated[str | None, Header()] = None,
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
    given = _bearer(authorization, None)
    if given is None or not hmac.compare_digest(given, token):
        raise _unauthorised("admin token missing or wrong")


PlatformDep = Annotated[Platform, Depends(current_platform)]
ServiceDep = Annotated[Service, Depends(get_service)]
