"""Train the character CRF behind qinglang.detect.ner (reproducible, seeded, CPU only).

Two variants:

* ``shipped`` (default): trained only on licence-clean data - Weibo NER train annotations
  (CC BY-SA 3.0), entity-substituted copies of those posts, and synthetic sentences generated
  here from templates and jieba's MIT-licensed dictionary. Written to
  ``src/qinglang/detect/ner/data/``. The weights are a derived work of CC BY-SA data and
  carry CC BY-SA 3.0 (see docs/model_card_ner.md).
* ``research``: trained on all train splits (CLUENER and Resume have no stated licence), to
  show what the architecture reaches. Written outside the package (``--out``); never shipped.

Needs (training only): python-crfsuite, jieba, numpy.

    .venv/bin/python bench/train_ner.py --variant shipped
    .venv/bin/python bench/train_ner.py --variant research --out /tmp/qinglang-ner-research
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qinglang.detect.ner.features import (  # noqa: E402
    LEX_CLASSES,
    MAX_WORD,
    attribute_keys,
    codepoints,
    lexicon_feature_names,
    lexicon_features,
    word_hashes,
)

DATA = Path("/work/shared/data/ner")
PKG_DATA = ROOT / "src" / "qinglang" / "detect" / "ner" / "data"
SEED = 20240603
TYPES = ("PER", "ADDR", "SCH")
LABELS = ("O", *(f"{p}-{t}" for t in TYPES for p in ("B", "I")))
# Resume's EDU is the education level (大学本科, 硕士研究生), not a school: the research
# variant learns it as its own type so the Resume EDU target can be measured at all.
LABELS_RESEARCH = (*LABELS, "B-EDU", "I-EDU")
SCHOOL_RE = re.compile(
    r"(大学|学院|中学|小学|学校|幼儿园|高中|初中|附中|附小|一中|二中|三中|四中|五中|"
    r"六中|七中|八中|九中|十中|中专|职高|技校|党校|分校|校区|university|college|school)$",
    re.I,
)

Span = tuple[int, int, str]
Sentence = tuple[str, list[Span]]


# -- corpus readers (original labels) --------------------------------------------------------


def read_cluener(path: Path) -> list[Sentence]:
    out: list[Sentence] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        spans: list[Span] = []
        for lab, mentions in d.get("label", {}).items():
            for surface, offs in mentions.items():
                for s, e in offs:  # inclusive end
                    assert d["text"][s : e + 1] == surface, (d["text"], surface, s, e)
                    spans.append((s, e + 1, lab))
        out.append((d["text"], sorted(spans)))
    return out


def _bio_to_spans(tags: list[str]) -> list[Span]:
    spans: list[Span] = []
    cur: tuple[int, str] | None = None
    for i, t in enumerate([*tags, "O"]):
        if t.startswith(("B-", "S-")) or t == "O" or (cur and t[2:] != cur[1]):
            if cur is not None:
                spans.append((cur[0], i, cur[1]))
                cur = None
            if t.startswith(("B-", "S-")):
                cur = (i, t[2:])
            elif t.startswith(("I-", "M-", "E-")):
                cur = (i, t[2:])  # ill-formed start: treat as begin
        elif t.startswith(("I-", "M-", "E-")) and cur is None:
            cur = (i, t[2:])
        if t.startswith(("E-", "S-")) and cur is not None:
            spans.append((cur[0], i + 1, cur[1]))
            cur = None
    return spans


def _read_columns(path: Path, weibo: bool) -> list[Sentence]:
    out: list[Sentence] = []
    chars: list[str] = []
    tags: list[str] = []
    for raw in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        line = raw.rstrip("\n")
        if not line.strip():
            if chars:
                out.append(("".join(chars), _bio_to_spans(tags)))
            chars, tags = [], []
            continue
        if weibo:
            tok, tag = line.split("\t")
            ch = tok[:-1]  # character followed by its segmentation digit
        else:
            ch, tag = line.rsplit(" ", 1)
        if len(ch) != 1:  # emoji whose UTF-16 halves became two U+FFFD in the source
            ch = "\ufffd"
        chars.append(ch)
        tags.append(tag.strip())
    return out


def read_weibo(path: Path) -> list[Sentence]:
    return _read_columns(path, weibo=True)


def read_resume(path: Path) -> list[Sentence]:
    return _read_columns(path, weibo=False)


def load_split(corpus: str, split: str) -> list[Sentence]:
    if corpus == "cluener":
        return read_cluener(DATA / "cluener" / f"{split}.json")
    if corpus == "weibo":
        return read_weibo(DATA / "weibo" / f"{split}.conll")
    if corpus == "resume":
        return read_resume(DATA / "resume" / f"{split}.char.bmes")
    raise ValueError(corpus)


# -- mapping to the three target types --------------------------------------------------------


def map_spans(corpus: str, text: str, spans: list[Span], shipped: bool = False) -> list[Span]:
    out: list[Span] = []
    for s, e, lab in spans:
        surface = text[s:e]
        t: str | None = None
        if corpus == "cluener":
            if lab == "name":
                t = "PER"
            elif lab == "address":
                t = "ADDR"
            elif lab in ("organization", "government", "company") and SCHOOL_RE.search(surface):
                t = "SCH"
        elif corpus == "weibo":
            if lab == "PER.NAM":
                t = "PER"
            elif lab in ("GPE.NAM", "LOC.NAM"):
                t = "ADDR"
            elif lab == "ORG.NAM" and SCHOOL_RE.search(surface):
                t = "SCH"
        elif corpus == "resume":
            if lab == "NAME":
                t = "PER"
            elif lab == "EDU":
                t = "EDU"
            elif lab == "ORG" and SCHOOL_RE.search(surface):
                t = "SCH"
            elif lab == "LOC":
                t = "ADDR"
        if t is not None and (t != "EDU" or not shipped):
            out.append((s, e, t))
    return out


# -- lexicon from jieba's MIT-licensed dictionary ---------------------------------------------


def jieba_dictionary() -> list[tuple[str, int, str]]:
    import jieba

    path = Path(jieba.__file__).parent / "dict.txt"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split(" ")
        if len(parts) == 3:
            rows.append((parts[0], int(parts[1]), parts[2]))
    return rows


def build_lexicon(rows: list[tuple[str, int, str]]) -> tuple[np.ndarray, np.ndarray]:
    cls_of = {"nr": 0, "nrt": 0, "nrfg": 0, "ns": 1, "nt": 2, "nz": 3}
    words: dict[str, int] = {}
    for w, _f, pos in rows:
        if not 2 <= len(w) <= MAX_WORD or w in words:
            continue
        words[w] = cls_of.get(pos, len(LEX_CLASSES) - 1)
    keys = word_hashes(list(words))
    cls = np.fromiter(words.values(), dtype=np.uint8, count=len(words))
    # words equal after normalisation (case, digits) share a key: keep the first
    keys, first = np.unique(keys, return_index=True)
    return keys, cls[first]


# -- synthetic, licence-clean training data ---------------------------------------------------

# Common surnames (a fact list, not copyrightable), single and compound.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左"
    "柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶"
    "解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬"
    "边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容", "端木", "夏侯")
_PROVINCES = (
    "北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 "
    "广东 海南 四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门"
)
PROVINCES = _PROVINCES.split()
MUNICIPALITIES = {"北京", "天津", "上海", "重庆"}
STREET_SUFFIX = ("路", "街", "大街", "大道", "巷", "胡同", "中路", "东路", "西路", "南路", "北路")
ESTATE_SUFFIX = ("小区", "花园", "家园", "新村", "苑", "公寓", "大厦", "广场", "社区")
SCHOOL_SUFFIX = (
    "小学",
    "中学",
    "第一中学",
    "第二中学",
    "第三中学",
    "实验小学",
    "实验中学",
    "高级中学",
    "外国语学校",
    "大学",
    "师范大学",
    "理工大学",
    "职业技术学院",
    "师范学院",
    "医学院",
    "幼儿园",
    "附属中学",
    "第十一中学",
)
NUMS = "一二三四五六七八九十"
PLACE_RE = re.compile(r"(省|市|县|区|镇|乡|村|州|岛|国|湾|盟|旗|街道)$")
TITLES = ("先生", "女士", "老师", "教授", "同学", "医生", "律师", "记者", "主任", "经理", "总", "")
TRANSLIT = set(
    "阿埃艾安奥巴贝本比宾波伯布查达戴丹道德迪蒂杜多厄恩法菲费芬弗福盖戈格哈海汉赫亨霍基吉加杰"
    "金卡凯坎科克库拉莱兰朗劳勒雷里利莉琳卢鲁伦罗洛马迈曼梅蒙米莫姆穆纳娜奈内尼妮纽诺帕佩皮普奇"
    "乔琼萨塞森沙莎尚舍什施斯苏索塔泰汤特提托瓦威韦维温沃乌西希谢辛休雅亚扬耶伊因尤约泽詹兹佐尔"
    "娃丝黛"
)


class Synth:
    def __init__(self, rows: list[tuple[str, int, str]], rng: random.Random) -> None:
        self.rng = rng
        sur = set(SURNAMES)
        given2: list[str] = []
        given1: list[str] = []
        full: list[str] = []
        places: list[str] = []
        counties: list[str] = []
        cities: list[str] = []
        foreign: list[str] = []
        common: list[str] = []
        orgs_school: list[str] = []
        for w, f, pos in rows:
            if pos == "nr" and f >= 5 and w[0] in sur and 2 <= len(w) <= 3:
                full.append(w)
                (given2 if len(w) == 3 else given1).append(w[1:])
            elif pos == "nrt" and 3 <= len(w) <= 5 and w[0] not in sur:
                foreign.append(w)
            elif pos == "ns" and 2 <= len(w) <= 5 and (f >= 1000 or PLACE_RE.search(w)):
                places.append(w)
                if w.endswith(("县", "区")):
                    counties.append(w)
                elif w.endswith("市"):
                    cities.append(w)
            elif pos in ("n", "v", "a", "d", "vn") and f >= 2000 and len(w) >= 2:
                common.append(w)
            if pos in ("nt", "ns", "nz") and SCHOOL_RE.search(w) and len(w) >= 4:
                orgs_school.append(w)
        # jieba's nr tag is noisy (idioms, chemicals): keep given names made of characters
        # that are frequent in given-name position
        freq: dict[str, int] = {}
        for g in given2 + given1:
            for ch in g:
                freq[ch] = freq.get(ch, 0) + 1
        ok = {ch for ch, k in freq.items() if k >= 15}
        given2 = [g for g in given2 if all(ch in ok for ch in g)]
        given1 = [g for g in given1 if g in ok]
        full = [w for w in full if all(ch in ok for ch in w[1:])]
        foreign = [w for w in foreign if len(w) >= 3 and all(ch in TRANSLIT for ch in w)]
        self.full, self.given2, self.given1 = full, given2, given1
        self.foreign, self.places, self.common = foreign, places, common
        self.counties = counties or places
        self.cities = cities or places
        self.orgs_school = orgs_school
        self.han_given = "".join(sorted({c for g in given2 for c in g}))

    # entities
    def person(self) -> str:
        r = self.rng.random()
        if r < 0.3 and self.full:
            return self.rng.choice(self.full)
        if r < 0.38 and self.foreign:
            return self.rng.choice(self.foreign)
        if r < 0.42:
            return self.rng.choice(COMPOUND_SURNAMES) + self.rng.choice(self.given2)
        if r < 0.46:
            return self.rng.choice("小老阿") + self.rng.choice(SURNAMES)
        s = self.rng.choice(SURNAMES)
        if self.rng.random() < 0.65:
            return s + self.rng.choice(self.given2)
        return s + self.rng.choice(self.given1)

    def city(self) -> str:
        return self.rng.choice(self.cities)

    def address(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.3:
            return rng.choice(self.places)
        if r < 0.4:
            return rng.choice(PROVINCES)
        parts: list[str] = []
        prov = rng.choice(PROVINCES)
        if rng.random() < 0.5:
            parts.append(prov + ("市" if prov in MUNICIPALITIES else rng.choice(("省", ""))))
        if rng.random() < 0.7:
            parts.append(self.city())
        parts.append(rng.choice(self.counties))
        if rng.random() < 0.8:
            parts.append(rng.choice(self.common)[:2] + rng.choice(STREET_SUFFIX))
            if rng.random() < 0.7:
                parts.append(f"{rng.randint(1, 999)}号")
        if rng.random() < 0.4:
            parts.append(rng.choice(self.places)[:2] + rng.choice(ESTATE_SUFFIX))
            if rng.random() < 0.6:
                parts.append(
                    f"{rng.randint(1, 30)}{rng.choice(('栋', '号楼', '幢'))}"
                    f"{rng.randint(1, 6)}单元{rng.randint(1, 30)}{rng.randint(1, 4):02d}室"
                )
        return "".join(parts)

    def school(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.2 and self.orgs_school:
            return rng.choice(self.orgs_school)
        base = rng.choice(self.places + PROVINCES)
        if r < 0.35:
            return f"{base}第{rng.choice(NUMS)}{rng.choice(('中学', '小学', '高级中学'))}"
        return base + rng.choice(SCHOOL_SUFFIX)

    def set_clauses(self, data: list[Sentence]) -> None:
        """Entity-free clauses of real (licence-clean) posts, used as natural filler."""
        clauses = []
        for text, spans in data:
            for m in re.finditer(r"[^，。！？；,.!?;\s]{2,30}", text):
                if all(m.end() <= s or m.start() >= e for s, e, _ in spans):
                    clauses.append(m.group())
        self.clauses = clauses

    def filler(self, k: int) -> str:
        if getattr(self, "clauses", None) and self.rng.random() < 0.7:
            return self.rng.choice(self.clauses)
        return "".join(self.rng.choice(self.common) for _ in range(k))


TEMPLATES = (
    "{PER}表示，{F}。",
    "记者{PER}报道，{F}",
    "{PER}说：“{F}。”",
    "据{PER}介绍，{F}。",
    "{PER}和{PER}一起{F}",
    "我叫{PER}，今年{N}岁，在{SCH}读{G}。",
    "我是{SCH}{G}的学生{PER}，家住{ADDR}。",
    "{PER}，男，{N}岁，{ADDR}人，毕业于{SCH}。",
    "{PER}，女，汉族，{SCH}本科学历。",
    "家庭住址：{ADDR}",
    "地址：{ADDR}，联系人：{PER}",
    "住在{ADDR}的{PER}{F}",
    "{ADDR}发生{F}",
    "在{ADDR}，{F}。",
    "来自{ADDR}的{PER}{F}",
    "{SCH}的{PER}老师{F}",
    "{PER}同学考上了{SCH}",
    "{PER}毕业于{SCH}，现任{F}",
    "我家在{ADDR}，孩子在{SCH}上{G}",
    "{PER}的女儿{PER}在{SCH}上学",
    "今天和{PER}去{ADDR}玩了",
    "@{PER} {F}",
    "{F}，{PER}认为{F}。",
    "{F}{ADDR}{F}",
    "{PER}在{ADDR}{F}",
    "{PER}：{F}",
    "据{ADDR}警方通报，{PER}（化名）{F}",
    "{SCH}{G}{C}班的{PER}",
    "主演：{PER}、{PER}、{PER}",
    "{F}。",
    "{F}，{F}。",
)
GRADES = (
    "一年级",
    "二年级",
    "三年级",
    "四年级",
    "五年级",
    "六年级",
    "初一",
    "初二",
    "初三",
    "高一",
)


def synth_sentence(sy: Synth, template: str) -> Sentence:
    rng = sy.rng
    text = ""
    spans: list[Span] = []
    for piece in re.split(r"(\{[A-Z]+\})", template):
        if piece == "{PER}":
            v, t = sy.person(), "PER"
            title = rng.choice(TITLES) if rng.random() < 0.25 else ""
            spans.append((len(text), len(text) + len(v), t))
            text += v + title
            continue
        elif piece == "{ADDR}":
            v, t = sy.address(), "ADDR"
        elif piece == "{SCH}":
            v, t = sy.school(), "SCH"
        elif piece == "{F}":
            text += sy.filler(rng.randint(1, 5))
            continue
        elif piece == "{N}":
            text += str(rng.randint(6, 60))
            continue
        elif piece == "{G}":
            text += rng.choice(GRADES)
            continue
        elif piece == "{C}":
            text += str(rng.randint(1, 12))
            continue
        else:
            text += piece
            continue
        spans.append((len(text), len(text) + len(v), t))
        text += v
    return text, spans


def substitute(sy: Synth, text: str, spans: list[Span]) -> Sentence:
    """Replace every mapped entity of a real sentence with a generated one of the same type."""
    out = ""
    new: list[Span] = []
    pos = 0
    for s, e, t in sorted(spans):
        out += text[pos:s]
        v = {"PER": sy.person, "ADDR": sy.address, "SCH": sy.school}[t]()
        new.append((len(out), len(out) + len(v), t))
        out += v
        pos = e
    return out + text[pos:], new


# -- features and training --------------------------------------------------------------------


def bio(n: int, spans: list[Span]) -> list[str]:
    tags = ["O"] * n
    for s, e, t in spans:
        if any(tags[i] != "O" for i in range(s, e)):
            continue  # overlapping spans: keep the first
        tags[s] = f"B-{t}"
        for i in range(s + 1, e):
            tags[i] = f"I-{t}"
    return tags


def crf_items(text: str, lex_keys: np.ndarray, lex_cls: np.ndarray) -> list[list[str]]:
    u = codepoints(text)
    keys = attribute_keys(u)
    lex = lexicon_features(u, lex_keys, lex_cls)
    names = lexicon_feature_names()
    items = []
    for i in range(len(u)):
        row = [format(int(k), "x") for k in keys[i]]
        row.extend(names[j] for j in np.nonzero(lex[i])[0])
        row.append("bias")
        items.append(row)
    return items


def training_set(variant: str, sy: Synth, rng: random.Random, n_synth: int) -> list[Sentence]:
    data: list[Sentence] = []
    corpora = ("weibo",) if variant == "shipped" else ("cluener", "weibo", "resume")
    for corpus in corpora:
        for text, spans in load_split(corpus, "train"):
            data.append((text, map_spans(corpus, text, spans, variant == "shipped")))
    if variant == "shipped":
        weibo = list(data)
        sy.set_clauses(weibo)
        for _ in range(5):
            for text, spans in weibo:
                if spans:
                    data.append(substitute(sy, text, spans))
        for _ in range(n_synth):
            data.append(synth_sentence(sy, rng.choice(TEMPLATES)))
    rng.shuffle(data)
    return data


def train(variant: str, out: Path, c1: float, c2: float, iters: int, n_synth: int) -> None:
    import pycrfsuite

    rng = random.Random(SEED)
    rows = jieba_dictionary()
    lex_keys, lex_cls = build_lexicon(rows)
    sy = Synth(rows, random.Random(SEED + 1))
    data = training_set(variant, sy, rng, n_synth)
    print(f"{variant}: {len(data)} sentences, {sum(len(t) for t, _ in data)} chars", flush=True)

    t0 = time.time()
    trainer = pycrfsuite.Trainer(verbose=False)
    for text, spans in data:
        if text:
            trainer.append(crf_items(text, lex_keys, lex_cls), bio(len(text), spans))
    print(f"features built in {time.time() - t0:.0f}s", flush=True)
    trainer.set_params(
        {
            "c1": c1,
            "c2": c2,
            "max_iterations": iters,
            "feature.possible_transitions": True,
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "model.crfsuite.tmp"
    t0 = time.time()
    trainer.train(str(tmp))
    print(f"trained in {time.time() - t0:.0f}s", flush=True)
    export(tmp, out, lex_keys, lex_cls, variant, len(data), c1, c2, iters)
    tmp.unlink()


def export(
    crf_path: Path,
    out: Path,
    lex_keys: np.ndarray,
    lex_cls: np.ndarray,
    variant: str,
    n_sent: int,
    c1: float,
    c2: float,
    iters: int,
) -> None:
    import pycrfsuite

    tagger = pycrfsuite.Tagger()
    tagger.open(str(crf_path))
    info = tagger.info()
    labels = list(LABELS if variant == "shipped" else LABELS_RESEARCH)
    li = {lab: i for i, lab in enumerate(labels)}
    lex_names = {n: i for i, n in enumerate(lexicon_feature_names())}
    hashed: dict[int, np.ndarray] = {}
    lex_w = np.zeros((len(lex_names), len(labels)), dtype=np.float32)
    bias = np.zeros(len(labels), dtype=np.float32)
    for (attr, lab), w in info.state_features.items():
        if lab not in li:
            continue
        if attr == "bias":
            bias[li[lab]] += w
        elif attr in lex_names:
            lex_w[lex_names[attr], li[lab]] += w
        else:
            row = hashed.setdefault(int(attr, 16), np.zeros(len(labels), dtype=np.float32))
            row[li[lab]] += w
    trans = np.zeros((len(labels), len(labels)), dtype=np.float32)
    for (a, b), w in info.transitions.items():
        if a in li and b in li:
            trans[li[a], li[b]] = w
    keys = np.array(sorted(hashed), dtype=np.uint64)
    weights = np.stack([hashed[int(k)] for k in keys]).astype(np.float16)
    np.savez_compressed(
        out / "crf.npz",
        labels=np.array(labels),
        keys=keys,
        weights=weights,
        lex_weights=lex_w,
        bias=bias,
        trans=trans,
    )
    np.savez_compressed(out / "lexicon.npz", keys=lex_keys, cls=lex_cls)
    meta = {
        "variant": variant,
        "trained": dt.date.today().isoformat(),
        "command": f"bench/train_ner.py --variant {variant}",
        "sentences": n_sent,
        "features": len(keys),
        "labels": labels,
        "c1": c1,
        "c2": c2,
        "max_iterations": iters,
        "seed": SEED,
        "data": (
            "Weibo NER train (CC BY-SA 3.0) + entity-substituted copies + synthetic sentences; "
            "lexicon and name/place lists from jieba dict.txt (MIT)"
            if variant == "shipped"
            else "CLUENER, Weibo, Resume train splits (research only, NOT redistributable)"
        ),
        "licence": "CC BY-SA 3.0" if variant == "shipped" else "research only",
    }
    (out / "model_info.json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"wrote {out} ({len(keys)} features)", flush=True)


def main(argv: Iterable[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=("shipped", "research"), default="shipped")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--c1", type=float, default=0.05)
    ap.add_argument("--c2", type=float, default=0.01)
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--synth", type=int, default=20000, help="synthetic sentences (shipped)")
    a = ap.parse_args(list(argv) if argv is not None else None)
    out = a.out or (PKG_DATA if a.variant == "shipped" else Path("/tmp/qinglang-ner-research"))
    if a.variant == "research" and out.resolve() == PKG_DATA.resolve():
        sys.exit(
            "the research model is not redistributable and must not be written into the package"
        )
    train(a.variant, out, a.c1, a.c2, a.iters, a.synth)


if __name__ == "__main__":
    main()
