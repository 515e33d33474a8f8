"""Resident identity numbers: known vectors, typed errors, properties vs the spec and stdnum."""

from __future__ import annotations

import pickle
from datetime import date, timedelta

import pytest
from age_testing import (
    DIGITS_X,
    SPEC_WEIGHTS,
    any18,
    make15,
    make18,
    shanghai_today,
    spec_check_char,
    stdnum_is_valid,
    valid18,
    valid_parts,
)
from hypothesis import example, given
from hypothesis import strategies as st

from qinglang.age import ric
from qinglang.age.ric import (
    InvalidCharacters,
    InvalidChecksum,
    InvalidDate,
    InvalidIdentityNumber,
    InvalidLength,
    InvalidRegion,
    ResidentId,
    compact,
    is_valid,
    to_18,
    validate,
)

PUBLISHED = "11010519491231002X"


def reason_of(number: str, **kwargs: date) -> str | None:
    try:
        validate(number, **kwargs)
    except InvalidIdentityNumber as e:
        return e.reason
    return None


# --- known vectors -------------------------------------------------------------------------


def test_published_example_is_valid() -> None:
    assert is_valid(PUBLISHED)
    assert validate(PUBLISHED) == ResidentId(
        number=PUBLISHED,
        birth_date=date(1949, 12, 31),
        sex="F",
        region_code="110105",
        region="北京市朝阳区",
        legacy=False,
    )


def test_stdnum_doc_example_is_valid_and_male() -> None:
    rid = validate("360426199101010071")
    assert rid.sex == "M"
    assert rid.birth_date == date(1991, 1, 1)
    assert rid.region.startswith("江西省")


@pytest.mark.parametrize(
    "text", ["11010519491231002x", " 110105-19491231-002X ", "110105 19491231 002x"]
)
def test_compact_forms_validate(text: str) -> None:
    assert compact(text) == PUBLISHED
    assert is_valid(text)
    assert validate(text).number == PUBLISHED


@pytest.mark.parametrize("check", [c for c in DIGITS_X if c != "X"])
def test_neighbours_of_published_example_fail_checksum(check: str) -> None:
    number = PUBLISHED[:17] + check
    assert not is_valid(number)
    with pytest.raises(InvalidChecksum) as info:
        validate(number)
    assert info.value.reason == "checksum"
    assert info.value.message_en == f"check character should be X, got {check}"
    assert info.value.message_zh == f"校验码应为X，实际为{check}"


def test_legacy_15_digit_number() -> None:
    rid = validate("110105491231002")
    assert rid.legacy is True
    assert rid.number == PUBLISHED
    assert rid.birth_date == date(1949, 12, 31)
    assert rid.sex == "F"
    assert to_18("110105491231002") == PUBLISHED
    assert to_18(PUBLISHED) == PUBLISHED
    assert is_valid("110105491231002")
    assert is_valid("110105-491231-002")


def test_legacy_number_male_and_bad_date() -> None:
    assert validate("110105491231001").sex == "M"
    assert reason_of("110105490230001") == "date"
    assert reason_of("000000491231001") == "region"
    assert reason_of("11010549123100X") == "characters"


@pytest.mark.parametrize("length", [0, 1, 14, 16, 17, 19, 20])
def test_bad_length(length: int) -> None:
    number = ("11010519491231002X" * 2)[:length]
    assert not is_valid(number)
    with pytest.raises(InvalidLength) as info:
        validate(number)
    assert info.value.reason == "length"
    assert info.value.message_en == f"expected 15 or 18 characters, got {length}"
    assert info.value.message_zh == f"应为15位或18位，实际{length}位"


def test_length_message_example_from_brief() -> None:
    with pytest.raises(InvalidLength, match=r"^expected 15 or 18 characters, got 17$") as info:
        validate(PUBLISHED[:17])
    assert info.value.message_zh == "应为15位或18位，实际17位"


@pytest.mark.parametrize(
    ("number", "bad", "position"),
    [
        ("1101051949123100AX", "A", 17),
        ("X1010519491231002X", "X", 1),
        ("11010519491231002Y", "Y", 18),
        ("1101051949123100XX", "X", 17),
        ("11010519491231002٣", "٣", 18),  # Arabic-Indic digit three
        ("1101051949123100²X", "²", 17),  # superscript two: isdigit() but not a digit here
    ],
)
def test_bad_characters(number: str, bad: str, position: int) -> None:
    assert not is_valid(number)
    with pytest.raises(InvalidCharacters) as info:
        validate(number)
    assert info.value.reason == "characters"
    assert f"{bad!r} at position {position}" in info.value.message_en
    assert f"第{position}位为“{bad}”" in info.value.message_zh


