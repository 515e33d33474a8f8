"""Age sources: ranking, claim validation, and choosing the claim to act on."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinglang.age import AgeClaim, AgeSource, best_claim

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_ranks_are_ordered() -> None:
    order = [
        AgeSource.VERIFIED,
        AgeSource.GUARDIAN_DECLARED,
        AgeSource.SELF_DECLARED,
        AgeSource.INFERRED,
    ]
    assert [s.rank for s in order] == sorted((s.rank for s in order), reverse=True)
    assert len({s.rank for s in AgeSource}) == len(AgeSource)
    assert AgeSource("guardian_declared") is AgeSource.GUARDIAN_DECLARED
    assert str(AgeSource.VERIFIED) == "verified"
    assert f"{AgeSource.INFERRED}" == "inferred"


def test_empty_gives_none() -> None:
    assert best_claim([]) is None


def test_source_rank_beats_recency_and_youth() -> None:
    verified = AgeClaim(date(1990, 1, 1), AgeSource.VERIFIED, T0)
    self_declared = AgeClaim(date(2012, 1, 1), AgeSource.SELF_DECLARED, T0 + timedelta(days=9))
    assert best_claim([self_declared, verified]) is verified


def test_recency_beats_youth_within_a_source() -> None:
    old = AgeClaim(date(2012, 1, 1), AgeSource.SELF_DECLARED, T0)
    new = AgeClaim(date(2000, 1, 1), AgeSource.SELF_DECLARED, T0 + timedelta(seconds=1))
    assert best_claim([old, new]) is new
    assert best_claim([new, old]) is new


def test_missing_observation_time_counts_as_oldest() -> None:
    undated = AgeClaim(date(2012, 1, 1), AgeSource.GUARDIAN_DECLARED)
    dated = AgeClaim(date(2000, 1, 1), AgeSource.GUARDIAN_DECLARED, T0)
    assert best_claim([undated, dated]) is dated


def test_younger_birth_date_wins_full_ties() -> None:
    older = AgeClaim(date(2008, 1, 1), AgeSource.INFERRED, T0)
    younger = AgeClaim(date(2011, 1, 1), AgeSource.INFERRED, T0)
    assert best_claim([older, younger]) is younger
    assert best_claim([younger, older]) is younger


def test_observation_times_compare_across_zones() -> None:
    east = timezone(timedelta(hours=8))
    at_7_east = datetime(2026, 1, 1, 7, tzinfo=east)  # 2025-12-31T23:00Z
    at_0030_utc = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    earlier = AgeClaim(date(2011, 1, 1), AgeSource.SELF_DECLARED, at_7_east)
    later = AgeClaim(date(2000, 1, 1), AgeSource.SELF_DECLARED, at_0030_utc)
    assert best_claim([earlier, later]) is later


def test_source_given_as_string_is_coerced() -> None:
    claim = AgeClaim(date(2010, 1, 1), "verified")  # type: ignore[arg-type]
    assert claim.source is AgeSource.VERIFIED
    with pytest.raises(ValueError):
        AgeClaim(date(2010, 1, 1), "rumoured")  # type: ignore[arg-type]


@pytest.mark.parametrize("confidence", [-0.01, 1.01, math.nan, math.inf])
def test_confidence_must_be_a_probability(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        AgeClaim(date(2010, 1, 1), AgeSource.INFERRED, confidence=confidence)


def test_observed_at_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        AgeClaim(date(2010, 1, 1), AgeSource.INFERRED, datetime(2026, 1, 1))


def test_birth_date_must_be_a_date() -> None:
    with pytest.raises(TypeError):
        AgeClaim(datetime(2010, 1, 1, tzinfo=UTC), AgeSource.INFERRED)


claims = st.builds(
    AgeClaim,
    birth_date=st.dates(date(1950, 1, 1), date(2026, 1, 1)),
    source=st.sampled_from(AgeSource),
    observed_at=st.none()
    | st.datetimes(datetime(2020, 1, 1), datetime(2026, 1, 1), timezones=st.just(UTC)),
    confidence=st.none() | st.floats(0, 1),
)


def key(c: AgeClaim) -> tuple[int, bool, datetime, date]:
    return (
        c.source.rank,
        c.observed_at is not None,
        c.observed_at or datetime.min.replace(tzinfo=UTC),
        c.birth_date,
    )


@given(st.lists(claims, min_size=1, max_size=8), st.randoms())
def test_best_claim_is_order_independent_and_maximal(items: list[AgeClaim], rnd: object) -> None:
    best = best_claim(items)
    assert best is not None
    shuffled = list(items)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    again = best_claim(shuffled)
    assert again is not None and key(again) == key(best)
    for c in items:
        assert c.source.rank <= best.source.rank
        if c.source.rank == best.source.rank:
            assert key(c) <= key(best)
