"""Rectification measures, pure: codes, validation naming the field, the status machine, what
blocks closing and when a measure is overdue."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinglang.audit.measures import (
    MEASURE_STATUSES,
    TRANSITIONS,
    MeasureError,
    blocking_requirements,
    can_move,
    check_area,
    check_description,
    check_owner,
    check_requirements,
    check_transition,
    code_number,
    days_overdue,
    format_code,
    is_overdue,
    next_code,
)
from qinglang.audit.model import AREAS, Requirement, Source


def req(rid: str, area: str, kind: str) -> Requirement:
    """A hand-built requirement (the shipped catalogue is not needed here)."""
    return Requirement(
        id=rid,
        area=area,
        kind=kind,
        text_zh=f"{rid} 的要求",
        text_en=f"Requirement {rid}",
        sources=(Source("个人信息保护法", "art. 31"),),
        check=None if kind == "attested" else f"check_{rid.lower().replace('-', '_')}",
    )


CATALOGUE = (
    req("REG-01", "registration", "automated"),
    req("REG-02", "registration", "configuration"),
    req("GOV-01", "governance", "attested"),
    req("CON-01", "contact", "automated"),
    req("USE-01", "use", "automated"),
)
"""A small catalogue shared by the audit-plan tests (store and CLI import it)."""


def test_codes_are_sequential_and_parse_back() -> None:
    assert format_code(1) == "M-0001"
    assert format_code(34) == "M-0034"
    assert format_code(12345) == "M-12345"
    assert code_number("M-0034") == 34
    assert code_number("X-1") is None and code_number("M-12") is None
    assert next_code([]) == "M-0001"
    assert next_code(["M-0002", "M-0010", "junk"]) == "M-0011"
    with pytest.raises(ValueError):
        format_code(0)


@given(st.lists(st.integers(min_value=1, max_value=99_999), max_size=20))
def test_next_code_is_after_every_existing_code(numbers: list[int]) -> None:
    codes = [format_code(n) for n in numbers]
    new = next_code(codes)
    assert new not in codes
    assert code_number(new) == max(numbers, default=0) + 1


def test_validation_names_the_field() -> None:
    assert check_area("storage") == "storage"
    with pytest.raises(MeasureError) as e:
        check_area("weather")
    assert e.value.field == "area" and "weather" in str(e.value)
    assert check_description("  fix it  ") == "fix it"
    for bad in ("", "   ", "x" * 2001):
        with pytest.raises(MeasureError) as e:
            check_description(bad)
        assert e.value.field == "description"
    assert check_description("x" * 2000) == "x" * 2000
    assert check_owner("合规部 王") == "合规部 王"
    for bad in ("", "y" * 129):
        with pytest.raises(MeasureError) as e:
            check_owner(bad)
        assert e.value.field == "owner"


def test_requirement_ids_must_be_in_the_catalogue() -> None:
    assert check_requirements(["REG-01", "GOV-01", "REG-01"], CATALOGUE) == ["REG-01", "GOV-01"]
    assert check_requirements([], CATALOGUE) == []
    with pytest.raises(MeasureError) as e:
        check_requirements(["REG-01", "NOPE-9"], CATALOGUE)
    assert e.value.field == "requirement_ids" and "NOPE-9" in e.value.message


def test_the_allowed_transitions() -> None:
    assert can_move("open", "in_progress")
    assert can_move("in_progress", "done")
    assert can_move("done", "closed")
    assert can_move("done", "in_progress")  # reopened
    for frm, to in [("open", "done"), ("open", "closed"), ("in_progress", "closed")]:
        assert not can_move(frm, to)
        with pytest.raises(MeasureError) as e:
            check_transition(frm, to)
        assert e.value.field == "status"
    for to in MEASURE_STATUSES:
        assert not can_move("closed", to)
    with pytest.raises(MeasureError, match="expected one of"):
        check_transition("open", "abandoned")


@given(st.lists(st.sampled_from(MEASURE_STATUSES), max_size=30))
def test_every_walk_keeps_to_the_machine(steps: list[str]) -> None:
    """Any sequence of requested moves: accepted ones follow TRANSITIONS, closed is final, and
    closed is only reached through done."""
    status, previous = "open", None
    for want in steps:
        try:
            check_transition(status, want)
        except MeasureError:
            assert want not in TRANSITIONS[status]
            continue
        assert want in TRANSITIONS[status]
        previous, status = status, want
        if status == "closed":
            assert previous == "done"
    if status == "closed":
        assert all(not can_move("closed", s) for s in MEASURE_STATUSES)


def test_blocking_requirements() -> None:
    linked = ["REG-01", "REG-02", "GOV-01"]
    passing = {"REG-01": "pass", "REG-02": "pass", "GOV-01": "pass", "CON-01": "fail"}
    assert blocking_requirements(linked, CATALOGUE, passing) == []
    some = {"REG-01": "fail", "REG-02": "pass", "GOV-01": "not_evidenced"}
    assert blocking_requirements(linked, CATALOGUE, some) == ["REG-01", "GOV-01"]
    # no audit run since the measure was made: every linked requirement blocks
    assert blocking_requirements(linked, CATALOGUE, None) == linked
    # not evaluated in the run: blocks
    assert blocking_requirements(["USE-01"], CATALOGUE, {"REG-01": "pass"}) == ["USE-01"]
    # unknown to the catalogue now: blocks
    assert blocking_requirements(["OLD-1"], CATALOGUE, {"OLD-1": "pass"}) == ["OLD-1"]
    # no linked requirement: nothing blocks
    assert blocking_requirements([], CATALOGUE, None) == []


@given(
    st.dictionaries(
        st.sampled_from([r.id for r in CATALOGUE]),
        st.sampled_from(["pass", "fail", "not_evidenced"]),
    ),
    st.lists(st.sampled_from([r.id for r in CATALOGUE]), unique=True),
)
def test_blocking_is_exactly_the_linked_ones_not_passing(
    statuses: dict[str, str], linked: list[str]
) -> None:
    blocked = blocking_requirements(linked, CATALOGUE, statuses)
    assert blocked == [r for r in linked if statuses.get(r) != "pass"]


def test_overdue() -> None:
    today = date(2026, 11, 28)
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    for status in ("open", "in_progress", "done"):
        assert is_overdue(yesterday, status, today)
        assert not is_overdue(today, status, today)  # due today: not yet
        assert not is_overdue(tomorrow, status, today)
    assert not is_overdue(yesterday, "closed", today)
    assert days_overdue(today - timedelta(days=10), "open", today) == 10
    assert days_overdue(today - timedelta(days=10), "closed", today) == 0
    assert days_overdue(tomorrow, "open", today) == 0


def test_catalogue_areas_are_valid() -> None:
    assert all(r.area in AREAS for r in CATALOGUE)
