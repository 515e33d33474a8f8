"""Repository functions and table constraints, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, get_args

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from qinglang.store import repo
from qinglang.store.db import transaction
from qinglang.store.models import (
    AGE_SOURCES,
    AUDIENCES,
    FLAG_KINDS,
    RELATION_KINDS,
    Account,
    ApiKey,
    ContentFlag,
    ContentItem,
    DecisionLog,
    Guardian,
    GuardianLink,
    Platform,
    Relationship,
)
from qinglang.store.repo import RelationFacts


@pytest.fixture
def platform_id(session_maker: sessionmaker[Session]) -> int:
    with transaction(session_maker) as session:
        return repo.create_platform(session, "demo", "Demo App").id


def _accounts(session_maker: sessionmaker[Session], platform_id: int, *names: str) -> list[int]:
    with transaction(session_maker) as session:
        return [repo.upsert_account(session, platform_id, name).id for name in names]


def _count(session_maker: sessionmaker[Session], model: type[Any]) -> int:
    with session_maker() as session:
        count = session.scalar(select(func.count()).select_from(model))
        assert count is not None
        return count


def test_literal_aliases_match_model_constants() -> None:
    assert get_args(repo.RelationKind) == RELATION_KINDS
    assert get_args(repo.FlagKind) == FLAG_KINDS
    assert get_args(repo.Audience) == AUDIENCES
    assert get_args(repo.AgeSource) == AGE_SOURCES


# --- uniqueness and integrity ------------------------------------------------------------


def _violates(session_maker: sessionmaker[Session], write: Callable[[Session], object]) -> None:
    with pytest.raises(IntegrityError), transaction(session_maker) as session:
        write(session)


def test_platform_slug_is_unique(session_maker: sessionmaker[Session], platform_id: int) -> None:
    _violates(session_maker, lambda s: repo.create_platform(s, "demo", "Again"))
    assert _count(session_maker, Platform) == 1


def test_account_external_id_unique_per_platform(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    _accounts(session_maker, platform_id, "u1")

    def duplicate(session: Session) -> None:
        session.add(Account(platform_id=platform_id, external_id="u1", settings={}))
        session.flush()

    _violates(session_maker, duplicate)
    with transaction(session_maker) as session:  # same external id on another platform is fine
        other = repo.create_platform(session, "other", "Other")
        repo.upsert_account(session, other.id, "u1")
    assert _count(session_maker, Account) == 2


def test_relationship_triple_is_unique(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    a, b = _accounts(session_maker, platform_id, "a", "b")
    with transaction(session_maker) as session:
        assert repo.set_relationship(session, platform_id, a, b, "follow")
        assert not repo.set_relationship(session, platform_id, a, b, "follow")

    def duplicate(session: Session) -> None:
        session.add(
            Relationship(platform_id=platform_id, src_account_id=a, dst_account_id=b, kind="follow")
        )
        session.flush()

    _violates(session_maker, duplicate)
    assert _count(session_maker, Relationship) == 1


def test_content_flag_and_item_and_guardian_link_are_unique(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    (owner,) = _accounts(session_maker, platform_id, "owner")
    with transaction(session_maker) as session:
        item = repo.upsert_content_item(session, platform_id, "v1", owner)
        repo.set_content_flag(session, item.id, "shows_minor", source="detector")
        guardian = repo.upsert_guardian(session, platform_id, "g1")
        repo.link_guardian(session, guardian.id, owner, method="face", verified_by="platform")
        item_id, guardian_id = item.id, guardian.id

    def flag(session: Session) -> None:
        session.add(ContentFlag(item_id=item_id, kind="shows_minor", source="x"))
        session.flush()

    def content(session: Session) -> None:
        session.add(ContentItem(platform_id=platform_id, external_id="v1", owner_account_id=owner))
        session.flush()

    def link(session: Session) -> None:
        session.add(
            GuardianLink(
                guardian_id=guardian_id,
                account_id=owner,
                method="sms",
                verified_by="x",
                verified_at=datetime.now(UTC),
            )
        )
        session.flush()

    def guardian_dup(session: Session) -> None:
        session.add(Guardian(platform_id=platform_id, external_id="g1"))
        session.flush()

    for write in (flag, content, link, guardian_dup):
        _violates(session_maker, write)


def test_check_constraints(session_maker: sessionmaker[Session], platform_id: int) -> None:
    a, b = _accounts(session_maker, platform_id, "a", "b")

    def bad_kind(session: Session) -> None:
        session.add(
            Relationship(platform_id=platform_id, src_account_id=a, dst_account_id=b, kind="like")
        )
        session.flush()

    def bad_sex(session: Session) -> None:
        session.add(Account(platform_id=platform_id, external_id="c", sex="X", settings={}))
        session.flush()

    def bad_rate(session: Session) -> None:
        session.add(Platform(slug="p2", name="P2", decision_sample_rate=1.5))
        session.flush()

    for write in (bad_kind, bad_sex, bad_rate):
        _violates(session_maker, write)
    with pytest.raises(ValueError), transaction(session_maker) as session:
        repo.set_relationship(session, platform_id, a, a, "follow")
    with pytest.raises(ValueError), transaction(session_maker) as session:
        repo.upsert_account(session, platform_id, "d", age_source="guessed")  # type: ignore[arg-type]


def test_relationships_cannot_cross_platforms(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    (a,) = _accounts(session_maker, platform_id, "a")
    with transaction(session_maker) as session:
        other = repo.create_platform(session, "other", "Other")
        b = repo.upsert_account(session, other.id, "b").id
        other_id = other.id
    _violates(session_maker, lambda s: repo.set_relationship(s, platform_id, a, b, "follow"))
    _violates(session_maker, lambda s: repo.set_relationship(s, other_id, a, b, "follow"))
    _violates(session_maker, lambda s: repo.upsert_content_item(s, other_id, "v", a))
    with (
        pytest.raises(ValueError, match="different platforms"),
        transaction(session_maker) as session,
    ):
        g = repo.upsert_guardian(session, other_id, "g")
        repo.link_guardian(session, g.id, a, method="sms", verified_by="platform")


# --- accounts ----------------------------------------------------------------------------


def test_upsert_account_updates_only_given_fields(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    with transaction(session_maker) as session:
        created = repo.upsert_account(
            session,
            platform_id,
            "kid",
            birth_date=date(2013, 9, 1),
            sex="M",
            age_source="self_declared",
            id_number_hash="ab" * 32,
            settings={"dm": "friends"},
        )
        assert created.jurisdiction == "cn"
    with transaction(session_maker) as session:
        updated = repo.upsert_account(session, platform_id, "kid", age_source="verified")
        assert updated.id == created.id
    with transaction(session_maker) as session:
        repo.upsert_account(session, platform_id, "kid", sex=None, jurisdiction="hk")
    with session_maker() as session:
        account = repo.get_account(session, platform_id, "kid")
        assert account is not None
        assert account.birth_date == date(2013, 9, 1)
        assert account.sex is None
        assert account.age_source == "verified"
        assert account.id_number_hash == "ab" * 32
        assert account.settings == {"dm": "friends"}
        assert account.jurisdiction == "hk"
        assert account.updated_at >= account.created_at


def test_account_settings_mutation_is_tracked(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    _accounts(session_maker, platform_id, "kid")
    with transaction(session_maker) as session:
        account = repo.get_account(session, platform_id, "kid")
        assert account is not None
        assert account.settings == {}
        account.settings["playtime_minutes"] = 40
    with session_maker() as session:
        account = repo.get_account(session, platform_id, "kid")
        assert account is not None
        assert account.settings == {"playtime_minutes": 40}


def test_get_accounts_by_external_ids(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    names = [f"u{n}" for n in range(1200)]  # more than one IN-chunk
    with transaction(session_maker) as session:
        for name in names:
            session.add(Account(platform_id=platform_id, external_id=name, settings={}))
    with session_maker() as session:
        found = repo.get_accounts(session, platform_id, [*names, "nobody", "u1"])
        assert set(found) == set(names)
        assert found["u7"].external_id == "u7"
        assert repo.get_accounts(session, platform_id, []) == {}


def test_accounts_by_id_number_hash(session_maker: sessionmaker[Session], platform_id: int) -> None:
    with transaction(session_maker) as session:
        repo.upsert_account(session, platform_id, "a", id_number_hash="f" * 64)
        repo.upsert_account(session, platform_id, "b", id_number_hash="f" * 64)
        repo.upsert_account(session, platform_id, "c", id_number_hash="e" * 64)
    with session_maker() as session:
        same = repo.accounts_with_id_number_hash(session, platform_id, "f" * 64)
        assert [a.external_id for a in same] == ["a", "b"]


# --- API keys ----------------------------------------------------------------------------


def test_api_key_issue_verify_revoke(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    with transaction(session_maker) as session:
        platform = repo.get_platform(session, platform_id)
        assert platform is not None
        plaintext = repo.issue_api_key(session, platform, label="prod")
        second = repo.issue_api_key(session, platform)
    scheme, prefix, secret = plaintext.split("_", 2)
    assert scheme == "ql"
    assert len(prefix) == 12
    assert len(secret) >= 43
    with session_maker() as session:
        stored = repo.list_api_keys(session, platform_id)
        assert [k.label for k in stored] == ["prod", ""]
        assert all(plaintext not in (k.key_hash, k.prefix) for k in stored)
        assert secret not in stored[0].key_hash
        found = repo.platform_for_api_key(session, plaintext)
        assert found is not None and found.id == platform_id
        assert (
            repo.platform_for_api_key(
                session, plaintext[:-1] + "A" if plaintext[-1] != "A" else plaintext[:-1] + "B"
            )
            is None
        )
        for bad in ("", "ql_", "ql__x", f"xx_{prefix}_{secret}", f"ql_{prefix}_", "ql_ZZZ_abc"):
            assert repo.platform_for_api_key(session, bad) is None
    with transaction(session_maker) as session:
        assert repo.revoke_api_key(session, platform_id, prefix)
        assert not repo.revoke_api_key(session, platform_id, prefix)
    with session_maker() as session:
        assert repo.platform_for_api_key(session, plaintext) is None
        other = repo.platform_for_api_key(session, second)
        assert other is not None and other.id == platform_id
        revoked = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one()
        assert revoked.revoked_at is not None


def test_revoking_needs_the_owning_platform(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    with transaction(session_maker) as session:
        platform = repo.get_platform(session, platform_id)
        assert platform is not None
        plaintext = repo.issue_api_key(session, platform)
        intruder = repo.create_platform(session, "intruder", "Intruder")
        prefix = plaintext.split("_")[1]
        assert not repo.revoke_api_key(session, intruder.id, prefix)
    with session_maker() as session:
        assert repo.platform_for_api_key(session, plaintext) is not None


# --- relationships -----------------------------------------------------------------------


def test_relation_facts(session_maker: sessionmaker[Session], platform_id: int) -> None:
    kid, friend, fan, stranger, blocker = _accounts(
        session_maker, platform_id, "kid", "friend", "fan", "stranger", "blocker"
    )
    with transaction(session_maker) as session:
        repo.set_relationship(session, platform_id, kid, friend, "follow")
        repo.set_relationship(session, platform_id, friend, kid, "follow")
        repo.set_relationship(session, platform_id, fan, kid, "follow")
        repo.set_relationship(session, platform_id, kid, fan, "approved_contact")
        repo.set_relationship(session, platform_id, blocker, kid, "block")
        repo.set_relationship(session, platform_id, kid, blocker, "follow")
    with session_maker() as session:
        mutual = repo.relation_between(session, kid, friend)
        assert mutual == RelationFacts(a_follows_b=True, b_follows_a=True)
        assert mutual.mutual and not mutual.blocked
        assert repo.relation_between(session, friend, kid).mutual

        one_way = repo.relation_between(session, fan, kid)
        assert one_way.a_follows_b and not one_way.b_follows_a and not one_way.mutual
        # kid's guardian approved contact from fan: src=kid, dst=fan.
        assert one_way.approved_contact_a_to_b
        assert not one_way.approved_contact_b_to_a
        assert repo.relation_between(session, kid, fan).approved_contact_b_to_a

        blocked = repo.relation_between(session, kid, blocker)
        assert blocked.blocked and blocked.b_blocked_a and not blocked.a_blocked_b
        assert repo.relation_between(session, blocker, kid).blocked

        assert repo.relation_between(session, kid, stranger) == RelationFacts()


def test_removing_a_relationship(session_maker: sessionmaker[Session], platform_id: int) -> None:
    a, b = _accounts(session_maker, platform_id, "a", "b")
    with transaction(session_maker) as session:
        repo.set_relationship(session, platform_id, a, b, "follow")
    with transaction(session_maker) as session:
        assert repo.set_relationship(session, platform_id, a, b, "follow", present=False)
        assert not repo.set_relationship(session, platform_id, a, b, "follow", present=False)
    with session_maker() as session:
        assert repo.relation_between(session, a, b) == RelationFacts()


def test_friends_of(session_maker: sessionmaker[Session], platform_id: int) -> None:
    me, f1, f2, fan, idol, frenemy = _accounts(
        session_maker, platform_id, "me", "f1", "f2", "fan", "idol", "frenemy"
    )
    with transaction(session_maker) as session:
        for other in (f1, f2, frenemy):
            repo.set_relationship(session, platform_id, me, other, "follow")
            repo.set_relationship(session, platform_id, other, me, "follow")
        repo.set_relationship(session, platform_id, fan, me, "follow")
        repo.set_relationship(session, platform_id, me, idol, "follow")
        repo.set_relationship(session, platform_id, frenemy, me, "block")
    with session_maker() as session:
        assert repo.friends_of(session, me) == sorted([f1, f2])
        assert repo.friends_of(session, f1) == [me]
        assert repo.friends_of(session, fan) == []


def test_deleting_an_account_cascades_and_keeps_the_log(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    a, b = _accounts(session_maker, platform_id, "a", "b")
    with transaction(session_maker) as session:
        platform = repo.get_platform(session, platform_id)
        assert platform is not None
        repo.set_relationship(session, platform_id, a, b, "follow")
        repo.upsert_content_item(session, platform_id, "v", a)
        repo.log_decision(
            session,
            platform,
            kind="contact",
            action="dm",
            outcome="deny",
            rule_ids=["cn.contact.1"],
            subject_account_id=a,
            other_account_id=b,
            always=True,
        )
    with transaction(session_maker) as session:
        session.delete(session.get_one(Account, a))
    assert _count(session_maker, Relationship) == 0
    assert _count(session_maker, ContentItem) == 0
    with session_maker() as session:
        entry = session.scalars(select(DecisionLog)).one()
        assert entry.subject_account_id is None
        assert entry.other_account_id == b


# --- content -----------------------------------------------------------------------------


def test_flags_for_items(session_maker: sessionmaker[Session], platform_id: int) -> None:
    owner, other_owner = _accounts(session_maker, platform_id, "owner", "owner2")
    with transaction(session_maker) as session:
        v1 = repo.upsert_content_item(session, platform_id, "v1", owner)
        v2 = repo.upsert_content_item(session, platform_id, "v2", owner)
        repo.upsert_content_item(session, platform_id, "v3", owner)
        repo.set_content_flag(session, v1.id, "shows_minor", source="detector", audience="friends")
        repo.set_content_flag(session, v1.id, "minor_pi", source="review")
        repo.set_content_flag(
            session, v2.id, "unsuitable_for_minors", source="platform", min_age=16
        )
        other = repo.create_platform(session, "other", "Other")
        stranger = repo.upsert_account(session, other.id, "s")
        foreign = repo.upsert_content_item(session, other.id, "v1", stranger.id)
        repo.set_content_flag(session, foreign.id, "commercial", source="x")
    with transaction(session_maker) as session:  # re-setting updates in place
        repo.set_content_flag(session, v1.id, "shows_minor", source="review", audience="owner")
        moved = repo.upsert_content_item(session, platform_id, "v2", other_owner)
        assert moved.id == v2.id
    with session_maker() as session:
        flags = repo.flags_for_items(session, platform_id, ["v1", "v2", "v3", "missing"])
        assert set(flags) == {"v1", "v2", "v3"}
        assert [(f.kind, f.audience, f.source) for f in flags["v1"]] == [
            ("minor_pi", None, "review"),
            ("shows_minor", "owner", "review"),
        ]
        assert [(f.kind, f.min_age) for f in flags["v2"]] == [("unsuitable_for_minors", 16)]
        assert flags["v3"] == []
        owners = repo.item_owners(session, platform_id, ["v1", "v2", "missing"])
        assert {k: a.external_id for k, a in owners.items()} == {"v1": "owner", "v2": "owner2"}
    with transaction(session_maker) as session:
        assert repo.set_content_flag(session, v1.id, "minor_pi", source="x", present=False) is None
    with session_maker() as session:
        flags = repo.flags_for_items(session, platform_id, ["v1"])
        assert [f.kind for f in flags["v1"]] == ["shows_minor"]
    assert _count(session_maker, ContentFlag) == 3


# --- guardians ---------------------------------------------------------------------------


def test_guardians_link_and_unlink(session_maker: sessionmaker[Session], platform_id: int) -> None:
    (kid,) = _accounts(session_maker, platform_id, "kid")
    with transaction(session_maker) as session:
        mum = repo.upsert_guardian(session, platform_id, "mum", display_name="Mum")
        dad = repo.upsert_guardian(session, platform_id, "dad")
        repo.link_guardian(
            session,
            mum.id,
            kid,
            method="id_check",
            verified_by="platform",
            verified_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        repo.link_guardian(
            session,
            dad.id,
            kid,
            method="sms",
            verified_by="qinglang",
            verified_at=datetime(2026, 2, 1, tzinfo=UTC),
        )
        mum_id, dad_id = mum.id, dad.id
    with session_maker() as session:
        assert [g.external_id for g in repo.guardians_of(session, kid)] == ["mum", "dad"]
        assert repo.guardians_of(session, kid)[0].display_name == "Mum"
    with transaction(session_maker) as session:
        assert repo.unlink_guardian(session, mum_id, kid)
        assert not repo.unlink_guardian(session, mum_id, kid)
    with session_maker() as session:
        assert [g.id for g in repo.guardians_of(session, kid)] == [dad_id]
    with transaction(session_maker) as session:  # re-linking re-activates the same row
        link = repo.link_guardian(session, mum_id, kid, method="face", verified_by="platform")
        assert link.revoked_at is None
        assert link.method == "face"
    assert _count(session_maker, GuardianLink) == 2
    with session_maker() as session:
        assert {g.id for g in repo.guardians_of(session, kid)} == {mum_id, dad_id}


# --- decision log ------------------------------------------------------------------------


def test_decision_log_is_sampled(session_maker: sessionmaker[Session]) -> None:
    with transaction(session_maker) as session:
        platform = repo.create_platform(session, "sampled", "S", decision_sample_rate=0.25)
        rng = random.Random(20260301)
        written = [
            repo.log_decision(
                session,
                platform,
                kind="exposure",
                action="recommend",
                outcome="allow",
                rule_ids=["cn.exposure.1"],
                request={"item": f"v{n}"},
                rng=rng.random,
            )
            for n in range(2000)
        ]
        forced = repo.log_decision(
            session,
            platform,
            kind="contact",
            action="dm",
            outcome="deny",
            rule_ids=["cn.contact.3", "cn.contact.4"],
            always=True,
            rng=lambda: 0.99,
        )
        platform_id = platform.id
    logged = sum(entry is not None for entry in written)
    assert 400 < logged < 600
    assert forced is not None
    with session_maker() as session:
        count = session.scalar(
            select(func.count())
            .select_from(DecisionLog)
            .where(DecisionLog.platform_id == platform_id)
        )
        assert count == logged + 1
        newest = repo.recent_decisions(session, platform_id, limit=1)[0]
        assert newest.rule_ids == ["cn.contact.3", "cn.contact.4"]
        assert newest.request is None
        sample = repo.recent_decisions(session, platform_id, limit=2)[1]
        assert sample.request is not None and sample.request["item"].startswith("v")


def test_sample_rate_extremes(session_maker: sessionmaker[Session]) -> None:
    with transaction(session_maker) as session:
        never = repo.create_platform(session, "never", "N", decision_sample_rate=0.0)
        always = repo.create_platform(session, "always", "A", decision_sample_rate=1.0)
        args: dict[str, Any] = {"kind": "k", "action": "a", "outcome": "allow", "rule_ids": []}
        assert repo.log_decision(session, never, rng=lambda: 0.0, **args) is None
        assert repo.log_decision(session, always, rng=lambda: 0.999999, **args) is not None
    with pytest.raises(ValueError), transaction(session_maker) as session:
        repo.create_platform(session, "bad", "B", decision_sample_rate=2.0)


def test_insert_race_falls_back_to_the_winner(
    session_maker: sessionmaker[Session], platform_id: int
) -> None:
    """If another writer inserted the row first, the savepoint is undone and theirs is used."""
    (winner,) = _accounts(session_maker, platform_id, "u1")
    with transaction(session_maker) as session:
        (kept,) = _accounts_in(session, platform_id, "before")
        loser = Account(platform_id=platform_id, external_id="u1", settings={})
        got = repo._insert_or_get(
            session, loser, lambda: repo.get_account(session, platform_id, "u1")
        )
        assert got is not loser
        assert got.id == winner
        repo.upsert_account(session, platform_id, "after")
    with session_maker() as session:  # the outer transaction survived the failed savepoint
        assert set(repo.get_accounts(session, platform_id, ["u1", "before", "after"])) == {
            "u1",
            "before",
            "after",
        }
        assert kept


def _accounts_in(session: Session, platform_id: int, *names: str) -> list[int]:
    return [repo.upsert_account(session, platform_id, name).id for name in names]
