"""What every CLI command shares: one-line bad-input errors, consoles, opening the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from qinglang.api.service import Service
    from qinglang.store.models import Platform

out = Console()
err = Console(stderr=True)

DbOption = Annotated[str, typer.Option(help="database URL (SQLite file or postgresql+psycopg://…)")]
DEFAULT_DB = "sqlite:///./qinglang.db"


class BadInput(Exception):
    """A bad argument: one line on stderr, exit code 2."""


def fail(message: str) -> NoReturn:
    """Stop with a one-line message and exit code 2."""
    raise BadInput(message)


SparkConfOption = Annotated[
    list[str] | None,
    typer.Option("--spark-conf", help="KEY=VALUE Spark setting (repeatable)"),
]


def spark_conf_of(values: list[str] | None) -> dict[str, str]:
    """--spark-conf KEY=VALUE options as a dict, or a one-line failure."""
    conf: dict[str, str] = {}
    for kv in values or []:
        key, sep, value = kv.partition("=")
        if not sep or not key.strip():
            fail(f"--spark-conf: expected KEY=VALUE, got {kv!r}")
        conf[key.strip()] = value.strip()
    return conf


def require_pyspark() -> None:
    """Fail with one line if pyspark is not installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        fail("--spark needs pyspark: pip install 'qinglang[spark]'")


def open_service(db: str) -> Service:
    """The service over this database (migrated), or a one-line failure."""
    from qinglang.api.service import Service, Settings

    try:
        return Service(Settings(db_url=db))
    except Exception as exc:
        fail(f"cannot open database {db}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")


def platform_by_slug(service: Service, slug: str) -> Platform:
    """The platform with this slug, or a one-line failure."""
    from qinglang.store import repo

    with service.tx() as s:
        p = repo.get_platform_by_slug(s, slug)
        if p is None:
            fail(f"no platform {slug!r}")
        s.expunge(p)
        return p
