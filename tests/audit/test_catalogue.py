"""The requirement catalogue covers RULES.md's Chinese obligations and rejects bad files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qinglang.audit.catalogue import (
    AUTOMATED_CHECKS,
    CHECKS,
    CONFIGURATION_CHECKS,
    ID_RE,
    CatalogueError,
    by_area,
    by_check,
    load_catalogue,
    parse_catalogue,
)
from qinglang.audit.model import AREAS, KINDS, Requirement
from qinglang.policy import load_policy

CAT = load_catalogue()

CAC2019 = "儿童个人信息网络保护规定 (CAC 2019)"
PIPL = "个人信息保护法"
MPL = "未成年人保护法"
REG = "未成年人网络保护条例"
DATA = "网络数据安全管理条例"
ALGO = "互联网信息服务算法推荐管理规定"
GUIDE = "移动互联网未成年人模式建设指南 (CAC 2024)"
NPPA2021 = "国家新闻出版署关于进一步严格管理切实防止未成年人沉迷网络游戏的通知 (2021)"
NPPA2019 = "国家新闻出版署关于防止未成年人沉迷网络游戏的通知 (2019)"
CAC_NOTICE = "CAC notice 2025-12-29"
AUDIT_MEASURES = "个人信息保护合规审计管理办法 (2025)"

# Every (instrument, article) RULES.md cites in its Chinese sections (Ages, Children's PI, Platform
# duties, Time limits, Online games), copied from RULES.md. Articles are compared without their
# paragraph ("art. 26 para. 2" cites "art. 26"); the guide, notices and measures are cited by the
# same descriptive names cn.toml uses.
RULES_MD_CITATIONS: frozenset[tuple[str, str]] = frozenset(
    {
        # Ages
        (CAC2019, "art. 2"),
        (PIPL, "art. 28"),
        (PIPL, "art. 31"),
        (MPL, "art. 2"),
        (MPL, "art. 76"),
        # Children's personal information
        (DATA, "art. 21"),
        (DATA, "art. 22"),
        (PIPL, "art. 29"),
        (PIPL, "art. 30"),
        (CAC2019, "art. 9"),
        (CAC2019, "art. 10"),
        (CAC2019, "art. 14"),
        (CAC2019, "art. 11"),
        (CAC2019, "art. 12"),
        (CAC2019, "art. 13"),
        (CAC2019, "art. 15"),
        (REG, "art. 36"),
        (CAC2019, "art. 16"),
        (CAC2019, "art. 17"),
        (CAC2019, "art. 19"),
        (CAC2019, "art. 20"),
        (CAC2019, "art. 21"),
        (REG, "art. 35"),
        (PIPL, "art. 57"),
        (REG, "art. 34"),
        (REG, "art. 32"),
        (PIPL, "art. 55"),
        (PIPL, "art. 56"),
        (REG, "art. 37"),
        (CAC_NOTICE, "filing"),
        (AUDIT_MEASURES, "processors of more than 10 million people"),
        # Platform duties towards minors
        (REG, "art. 31"),
        (REG, "art. 43"),
        (MPL, "art. 74"),
        (REG, "art. 26"),
        (REG, "art. 24"),
        (REG, "art. 25"),
        (ALGO, "art. 18"),
        (ALGO, "art. 17"),
        (REG, "art. 38"),
        (MPL, "art. 73"),
        (MPL, "art. 80"),
        (MPL, "art. 78"),
        (REG, "art. 7"),
        (REG, "art. 44"),
        (REG, "art. 45"),
        # Time limits (minor mode guide, secondary sources)
        (GUIDE, "time limits"),
        (GUIDE, "night time"),
        (GUIDE, "rest reminder"),
        (GUIDE, "leaving minor mode"),
        (GUIDE, "age bands"),
        # Online games
        (NPPA2021, "item 1"),
        (MPL, "art. 75"),
        (NPPA2019, "item 3"),
    }
)

# Citations RULES.md marks [unverified] or takes from secondary sources only: exact article.
RULES_MD_UNVERIFIED: frozenset[tuple[str, str]] = frozenset(
    {
        (CAC2019, "art. 10 para. 2"),
        (CAC_NOTICE, "filing"),
        (AUDIT_MEASURES, "processors of more than 10 million people"),
        (GUIDE, "time limits"),
        (GUIDE, "night time"),
        (GUIDE, "rest reminder"),
        (GUIDE, "leaving minor mode"),
        (GUIDE, "age bands"),
    }
)


def _base(article: str) -> str:
    m = re.match(r"art\. \d+", article)
    return m.group(0) if m else article


def test_shipped_catalogue_loads_and_is_cached() -> None:
    assert 35 <= len(CAT) <= 60
    assert load_catalogue() is CAT
    assert all(isinstance(r, Requirement) for r in CAT)


def test_ids_unique_and_well_formed() -> None:
    ids = [r.id for r in CAT]
    assert len(set(ids)) == len(ids)
    for rid in ids:
        assert ID_RE.fullmatch(rid), rid
        assert rid.startswith("cn.req."), rid


def test_fields_valid() -> None:
    for r in CAT:
        assert r.area in AREAS, r.id
        assert r.kind in KINDS, r.id
        assert (r.check is None) == (r.kind == "attested"), r.id
        assert r.check is None or r.check in CHECKS, r.id
        assert r.text_zh.strip() and r.text_en.strip(), r.id
        assert r.sources, r.id


@pytest.mark.parametrize(("instrument", "article"), sorted(RULES_MD_CITATIONS))
def test_every_rules_md_citation_is_covered(instrument: str, article: str) -> None:
    cited = {(s.instrument, _base(s.article)) for r in CAT for s in r.sources}
    assert (instrument, article) in cited


def test_cites_nothing_outside_rules_md_and_law_texts() -> None:
    # Articles beyond RULES.md's list are allowed only where the shipped law texts give them.
    from_law_texts = {
        (MPL, "art. 72"),  # guardian consent under 14; correct and delete on request
        (REG, "art. 46"),  # unified game identity system
        (DATA, "art. 24"),  # delete on account cancellation
        (NPPA2021, "real-name login"),  # RULES.md: real-name login mandatory (NPPA 2021)
    }
    cited = {(s.instrument, _base(s.article)) for r in CAT for s in r.sources}
    assert cited - RULES_MD_CITATIONS - from_law_texts == set()


def test_every_area_and_kind_used() -> None:
    assert {r.area for r in CAT} == set(AREAS)
    assert {r.kind for r in CAT} == set(KINDS)


def test_every_check_used() -> None:
    used = {r.check for r in CAT if r.check is not None}
    assert used == set(CHECKS)
    assert all(by_check(CAT)[c] for c in CHECKS)


def test_check_kinds_consistent() -> None:
    assert set(CONFIGURATION_CHECKS) == {"notices_complete", "encryption_at_rest", "policy_floors"}
    assert len(AUTOMATED_CHECKS) == 13
    for r in CAT:
        if r.check is not None:
            expected = "configuration" if r.check in CONFIGURATION_CHECKS else "automated"
            assert r.kind == expected, r.id


def test_rule_ids_exist_in_cn_pack() -> None:
    policy = load_policy("cn")
    known = set(policy.rules) | {f"bandset.{b}" for b in policy.bandsets}
    for r in CAT:
        for rule_id in r.rule_ids:
            assert rule_id in known, f"{r.id}: unknown rule or band set {rule_id}"
        if r.check == "policy_floors":
            assert r.rule_ids, f"{r.id}: a policy_floors requirement names what implements it"


def test_unverified_citations_are_marked() -> None:
    seen: set[tuple[str, str]] = set()
    for r in CAT:
        for s in r.sources:
            key = (s.instrument, s.article)
            if key in RULES_MD_UNVERIFIED:
                assert s.verified is False, f"{r.id}: {key} must be verified = false"
                seen.add(key)
            else:
                assert s.verified is True, f"{r.id}: {key} is not [unverified] in RULES.md"
    assert seen == RULES_MD_UNVERIFIED


def test_case_requirements_are_automated() -> None:
    # The failures of the case that started qinglang must be caught by record queries.
    by_id = {r.id: r for r in CAT}
    assert by_id["cn.req.consent.guardian_before_processing"].check == "consent_coverage"
    assert by_id["cn.req.consent.within_consented_purpose"].check == "consent_acted_on"
    assert by_id["cn.req.contact.stranger_contact_children"].check == "stranger_contact"
    assert by_id["cn.req.sharing.consented_audience"].check == "audience_exposure"


def test_by_area_and_by_check_partition() -> None:
    areas = by_area(CAT)
    assert tuple(areas) == AREAS
    assert sum(len(v) for v in areas.values()) == len(CAT)
    checks = by_check(CAT)
    assert tuple(checks) == CHECKS
    assert sum(len(v) for v in checks.values()) == sum(r.kind != "attested" for r in CAT)
    for area, reqs in areas.items():
        assert all(r.area == area for r in reqs)
        assert [r.id for r in reqs] == [r.id for r in CAT if r.area == area]


def test_load_from_path(tmp_path: Path) -> None:
    p = tmp_path / "cat.toml"
    p.write_text(_toml([_valid("x.req.one"), _valid("x.req.two", kind="attested")]), "utf-8")
    reqs = load_catalogue(p)
    assert [r.id for r in reqs] == ["x.req.one", "x.req.two"]
    assert reqs[0].sources[0].verified is True
    assert reqs[1].check is None


# ---------------------------------------------------------------- bad files


def _valid(rid: str, kind: str = "automated", **over: object) -> dict[str, object]:
    req: dict[str, object] = {
        "id": rid,
        "area": "use",
        "kind": kind,
        "text_zh": "文本",
        "text_en": "text",
        "sources": [{"instrument": "个人信息保护法", "article": "art. 31"}],
    }
    if kind != "attested":
        req["check"] = "consent_coverage" if kind == "automated" else "policy_floors"
    req.update(over)
    return {k: v for k, v in req.items() if v is not None}


def _value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    return str(v)


def _toml(reqs: list[dict[str, object]]) -> str:
    return "".join(
        "[[requirement]]\n" + "".join(f"{k} = {_value(v)}\n" for k, v in r.items()) + "\n"
        for r in reqs
    )


BAD: list[tuple[dict[str, object], str]] = [
    (_valid("x.req.bad", area="marketing"), "area"),
    (_valid("x.req.bad", kind="manual"), "kind"),
    (_valid("x.req.bad", check="no_such_check"), "check"),
    (_valid("x.req.bad", check=None), "check"),
    (_valid("x.req.bad", kind="configuration", check=None), "check"),
    (_valid("x.req.bad", kind="attested", check="policy_floors"), "check"),
    (_valid("x.req.bad", check="policy_floors"), "check"),
    (_valid("x.req.bad", kind="configuration", check="consent_coverage"), "check"),
    (_valid("x.req.bad", text_zh=""), "text_zh"),
    (_valid("x.req.bad", text_en="  "), "text_en"),
    (_valid("x.req.bad", text_en=None), "text_en"),
    (_valid("x.req.bad", sources=[]), "sources"),
    (_valid("x.req.bad", sources=None), "sources"),
    (_valid("x.req.bad", sources=[{"instrument": "个人信息保护法"}]), "sources[0].article"),
    (
        _valid("x.req.bad", sources=[{"instrument": "x", "article": "art. 1", "verified": "no"}]),
        "sources[0].verified",
    ),
    (_valid("x.req.bad", rule_ids=["cn.age.child", "cn.age.child"]), "rule_ids"),
    (_valid("x.req.bad", rule_ids="cn.age.child"), "rule_ids"),
    (_valid("x.req.bad", rule_id=["cn.age.child"]), "rule_id"),
]


@pytest.mark.parametrize(("req", "field"), BAD, ids=[f for _, f in BAD])
def test_bad_requirement_names_id_and_field(req: dict[str, object], field: str) -> None:
    text = _toml([_valid("x.req.good"), req])
    with pytest.raises(CatalogueError) as exc:
        parse_catalogue(text, "bad.toml")
    assert exc.value.requirement_id == "x.req.bad"
    assert exc.value.field == field
    assert "x.req.bad" in str(exc.value) and field in str(exc.value)


def test_bad_file_raises_from_path(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(_toml([_valid("x.req.bad", area="nowhere")]), "utf-8")
    with pytest.raises(CatalogueError, match=r"x\.req\.bad.*area"):
        load_catalogue(p)


def test_duplicate_id() -> None:
    with pytest.raises(CatalogueError, match=r"x\.req\.twice: id: duplicate") as exc:
        parse_catalogue(_toml([_valid("x.req.twice"), _valid("x.req.twice")]))
    assert exc.value.requirement_id == "x.req.twice"


@pytest.mark.parametrize("rid", ["Cn.Req.Upper", "noDots", "cn..req", "cn.req.", "cn req.x", ""])
def test_bad_id(rid: str) -> None:
    with pytest.raises(CatalogueError, match=r"requirement #2: id") as exc:
        parse_catalogue(_toml([_valid("x.req.ok"), _valid(rid)]))
    assert exc.value.field == "id"


def test_missing_id() -> None:
    with pytest.raises(CatalogueError, match=r"#1: id"):
        parse_catalogue(_toml([_valid("x.req.ok", id=None)]))


@pytest.mark.parametrize("text", ["", "[[requirement]\n", "title = 'x'\n"])
def test_bad_file(text: str) -> None:
    with pytest.raises(CatalogueError):
        parse_catalogue(text)


# ---------------------------------------------------------------- properties

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20
).filter(lambda s: s.strip() != "")
_segment = st.from_regex(r"[a-z0-9_]{1,8}", fullmatch=True)
_rid = st.lists(_segment, min_size=2, max_size=4).map(".".join)


@st.composite
def _requirements(draw: st.DrawFn) -> list[dict[str, object]]:
    ids = draw(st.lists(_rid, min_size=1, max_size=8, unique=True))
    out = []
    for rid in ids:
        kind = draw(st.sampled_from(KINDS))
        check = None
        if kind != "attested":
            pool = AUTOMATED_CHECKS if kind == "automated" else CONFIGURATION_CHECKS
            check = draw(st.sampled_from(pool))
        sources = draw(
            st.lists(
                st.fixed_dictionaries(
                    {"instrument": _text, "article": _text, "verified": st.booleans()}
                ),
                min_size=1,
                max_size=3,
            )
        )
        out.append(
            _valid(
                rid,
                kind=kind,
                check=check,
                area=draw(st.sampled_from(AREAS)),
                text_zh=draw(_text),
                text_en=draw(_text),
                rule_ids=draw(st.lists(_rid, max_size=3, unique=True)),
                sources=sources,
            )
        )
    return out


@settings(max_examples=60, deadline=None)
@given(_requirements())
def test_valid_catalogues_round_trip_in_order(reqs: list[dict[str, object]]) -> None:
    parsed = parse_catalogue(_toml(reqs))
    assert [r.id for r in parsed] == [r["id"] for r in reqs]
    for raw, r in zip(reqs, parsed, strict=True):
        assert (r.area, r.kind, r.check, r.text_zh, r.text_en) == (
            raw["area"],
            raw["kind"],
            raw.get("check"),
            raw["text_zh"],
            raw["text_en"],
        )
        assert list(r.rule_ids) == raw["rule_ids"]
        raw_sources = raw["sources"]
        assert isinstance(raw_sources, list)
        assert [(s.instrument, s.article, s.verified) for s in r.sources] == [
            (s["instrument"], s["article"], s["verified"]) for s in raw_sources
        ]
    # grouping keeps every requirement once and the file's order within each group
    groups = by_area(parsed)
    assert sorted(r.id for rs in groups.values() for r in rs) == sorted(r.id for r in parsed)
    for rs in groups.values():
        assert [parsed.index(r) for r in rs] == sorted(parsed.index(r) for r in rs)
