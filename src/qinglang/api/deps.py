"""Request dependencies: the process's service and the authenticated platform."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from qinglang.api.problems import Problem, unauthorised
from qinglang.api.service import Service
from qinglang.store.models import Platform


async def get_service(request: Request) -> Service:
    """The service object of this process."""
    service: Service = request.app.state.service
    return service


def _bearer(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


async def api_key(
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> str:
    """The API key sent with the request (401 problem when there is none)."""
    key = _bearer(authorization, x_api_key)
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
        raise unauthorised("admin token missing or wrong")


PlatformDep = Annotated[Platform, Depends(current_platform)]
ServiceDep = Annotated[Service, Depends(get_service)]
ApiKeyDep = Annotated[str, Depends(api_key)]
