"""`qinglang demo`: a short-video platform simulated for one week, with the case playing out in it.

A fresh database; a population of accounts (adults, guardians, minors whose age the platform
knows, and minors who registered without a guardian and without an age, whose profile text gives
them away); a week of follows, recommended videos and direct messages; and the case that started
qinglang: one adult is recommended children's videos, follows the children and messages them one
after another. Everything runs through qinglang's own pieces, as a platform would use them:

- accounts through the store, guardian links and consents through the HTTP API (TestClient,
  in-process), relationships and events through their bulk endpoints;
- age inference (`qinglang.age.infer.score_record`) over the profile texts of accounts without a
  verified age; a suspected minor is protected as one (`qinglang.store.assessments`);
- a contact decision before every follow and direct message (the function behind
  ``POST /v1/decide/contact``, at the simulated instant); a denied message is not delivered;
- every minor's videos flagged as showing a minor (``POST /v1/content/flags``), and an exposure
  decision (the function behind ``POST /v1/decide/exposure``) before a child's video is
  recommended or shown in search: without the guardian's consent to recommendation it is shown
  only to friends and followers;
- a PII scan (``POST /v1/scan``) of every delivered message;
- every follow, impression and message attempt (delivered or not) into ``POST /v1/events``, and
  the risk consumer (`qinglang.risk.consumer.Consumer`) run after each simulated hour;
- a simulated reviewer who acts on each new alert within the simulated hour
  (`qinglang.store.review.act`): restrict when the alert shows the shown → follow → message chain
  or contact with three or more minors, dismiss otherwise;
- at the end, the compliance audit of the simulated week as ``qinglang audit run`` makes it
  (`qinglang.audit.run.audit`, as of the week's end): the HTML report, the evidence and the
  bundle signed with a key generated for the demo, in a directory next to the database
  (`audit_dir_for`); the PDF is left to ``qinglang audit run`` (it would double the phase).

The service runs on the simulated clock (`Service.clock`): what the API records (notices,
guardian links, consents, follows, flags, ledger entries) is stamped with the simulated instant,
so the audit judges the week's activity against the consents as they stood then, and the ledger
stays in time order.

Deterministic for a seed: the population and the week come from ``random.Random(seed)`` and a fixed
simulated week (from Monday 2026-11-16, Asia/Shanghai); nothing simulated reads the wall clock.
Only the timings (``seconds``) and the audit bundle's location differ between runs; in the bundle,
the findings and evidence are the same, but the ledger head's hash (ledger entries carry a random
nonce) and the demo's signing key are new each run.
"""

from __future__ import annotations

import os
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
START: Final = datetime(2026, 11, 16, 0, 0, tzinfo=SHANGHAI)
"""Monday 00:00 in Shanghai: the first instant of the simulated week."""
DAYS: Final = 7
BEFORE: Final = START - timedelta(days=30)
"""When the accounts and friendships that exist before the week were made."""
TICK: Final = timedelta(hours=1)
"""Events are sent, the risk consumer runs and the reviewer acts once per simulated tick."""
PLATFORM_SLUG: Final = "demo"
OFFENDER: Final = "u-wang"
RESTRICTED_RULE: Final = "cn.risk.restricted_contact"
REVIEWER: Final = "demo-reviewer"
MINOR_KINDS: Final = ("minor", "unverified_minor")
VIDEOS: Final = 5
"""Videos per account (``v-<account>-<n>``)."""

# ----------------------------------------------------------------------------- texts

_SURNAMES: Final = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_KID_NICKS: Final = ("小鱼", "糖糖", "果冻", "小熊", "星星", "豆豆", "月月", "乐乐", "朵朵", "小雨")
_ADULT_NICKS: Final = ("老", "大", "阿", "")

_MINOR_BIOS_REVEALING: Final = (
    "初二学生，{age}岁",
    "{age}岁 爱画画",
    "五年级三班 ✨ 喜欢跳舞",
    "初一新生 {age}岁",
    "小学生一枚 作业好多",
    "{year}年的小学生",
    "高一 | {age}岁 | 追星",
    "我今年{age}岁，喜欢唱歌",
    "六年级的小朋友，爱唱歌",
)
_MINOR_BIOS_VAGUE: Final = ("喜欢跳舞", "追番中", "爱猫人士 🐱", "每天开心", "")
_ADULT_BIOS: Final = (
    "上班族，爱摄影",
    "宝妈一枚，两个孩子",
    "90后程序员",
    "退休教师，爱跳广场舞",
    "喜欢旅游和美食",
    "健身教练",
    "爱钓鱼",
    "",
)

_MINOR_CHAT: Final = (
    "今天作业写完了吗？",
    "数学第三题怎么做",
    "明天一起去图书馆吧",
    "哈哈哈笑死我了",
    "你看昨天那集了吗",
    "上号上号",
    "这个皮肤好好看",
    "体育课跑八百米累死了",
    "放学一起走吗",
    "借我抄一下笔记",
    "gg 再来一局",
)
_ADULT_CHAT: Final = (
    "晚上一起吃饭吗",
    "项目周五交，记得",
    "发你的那个文件收到了吗",
    "新开的那家店不错",
    "明天几点开会",
    "路上注意安全",
    "周末去爬山吗",
)
_FAMILY_CHAT: Final = (
    "作业写完了吗？",
    "晚饭想吃什么",
    "早点睡觉",
    "放学我来接你",
    "别玩太久手机了",
)
_PII_CHAT: Final = (
    "我的电话是1{a}{b}，有事打我",
    "加我微信 wx{b}",
    "我家住在朝阳区建国路{n}号院",
    "快递寄到海淀区中关村大街{n}号",
    "我的QQ是{b}{n}",
)
_STRANGER_TO_MINOR: Final = ("你的视频拍得真好", "这首歌叫什么名字？", "跳得真棒👍")