@pytest.mark.parametrize(
    ("birth", "ok"),
    [
        ("19490230", False),  # Feb 30
        ("19490229", False),  # common year
        ("19000229", False),  # century, not leap
        ("20000229", True),  # divisible by 400
        ("19961131", False),
        ("19961301", False),
        ("19960001", False),
        ("19960100", False),
        ("00000101", False),  # year 0 does not exist
        ("19961231", True),
    ],
)
def test_calendar_dates(birth: str, ok: bool) -> None:
    head = f"110105{birth}002"
    number = head + spec_check_char(head)
    assert is_valid(number) is ok
    assert reason_of(number) == (None if ok else "date")


def test_feb_30_message() -> None:
    head = "11010519490230002"
    with pytest.raises(InvalidDate) as info:
        validate(head + spec_check_char(head))
    assert info.value.message_en == "birth date 1949-02-30 is not a real calendar date"
    assert info.value.message_zh == "出生日期1949-02-30不是有效的日期"


@pytest.mark.parametrize("region", ["000000", "119999", "990101", "110199"])
def test_unknown_region(region: str) -> None:
    number = make18(region, date(1990, 5, 17), 123)
    assert not is_valid(number)
    with pytest.raises(InvalidRegion) as info:
        validate(number)
    assert info.value.reason == "region"
    assert info.value.message_en == (
        f"region code {region} was not an administrative division in 1990"
    )
    assert info.value.message_zh == f"地区码{region}在1990年不是有效的行政区划代码"


def test_region_validity_follows_birth_year() -> None:
    # 110103 崇文区 was merged into 东城区 in 2010 (loc.dat: "[-2010]崇文区").
    assert validate(make18("110103", date(2010, 12, 31), 1)).region == "北京市崇文区"
    assert reason_of(make18("110103", date(2011, 1, 1), 1)) == "region"
    # 120110: 东郊区 until 1991, 东丽区 from 1992.
    assert validate(make18("120110", date(1991, 6, 1), 1)).region == "天津市东郊区"
    assert validate(make18("120110", date(1992, 6, 1), 1)).region == "天津市东丽区"


def test_future_birth_date_is_rejected_by_default() -> None:
    later = shanghai_today() + timedelta(days=2)  # still future if midnight passes mid-test
    number = make18("110105", later, 2)
    assert not is_valid(number)
    with pytest.raises(InvalidDate, match="is after today"):
        validate(number)


def test_future_boundary_with_explicit_today() -> None:
    today = date(2026, 3, 15)
    on_day = make18("110105", today, 2)
    day_after = make18("110105", today + timedelta(days=1), 2)
    assert is_valid(on_day, today=today)
    assert validate(on_day, today=today).birth_date == today
    assert not is_valid(day_after, today=today)
    with pytest.raises(InvalidDate) as info:
        validate(day_after, today=today)
    assert info.value.message_en == (
        "birth date 2026-03-16 is after today (2026-03-15, Asia/Shanghai)"
    )
    assert info.value.message_zh == "出生日期2026-03-16晚于今天（北京时间2026-03-15）"


def test_explicit_today_in_the_past_is_honoured() -> None:
    # Dates before the import-time shortcut bound must still be compared with an explicit today.
    number = make18("110105", date(2000, 1, 2), 2)
    assert is_valid(number)
    assert not is_valid(number, today=date(2000, 1, 1))
    assert reason_of(number, today=date(2000, 1, 1)) == "date"


def test_clock_is_read_in_shanghai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ric, "_shanghai_today", lambda: date(2099, 1, 1))
    assert is_valid(make18("110105", date(2099, 1, 1), 2))
    assert not is_valid(make18("110105", date(2099, 1, 2), 2))
    assert validate(make18("110105", date(2099, 1, 1), 2)).birth_date == date(2099, 1, 1)


def test_check_order_reports_first_failure() -> None:
    # Bad date and bad checksum: the date is reported (it is checked first).
    assert reason_of("110105194902300021") == "date"
    # Unknown region and bad checksum: region.
    assert reason_of("000000194912310021") == "region"


