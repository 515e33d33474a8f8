"""Contact, exposure, collection and spending decisions, and guardian settings."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qinglang.guard import (
    CONTACT_ACTIONS,
    BadAmount,
    ConsentState,
    ExposureIndex,
    ItemFlags,
    Outcome,
    Relation,
    SettingsError,
    UnknownAction,
    UnknownCategory,
    Viewer,
    account_decision,
    collection_decision,
    contact_decision,
    explain_filtered,
    exposure_decision,
    filter_candidates,
    spending_decision,
)
from qinglang.guard.exposure import FRIENDS, PUBLIC

from .conftest import MakeProfile

ages = st.integers(0, 80)
relations = st.builds(Relation, st.booleans(), st.booleans(), st.booleans(), st.booleans())


@given(ages, ages, relations, st.sampled_from(CONTACT_ACTIONS))
def test_contact_invariants(
    person: MakeProfile, s_age: int, r_age: int, rel: Relation, action: str
) -> None:
    sender, recipient = person("s", s_age), person("r", r_age)
    d = contact_decision(action, sender, recipient, rel)
    if rel.blocked:
        assert d.outcome is Outcome.DENY and d.rule_ids == ["cn.contact.blocked"]
    elif recipient.is_child and not (rel.mutual or rel.approved_contact or rel.guardian):
        assert action == "follow" or not d.allowed
    elif not recipient.is_minor and not (action == "gift" and s_age < 8):
        assert d.outcome is Outcome.ALLOW
    if d.outcome is not Outcome.ALLOW:
        assert d.reasons, "every restriction names its rule"


def test_child_under_8_cannot_send_gifts_even_to_friends(person: MakeProfile) -> None:
    d = contact_decision("gift", person("kid", 7), person("mum", 40), Relation(mutual=True))
    assert d.outcome is Outcome.DENY and d.rule_ids == ["cn.spend.allowed.under8"]


def test_minor_can_stop_messages_from_strangers(person: MakeProfile) -> None:
    teen = person("teen", 15)
    assert contact_decision("dm", person("x", 30), teen, Relation()).outcome is Outcome.ALLOW
    quiet = person("teen", 15, {"contact.dm_from_non_friends": "deny"})
    assert contact_decision("dm", person("x", 30), quiet, Relation()).outcome is Outcome.DENY
    assert (
        contact_decision("dm", person("x", 30), quiet, Relation(mutual=True)).outcome
        is Outcome.ALLOW
    )


def test_unknown_action(person: MakeProfile) -> None:
    for rel in (Relation(), Relation(mutual=True), Relation(blocked=True)):
        with pytest.raises(UnknownAction, match="poke"):
            contact_decision("poke", person("a", 30), person("b", 10), rel)


def test_guardian_cannot_loosen_a_floor(person: MakeProfile) -> None:
    with pytest.raises(SettingsError) as exc:
        person("kid", 12, {"game.allowed_windows": ["19:00-22:00"]})
    assert exc.value.setting == "game.allowed_windows" and "cn.game.window" in str(exc.value)
    with pytest.raises(SettingsError, match="does not apply"):
        person("adult", 30, {"game.allowed_windows": ["20:00-20:30"]})
    # loosening a default that is not a floor is the guardian's call
    assert (
        person("kid", 12, {"playtime.daily_minutes": 90}).rules["playtime.daily_minutes"].value
        == 90
    )


def test_unknown_age_is_not_treated_as_a_child(person: MakeProfile) -> None:
    anon = person("anon", None, source=None)
    assert anon.age is None and not anon.is_minor


def test_profile_features(person: MakeProfile) -> None:
    assert person("kid", 10).band == "8to11" and person("teen", 16).band == "16to17"
    assert person("adult", 30).band == "adult" and person("anon", None, source=None).band is None
    f = person("kid", 10).features()
    assert f["dm_from_non_friends"].state == "off"
    assert f["discoverable"].state == "off"
    assert f["location_display"].limit == "owner"
    assert f["face_collection"].state == "needs_guardian"
    assert f["live_streaming"].state == "off"
    assert f["payments"].limit == {
        "single_cap_fen": 5000,
        "daily_cap_fen": None,
        "monthly_cap_fen": 20000,
    }
    assert person("teen", 17).features()["live_streaming"].state == "needs_guardian"
    assert person("tot", 6).features()["payments"].state == "off"
    adult = person("adult", 30).features()
    assert adult["payments"].state == "on" and adult["live_streaming"].state == "on"
    unverified = person("adult", 30, source="self_declared").features()["live_streaming"]
    assert (
        unverified.state == "needs_verification" and unverified.rule_id == "cn.live.real_identity"
    )


def test_spending_caps_and_remaining(person: MakeProfile) -> None:
    kid = person("kid", 12)
    ok = spending_decision(kid, 3000, 0, 10000)
    assert ok.outcome is Outcome.LIMIT
    assert ok.limits["monthly_remaining_after_fen"] == 7000
    too_big = spending_decision(kid, 6000, 0, 0)
    assert too_big.outcome is Outcome.DENY and too_big.rule_ids == ["cn.spend.single.8to15"]
    month = spending_decision(kid, 3000, 0, 18000)
    assert month.outcome is Outcome.DENY and month.limits["max_payable_fen"] == 2000
    assert spending_decision(person("tot", 7), 100, 0, 0).rule_ids == ["cn.spend.allowed.under8"]
    assert spending_decision(person("teen", 16), 9000, 0, 0).allowed
    assert spending_decision(person("adult", 30), 10**8, 10**8, 10**9).outcome is Outcome.ALLOW
    assert spending_decision(kid, 100, 0, 0, purpose="fan_funding").rule_ids == [
        "cn.spend.fan_funding"
    ]


@given(st.integers(1, 50000), st.integers(0, 50000), st.integers(0, 50000), st.integers(8, 17))
def test_spending_never_exceeds_caps(
    person: MakeProfile, amount: int, today: int, month: int, age: int
) -> None:
    d = spending_decision(person("m", age), amount, today, month)
    single = 5000 if age < 16 else 10000
    monthly = 20000 if age < 16 else 40000
    assert d.allowed == (amount <= single and month + amount <= monthly)


@pytest.mark.parametrize(("amount", "field"), [(0, "amount"), (-5, "amount")])
def test_spending_bad_amount(person: MakeProfile, amount: int, field: str) -> None:
    with pytest.raises(BadAmount) as exc:
        spending_decision(person("kid", 12), amount, 0, 0)
    assert exc.value.field == field


def test_daily_cap_from_guardian(person: MakeProfile) -> None:
    kid = person("kid", 12, {"spending.daily_cap_fen": 1000})
    d = spending_decision(kid, 800, 500, 0)
    assert d.outcome is Outcome.DENY and d.rule_ids == ["cn.spend.daily"]


def test_collection(person: MakeProfile) -> None:
    kid, teen, adult = person("kid", 10), person("teen", 15), person("adult", 30)
    d = collection_decision(kid, "location", "nearby_friends")
    assert d.outcome is Outcome.NEEDS_GUARDIAN
    assert d.rule_ids == ["cn.collect.child_guardian_consent", "cn.collect.separate_consent"]
    assert collection_decision(kid, "contacts", "find_friends", ConsentState(guardian=True)).allowed
    assert not collection_decision(kid, "face", "login", ConsentState(guardian=True)).allowed
    assert collection_decision(
        kid, "face", "login", ConsentState(guardian=True, separate=True)
    ).allowed
    assert collection_decision(teen, "face", "login").outcome is Outcome.DENY
    assert collection_decision(teen, "voice", "search").allowed
    d = collection_decision(teen, "browsing", "automated_marketing", ConsentState(True, True))
    assert d.outcome is Outcome.DENY and d.rule_ids == ["cn.collect.marketing"]
    assert collection_decision(adult, "browsing", "automated_marketing").allowed
    with pytest.raises(UnknownCategory):
        collection_decision(kid, "dreams", "x")


def test_exposure_unsuitable_and_marketing(person: MakeProfile) -> None:
    teen, adult = Viewer(person("teen", 15)), Viewer(person("adult", 30))
    gore = ItemFlags("studio", unsuitable_below=18)
    ad = ItemFlags("shop", commercial=True)
    assert exposure_decision(teen, gore, "search").rule_ids == ["cn.exposure.unsuitable"]
    assert exposure_decision(adult, gore, "search").allowed
    assert exposure_decision(teen, ad, "recommend").rule_ids == ["cn.exposure.marketing"]
    assert exposure_decision(teen, ad, "search").allowed  # searched for, not pushed
    assert exposure_decision(adult, ad, "recommend").allowed


def test_child_account_not_discoverable_to_strangers(person: MakeProfile) -> None:
    kid = person("kid", 10)
    assert account_decision(kid, PUBLIC).outcome is Outcome.DENY
    assert account_decision(kid, FRIENDS).allowed
    assert account_decision(person("teen", 15), PUBLIC).allowed


def test_batch_filter_matches_per_item_decisions(person: MakeProfile, cn) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(7)
    owners = [person(f"o{i}", rng.choice([9, 12, 15, 30])) for i in range(20)]
    index = ExposureIndex(cn)
    for i in range(300):
        kind = rng.random()
        if kind < 0.3:
            index.flag_minor_pi(
                f"i{i}", rng.choice(owners), rng.choice([None, "friends", "public"])
            )
        elif kind < 0.4:
            index.put(f"i{i}", ItemFlags("o1", unsuitable_below=18))
        elif kind < 0.5:
            index.put(f"i{i}", ItemFlags("o2", commercial=True))
    for age in (10, 15, 40):
        viewer = Viewer(person("v", age), friends={"o3", "o4"}, following={"o5"})
        cands = [f"i{rng.randrange(600)}" for _ in range(200)]
        for surface in ("recommend", "search", "trending"):
            kept = filter_candidates(viewer, cands, index, surface)
            expected = [
                c for c in cands if exposure_decision(viewer, index.flags.get(c), surface).allowed
            ]
            assert kept == expected
            removed = explain_filtered(viewer, cands, index, surface)
            assert set(removed) == set(cands) - set(kept)
