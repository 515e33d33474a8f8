"""The statistical recogniser (names, addresses, schools) behind the common protocol.

Wraps `qinglang.detect.ner.NerRecognizer`, which works on plain text: it runs on the normalised
text (so traditional characters, full-width forms and pinyin annotations are already undone) and
maps each span back to the original. The model is loaded on first use, not at import.
"""

from __future__ import annotations

from collections.abc import Iterator

from qinglang.detect.findings import Finding
from qinglang.detect.normalise import Normalised


class ModelRecognizer:
    """Person names, addresses and schools from the packaged CRF model (Chinese text)."""

    name = "ner_crf"
    categories = frozenset({"person_name", "address", "school"})
    languages = frozenset({"zh"})

    def __init__(self) -> None:
        self._ner: object | None = None

    def find(self, norm: Normalised, original: str) -> Iterator[Finding]:
        """Spans the model tags in the normalised text, in original offsets."""
        from qinglang.detect.ner import NerRecognizer

        if self._ner is None:
            self._ner = NerRecognizer()
        assert isinstance(self._ner, NerRecognizer)
        for start, end, category, confidence in self._ner.find(norm.text):
            a, b = norm.to_original(start, end)
            yield Finding(a, b, category, norm.text[start:end], confidence, None, self.name)
