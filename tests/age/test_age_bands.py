"""Age bands: narrowest containing band, ties, gaps, and BandIndex agreeing with band_for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinglang.age import MAX_INDEXED_AGE, BandIndex, band_for


@dataclass(frozen=True)
class Band:
    id: str
    min_age: int
    max_age: int | None


class TupleBand(NamedTuple):
    id: str
    min_age: int
    max_age: int | None


CN_BANDS = [
    Band("minor", 0, 18),
    Band("under_8", 0, 8),
    Band("8_16", 8, 16),
    Band("16_18", 16, 18),
    Band("adult", 18, None),
]


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (None, None),
        (-1, None),
        (0, "under_8"),
        (7, "under_8"),
        (8, "8_16"),
        (15, "8_16"),
        (16, "16_18"),
        (17, "16_18"),
        (18, "adult"),
        (150, "adult"),
        (151, "adult"),
        (10_000, "adult"),
    ],
)
def test_narrowest_band(age: int | None, expected: str | None) -> None:
    found = band_for(age, CN_BANDS)
    assert (found.id if found else None) == expected
    indexed = BandIndex(CN_BANDS).lookup(age)
    assert (indexed.id if indexed else None) == expected


def test_gap_between_bands_gives_none() -> None:
    bands = [Band("child", 0, 14), Band("adult", 18, None)]
    assert band_for(15, bands) is None
    assert BandIndex(bands).lookup(15) is None
    assert band_for(14, bands) is None
    assert band_for(13, bands) == bands[0]


def test_first_wins_among_equally_narrow() -> None:
    bands = [Band("a", 10, 14), Band("b", 12, 16), Band("c", 12, 16)]
    assert band_for(13, bands) == bands[0]
    assert band_for(14, bands) == bands[1]
    assert BandIndex(bands).lookup(13) == bands[0]


def test_nested_open_bands_prefer_higher_minimum() -> None:
    bands = [Band("everyone", 0, None), Band("senior", 60, None), Band("x", 0, 100)]
    assert band_for(70, bands) == bands[2]  # closed beats open
    assert band_for(120, bands) == bands[1]
    assert band_for(30, [bands[0], bands[1]]) == bands[0]


def test_accepts_any_object_with_the_attributes() -> None:
    bands = [TupleBand("teen", 13, 18), TupleBand("all", 0, None)]
    assert band_for(15, bands) == bands[0]
    assert BandIndex(bands).lookup(19) == bands[1]
    assert BandIndex(bands).bands == tuple(bands)


band_lists = st.lists(
    st.builds(
        Band,
        id=st.text("abc", min_size=1, max_size=3),
        min_age=st.integers(0, 160),
        max_age=st.none() | st.integers(0, 170),
    ),
    max_size=8,
)


def width(band: Band) -> tuple[int, int]:
    return (0, band.max_age - band.min_age) if band.max_age is not None else (1, -band.min_age)


@given(band_lists, st.none() | st.integers(-5, 200))
def test_index_agrees_with_band_for(bands: list[Band], age: int | None) -> None:
    assert BandIndex(bands).lookup(age) is band_for(age, bands)


@given(band_lists, st.integers(-5, MAX_INDEXED_AGE + 20))
def test_result_is_a_narrowest_containing_band(bands: list[Band], age: int) -> None:
    containing = [b for b in bands if b.min_age <= age and (b.max_age is None or age < b.max_age)]
    found = band_for(age, bands)
    if not containing:
        assert found is None
        return
    assert found is not None
    narrowest = min(width(b) for b in containing)
    assert width(found) == narrowest
    assert found is next(b for b in containing if width(b) == narrowest)
