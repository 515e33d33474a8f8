"""`qinglang notice`: publish a privacy notice from a JSON or TOML file, show a version.

Publishing goes through the same store function as ``POST /v1/notices``: a child or minor
notice lacking an element the pack requires is refused (exit 2, naming every missing element);
a new version makes stale the consents whose purpose or scope it changed, and says how many.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table
from rich.text import Text

from qinglang.commands.common import DEFAULT_DB, DbOption, fail, open_service, out, platform_by_slug
from qinglang.commands.consents import (
    ByOption,
    JsonOption,
    PlatformOption,
    policy_of,
    say,
    staff_name,
)

if TYPE_CHECKING:
    from qinglang.api.routers.consent import NoticeOut

app = typer.Typer(help="Privacy notices (operator).", no_args_is_help=True)

LanguageOption = Annotated[Literal["zh", "en"], typer.Option("--language", help="zh or en")]
AudienceOption = Annotated[
    Literal["child", "minor", "general"],
    typer.Option("--audience", help="who the notice is written for"),
]


def read_body(file: Path) -> dict[str, Any]:
    """The notice body in a .json or .toml file (other names: JSON, then TOML), or a failure."""
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}")
    suffix = file.suffix.lower()
    body: Any = None
    if suffix != ".toml":
        try:
            body = json.loads(text)
        except ValueError as exc:
            if suffix == ".json":
                fail(f"{file} is not JSON: {exc}")
    if body is None:
        try:
            body = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            what = "TOML" if suffix == ".toml" else "JSON or TOML"
            fail(f"{file} is not {what}: {exc}")
    if not isinstance(body, dict):
        fail(f"{file}: a notice body is an object with title, elements and items")
    return body


@app.command("publish")
def publish(
    file: Annotated[Path, typer.Argument(help="notice body: JSON or TOML (see docs/consent.md)")],
    platform: PlatformOption,
    language: LanguageOption,
    by: ByOption,
    audience: AudienceOption = "child",
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """Publish the next version of a notice; consents it changes become stale."""
    from qinglang.api.routers.consent import _notice_out
    from qinglang.consent.notices import NoticeError
    from qinglang.store import consents as store

    body = read_body(file)
    name = staff_name(by)
    service = open_service(db)
    p = platform_by_slug(service, platform)
    policy = policy_of(service, p)
    try:
        with service.tx(write=True) as s:
            published = store.publish_notice(s, p, policy, language, audience, body, name)
            shown = _notice_out(published.notice, published)
    except NoticeError as exc:
        fail(f"{file}: {exc}")
    if as_json:
        print(json.dumps(shown.model_dump(mode="json"), ensure_ascii=False))
        return
    say(
        f"published {shown.language} {shown.audience} notice version {shown.version} on "
        f"{p.slug}\n  sha256 {shown.content_hash}\n"
        f"  stale: {shown.stale_consents} consent(s) in {shown.stale_accounts} account(s)"
    )


@app.command("show")
def show(
    platform: PlatformOption,
    language: LanguageOption,
    audience: AudienceOption = "child",
    version: Annotated[
        int | None, typer.Option(min=1, help="this version (default: the current one)")
    ] = None,
    db: DbOption = DEFAULT_DB,
    as_json: JsonOption = False,
) -> None:
    """The current notice (or --version) for a language and audience."""
    from qinglang.api.problems import Problem
    from qinglang.api.routers.consent import _notice, _notice_out

    service = open_service(db)
    p = platform_by_slug(service, platform)
    with service.tx() as s:
        try:
            shown = _notice_out(_notice(s, p, language, audience, version, "version"))
        except Problem:
            which = "published" if version is None else f"version {version}"
            fail(f"no {language} {audience} notice {which} on platform {p.slug!r}")
    if as_json:
        print(json.dumps(shown.model_dump(mode="json"), ensure_ascii=False))
        return
    _print(shown, p.slug)


def _print(n: NoticeOut, slug: str) -> None:
    body = n.body
    say(
        f"{body.get('title', '')}\n{n.language} {n.audience} notice version {n.version} on {slug}, "
        f"published {n.published_at.isoformat(timespec='seconds')} by {n.published_by}\n"
        f"sha256 {n.content_hash}"
    )
    elements = Table(title="elements")
    elements.add_column("element")
    elements.add_column("text", overflow="fold")
    for key, text in dict(body.get("elements") or {}).items():
        elements.add_row(Text(str(key)), Text(str(text)))
    out.print(elements)
    items = Table(title="items")
    for col in ("purpose", "categories", "method", "scope", "audience", "retention"):
        items.add_column(col, overflow="fold")
    for it in list(body.get("items") or []):
        items.add_row(
            Text(str(it.get("purpose", ""))),
            Text(", ".join(str(c) for c in it.get("categories", []))),
            Text(str(it.get("method", ""))),
            Text(str(it.get("scope", ""))),
            Text(str(it.get("audience") or "-")),
            Text(str(it.get("retention") or "-")),
        )
    out.print(items)
