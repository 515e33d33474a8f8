"""The FastAPI application: one router per room, problem+json errors, OpenAPI at /docs."""

from __future__ import annotations

from fastapi import FastAPI

from qinglang import __version__, web
from qinglang.api import problems
from qinglang.api.routers import (
    accounts,
    age,
    audit,
    consent,
    decisions,
    events,
    graph,
    platforms,
    realname,
    review,
    rights,
    scan,
)
from qinglang.api.service import Service, Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for these settings (default: from the environment)."""
    app = FastAPI(
        title="qinglang",
        version=__version__,
        summary="Protection of minors online: decisions with citations, as a service.",
        description=(
            "Every call needs `Authorization: Bearer <platform API key>`. Errors are "
            "`application/problem+json` and name the offending field."
        ),
    )
    app.state.service = Service(settings or Settings.from_env())
    problems.install(app)
    for r in (
        platforms.router,
        accounts.router,
        age.router,
        graph.router,
        decisions.router,
        scan.router,
        consent.router,
        rights.router,
        events.router,
        review.router,
        realname.router,
        audit.router,
    ):
        app.include_router(r)
    web.mount(app)  # the web console under /console (docs/console.md)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness probe (no authentication, no data)."""
        return {"status": "ok"}

    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory`: each worker reads its settings from the environment."""
    return create_app(Settings.from_env())
