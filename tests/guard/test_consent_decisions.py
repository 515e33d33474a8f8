"""Decisions that read the consent snapshot: contact, exposure and collection."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from qinglang.guard import (
    UNTRACKED,
    ConsentView,
    ExposureIndex,
    Grant,
    ItemFlags,
    Profile,
    Relation,
    Viewer,
    build_profile,
    collection_decision,
    contact_decision,
    exposure_decision,
)
from qinglang.guard.collection import MEMO_SIZE
from qinglang.guard.consents import (
    BY_GUARDIAN,
    BY_SELF,
    NO_CONSENT,
    PUBLISH,
    RECOMMEND,
    STRANGER_MESSAGES,
    ConsentState,
)
from qinglang.policy import AUDIENCES, load_pack

POLICY = load_pack("cn")
AT = datetime(2026, 6, 1, 4, tzinfo=UTC)
FOLLOWERS, PUBLIC = AUDIENCES.index("followers"), AUDIENCES.index("public")
OPEN_DMS = {"contact.dm_from_non_friends": "allow"}


def child(view: ConsentView = UNTRACKED, settings: dict[str, str] | None = None) -> Profile:
    return build_profile(POLICY, "kid", date(2016, 3, 1), "verified", AT, settings, view)


ADULT = build_profile(POLICY, "man", date(1980, 1, 1), "verified", AT)


def test_stranger_messages_to_a_child_need_a_valid_consent_even_when_settings_allow() -> None:
    assert contact_decision("dm", ADULT, child(UNTRACKED, OPEN_DMS), Relation()).allowed
    no_consent = contact_decision("dm", ADULT, child(ConsentView(1), OPEN_DMS), Relation())
    assert not no_consent.allowed
    assert no_consent.rule_ids == ["cn.collect.child_guardian_consent"]
    granted = ConsentView(2, {STRANGER_MESSAGES: Grant("guardian")})
    assert contact_decision("dm", ADULT, child(granted, OPEN_DMS), Relation()).allowed
    stale = ConsentView(3, {}, frozenset({STRANGER_MESSAGES}))
    assert not contact_decision("dm", ADULT, child(stale, OPEN_DMS), Relation()).allowed
    # Friends are not strangers: no consent needed.
    assert contact_decision("dm", ADULT, child(ConsentView(1)), Relation(mutual=True)).allowed


def test_exposure_levels_follow_publish_and_recommend_consents() -> None:
    def flags(view: ConsentView) -> ItemFlags:
        ix = ExposureIndex(POLICY)
        ix.flag_minor_pi("v", child(view), None)
        return ix.flags["v"]

    default = ExposureIndex.default_minor_pi_level(child())
    assert (flags(ConsentView(1)).minor_pi_audience, flags(ConsentView(1)).push_audience) == (
        default,
        default,
    )
    pub = ConsentView(2, {PUBLISH: Grant("guardian", PUBLIC)})
    assert (flags(pub).minor_pi_audience, flags(pub).push_audience) == (PUBLIC, FOLLOWERS)
    both = ConsentView(
        3, {PUBLISH: Grant("guardian", PUBLIC), RECOMMEND: Grant("guardian", PUBLIC)}
    )
    assert (flags(both).minor_pi_audience, flags(both).push_audience) == (PUBLIC, PUBLIC)
    stranger = Viewer(ADULT)
    assert not exposure_decision(stranger, flags(pub), "recommend").allowed
    assert exposure_decision(stranger, flags(pub), "profile").allowed
    assert exposure_decision(stranger, flags(both), "trending").allowed
    # Without consent records (pure use), the item's own audience applies as before.
    ix = ExposureIndex(POLICY)
    ix.flag_minor_pi("v", child(), "public")
    assert exposure_decision(stranger, ix.flags["v"], "recommend").allowed


def test_collection_reads_the_snapshot_unless_told() -> None:
    view = ConsentView(1, {("nearby", "location"): Grant("guardian")})
    kid = child(view)
    assert collection_decision(kid, "location", "nearby").allowed
    assert collection_decision(kid, "location", "ads").outcome.value == "needs_guardian"
    teen = build_profile(
        POLICY,
        "teen",
        date(2011, 1, 1),
        "verified",
        AT,
        consents=ConsentView(1, {("unlock", "face"): Grant("self")}),
    )
    assert collection_decision(teen, "face", "unlock").allowed
    assert not collection_decision(teen, "face", "ads").allowed  # sensitive: separate consent


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["location", "face", "contacts", "other"]),
            st.sampled_from(["nearby", "unlock", "ads", "marketing"]),
            st.sampled_from([None, NO_CONSENT, BY_GUARDIAN, BY_SELF]),
        ),
        max_size=200,
    ),
    st.sampled_from([date(2016, 3, 1), date(2010, 3, 1), date(1980, 1, 1)]),
)
def test_memoised_collection_decisions_equal_fresh_ones(
    calls: list[tuple[str, str, ConsentState | None]], born: date
) -> None:
    view = ConsentView(
        1, {("nearby", "location"): Grant("guardian"), ("unlock", "face"): Grant("self")}
    )
    profile = build_profile(POLICY, "p", born, "verified", AT, consents=view)
    for category, purpose, consent in calls:
        fresh = build_profile(POLICY, "p", born, "verified", AT, consents=view)
        assert collection_decision(profile, category, purpose, consent) == collection_decision(
            fresh, category, purpose, consent
        )
    assert len(profile.collection_memo) <= MEMO_SIZE