OFFENDER_SCRIPT: Final = (
    "你好呀，看了你的视频，你跳舞真好看",
    "你几岁了？在哪个学校上学？",
    "别告诉你爸妈，周末我们见面吧，我给你买皮肤",
)
REPLIES: Final = ("谢谢叔叔", "我{age}岁了，在实验中学")


# ----------------------------------------------------------------------------- the population


@dataclass(frozen=True, slots=True)
class Person:
    """One simulated account."""

    id: str
    kind: str
    """adult, guardian, minor (age known to the platform), unverified_minor, offender."""
    age: int
    """The true age (what the simulation knows; qinglang only sees what the platform tells it)."""
    birth: date | None
    """The birth date the platform tells qinglang (None: not told)."""
    age_source: str | None
    nickname: str
    bio: str
    group: int
    """Friend group: a school class for minors, a circle of friends for adults."""
    guardian: str | None = None
    """For a minor: the guardian account linked to them (if any)."""
    consents: tuple[bool, bool] = (False, False)
    """For a linked minor: whether the guardian grants publishing, and recommendation to
    strangers, of the child's videos."""


@dataclass(slots=True)
class Population:
    """The accounts and the graph before the week starts."""

    people: list[Person]
    friends: list[tuple[str, str]]
    """Mutual follows (each pair once)."""
    by_id: dict[str, Person] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_id = {p.id: p for p in self.people}


def _birth_for(age: int, rng: random.Random) -> date:
    """A birth date that makes someone `age` throughout the simulated week."""
    week_end = (START + timedelta(days=DAYS)).date()
    start = date(week_end.year - age - 1, week_end.month, week_end.day) + timedelta(days=1)
    last = date(START.year - age, START.month, START.day)
    return start + timedelta(days=rng.randrange((last - start).days + 1))


