"""Region codes: the loc.dat table, year validity, and agreement with stdnum's get_birth_place."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from age_testing import TABLE
from stdnum.cn import ric as stdnum_ric
from stdnum.exceptions import ValidationError

from qinglang.age import regions
from qinglang.age.regions import region_name


def stdnum_region(code: str, year: int) -> str | None:
    """Region name as python-stdnum's get_birth_place sees it, in our naming, or None."""
    try:
        info = stdnum_ric.get_birth_place(f"{code}{year:04d}01010000")
    except (ValidationError, KeyError):
        return None
    county = info["county"].split(",")[0]  # an unbounded first entry comes back unsplit
    return county if code.endswith("0000") else info["province"] + county


def test_table_is_loaded_from_stdnum_data() -> None:
    assert len(TABLE) > 6000
    assert all(len(code) == 6 and code.isdigit() for code in TABLE)
    assert {code[:2] for code in TABLE} >= {"11", "31", "44", "65", "71", "81", "82"}


@pytest.mark.parametrize(
    ("code", "year", "name"),
    [
        ("110105", 1949, "北京市朝阳区"),
        ("110000", 2000, "北京市"),
        ("110100", 2000, "北京市市辖区"),
        ("110103", 2010, "北京市崇文区"),
        ("110103", 2011, None),
        ("110111", 1985, None),  # [1986-]房山区
        ("110111", 1986, "北京市房山区"),
        ("120110", 1991, "天津市东郊区"),
        ("120110", 1992, "天津市东丽区"),
        ("810000", 1996, None),
        ("810000", 1997, "香港特别行政区"),
        ("000000", 2000, None),
        ("119999", 2000, None),
        ("1101", 2000, None),
        ("11010519", 2000, None),
    ],
)
def test_known_codes(code: str, year: int, name: str | None) -> None:
    assert region_name(code, year) == name


def _boundary_years(code: str) -> set[int]:
    years = {1, 1900, 1949, 1990, 1999, 2000, 2026, 9999}
    for first, last, _ in TABLE[code]:
        years |= {first - 1, first, last, last + 1}
    return {y for y in years if 1 <= y <= 9999}


def test_every_code_agrees_with_stdnum_at_every_boundary_year() -> None:
    mismatches = [
        (code, year, region_name(code, year), stdnum_region(code, year))
        for code in TABLE
        for year in _boundary_years(code)
        if region_name(code, year) != stdnum_region(code, year)
    ]
    assert mismatches == []


def test_codes_outside_the_table_agree_with_stdnum() -> None:
    rng = random.Random(20261128)
    candidates = {f"{rng.randrange(1_000_000):06d}" for _ in range(3000)}
    candidates |= {f"{int(code) + delta:06d}" for code in TABLE for delta in (-1, 1)}
    candidates -= set(TABLE)
    assert len(candidates) > 3000
    for code in sorted(candidates):
        assert region_name(code, 2000) is None
        assert stdnum_region(code, 2000) is None, code


def test_parse_supports_numdb_ranges_and_lists() -> None:
    text = (
        "# comment\n"
        '11 province="甲省"\n'
        '  0000 county="甲省"\n'
        '  0101-0103,0105 county="[-1990]旧县,[1991-2000]新县,新区"\n'
        '12-13 province="乙省"\n'
        '  0201 county="[1995-]某县"\n'
    )
    table = regions._parse(text)
    assert sorted(table) == [
        "110000",
        "110101",
        "110102",
        "110103",
        "110105",
        "120201",
        "130201",
    ]
    assert table["110000"] == ((-1, 10_000, "甲省"),)
    assert table["110102"] == (
        (-1, 1990, "甲省旧县"),
        (1991, 2000, "甲省新县"),
        (-1, 10_000, "甲省新区"),
    )
    assert table["130201"] == ((1995, 10_000, "乙省某县"),)


@pytest.mark.parametrize(
    "text",
    [
        "11 province=北京市\n",  # unquoted
        '  0101 county="东城区"\n',  # county before any province
        '11 province="北京市"\n  01a1 county="x"\n',  # bad prefix
        '11 province="北京市"\n  0101 county="[19x0-]x"\n',  # bad year
        '11 province="北京市"\n  0101 county="[1990]x"\n',  # range without dash
        '11 province="北京市"\n  0101 city="x"\n',  # unknown property
    ],
)
def test_parse_rejects_unexpected_lines(text: str) -> None:
    with pytest.raises(ValueError, match=r"loc\.dat"):
        regions._parse(text)


def test_table_is_loaded_lazily_on_first_use() -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    code = (
        f"import sys; sys.path.insert(0, {str(src)!r}); "
        "import qinglang.age as age, qinglang.age.regions as r; "
        "assert r._table is None, 'loaded at import'; "
        "assert age.is_valid('11010519491231002X'); "
        "assert r._table is not None"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