def test_errors_are_value_errors_with_both_messages() -> None:
    with pytest.raises(ValueError, match="check character") as info:
        validate("110105194912310021")
    err = info.value
    assert isinstance(err, InvalidIdentityNumber)
    assert str(err) == err.message_en
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is InvalidChecksum
    assert (clone.message_en, clone.message_zh, clone.reason) == (
        err.message_en,
        err.message_zh,
        "checksum",
    )
    reasons = {
        cls.reason
        for cls in (InvalidLength, InvalidCharacters, InvalidDate, InvalidRegion, InvalidChecksum)
    }
    assert reasons == {"length", "characters", "date", "region", "checksum"}


def test_resident_id_is_frozen() -> None:
    rid = validate(PUBLISHED)
    with pytest.raises(AttributeError):
        rid.number = "x"  # type: ignore[misc]


# --- properties --------------------------------------------------------------------------


def test_weights_are_powers_of_two_mod_11() -> None:
    # The base-13 shortcut in ric relies on W_i = 2**(18 - i) mod 11 (i = 1..17).
    assert ric.WEIGHTS == SPEC_WEIGHTS
    assert tuple(pow(2, 18 - i, 11) for i in range(1, 18)) == SPEC_WEIGHTS


@given(st.text("0123456789", min_size=17, max_size=17))
def test_check_table_matches_weighted_sum(first17: str) -> None:
    assert ric._CHECK_BY_BASE13[int(first17, 13) % 11] == spec_check_char(first17)


@given(valid_parts())
def test_generated_numbers_validate_and_round_trip(parts: tuple[str, date, int]) -> None:
    region, birth, seq = parts
    number = make18(region, birth, seq)
    assert is_valid(number)
    rid = validate(number)
    assert rid.number == number
    assert rid.birth_date == birth
    assert rid.sex == ("M" if seq % 2 else "F")
    assert rid.region_code == region
    assert rid.region
    assert rid.legacy is False


@given(valid_parts(legacy=True))
def test_generated_legacy_numbers_validate_and_convert(parts: tuple[str, date, int]) -> None:
    region, birth, seq = parts
    legacy = make15(region, birth, seq)
    rid = validate(legacy)
    assert is_valid(legacy)
    assert rid.legacy is True
    assert rid.number == make18(region, birth, seq)
    assert rid.birth_date == birth
    assert rid.sex == ("M" if seq % 2 else "F")
    assert to_18(legacy) == rid.number


@given(valid18(), st.integers(0, 17), st.sampled_from(DIGITS_X))
def test_any_single_character_change_is_detected(number: str, i: int, new: str) -> None:
    changed = number[:i] + new + number[i + 1 :]
    if changed == number:
        return
    assert not is_valid(changed)
    assert reason_of(changed) is not None


@given(valid18(), st.integers(0, 16))
def test_adjacent_transposition_is_detected(number: str, i: int) -> None:
    swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
    if swapped == number:
        return
    assert not is_valid(swapped)
    assert reason_of(swapped) is not None


@given(any18)
@example("119999194912310021")  # known province, unknown county: stdnum 2.2 raises KeyError
@example("11010520990101002X")  # future date: the documented difference
def test_agrees_with_stdnum_except_future_dates(number: str) -> None:
    ours, theirs = is_valid(number), stdnum_is_valid(number)
    if ours == theirs:
        return
    # The only allowed disagreement: stdnum accepts a birth date after today.
    assert theirs and not ours
    assert date(int(number[6:10]), int(number[10:12]), int(number[12:14])) > shanghai_today()
    with pytest.raises(InvalidDate, match="is after today"):
        validate(number)


@given(
    st.one_of(
        any18,
        st.text(DIGITS_X + "x -\t٣²AO", max_size=22),
        st.text(max_size=20),
        valid18().map(lambda n: n[:6] + " " + n[6:14] + "-" + n[14:].lower()),
        valid_parts(legacy=True).map(lambda p: make15(*p)),
    )
)
def test_is_valid_agrees_with_validate(text: str) -> None:
    assert is_valid(text) == (reason_of(text) is None)
    assert is_valid(text) == is_valid(compact(text))


@given(st.text(max_size=25))
def test_validate_raises_only_typed_errors(text: str) -> None:
    try:
        rid = validate(text)
    except InvalidIdentityNumber as e:
        assert e.reason in {"length", "characters", "date", "region", "checksum"}
        assert e.message_en and e.message_zh
    else:
        assert len(rid.number) == 18