def build_population(seed: int, accounts: int) -> Population:
    """Accounts and friendships for a seed (pure and deterministic)."""
    if accounts < 100:
        raise ValueError("accounts: at least 100")
    rng = random.Random(f"population-{seed}")
    n_minor = round(accounts * 0.20)
    n_unverified = round(accounts * 0.12)
    n_guardian = round(n_minor * 0.6)
    n_adult = accounts - n_minor - n_unverified - n_guardian - 1
    people: list[Person] = []
    minors: list[Person] = []
    class_size = 25

    def nick_kid() -> str:
        return rng.choice(_KID_NICKS) + str(rng.randrange(100, 1000))

    for i in range(n_minor):
        age = rng.randrange(9, 18)
        source = rng.choice(("verified", "guardian_declared", "self_declared"))
        minors.append(
            Person(
                f"m{i:05d}",
                "minor",
                age,
                _birth_for(age, rng),
                source,
                nick_kid(),
                rng.choice(_MINOR_BIOS_VAGUE),
                group=i // class_size,
            )
        )
    classes = max(1, n_minor // class_size)
    for i in range(n_unverified):
        age = rng.randrange(9, 17)
        if rng.random() < 0.85:
            bio = rng.choice(_MINOR_BIOS_REVEALING).format(age=age, year=START.year - age)
        else:
            bio = rng.choice(_MINOR_BIOS_VAGUE)
        minors.append(
            Person(
                f"k{i:05d}",
                "unverified_minor",
                age,
                None,
                None,
                nick_kid(),
                bio,
                rng.randrange(classes),
            )
        )
    # Guardians: parents of the first minors whose age the platform knows.
    linked = rng.sample(range(n_minor), n_guardian)
    guardian_of: dict[int, str] = {}
    for j, mi in enumerate(sorted(linked)):
        gid = f"g{j:05d}"
        guardian_of[mi] = gid
        age = rng.randrange(32, 50)
        people.append(
            Person(
                gid,
                "guardian",
                age,
                _birth_for(age, rng),
                "verified",
                rng.choice(_SURNAMES) + rng.choice(("妈妈", "爸爸")),
                rng.choice(_ADULT_BIOS),
                group=-1,
            )
        )
    for mi, gid in guardian_of.items():
        m = minors[mi]
        grants = (rng.random() < 0.9, rng.random() < 0.3)
        minors[mi] = Person(
            m.id, m.kind, m.age, m.birth, m.age_source, m.nickname, m.bio, m.group, gid, grants
        )
    people.extend(minors)
    circles = max(1, n_adult // 20)
    for i in range(n_adult):
        age = rng.randrange(18, 70)
        told = rng.random() < 0.6
        people.append(
            Person(
                f"a{i:05d}",
                "adult",
                age,
                _birth_for(age, rng) if told else None,
                rng.choice(("verified", "self_declared")) if told else None,
                rng.choice(_ADULT_NICKS) + rng.choice(_SURNAMES),
                rng.choice(_ADULT_BIOS),
                group=rng.randrange(circles),
            )
        )
    people.append(
        Person(
            OFFENDER,
            "offender",
            41,
            _birth_for(41, rng),
            "verified",
            "王叔叔",
            "热爱生活，喜欢看小朋友跳舞",
            group=-2,
        )
    )
    friends: set[tuple[str, str]] = set()

    def befriend(a: str, b: str) -> None:
        if a != b:
            friends.add((a, b) if a < b else (b, a))

    by_group: dict[tuple[bool, int], list[str]] = {}
    for p in people:
        if p.group >= 0:
            by_group.setdefault((p.kind in MINOR_KINDS, p.group), []).append(p.id)
    for members in by_group.values():
        for a in members:
            for b in rng.sample(members, min(len(members), 4)):
                befriend(a, b)
    for p in people:
        if p.guardian is not None:
            befriend(p.id, p.guardian)
    return Population(people, sorted(friends))


# ----------------------------------------------------------------------------- the week


@dataclass(frozen=True, slots=True)
class Action:
    """Something an account does at a simulated instant."""

    at: datetime
    kind: str
    """follow, impression or message."""
    actor: str
    target: str
    """The followee, the recipient, or the owner of the video shown."""
    text: str | None = None
    item: str | None = None
    surface: str | None = None
    contact: int | None = None
    """For the offender's messages: which child contact (1st, 2nd, …) this message belongs to."""
    reply_to: int | None = None
    """A reply happens only if the message with this index (in the week) was delivered."""


def _activity(hour: int) -> float:
    """Relative activity of an hour of the day (Shanghai): evenings peak, nights are quiet."""
    return (0.05, 0.03, 0.02, 0.02, 0.02, 0.05, 0.2, 0.5, 0.6, 0.5, 0.5, 0.6,
            0.9, 0.7, 0.5, 0.5, 0.7, 0.9, 1.0, 1.4, 1.6, 1.5, 1.0, 0.4)[hour]  # fmt: skip


def _offender_targets(pop: Population, rng: random.Random) -> list[str]:
    """The twelve children aged 10 to 15 the offender goes after, in order: first those whose
    videos the platform may recommend to him (their guardian consented to recommendation: under
    qinglang no other child's video is pushed to a stranger), then any others."""
    kids = [p for p in pop.people if p.kind in MINOR_KINDS and 10 <= p.age <= 15]
    shown = [p.id for p in kids if p.consents[1]]
    first = rng.sample(shown, min(12, len(shown)))
    rest = [p.id for p in kids if p.id not in set(first)]
    return first + rng.sample(rest, min(12 - len(first), len(rest)))


def build_week(pop: Population, seed: int) -> list[Action]:
    """The week's actions in time order (pure and deterministic for a seed)."""
    rng = random.Random(f"week-{seed}")
    n = len(pop.people)
    ids = [p.id for p in pop.people if p.kind != "offender"]
    minors = [p.id for p in pop.people if p.kind in MINOR_KINDS]
    adults = [p.id for p in pop.people if p.kind in ("adult", "guardian")]
    friend_list = pop.friends
    actions: list[Action] = []
    hours = DAYS * 24
    weights = [_activity(h % 24) for h in range(hours)]
    scale = sum(weights)
    messages_per_week = n * 3
    impressions_per_week = n * 6
    follows_per_week = n // 3
    for h in range(hours):
        base = START + timedelta(hours=h)
        share = weights[h] / scale

        def at(base: datetime = base) -> datetime:
            return base + timedelta(seconds=rng.randrange(3600))

        for _ in range(round(messages_per_week * share)):
            r = rng.random()
            if r < 0.93:
                a, b = rng.choice(friend_list)
                if rng.random() < 0.5:
                    a, b = b, a
            elif r < 0.985:
                a, b = rng.choice(adults), rng.choice(adults)
            else:
                a, b = rng.choice(adults), rng.choice(minors)
            if a == b:
                continue
            pa, pb = pop.by_id[a], pop.by_id[b]
            if rng.random() < 0.03:
                text = rng.choice(_PII_CHAT).format(
                    a=rng.randrange(30, 90), b=rng.randrange(10**8, 10**9), n=rng.randrange(1, 99)
                )
            elif r >= 0.985:
                text = rng.choice(_STRANGER_TO_MINOR)
            elif pa.guardian == b or pb.guardian == a:
                text = rng.choice(_FAMILY_CHAT)
            elif pa.kind in MINOR_KINDS:
                text = rng.choice(_MINOR_CHAT)
            else:
                text = rng.choice(_ADULT_CHAT)
            actions.append(Action(at(), "message", a, b, text))
        for _ in range(round(impressions_per_week * share)):
            viewer = rng.choice(ids)
            owner = rng.choice(minors) if rng.random() < 0.25 else rng.choice(adults)
            if viewer == owner:
                continue
            surface = "recommended" if rng.random() < 0.8 else "searched"
            video = f"v-{owner}-{rng.randrange(VIDEOS)}"
            actions.append(Action(at(), "impression", viewer, owner, item=video, surface=surface))
        for _ in range(round(follows_per_week * share)):
            a, b = rng.choice(ids), rng.choice(ids)
            if a != b:
                actions.append(Action(at(), "follow", a, b))
    actions.extend(_case(pop, rng))
    actions.sort(key=lambda x: (x.at, x.actor, x.kind, x.target))
    return actions


def _case(pop: Population, rng: random.Random) -> list[Action]:
    """The offender: recommended a child's video, he follows the child, an hour later messages
    them (praise, then their age and school); three children an evening from Monday to Thursday,
    19:30 to 22:30. The next evening at 23:00 he writes again to each child of the evening
    before: secrecy, a meeting and a gift."""
    out: list[Action] = []
    targets = _offender_targets(pop, rng)
    for k, child in enumerate(targets):
        day, slot = divmod(k, 3)
        t = START + timedelta(days=day, hours=19, minutes=30 + 60 * slot)
        out.append(
            Action(t - timedelta(minutes=50), "impression", OFFENDER, child,
                   item=f"v-{child}-0", surface="recommended")
        )  # fmt: skip
        out.append(Action(t - timedelta(minutes=40), "follow", OFFENDER, child))
        for j, text in enumerate(OFFENDER_SCRIPT[:2]):
            out.append(
                Action(
                    t + timedelta(minutes=6 * j), "message", OFFENDER, child, text, contact=k + 1
                )
            )
            reply = REPLIES[j].format(age=pop.by_id[child].age)
            out.append(
                Action(t + timedelta(minutes=6 * j + 2), "message", child, OFFENDER, reply,
                       reply_to=-1)
            )  # fmt: skip
        later = START + timedelta(days=day + 1, hours=23, minutes=5 * slot)
        out.append(Action(later, "message", OFFENDER, child, OFFENDER_SCRIPT[2], contact=k + 1))
    return out


# ----------------------------------------------------------------------------- running it


class Reporter:
    """Progress of the phases (the command shows a Rich progress bar; tests pass nothing)."""

    def phase(self, name: str, total: int) -> None:
        """A phase starts, with `total` steps."""

    def advance(self, steps: int = 1) -> None:
        """Steps of the current phase are done."""


def audit_dir_for(db_path: Path) -> Path:
    """The directory next to the demo's database that receives the audit bundle and key."""
    return db_path.with_name(f"{db_path.stem}-audit")


@dataclass(slots=True)
class DemoResult:
    """What a run produced: the summary figures, and what a person needs to look at it."""

    summary: dict[str, Any]
    db_url: str
    api_key: str
    logins: dict[str, tuple[str, str]]
    """role → (username, password), generated for this run (never in the summary)."""


@contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _ric(birth: date, seq: int) -> str:
    """A well-formed resident identity number (Beijing Dongcheng) for a simulated guardian."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    head = f"110101{birth:%Y%m%d}{seq % 1000:03d}"
    total = sum(int(d) * w for d, w in zip(head, weights, strict=True))
    return head + "10X98765432"[total % 11]


_NOTICE_ELEMENTS: Final = {
    "purpose_method_scope": "我们为提供短视频服务收集和使用以下信息",
    "storage_location": "中华人民共和国境内",
    "retention_period": "账号存续期间；注销后15日内删除",
    "expiry_handling": "到期删除或匿名化",
    "security_measures": "加密存储，最小授权访问",
    "refusal_consequences": "拒绝不影响基本功能",
    "complaint_channel": "客服电话 400-000-0000",
    "correction_deletion": "在监护人页面更正或删除",
    "necessity_and_effect": "为展示孩子的作品所必需；可能被他人看到",
}
_NOTICE_ITEMS: Final = (
    {
        "purpose": "publish_content",
        "categories": ["child_content"],
        "method": "孩子上传的视频",
        "scope": "展示给关注孩子的用户，或经监护人同意展示给所有人",
        "audience": "public",
    },
    {
        "purpose": "recommend_content",
        "categories": ["child_content"],
        "method": "推荐算法",
        "scope": "推荐给其他用户",
        "audience": "public",
    },
)


def run_demo(
    seed: int = 1,
    accounts: int = 3000,
    db_path: Path | None = None,
    reporter: Reporter | None = None,
    console_users: bool = True,
) -> DemoResult:
    """Simulate the week on a fresh SQLite database at `db_path` (a new temporary file if None;
    an existing file is refused) and return the summary."""
    import tempfile

    from fastapi.testclient import TestClient

    from qinglang.api import Settings, create_app

    rep = reporter or Reporter()
    if db_path is None:
        db_path = Path(tempfile.mkdtemp(prefix="qinglang-demo-")) / "demo.db"
    if db_path.exists():
        raise FileExistsError(f"{db_path} exists: the demo needs a fresh database")
    audit_dir = audit_dir_for(db_path)
    if audit_dir.exists():
        raise FileExistsError(f"{audit_dir} exists: the demo writes a fresh audit bundle")
    db_url = f"sqlite:///{db_path}"
    seconds: dict[str, float] = {}
    began = time.perf_counter()

    def timed(name: str) -> Callable[[], None]:
        t0 = time.perf_counter()

        def done() -> None:
            seconds[name] = round(time.perf_counter() - t0, 3)

        return done

    with _env(QINGLANG_CONSUMER="off", QINGLANG_REALNAME_DRAIN="off"):
        done = timed("setup")
        rep.phase("population / 生成用户", 1)
        pop = build_population(seed, accounts)
        week = build_week(pop, seed)
        rep.advance()
        app = create_app(Settings(db_url=db_url))
        with TestClient(app, raise_server_exceptions=True) as client:
            sim = _Simulation(app.state.service, client, pop, week, seed, rep)
            done()
            for name, step in (
                ("accounts", sim.accounts),
                ("age_inference", sim.age_inference),
                ("guardians_consents", sim.consents),
                ("week", sim.week),
                ("audit", lambda: sim.audit(audit_dir)),
            ):
                done = timed(name)
                step()
                done()
            logins: dict[str, tuple[str, str]] = {}
            if console_users:
                done = timed("console_users")
                logins = sim.console_users()
                done()
            sim.close()
        app.state.service.engine.dispose()
    summary = sim.summary()
    seconds["total"] = round(time.perf_counter() - began, 3)
    summary["seconds"] = seconds
    return DemoResult(summary, db_url, sim.api_key, logins)


class _Simulation:
    """The run's state: the service, the client, counters."""

    def __init__(
        self,
        service: Any,
        client: Any,
        pop: Population,
        week: list[Action],
        seed: int,
        rep: Reporter,
    ) -> None:
        from qinglang.risk.consumer import Consumer
        from qinglang.store import repo

        self.service = service
        self.client = client
        self.pop = pop
        self.actions = week
        self.seed = seed
        self.rep = rep
        self.rng = random.Random(f"run-{seed}")
        self.now = START
        # What the API records is stamped with the simulated instant, not the wall clock.
        service.clock = lambda: self.now
        with service.tx(write=True) as s:
            p = repo.create_platform(
                s, PLATFORM_SLUG, "清朗短视频 (demo)", decision_sample_rate=0.05
            )
            self.api_key = repo.issue_api_key(s, p, label="demo")
            self.platform_id = p.id
        client.headers["Authorization"] = f"Bearer {self.api_key}"
        self.consumer = Consumer(
            service.sessions,
            service.write_sessions,
            service.policy_for,
            holder="qinglang-demo",
            clock=lambda: self.now,
            engine_factory=self._engine,
        )
        self.counts: Counter[str] = Counter()
        self.decisions: Counter[str] = Counter()
        self.pii: Counter[str] = Counter()
        self.reviews: Counter[str] = Counter()
        self.contact_log: list[dict[str, Any]] = []
        self.reached: dict[str, datetime] = {}
        """Children who received a message of the offender → when the first arrived."""
        self.contacts: dict[int, datetime] = {}
        """Offender's child contact number → when its first message was attempted."""
        self.alert_at: datetime | None = None
        self.alert_level: str | None = None
        self.blocked_at_contact: int | None = None
        self.offender_delivered = 0
        self.offender_denied_before = 0
        self.suspected: Counter[str] = Counter()
        self.last_offender_msg: dict[str, int] = {}
        """Child → index of the offender's latest message attempt to them."""
        self.guardian_user: str | None = None
        self.audit_figures: dict[str, Any] = {}

    def _engine(self, policy: Any, directory: Any) -> Any:
        """The default engine; the directory's caches expire on simulated time (deterministic)."""
        from qinglang.risk.engine import RiskEngine

        def clock() -> float:
            return self.now.timestamp()

        directory.set_clock(clock)
        return RiskEngine(policy, directory)

    def _post(self, path: str, body: Any) -> Any:
        r = self.client.post(path, json=body)
        if r.status_code >= 300:
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    # -- phases

    def accounts(self) -> None:
        """The accounts and the friendships before the week, written in bulk to the fresh
        database (the week's new follows go through ``POST /v1/relationships``)."""
        from qinglang.store import repo
        from qinglang.store.models import Account, Relationship

        people = self.pop.people
        self.rep.phase("accounts / 账号", len(people) + len(self.pop.friends))
        with self.service.tx(write=True) as s:
            for i in range(0, len(people), 1000):
                s.add_all(
                    Account(
                        platform_id=self.platform_id,
                        external_id=p.id,
                        settings={},
                        birth_date=p.birth,
                        age_source=p.age_source,
                        created_at=BEFORE,
                        updated_at=BEFORE,
                    )
                    for p in people[i : i + 1000]
                )
                s.flush()
                self.rep.advance(len(people[i : i + 1000]))
            pk = {
                a.external_id: a.id
                for a in repo.get_accounts(s, self.platform_id, self.pop.by_id).values()
            }
            friends = self.pop.friends
            for i in range(0, len(friends), 2000):
                s.add_all(
                    Relationship(
                        platform_id=self.platform_id,
                        src_account_id=pk[x],
                        dst_account_id=pk[y],
                        kind="follow",
                        created_at=BEFORE,
                    )
                    for a, b in friends[i : i + 2000]
                    for x, y in ((a, b), (b, a))
                )
                s.flush()
                self.rep.advance(len(friends[i : i + 2000]))
        self.counts["friendships"] = len(friends)

    def age_inference(self) -> None:
        from qinglang.age.infer import score_record
        from qinglang.store import assessments, repo

        unknown = [p for p in self.pop.people if p.age_source != "verified"]
        self.rep.phase("age inference / 年龄推断", len(unknown))
        with self.service.tx(write=True) as s:
            platform = repo.get_platform_by_slug(s, PLATFORM_SLUG)
            assert platform is not None
            policy = self.service.policy_for(platform)
            threshold = assessments.suspect_threshold(policy)
            rows = repo.get_accounts(s, self.platform_id, [p.id for p in unknown])
            for i, p in enumerate(unknown):
                est = score_record(
                    {"user_id": p.id, "nickname": p.nickname, "bio": p.bio},
                    policy=policy,
                    on=START.date(),
                )
                self.counts["age_scored"] += 1
                assessments.record_score(
                    s, rows[p.id], est, threshold, actor="demo-age-scan", at=START
                )
                if est.suspected:
                    minor = p.kind in MINOR_KINDS
                    self.suspected["minor" if minor else "adult"] += 1
                    if p.kind == "unverified_minor":
                        self.suspected["unverified_minor"] += 1
                if i % 200 == 199:
                    self.rep.advance(200)
        self.rep.advance(len(unknown) % 200)

    def consents(self) -> None:
        linked = [p for p in self.pop.people if p.guardian is not None]
        self.rep.phase("guardians and consents / 监护人与同意", len(linked))
        notice = self._post(
            "/v1/notices",
            {
                "language": "zh",
                "audience": "child",
                "published_by": "dpo",
                "body": {
                    "title": "儿童个人信息保护规则",
                    "elements": _NOTICE_ELEMENTS,
                    "items": list(_NOTICE_ITEMS),
                },
            },
        )
        version = notice["version"]
        for i, child in enumerate(linked):
            g = self.pop.by_id[child.guardian or ""]
            r = self.client.put(f"/v1/guardians/{g.id}", json={"display_name": g.nickname})
            assert r.status_code == 200, r.text
            assert g.birth is not None
            self._post(
                f"/v1/guardians/{g.id}/children",
                {
                    "account": child.id,
                    "method": "id_number_realname",
                    "verified_by": "kyc-desk",
                    "claims": {"id_number": _ric(g.birth, i)},
                },
            )
            self.counts["guardian_links"] += 1
            publish, recommend = child.consents
            for purpose, grant, audience in (
                # a guardian who lets the platform recommend the videos also lets anyone see them
                ("publish_content", publish, "public" if recommend else "followers"),
                ("recommend_content", recommend, "public"),
            ):
                body = {
                    "account": child.id,
                    "purpose": purpose,
                    "category": "child_content",
                    "decision": "grant" if grant else "refuse",
                    "notice": {"language": "zh", "audience": "child", "version": version},
                    "given_by": "guardian",
                    "guardian": g.id,
                }
                if grant:
                    body["audience"] = audience
                self._post("/v1/consents", body)
                self.counts["consents_granted" if grant else "consents_refused"] += 1
            self.rep.advance()
        # The platform's own classifier marks every video of a minor as showing a minor.
        flags = [
            {"item": f"v-{p.id}-{n}", "owner": p.id, "kind": "shows_minor"}
            for p in self.pop.people
            if p.kind in MINOR_KINDS
            for n in range(VIDEOS)
        ]
        for i in range(0, len(flags), 10_000):
            self._post("/v1/content/flags", {"flags": flags[i : i + 10_000]})
        self.counts["videos_flagged"] = len(flags)

    def week(self) -> None:
        ticks = DAYS * 24 * 60 // int(TICK.total_seconds() // 60)
        self.rep.phase("the week / 一周模拟", ticks)
        i = 0
        delivered: set[int] = set()
        for k in range(ticks):
            end = START + TICK * (k + 1)
            batch: list[tuple[int, Action]] = []
            while i < len(self.actions) and self.actions[i].at < end:
                batch.append((i, self.actions[i]))
                i += 1
            self._tick(batch, delivered, end)
            self.rep.advance()

    def _tick(self, batch: list[tuple[int, Action]], delivered: set[int], end: datetime) -> None:
        from qinglang.api.routers.decisions import (
            ContactIn,
            ExposureIn,
            decide_contact,
            decide_exposure,
        )
        from qinglang.guard.exposure import Surface
        from qinglang.guard.profile import ContactAction
        from qinglang.store import repo

        events: list[dict[str, Any]] = []
        follows: list[dict[str, str]] = []
        to_scan: list[dict[str, str]] = []
        logs: list[tuple[Any, ...]] = []
        last_offender_msg = self.last_offender_msg
        if batch:
            with self.service.tx() as s:
                platform = repo.get_platform_by_slug(s, PLATFORM_SLUG)
                assert platform is not None
                for idx, a in batch:
                    eid = f"e{idx}"
                    at = a.at.isoformat()
                    if a.kind == "impression":
                        if self.pop.by_id[a.target].kind in MINOR_KINDS:
                            # a child's video: the platform asks before it pushes it
                            surface: Surface = (
                                "recommend" if a.surface == "recommended" else "search"
                            )
                            ask = ExposureIn(viewer=a.actor, item=a.item or "", surface=surface)
                            shown, _, _ = decide_exposure(s, self.service, platform, ask, at=a.at)
                            self.decisions[f"exposure:{shown.outcome.value}"] += 1
                            if shown.outcome.value != "allow":
                                self.counts["impressions_withheld"] += 1
                                continue
                        events.append(
                            {"id": eid, "kind": "impression", "at": at, "actor": a.actor,
                             "item": a.item, "owner": a.target, "surface": a.surface}
                        )  # fmt: skip
                        continue
                    if a.reply_to is not None and last_offender_msg.get(a.actor) not in delivered:
                        continue  # a child answers only a message that reached them
                    action: ContactAction = "dm" if a.kind == "message" else "follow"
                    body = ContactIn(action=action, sender=a.actor, recipient=a.target)
                    d, sender, recipient = decide_contact(s, self.service, platform, body, at=a.at)
                    outcome = d.outcome.value
                    self.decisions[f"{action}:{outcome}"] += 1
                    if self.rng.random() < platform.decision_sample_rate:
                        rid = None if recipient is None else recipient.id
                        logs.append((action, d, sender.id, rid, body, a.at))
                    if a.kind == "follow":
                        if outcome == "allow":
                            follows.append({"type": "follow", "src": a.actor, "dst": a.target})
                            events.append(
                                {"id": eid, "kind": "follow", "at": at, "actor": a.actor,
                                 "target": a.target}
                            )  # fmt: skip
                        continue
                    # The attempt is an event whether or not it was delivered: the risk engine
                    # counts attempts (e.g. a restricted sender's), not only deliveries; a
                    # blocked one says so (`delivered: false`), for the audit.
                    events.append(
                        {"id": eid, "kind": "message", "at": at, "actor": a.actor,
                         "target": a.target, "text": a.text,
                         **({} if outcome == "allow" else {"delivered": False})}
                    )  # fmt: skip
                    blocked = RESTRICTED_RULE in d.rule_ids
                    if blocked:
                        self.counts["dms_blocked_restricted"] += 1
                    if outcome == "allow":
                        delivered.add(idx)
                        self.counts["dms_delivered"] += 1
                        to_scan.append({"id": eid, "text": a.text or ""})
                    else:
                        self.counts["dms_denied"] += 1
                    if a.actor == OFFENDER:
                        last_offender_msg[a.target] = idx
                        self._offender_message(a, outcome, blocked)
        if logs:
            with self.service.tx(write=True) as s:
                platform = repo.get_platform_by_slug(s, PLATFORM_SLUG)
                assert platform is not None
                for action, d, sid, rid, body, at_ in logs:
                    repo.log_decision(
                        s, platform, kind="contact", action=action, outcome=d.outcome.value,
                        rule_ids=d.rule_ids, subject_account_id=sid, other_account_id=rid,
                        request=body.model_dump(mode="json"), at=at_, always=True,
                    )  # fmt: skip
        # The hour's follows, scans and events reach qinglang at its end (the decisions above
        # saw the relationships as they stood before it): stamped with that instant.
        self.now = end
        for j in range(0, len(follows), 10_000):
            self._post("/v1/relationships", {"events": follows[j : j + 10_000]})
        for j in range(0, len(to_scan), 1000):
            found = self._post("/v1/scan", {"items": to_scan[j : j + 1000]})
            for res in found["results"]:
                self.counts["messages_scanned"] += 1
                if res["findings"]:
                    self.counts["messages_with_pii"] += 1
                for f in res["findings"]:
                    self.pii[f["category"]] += 1
        for j in range(0, len(events), 10_000):
            got = self._post("/v1/events", {"events": events[j : j + 10_000]})
            self.counts["events"] += got["accepted"]
        if events:
            report = self.consumer.run_once()
            self.counts["alerts"] += report.alerts
            self.counts["automatic_restrictions"] += report.restrictions
            if report.alerts:
                self._review(end)

    def _offender_message(self, a: Action, outcome: str, blocked: bool) -> None:
        assert a.contact is not None
        first = a.contact not in self.contacts
        if first:
            self.contacts[a.contact] = a.at
            child = self.pop.by_id[a.target]
            self.contact_log.append(
                {
                    "contact": a.contact,
                    "child": a.target,
                    "age": child.age,
                    "age_known": child.birth is not None,
                    "at": _local(a.at),
                    "first_dm": "blocked" if blocked else outcome,
                }
            )
        if outcome == "allow":
            self.offender_delivered += 1
            self.reached.setdefault(a.target, a.at)
        elif not blocked:
            self.offender_denied_before += 1
        if blocked and self.blocked_at_contact is None:
            self.blocked_at_contact = a.contact

    def _review(self, now: datetime) -> None:
        """The reviewer works through the open queue: restrict or dismiss each alert."""
        from sqlalchemy import select

        from qinglang.store import review as store_review
        from qinglang.store.models import Alert, Platform

        with self.service.tx(write=True) as s:
            platform = s.get(Platform, self.platform_id)
            assert platform is not None
            policy = self.service.policy_for(platform)
            rows = s.scalars(
                select(Alert)
                .where(Alert.platform_id == self.platform_id, Alert.status == "open")
                .order_by(Alert.id)
            ).all()
            for alert in rows:
                if alert.sender == OFFENDER and self.alert_at is None:
                    self.alert_at = alert.raised_at
                    self.alert_level = alert.level
                self.counts[f"alerts_{alert.level}"] += 1
                # The reviewer opens the evidence first, as the workspace shows it (logged).
                store_review.record_view(s, alert, REVIEWER, "evidence", now)
                chain = "chain_shown_follow_message" in alert.signal_names
                if chain or len(alert.minors) >= 3 or alert.level == "restrict":
                    store_review.act(
                        s, platform, policy, alert, "restrict", REVIEWER,
                        "多名未成年人陌生接触 / contact with several minors it does not know",
                        {"until": None}, now,
                    )  # fmt: skip
                    self.reviews["restrict"] += 1
                else:
                    store_review.act(
                        s, platform, policy, alert, "dismiss", REVIEWER,
                        "正常互动 / ordinary contact", {}, now,
                    )  # fmt: skip
                    self.reviews["dismiss"] += 1

    def audit(self, directory: Path) -> None:
        """The compliance audit of the simulated week, as ``qinglang audit run`` makes it, as of
        the week's end: report and evidence signed with a key generated for the demo, both in
        `directory` (``bundle/`` and ``demo-audit-key.pem``); the run is recorded."""
        import hashlib

        from qinglang.audit import bundle as audit_bundle
        from qinglang.audit import report as audit_report
        from qinglang.audit import run as audit_run
        from qinglang.audit.model import Status
        from qinglang.store.models import Platform

        self.rep.phase("compliance audit / 合规审计", 4)
        period = f"{START.date().isoformat()}..{(START + timedelta(days=DAYS - 1)).date()}"
        first, last = audit_run.parse_period(period)
        directory.mkdir()
        key = directory / "demo-audit-key.pem"
        audit_bundle.generate_key(key)
        out = directory / "bundle"
        with self.service.tx() as s:
            platform = s.get(Platform, self.platform_id)
            assert platform is not None
            policy = self.service.policy_for(platform)
            as_of = audit_run.default_as_of(policy, last, self.now)
            job = audit_run.RunInput(period, first, last, as_of)
            result = audit_run.audit(s, self.service, platform, job)
            self.rep.advance()
            # The HTML report, not the PDF: rendering it would add most of the audit's time to
            # the demo; `qinglang audit run` on the demo's database renders both.
            audit_report.write_report(result, out, pdf=False)
            self.rep.advance()
        manifest = audit_bundle.sign_bundle(out, key)
        verified = audit_bundle.verify_bundle(out).ok
        self.rep.advance()
        digest = hashlib.sha256(manifest.to_json()).hexdigest()
        with self.service.tx(write=True) as s:
            platform = s.get(Platform, self.platform_id)
            assert platform is not None
            row = audit_run.record_run(
                s,
                platform,
                result,
                "demo-compliance",
                digest,
                manifest.key_fingerprint,
                audit_run.location_of(out),
            )
            run_id = row.id
        self.rep.advance()
        counts = result.counts()
        self.audit_figures = {
            "period": period,
            "as_of": _local(as_of),
            "requirements": len(result.findings),
            "passed": counts[Status.PASS],
            "failed": counts[Status.FAIL],
            "not_evidenced": counts[Status.NOT_EVIDENCED],
            "failed_requirements": sorted(
                f.requirement_id for f in result.findings if f.status is Status.FAIL
            ),
            "bundle": str(out.resolve()),
            "bundle_verified": verified,
            "run": run_id,
        }

    def console_users(self) -> dict[str, tuple[str, str]]:
        """One console login per role (passwords generated now, shown once)."""
        from qinglang.store import console as store_console
        from qinglang.store.models import Platform

        # the guardian of the first child the offender contacted who has one, else any guardian
        offender_children = [
            a.target for a in self.actions if a.actor == OFFENDER and a.kind == "message"
        ]
        guardians = [self.pop.by_id[c].guardian for c in offender_children]
        guardian = next((g for g in guardians if g), None) or next(
            p.guardian for p in self.pop.people if p.guardian
        )
        self.guardian_user = guardian
        out: dict[str, tuple[str, str]] = {}
        with self.service.tx(write=True) as s:
            platform = s.get(Platform, self.platform_id)
            assert platform is not None
            for role, username in (
                ("platform_admin", "demo-admin"),
                ("reviewer", "demo-reviewer"),
                ("compliance", "demo-compliance"),
                ("guardian", "demo-guardian"),
            ):
                password = secrets.token_urlsafe(12)
                store_console.create_user(
                    s,
                    platform,
                    username,
                    password,
                    role,
                    guardian_external_id=guardian if role == "guardian" else None,
                )
                out[role] = (username, password)
        return out

    def close(self) -> None:
        self.consumer.release()

    # -- the figures

    def summary(self) -> dict[str, Any]:
        kinds = Counter(p.kind for p in self.pop.people)
        contacts_before_alert = (
            None
            if self.alert_at is None
            else sum(1 for t in self.contacts.values() if t <= self.alert_at)
        )
        outcomes: Counter[str] = Counter()
        for k, v in self.decisions.items():
            outcomes[k.split(":", 1)[1]] += v
        c = self.counts
        return {
            "seed": self.seed,
            "accounts": len(self.pop.people),
            "adults": kinds["adult"] + kinds["guardian"] + kinds["offender"],
            "minors": kinds["minor"] + kinds["unverified_minor"],
            "minors_age_unknown": kinds["unverified_minor"],
            "guardians": kinds["guardian"],
            "friendships": c["friendships"],
            "age_scored": c["age_scored"],
            "suspected_minors": self.suspected["minor"] + self.suspected["adult"],
            "suspected_minors_true": self.suspected["minor"],
            "suspected_adults": self.suspected["adult"],
            "unknown_age_minors_found": self.suspected["unverified_minor"],
            "guardian_links": c["guardian_links"],
            "consents_granted": c["consents_granted"],
            "consents_refused": c["consents_refused"],
            "decisions": sum(self.decisions.values()),
            "decisions_by_outcome": dict(sorted(outcomes.items())),
            "decisions_by_action": dict(sorted(self.decisions.items())),
            "videos_flagged": c["videos_flagged"],
            "impressions_withheld": c["impressions_withheld"],
            "dms_delivered": c["dms_delivered"],
            "dms_denied": c["dms_denied"],
            "dms_blocked_restricted": c["dms_blocked_restricted"],
            "messages_scanned": c["messages_scanned"],
            "messages_with_pii": c["messages_with_pii"],
            "pii_findings": sum(self.pii.values()),
            "pii_by_category": dict(sorted(self.pii.items())),
            "events": c["events"],
            "alerts": c["alerts"],
            "alerts_review": c["alerts_review"],
            "alerts_restrict": c["alerts_restrict"],
            "automatic_restrictions": c["automatic_restrictions"],
            "reviewer_actions": dict(sorted(self.reviews.items())),
            "offender": OFFENDER,
            "offender_child_contacts": len(self.contacts),
            "offender_alert_level": self.alert_level,
            "offender_alert_at": None if self.alert_at is None else _local(self.alert_at),
            "offender_alert_at_contact": contacts_before_alert,
            "offender_children_reached": len(self.reached),
            "offender_children_reached_before_alert": (
                None
                if self.alert_at is None
                else sum(1 for t in self.reached.values() if t <= self.alert_at)
            ),
            "offender_blocked_at_contact": self.blocked_at_contact,
            "offender_dms_delivered": self.offender_delivered,
            "offender_dms_denied_by_age_rules": self.offender_denied_before,
            "offender_contacts": self.contact_log,
            "guardian_login_for": self.guardian_user,
            "audit": self.audit_figures,
        }


def _local(t: datetime) -> str:
    return t.astimezone(SHANGHAI).isoformat(timespec="minutes")
