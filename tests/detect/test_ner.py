"""The packaged NER model: offline load, offsets, categories, no findings in plain text."""

from __future__ import annotations

import itertools
import json
import socket
from importlib import resources

import pytest

from qinglang.detect.ner import CATEGORIES, CrfModel, NerRecognizer, load_model
from qinglang.detect.ner.features import attribute_keys, codepoints, ngram_hashes, word_hashes


@pytest.fixture(scope="module")
def rec() -> NerRecognizer:
    return NerRecognizer()


def test_model_files_are_package_data() -> None:
    root = resources.files("qinglang.detect.ner") / "data"
    for name in ("crf.npz", "lexicon.npz", "model_info.json"):
        assert (root / name).is_file(), name
    info = json.loads((root / "model_info.json").read_text(encoding="utf-8"))
    assert info["variant"] == "shipped", "only the licence-clean model may be packaged"
    assert "CC BY-SA" in info["licence"]


def test_loads_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*_a: object, **_k: object) -> None:
        raise AssertionError("the model must load without network access")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    model = CrfModel.load_packaged()
    assert model.labels[0] == "O"
    assert len(model.keys) > 1000


def test_load_model_is_cached() -> None:
    assert load_model() is load_model()


def test_finds_name_and_address(rec: NerRecognizer) -> None:
    text = "我叫张伟，在北京市海淀区中关村大街1号上学"
    found = rec.find(text)
    names = [text[s:e] for s, e, c, _ in found if c == "person_name"]
    assert "张伟" in names
    addresses = [text[s:e] for s, e, c, _ in found if c == "address"]
    assert any(a.startswith("北京") for a in addresses), found


def test_finds_school(rec: NerRecognizer) -> None:
    text = "我女儿李小红在北京市第一中学读初二。"
    found = rec.find(text)
    assert any(c == "school" and text[s:e].endswith("中学") for s, e, c, _ in found), found
    assert any(c == "person_name" and text[s:e] == "李小红" for s, e, c, _ in found), found


@pytest.mark.parametrize(
    "text", ["今天天气很好", "", "。", "hello world 123", "吃了吗？好的，谢谢。"]
)
def test_no_findings_in_plain_text(rec: NerRecognizer, text: str) -> None:
    assert rec.find(text) == []


def test_offsets_round_trip_and_shape(rec: NerRecognizer) -> None:
    text = "王芳老师说，刘洋和陈静住在上海市浦东新区世纪大道100号。\n下一行：孙悟空来到花果山。"
    found = rec.find(text)
    assert found
    for s, e, cat, conf in found:
        assert 0 <= s < e <= len(text)
        assert cat in set(CATEGORIES.values())
        assert 0.0 <= conf <= 1.0
        assert text[s:e].strip() == text[s:e]
    # the same entity found at a shifted position when text is prepended
    shifted = rec.find("前缀：" + text)
    assert {(s + 3, e + 3, c) for s, e, c, _ in found} & {(s, e, c) for s, e, c, _ in shifted}


def test_spans_do_not_overlap_and_are_sorted(rec: NerRecognizer) -> None:
    text = "张三、李四、王五都在广州市天河区体育西路读书，他们是广州市第六中学的学生。" * 3
    found = rec.find(text)
    ends = [(s, e) for s, e, _, _ in found]
    assert ends == sorted(ends)
    for (_, e1), (s2, _) in itertools.pairwise(ends):
        assert e1 <= s2


def test_non_bmp_and_fullwidth_do_not_shift_offsets(rec: NerRecognizer) -> None:
    text = "😀😀我叫张伟，ＡＢＣ１２３"
    found = rec.find(text)
    assert any(text[s:e] == "张伟" for s, e, _, _ in found), found


def test_long_text_is_segmented(rec: NerRecognizer) -> None:
    text = ("张伟在北京工作" + "很" * 500 + "。") * 5
    found = rec.find(text)
    assert sum(1 for s, e, _, _ in found if text[s:e] == "张伟") >= 4


def test_feature_hashing_consistent() -> None:
    u = codepoints("北京大学")
    assert ngram_hashes(u, 4)[0] == word_hashes(["北京大学"])[0]
    assert codepoints("Ａ１")[0] == codepoints("a9")[0]  # fold full-width and case
    assert codepoints("Ａ１")[1] == codepoints("a9")[1]  # all digits alike
    assert attribute_keys(u).shape[0] == 4
