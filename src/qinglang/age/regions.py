"""Administrative-division (region) codes for resident identity numbers, valid by year.

The first six digits of a resident identity number are the GB/T 2260 administrative-division
code of the holder's household registration when the number was issued. Divisions are created,
renamed and abolished over time, so a code is only *plausible* if it named a county-level
division in the holder's birth year.

Source: the table is not maintained here. It is ``stdnum/cn/loc.dat`` from python-stdnum (a
declared dependency), which that project regenerates from the official administrative-division
code lists (via the Chinese Wikipedia tables "中华人民共和国行政区划代码"; see the header of the
data file and python-stdnum's ``update/cn_loc.py``). Updating python-stdnum updates the table.

The file is in python-stdnum's ``numdb`` format: a two-digit province prefix line
(``11 province="北京市"``) followed by indented four-digit county lines
(``  0103 county="[-2010]崇文区"``). A county value may list several names separated by commas,
each optionally prefixed by an inclusive year range ``[start-end]`` (either end may be open).
As in python-stdnum's ``cn.ric.get_birth_place``, a code is plausible for a birth year if any of
its names is unbounded or has a range containing that year; the first such name is used.

The file is parsed once, on first use, into a dict ``code -> ((first_year, last_year, name), ...)``
where the name is the province name followed by the county name (for a province-level code
``XX0000``, just the name listed for it).

>>> region_name("110105", 1949)
'北京市朝阳区'
>>> region_name("110103", 2005), region_name("110103", 2011)
('北京市崇文区', None)
>>> region_name("810000", 1996), region_name("810000", 1997)
(None, '香港特别行政区')
>>> region_name("000000", 2000) is None
True
"""

from __future__ import annotations

from importlib import resources
from typing import Final

__all__ = ["region_name"]

_DATA_PACKAGE: Final = "stdnum.cn"
_DATA_FILE: Final = "loc.dat"
_OPEN_START: Final = -1
_OPEN_END: Final = 10_000

# (first_year, last_year, "province + county") — both years inclusive.
_Entry = tuple[int, int, str]

_table: dict[str, tuple[_Entry, ...]] | None = None


def region_name(code: str, year: int) -> str | None:
    """Return the province and county name of a six-digit region code in `year`, or None."""
    table = _table if _table is not None else _load()
    entries = table.get(code)
    if entries is None:
        return None
    for first, last, name in entries:
        if first <= year <= last:
            return name
    return None


def _load() -> dict[str, tuple[_Entry, ...]]:
    """Parse the data file into the module-level table (once) and return it."""
    global _table
    text = resources.files(_DATA_PACKAGE).joinpath(_DATA_FILE).read_text(encoding="utf-8")
    _table = _parse(text)
    return _table


def _parse(text: str) -> dict[str, tuple[_Entry, ...]]:
    """Parse loc.dat-format text into ``{six-digit code: ((first, last, name), ...)}``."""
    table: dict[str, tuple[_Entry, ...]] = {}
    provinces: list[tuple[str, str]] = []  # (two-digit prefix, name) of the current line
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        prefixes, _, props = raw.strip().partition(" ")
        key, _, value = props.partition("=")
        if len(value) < 2 or value[0] != '"' or value[-1] != '"':
            raise ValueError(f"{_DATA_FILE}:{lineno}: cannot parse {raw!r}")
        value = value[1:-1]
        if indent == 0 and key == "province":
            provinces = [(p, value) for p in _expand(prefixes, 2, lineno)]
        elif indent > 0 and key == "county" and provinces:
            entries = _entries(value, lineno)
            for prefix, province in provinces:
                for county in _expand(prefixes, 4, lineno):
                    # XX0000 is the province itself: its entry already carries the full name.
                    table[prefix + county] = tuple(
                        (first, last, name if county == "0000" else province + name)
                        for first, last, name in entries
                    )
        else:
            raise ValueError(f"{_DATA_FILE}:{lineno}: unexpected line {raw!r}")
    return table


def _expand(prefixes: str, width: int, lineno: int) -> list[str]:
    """Expand a numdb prefix field such as ``0101-0103,0105`` into the codes it covers."""
    codes: list[str] = []
    for part in prefixes.split(","):
        low, _, high = part.partition("-")
        high = high or low
        if len(low) != width or len(high) != width or not (low + high).isdigit():
            raise ValueError(f"{_DATA_FILE}:{lineno}: bad prefix {part!r}")
        codes.extend(f"{n:0{width}d}" for n in range(int(low), int(high) + 1))
    return codes


def _entries(value: str, lineno: int) -> list[_Entry]:
    """Split a county value like ``[-1991]东郊区,[1992-]东丽区`` into year-bounded names."""
    entries: list[_Entry] = []
    for item in value.split(","):
        if not item.startswith("["):
            entries.append((_OPEN_START, _OPEN_END, item))
            continue
        years, sep, name = item[1:].partition("]")
        start, dash, end = years.partition("-")
        if not sep or not dash or not all(year.isdigit() for year in (start, end) if year):
            raise ValueError(f"{_DATA_FILE}:{lineno}: bad year range in {item!r}")
        entries.append((int(start) if start else _OPEN_START, int(end) if end else _OPEN_END, name))
    return entries
