"""Console strings in Chinese and English from ``web/i18n/*.toml``, checked when loaded.

Each file holds tables ``[area.some.key]`` with ``zh = "…"`` and ``en = "…"`` (placeholders
``{name}`` filled by ``t("key", name=value)``). All files are merged; a key defined twice, or
without both languages, is an error at load. A missing key raises
:class:`MissingTranslation` when ``QINGLANG_I18N_STRICT=1`` (the test suite) and shows the key
itself otherwise.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any, Final

from fastapi import Request

LANGS: Final = ("zh", "en")
DEFAULT_LANG: Final = "zh"
LANG_COOKIE: Final = "ql_lang"
HTML_LANG: Final = {"zh": "zh-CN", "en": "en"}
STRICT_ENV: Final = "QINGLANG_I18N_STRICT"


class CatalogueError(ValueError):
    """A catalogue file is malformed: a duplicate key, a missing language, a stray value."""


class MissingTranslation(KeyError):
    """A key that no catalogue defines (raised only in strict mode)."""


def strict() -> bool:
    """Whether a missing key raises (``QINGLANG_I18N_STRICT=1``)."""
    return os.environ.get(STRICT_ENV) == "1"


def _flatten(
    table: Mapping[str, Any], prefix: str, source: str, out: dict[str, dict[str, str]]
) -> None:
    leaves = {k: v for k, v in table.items() if not isinstance(v, dict)}
    subtables = {k: v for k, v in table.items() if isinstance(v, dict)}
    if leaves:
        if not prefix:
            raise CatalogueError(f"{source}: values outside a [key] table: {sorted(leaves)}")
        if subtables:
            raise CatalogueError(f"{source}: {prefix} has both texts and sub-keys")
        extra = set(leaves) - set(LANGS)
        if extra:
            raise CatalogueError(f"{source}: {prefix} has unknown languages {sorted(extra)}")
        for lang in LANGS:
            text = leaves.get(lang)
            if not isinstance(text, str) or not text.strip():
                raise CatalogueError(f"{source}: {prefix} has no {lang} text")
        if prefix in out:
            raise CatalogueError(f"{source}: key {prefix} is defined twice")
        out[prefix] = {lang: leaves[lang] for lang in LANGS}
        return
    if not subtables and prefix:
        raise CatalogueError(f"{source}: {prefix} is empty")
    for key, sub in subtables.items():
        _flatten(sub, f"{prefix}.{key}" if prefix else key, source, out)


def parse_catalogue(text: str, source: str, into: dict[str, dict[str, str]]) -> None:
    """Add one TOML catalogue's keys to ``into`` (checked; duplicates are an error)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{source}: {exc}") from None
    _flatten(data, "", source, into)


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    """Every key → {"zh": …, "en": …}, from all packaged ``web/i18n/*.toml`` files."""
    merged: dict[str, dict[str, str]] = {}
    root = resources.files("qinglang.web") / "i18n"
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            parse_catalogue(entry.read_text("utf-8"), f"i18n/{entry.name}", merged)
    return merged


def translate(key: str, lang: str, **params: Any) -> str:
    """The text of ``key`` in ``lang`` with ``{name}`` placeholders filled."""
    entry = catalogue().get(key)
    if entry is None:
        if strict():
            raise MissingTranslation(key)
        return key
    text = entry.get(lang) or entry[DEFAULT_LANG]
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        if strict():
            raise
        return text


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **params)`` bound to a language (what templates call)."""

    def t(key: str, **params: Any) -> str:
        return translate(key, lang, **params)

    return t


def normalise_lang(value: str | None) -> str | None:
    """``zh`` or ``en`` from a query or cookie value (``zh-CN``, ``en-GB`` accepted), else None."""
    if not value:
        return None
    base = value.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGS else None


def lang_of(request: Request) -> str:
    """The request's language: ``?lang=``, else the ``ql_lang`` cookie, else Chinese."""
    return (
        normalise_lang(request.query_params.get("lang"))
        or normalise_lang(request.cookies.get(LANG_COOKIE))
        or DEFAULT_LANG
    )


def html_lang(lang: str) -> str:
    """The ``<html lang>`` value: ``zh-CN`` or ``en``."""
    return HTML_LANG.get(lang, HTML_LANG[DEFAULT_LANG])
