"""Data-rights requests, pure part: transitions, refusals, due dates, who may ask, corrections."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from qinglang.consent.rights import (
    CLOSED,
    KINDS,
    STATUSES,
    TRANSITIONS,
    RightsError,
    check_corrected_settings,
    check_kind,
    check_requester,
    check_transition,
    due_date,
    is_overdue,
    parse_correction,
    profile_age,
    pseudonym,
    response_days,
)
from qinglang.policy import load_policy
from qinglang.store.models import RIGHTS_KINDS, RIGHTS_STATUSES

CN = load_policy("cn")
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _overlay(*lines: str) -> str:
    head = '[pack]\nid = "acme"\nversion = "1"\njurisdiction = "CN"\ntimezone = "Asia/Shanghai"\n'
    head += 'title_zh = "甲"\ntitle_en = "Acme"\nbase = "cn"\n'
    return head + "\n".join(lines)


def test_kinds_and_statuses_match_the_table_constraints() -> None:
    assert KINDS == RIGHTS_KINDS
    assert STATUSES == RIGHTS_STATUSES
    check_kind("access")
    with pytest.raises(RightsError) as e:
        check_kind("transfer")
    assert e.value.field == "kind" and e.value.status == 422


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("received", "in_progress"),
        ("received", "completed"),
        ("in_progress", "completed"),
    ],
)
def test_allowed_transitions(current: str, new: str) -> None:
    assert check_transition(current, new, None) is None


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("received", "received"),
        ("in_progress", "received"),
        ("in_progress", "in_progress"),
        ("completed", "in_progress"),
        ("completed", "refused"),
        ("refused", "completed"),
    ],
)
def test_forbidden_transitions_are_conflicts(current: str, new: str) -> None:
    with pytest.raises(RightsError) as e:
        check_transition(current, new, "a reason")
    assert e.value.status == 409 and e.value.field == "status"


def test_closed_statuses_go_nowhere() -> None:
    assert all(not TRANSITIONS[s] for s in CLOSED)
    assert set(TRANSITIONS) == set(STATUSES)


def test_unknown_status_is_invalid() -> None:
    with pytest.raises(RightsError) as e:
        check_transition("received", "lost", None)
    assert e.value.status == 422 and e.value.field == "status"


@pytest.mark.parametrize("reason", [None, "", "   \n"])
def test_refusal_needs_a_written_reason(reason: str | None) -> None:
    for current in ("received", "in_progress"):
        with pytest.raises(RightsError) as e:
            check_transition(current, "refused", reason)
        assert e.value.field == "reason" and e.value.status == 422
        assert "art. 34" in str(e.value)


def test_refusal_reason_is_kept_stripped_and_bounded() -> None:
    assert check_transition("received", "refused", "  identity not proven \n") == (
        "identity not proven"
    )
    with pytest.raises(RightsError) as e:
        check_transition("received", "refused", "x" * 4001)
    assert e.value.field == "reason"


def test_a_reason_only_goes_with_a_refusal() -> None:
    with pytest.raises(RightsError) as e:
        check_transition("received", "completed", "because")
    assert e.value.field == "reason"


def test_due_date_is_response_days_after_receipt() -> None:
    assert response_days(CN) == 15
    assert due_date(T0, CN) == T0 + timedelta(days=15)
    tighter = load_policy(
        "cn", _overlay('[[overrides]]\nid = "cn.rights.response_days"\nvalue = 7')
    )
    assert due_date(T0, tighter) == T0 + timedelta(days=7)
    with pytest.raises(ValueError):
        due_date(T0.replace(tzinfo=None), CN)


def test_overdue_only_while_open_and_after_the_due_date() -> None:
    due = T0 + timedelta(days=15)
    assert not is_overdue("received", due, due)
    assert is_overdue("received", due, due + timedelta(seconds=1))
    assert is_overdue("in_progress", due, due + timedelta(days=3))
    assert not is_overdue("completed", due, due + timedelta(days=3))
    assert not is_overdue("refused", due, due + timedelta(days=3))


def _age(years: int) -> date:
    """A birth date that makes someone `years` old at T0 (birthday a week earlier)."""
    d = (T0 - timedelta(days=7)).date()
    return d.replace(year=d.year - years)


def test_profile_age_counts_in_the_pack_zone() -> None:
    assert profile_age(CN, _age(14), "verified", T0) == 14
    assert profile_age(CN, None, None, T0) is None


def test_guardian_needs_an_active_link() -> None:
    check_requester(CN, "guardian", age=None, guardian_linked=True)
    with pytest.raises(RightsError) as e:
        check_requester(CN, "guardian", age=9, guardian_linked=False)
    assert e.value.status == 403 and e.value.field == "guardian"
    with pytest.raises(RightsError) as e:
        check_requester(CN, "guardian", age=9, guardian_linked=None)
    assert e.value.field == "guardian" and e.value.status == 422


def test_self_request_from_fourteen() -> None:
    check_requester(CN, "self", age=14, guardian_linked=None)
    check_requester(CN, "self", age=40, guardian_linked=None)
    with pytest.raises(RightsError) as e:
        check_requester(CN, "self", age=12, guardian_linked=None)
    assert e.value.status == 403 and e.value.field == "requester"
    assert e.value.rule is not None and e.value.rule.id == "cn.consent.self_from_age"
    assert e.value.rule.message_zh and e.value.rule.message_en


def test_self_request_with_unknown_age_is_refused() -> None:
    with pytest.raises(RightsError) as e:
        check_requester(CN, "self", age=None, guardian_linked=None)
    assert e.value.status == 403 and "unknown" in str(e.value)


def test_self_request_names_no_guardian_and_requester_is_checked() -> None:
    with pytest.raises(RightsError) as e:
        check_requester(CN, "self", age=15, guardian_linked=True)
    assert e.value.field == "guardian"
    with pytest.raises(RightsError) as e:
        check_requester(CN, "school", age=15, guardian_linked=None)
    assert e.value.field == "requester"


def test_parse_correction_accepts_the_correctable_fields() -> None:
    fix = parse_correction(
        {"birth_date": "2012-04-02", "sex": "F", "settings": {"playtime.daily_minutes": 30}}, T0
    )
    assert fix.fields == ("birth_date", "sex", "settings")
    assert fix.birth_date == date(2012, 4, 2) and fix.sex == "F"
    assert fix.settings == {"playtime.daily_minutes": 30}
    only_sex = parse_correction({"sex": "M"}, T0)
    assert only_sex.fields == ("sex",) and only_sex.birth_date is None


@pytest.mark.parametrize(
    ("details", "field"),
    [
        (None, "details"),
        ({}, "details"),
        ({"external_id": "x"}, "details.external_id"),
        ({"birth_date": "02/04/2012"}, "details.birth_date"),
        ({"birth_date": 20120402}, "details.birth_date"),
        ({"birth_date": "2099-01-01"}, "details.birth_date"),
        ({"sex": "X"}, "details.sex"),
        ({"settings": ["a"]}, "details.settings"),
    ],
)
def test_parse_correction_names_the_bad_field(
    details: dict[str, object] | None, field: str
) -> None:
    with pytest.raises(RightsError) as e:
        parse_correction(details, T0)
    assert e.value.field == field and e.value.status == 422


def test_corrected_settings_may_not_loosen_a_floor() -> None:
    check_corrected_settings(CN, _age(9), "guardian_declared", {"playtime.daily_minutes": 30}, T0)
    with pytest.raises(RightsError) as e:
        check_corrected_settings(
            CN, _age(9), "guardian_declared", {"contact.blocked_outcome": "allow"}, T0
        )
    assert e.value.field == "details.settings.contact.blocked_outcome"


def test_pseudonym_is_stable_keyed_and_opaque() -> None:
    a = pseudonym("salt-1", 1, 42)
    assert a == pseudonym("salt-1", 1, 42)
    assert a.startswith("acct_") and len(a) == 5 + 24
    assert a != pseudonym("salt-2", 1, 42)
    assert a != pseudonym("salt-1", 2, 42)
    assert a != pseudonym("salt-1", 1, 43)
