"""The case that started the project, as tests.

A stranger adult who follows a 10-year-old cannot DM her, cannot see her location or face, and
her videos flagged as showing her are not recommended to him; her guardian-approved aunt can.
"""

from __future__ import annotations

from qinglang.guard import (
    ExposureIndex,
    Outcome,
    Relation,
    Viewer,
    attribute_decision,
    contact_decision,
    exposure_decision,
    filter_candidates,
)
from qinglang.guard.exposure import FOLLOWERS, FRIENDS, OWNER, PUBLIC

from .conftest import MakeProfile


def test_stranger_adult_who_follows_a_child_cannot_message_her(person: MakeProfile) -> None:
    girl, man = person("girl", 10), person("man", 41)
    follows = Relation()  # he follows her; she does not follow back: not mutual
    assert contact_decision("follow", man, girl, follows).outcome is Outcome.ALLOW
    dm = contact_decision("dm", man, girl, follows)
    assert dm.outcome is Outcome.DENY
    assert dm.rule_ids == ["cn.contact.dm.child"]
    assert dm.reasons[0].message_zh and dm.reasons[0].message_en
    assert contact_decision("friend_request", man, girl, follows).outcome is Outcome.NEEDS_GUARDIAN
    for action in ("comment", "mention", "gift"):
        assert contact_decision(action, man, girl, follows).outcome is Outcome.DENY


def test_follower_cannot_see_her_location_or_face(person: MakeProfile) -> None:
    girl = person("girl", 10)
    for attr in ("location", "face", "school"):
        d = attribute_decision(girl, attr, FOLLOWERS)
        assert d.outcome is Outcome.DENY, attr
        assert d.rule_ids and d.rule_ids[0].startswith("cn.exposure.")
    assert attribute_decision(girl, "location", OWNER).outcome is Outcome.ALLOW
    assert attribute_decision(girl, "face", FRIENDS).outcome is Outcome.ALLOW


def test_her_flagged_videos_are_not_recommended_to_him(person: MakeProfile, cn) -> None:  # type: ignore[no-untyped-def]
    girl, man = person("girl", 10), person("man", 41)
    index = ExposureIndex(cn)
    index.flag_minor_pi("video-1", girl, consented_audience=None)
    him = Viewer(man, following={"girl"})
    feed = ["cat-video", "video-1", "dance"]
    assert filter_candidates(him, feed, index) == ["cat-video", "dance"]
    d = exposure_decision(him, index.flags["video-1"], "recommend")
    assert d.outcome is Outcome.DENY and d.rule_ids == ["cn.exposure.minor_pi"]
    # nor in search, nor on trending
    assert not exposure_decision(him, index.flags["video-1"], "search").allowed
    assert not exposure_decision(him, index.flags["video-1"], "trending").allowed
    # a mutual friend of the girl (her classmate) may see it
    mate = Viewer(person("mate", 10), friends={"girl"})
    assert filter_candidates(mate, feed, index) == feed


def test_guardian_consent_widens_the_audience_and_nothing_more(person: MakeProfile, cn) -> None:  # type: ignore[no-untyped-def]
    girl, man = person("girl", 10), person("man", 41)
    index = ExposureIndex(cn)
    index.flag_minor_pi("video-2", girl, consented_audience="followers")
    assert exposure_decision(
        Viewer(man, following={"girl"}), index.flags["video-2"], "recommend"
    ).allowed
    assert not exposure_decision(Viewer(man), index.flags["video-2"], "recommend").allowed
    assert PUBLIC > FOLLOWERS


def test_guardian_approved_aunt_can_message_her(person: MakeProfile) -> None:
    girl, aunt = person("girl", 10), person("aunt", 35)
    assert (
        contact_decision("dm", aunt, girl, Relation(approved_contact=True)).outcome is Outcome.ALLOW
    )
    # …unless the girl blocked her
    blocked = contact_decision("dm", aunt, girl, Relation(approved_contact=True, blocked=True))
    assert blocked.outcome is Outcome.DENY and blocked.rule_ids == ["cn.contact.blocked"]
