"""The statistical recogniser (names, addresses, schools) behind the common protocol.

Wraps `qinglang.detect.ner.NerRecognizer`, which works on plain text: it runs on the normalised
text (so traditional characters, full-width forms and pinyin annotations are already undone) and
maps each span back to the original. The model is loaded on first use, not at import.
``find_many`` tags many texts in one pass (`scan_many` uses it), with the same findings as
``find`` text by text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from qinglang.detect.findings import Finding
from qinglang.detect.normalise import Normalised

if TYPE_CHECKING:  # numpy and the model are imported on first use
    from qinglang.detect.ner import NerRecognizer


class ModelRecognizer:
    """Person names, addresses and schools from the packaged CRF model (Chinese text)."""

    name = "ner_crf"
    categories = frozenset({"person_name", "address", "school"})
    languages = frozenset({"zh"})

    def __init__(self) -> None:
        self._ner: NerRecognizer | None = None

    def _model(self) -> NerRecognizer:
        if self._ner is None:
            from qinglang.detect.ner import NerRecognizer

            self._ner = NerRecognizer()
        return self._ner

    def find(self, norm: Normalised, original: str) -> Iterator[Finding]:
        """Spans the model tags in the normalised text, in original offsets."""
        yield from self._findings(norm, self._model().find(norm.text))

    def find_many(
        self, norms: Sequence[Normalised], originals: Sequence[str]
    ) -> list[list[Finding]]:
        """`find` on each text, the model tagging all of them in one pass."""
        tagged = self._model().find_many([n.text for n in norms])
        return [list(self._findings(n, spans)) for n, spans in zip(norms, tagged, strict=True)]

    def _findings(
        self, norm: Normalised, spans: list[tuple[int, int, str, float]]
    ) -> Iterator[Finding]:
        for start, end, category, confidence in spans:
            a, b = norm.to_original(start, end)
            yield Finding(a, b, category, norm.text[start:end], confidence, None, self.name)
