"""Seeded simulations for the risk engine: the case that started qinglang, and an ordinary day.

``case_scenario()`` builds the case: an adult is recommended videos of 30 children, follows all
30 within a day and messages 12 of them with questions about their age and where they live.
``trusted_scenario()`` is the same pattern of contact from a teacher or relative whose contact the
children's guardians approved. ``ordinary_day(n)`` is a day of `n` ordinary messages among a
population of minors and adults — mostly friends and family, teachers with approved contact, and
some strangers chatting about games and videos — with follows and impressions around them, a
little out of order, a few duplicates. Everything is deterministic for a seed.

The harness is for tests, benchmarks and for tuning thresholds (Roblox Sentinel keeps its
simulation beside its scores for the same reason).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from qinglang.risk.directory import MemoryDirectory
from qinglang.risk.events import Event
from qinglang.risk.types import Link

__all__ = [
    "START",
    "Scenario",
    "case_scenario",
    "ordinary_day",
    "trusted_scenario",
]

START: Final = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
"""Midnight UTC (08:00 in Shanghai) of the simulated day."""

# ----------------------------------------------------------------------------- message templates
# Ordinary chat, deliberately including words that also occur in grooming (加微信, 出来玩,
# 别告诉…, 红包, 照片, 宝贝) in the settings where they are ordinary.

_FRIENDS_MINOR: Final = (
    "今天作业写完了吗？",
    "数学第三题怎么做",
    "明天一起去图书馆吧",
    "哈哈哈笑死我了",
    "你看昨天那集了吗",
    "周末出来玩吗",
    "加我微信吧，群里说",
    "老师说明天要交作文",
    "别告诉老师我没带作业",
    "上号上号",
    "这个皮肤好好看",
    "我妈不让我玩了😭",
    "你好可爱哈哈",
    "体育课跑八百米累死了",
    "放学一起走吗",
    "生日快乐🎂",
    "借我抄一下笔记",
    "今晚直播你看吗",
    "我们的秘密基地见",
    "gg 再来一局",
    "did you finish the homework?",
    "lol that was so funny",
    "see you at school tomorrow",
)
_FRIENDS_ADULT: Final = (
    "晚上一起吃饭吗",
    "项目周五交，记得",
    "周末见面聊",
    "发你的那个文件收到了吗",
    "孩子最近怎么样",
    "新开的那家店不错",
    "给你转账了，午饭钱",
    "好久不见，想你了哈哈",
    "明天几点开会",
    "路上注意安全",
    "我到了，你在哪里？",
    "meeting moved to 3pm",
    "let's grab lunch tomorrow",
    "how was the trip?",
)
_FAMILY: Final = (
    "宝贝，早点回家吃饭",
    "妈妈给你发了红包",
    "作业写完了吗？",
    "发张照片给奶奶看看",
    "别告诉爸爸，明天给他个惊喜",
    "今天在学校怎么样",
    "几点放学？我去接你",
    "外面冷，多穿点",
    "爸爸今晚加班，你先睡",
    "想你了，周末回来看你",
    "好的妈妈",
    "我到家了",
    "钱不够了，可以转我一点吗",
    "奶奶做了饺子，来我家吃",
)
_TEACHER: Final = (
    "同学们记得明天交作业",
    "把作业拍照发给我",
    "明天几点放学家长来接？",
    "你这次考得很好，继续加油",
    "周三家长会，请转告家长",
    "课代表收一下作文",
    "你今年几年级了？转学手续要填",
    "运动会报名截止到周五",
    "老师收到了，谢谢",
    "不会的题明天来办公室问我",
)
_STRANGER_TO_MINOR: Final = (
    "打得不错",
    "这个视频怎么拍的？",
    "gg",
    "你玩什么段位",
    "求教程",
    "你的画好棒",
    "这首歌叫什么名字",
    "能带我上分吗",
    "几年级了？题目我也不会哈哈",
    "谢谢关注",
    "nice play",
    "what song is this?",
)
_STRANGER_ADULT: Final = (
    "你好，请问这个还在卖吗",
    "包邮吗",
    "谢谢，已收到",
    "请问怎么报名",
    "你好，可以加个好友吗",
    "这个攻略写得真好",
    "hi, is this still available?",
)


@dataclass
class Scenario:
    """A directory, the events in arrival order, and who is who."""

    directory: MemoryDirectory
    events: list[Event]
    sender: str = ""
    """The account the scenario is about (the adult of the case), if any."""
    children: list[str] = field(default_factory=list)
    messaged: list[str] = field(default_factory=list)
    """The children messaged, in the order of their first message."""


class _Ids:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n:07d}"


def _contact_pattern(
    sender: str,
    sender_age: int,
    link: Link | None,
    seed: int,
    questions: Sequence[str],
    prefix: str,
) -> Scenario:
    rng = random.Random(seed)
    d = MemoryDirectory()
    d.add(sender, sender_age)
    children = [f"{prefix}child{i:02d}" for i in range(30)]
    for c in children:
        d.add(c, rng.randint(9, 13))
        if link is not None:
            d.relate(sender, c, link)
    ids = _Ids(f"{prefix}e")
    events: list[Event] = []
    t = START + timedelta(hours=1)
    for c in children:  # the platform recommends the children's videos to him
        for _ in range(2):
            t += timedelta(seconds=rng.randint(20, 90))
            events.append(
                Event(ids(), "impression", t, sender, None, None, f"v-{c}", c, "recommended")
            )
    for c in children:  # he follows all 30 within the day
        t += timedelta(minutes=rng.randint(2, 12))
        events.append(Event(ids(), "follow", t, sender, c))
    messaged = children[::2][:12]  # …and messages 12 of them
    for c in messaged:
        t += timedelta(minutes=rng.randint(5, 30))
        events.append(Event(ids(), "message", t, sender, c, "你好呀，看了你的视频，跳得真棒"))
        for q in questions:
            t += timedelta(minutes=rng.randint(1, 4))
            events.append(Event(ids(), "message", t, sender, c, q))
    return Scenario(d, events, sender, children, list(messaged))


_CASE_QUESTIONS: Final = ("小妹妹你今年几岁啦？", "你家住在哪里呀？哪个小区的？")


def case_scenario(seed: int = 0) -> Scenario:
    """The case: an adult shown children's videos follows 30 in a day and messages 12 of them,
    asking their age and where they live."""
    return _contact_pattern("stranger-adult", 35, None, seed, _CASE_QUESTIONS, "case-")


def trusted_scenario(seed: int = 0, relation: str = "teacher") -> Scenario:
    """The same contact pattern from a teacher (or relative) whose contact guardians approved."""
    link = Link(approved=True)
    return _contact_pattern(relation, 41, link, seed, _CASE_QUESTIONS, f"{relation}-")


# ----------------------------------------------------------------------------- an ordinary day


@dataclass
class _Population:
    minors: list[str]
    adults: list[str]
    unknown: list[str]
    friends: dict[str, list[str]]
    family: dict[str, list[str]]
    """Minor → guardians and relatives (approved or guardian links), and back."""
    classes: dict[str, list[str]]
    """Teacher → students (approved contact)."""


def _population(d: MemoryDirectory, rng: random.Random, size: int) -> _Population:
    n_minors = size * 45 // 100
    n_adults = size * 50 // 100
    minors = [f"m{i:05d}" for i in range(n_minors)]
    adults = [f"a{i:05d}" for i in range(n_adults)]
    unknown = [f"u{i:05d}" for i in range(size - n_minors - n_adults)]
    for m in minors:
        d.add(m, rng.randint(8, 17))
    for a in adults:
        d.add(a, rng.randint(18, 75))
    for u in unknown:
        d.add(u, None)
    friends: dict[str, list[str]] = {k: [] for k in (*minors, *adults, *unknown)}

    def befriend(pool: list[str], who: str, k: int) -> None:
        for other in rng.sample(pool, k):
            if other != who and other not in friends[who]:
                friends[who].append(other)
                friends[other].append(who)
                d.relate(who, other, Link(mutual=True))

    for m in minors:
        befriend(minors, m, 4)
    for a in (*adults, *unknown):
        befriend(adults, a, 3)
    family: dict[str, list[str]] = {k: [] for k in (*minors, *adults)}
    for m in minors:
        for g in rng.sample(adults, 2):
            kind = Link(guardian=True) if not family[m] else Link(approved=True, mutual=True)
            d.relate(m, g, kind)
            family[m].append(g)
            family[g].append(m)
    classes: dict[str, list[str]] = {}
    teachers = rng.sample(adults, max(1, len(adults) // 40))
    for i, teacher in enumerate(teachers):
        students = minors[i * 30 : i * 30 + 30] or rng.sample(minors, 30)
        classes[teacher] = students
        for s in students:
            d.relate(teacher, s, Link(approved=True))
    return _Population(minors, adults, unknown, friends, family, classes)


def ordinary_day(
    n_messages: int = 100_000,
    seed: int = 0,
    population: int | None = None,
    late_share: float = 0.01,
    duplicate_share: float = 0.002,
) -> Scenario:
    """A day of `n_messages` ordinary messages (plus follows, impressions, a few duplicates)."""
    rng = random.Random(seed)
    d = MemoryDirectory()
    size = population if population is not None else max(200, n_messages // 20)
    pop = _population(d, rng, size)
    ids = _Ids(f"day{seed}-")
    senders = (*pop.minors, *pop.adults, *pop.unknown)
    teachers = list(pop.classes)
    timed: list[tuple[float, Event]] = []

    def at() -> float:  # busiest in the Shanghai evening, quiet at night
        h = rng.choices(
            range(24), weights=[2, 2, 3, 3, 4, 4, 4, 5, 6, 7, 9, 9] + [6] * 4 + [1] * 8
        )[0]
        return h * 3600.0 + rng.random() * 3600.0

    def emit(
        kind: str, a: str, b: str | None, text: str | None = None, owner: str | None = None
    ) -> None:
        s = at()
        item = None if owner is None else f"v-{owner}"
        surface = None if owner is None else "recommended"
        when = START + timedelta(seconds=s)
        timed.append((s, Event(ids(), kind, when, a, b, text, item, owner, surface)))

    for _ in range(n_messages):
        r = rng.random()
        if r < 0.50:  # friends
            a = rng.choice(senders)
            if not pop.friends[a]:
                continue
            b = rng.choice(pop.friends[a])
            pool = _FRIENDS_MINOR if d.facts(a).is_minor and d.facts(b).is_minor else _FRIENDS_ADULT
            emit("message", a, b, rng.choice(pool))
        elif r < 0.72:  # family
            m = rng.choice(pop.minors)
            g = rng.choice(pop.family[m])
            a, b = (m, g) if rng.random() < 0.4 else (g, m)
            emit("message", a, b, rng.choice(_FAMILY))
        elif r < 0.80:  # teachers and students
            teacher = rng.choice(teachers)
            s = rng.choice(pop.classes[teacher])
            a, b = (teacher, s) if rng.random() < 0.6 else (s, teacher)
            emit("message", a, b, rng.choice(_TEACHER))
        elif r < 0.90:  # adults who do not know each other (shops, groups)
            a, b = rng.sample(pop.adults, 2)
            emit("message", a, b, rng.choice(_STRANGER_ADULT))
        else:  # strangers talking to minors about games and videos: mostly other minors
            b = rng.choice(pop.minors)
            group = rng.choices((pop.minors, pop.adults, pop.unknown), weights=(6, 3, 1))[0]
            a = rng.choice(group)
            if a == b:
                continue
            emit("message", a, b, rng.choice(_STRANGER_TO_MINOR))
    for _ in range(n_messages // 10):  # recommendations, and follows of creators
        viewer = rng.choice(senders)
        owner = rng.choice(pop.minors)
        if viewer != owner:
            emit("impression", viewer, None, owner=owner)
    for _ in range(n_messages // 50):
        a = rng.choice(senders)
        b = rng.choice(pop.minors)
        if a != b:
            emit("follow", a, b)
    timed.sort(key=lambda x: x[0])
    events = [e for _, e in timed]
    for _ in range(int(len(events) * late_share)):  # a little out of order
        i = rng.randrange(len(events))
        j = min(len(events) - 1, i + rng.randint(1, 200))
        events.insert(j, events.pop(i))
    for _ in range(int(len(events) * duplicate_share)):  # redelivered events
        i = rng.randrange(len(events))
        events.insert(min(len(events), i + rng.randint(1, 50)), events[i])
    return Scenario(d, events)
