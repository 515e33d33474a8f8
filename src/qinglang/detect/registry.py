"""The recogniser protocol and the registry that assembles recognisers for a scan.

Every detector — the built-in patterns and checksums, and later a statistical model — is a
`Recognizer`: a name, the categories it can report, the languages it applies to (empty: any), and
``find(norm, original)`` returning findings in original offsets. Recognisers read the shared
`Normalised` text, so normalisation runs once per scan and passes that several recognisers need
(``Normalised.matches``) run once.

Optional attributes make scans cheaper. ``triggers`` (see `TriggeredRecognizer`) lets a scan
skip a recogniser when the text lacks the characters it needs; ``anchors`` (see
`AnchoredRecognizer` and `qinglang.detect.anchors`) says it more precisely, with a character and
the pattern that must follow it, and when every recogniser of a scan has anchors one search of
the text (before normalising it) can end the scan. ``batch_safe = True`` promises
that the recogniser looks at most 16 characters around a match unless through patterns that
cannot cross U+0000, and treats U+0000 like the end of the text; `scan_many` then scans many
texts joined by runs of NUL in one pass when every recogniser of the registry is batch-safe.
A recogniser that is not batch-safe may instead offer ``find_many`` (see `BatchRecognizer`), to
which `scan_many` hands many texts at once.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from functools import cache, reduce
from operator import or_
from typing import Protocol, runtime_checkable

from qinglang.detect.anchors import Anchor, Anchors
from qinglang.detect.findings import Finding
from qinglang.detect.normalise import UNFOLDED, Normalised, work_anchors

__all__ = [
    "AnchoredRecognizer",
    "BatchRecognizer",
    "Plan",
    "Recognizer",
    "Registry",
    "TriggeredRecognizer",
    "default_minor_age",
    "default_registry",
]


@runtime_checkable
class Recognizer(Protocol):
    """A detector of one or more categories, run on text normalised once per scan."""

    @property
    def name(self) -> str:
        """Unique name, reported on each finding as ``recognizer``."""
        ...

    @property
    def categories(self) -> frozenset[str]:
        """The categories this recogniser may report."""
        ...

    @property
    def languages(self) -> frozenset[str]:
        """Languages (``zh``, ``en``) it applies to; empty for any text."""
        ...

    def find(self, norm: Normalised, original: str) -> Iterable[Finding]:
        """Findings in `original` offsets (map normalised spans with ``norm.to_original``)."""
        ...


@runtime_checkable
class TriggeredRecognizer(Recognizer, Protocol):
    """A recogniser that says which characters it needs, so a scan can skip it cheaply.

    ``triggers`` is a tuple of character sets (strings): the recogniser can only find
    something when the normalised text holds at least one character of every set.
    """

    @property
    def triggers(self) -> tuple[str, ...]:
        """Character sets that must each be represented in the normalised text."""
        ...


@runtime_checkable
class AnchoredRecognizer(Recognizer, Protocol):
    """A recogniser that says where in a text its findings can start, so a scan can skip it.

    ``anchors`` is a tuple of `Anchor` triples ``(chars, follow, rest)``: the recogniser reports
    nothing on a normalised text in which no character of `chars` is followed by a character of
    the class `follow` and then a match of `rest` (see `qinglang.detect.anchors`).
    """

    @property
    def anchors(self) -> tuple[Anchor, ...]:
        """(characters, next-character class, pattern) triples; one matches at each finding."""
        ...


@runtime_checkable
class BatchRecognizer(Recognizer, Protocol):
    """A recogniser that is faster on many texts at once (`scan_many` uses it).

    ``find_many(norms, originals)[i]`` equals ``list(find(norms[i], originals[i]))``.
    """

    def find_many(
        self, norms: Sequence[Normalised], originals: Sequence[str]
    ) -> list[list[Finding]]:
        """`find` on each text, in one pass."""
        ...


def _anchors_of(r: Recognizer) -> tuple[Anchor, ...] | None:
    """The recogniser's anchors, checked, or None if it declares none."""
    anchors = getattr(r, "anchors", None)
    if anchors is None:
        return None
    if not isinstance(anchors, tuple) or not all(
        isinstance(a, tuple) and len(a) == 3 and all(isinstance(x, str) for x in a) for a in anchors
    ):
        raise TypeError(f"{r.name}: anchors must be a tuple of (chars, follow, rest) triples")
    return anchors


class Plan:
    """The recognisers a scan runs, with a per-text test of their trigger characters.

    ``prefilter`` is None unless every recogniser has anchors; then it finds a text (or, if its
    ``folds`` is True, ``fold_common(text)``) wherever the normaliser has work to do or some
    recogniser's anchor matches: where it does not, the scan finds nothing.
    """

    __slots__ = (
        "_always",
        "_ascii_masks",
        "_ascii_table",
        "_bits",
        "_by_mask",
        "_categories",
        "_class_bits",
        "_needs",
        "_prefilter",
        "_wide",
        "_within",
        "recognizers",
    )

    def __init__(self, recognizers: tuple[Recognizer, ...]) -> None:
        self.recognizers = recognizers
        bits: dict[str, int] = {}
        needs: list[int] = []
        k = 0
        for r in recognizers:
            groups = r.triggers if isinstance(r, TriggeredRecognizer) else ()
            need = 0
            for group in groups:
                for c in group:
                    bits[c] = bits.get(c, 0) | (1 << k)
                need |= 1 << k
                k += 1
            needs.append(need)
            _anchors_of(r)  # checked early
        self._bits = bits
        self._needs = tuple(needs)
        self._always = all(n == 0 for n in needs)
        wide = "".join(re.escape(c) for c in sorted(bits) if not c.isascii())
        self._wide = re.compile(f"[{wide}]" if wide else "(?!)")
        # ASCII characters with the same trigger bits are one class: a byte per class
        classes: dict[int, int] = {}  # bits -> class (1, 2, …; 0: no bits)
        table = bytearray(256)
        for k in range(128):
            b = bits.get(chr(k), 0)
            if b:
                table[k] = classes.setdefault(b, len(classes) + 1)
        self._ascii_table = bytes(table)
        self._class_bits = (0, *classes)
        self._ascii_masks: dict[frozenset[int], int] = {}
        self._by_mask: dict[int, list[Recognizer]] = {}
        self._categories = frozenset(c for r in recognizers for c in r.categories)
        self._within: tuple[frozenset[str], bool] = (frozenset(), not self._categories)
        self._prefilter: Anchors | bool | None = False  # False: not built yet

    @property
    def prefilter(self) -> Anchors | None:
        """A search that can end a scan before normalisation (None: a recogniser has no
        anchors)."""
        if self._prefilter is False:
            anchors: list[Anchor] = list(work_anchors())
            for r in self.recognizers:
                own = _anchors_of(r)
                if own is None:
                    self._prefilter = None
                    return None
                anchors.extend(own)
            self._prefilter = Anchors(anchors, unfolded=UNFOLDED)
        assert self._prefilter is not True
        return self._prefilter

    def within(self, categories: frozenset[str]) -> bool:
        """Whether every category these recognisers report is in `categories`."""
        last, answer = self._within  # scans ask again and again about the same categories
        if last is not categories:
            answer = self._categories <= categories
            self._within = (categories, answer)
        return answer

    def applicable(self, text: str) -> list[Recognizer]:
        """The recognisers whose trigger characters all occur in `text`."""
        if self._always:
            return list(self.recognizers)
        mask = self._mask(text)
        found = self._by_mask.get(mask)
        if found is None:
            found = [
                r
                for r, need in zip(self.recognizers, self._needs, strict=True)
                if mask & need == need
            ]
            if len(self._by_mask) < 4096:
                self._by_mask[mask] = found
        return found

    def _mask(self, text: str) -> int:
        # ASCII characters through bytes (no string per character) turned into their classes,
        # the others by a search
        classes = frozenset(text.encode("ascii", "ignore").translate(self._ascii_table))
        mask = self._ascii_masks.get(classes)
        if mask is None:
            mask = reduce(or_, map(self._class_bits.__getitem__, classes), 0)
            if len(self._ascii_masks) < 4096:
                self._ascii_masks[classes] = mask
        if not text.isascii():
            wide = self._wide.findall(text)
            if len(wide) > 8:
                wide = list(set(wide))
            bits = self._bits
            for c in wide:
                mask |= bits[c]
        return mask


_MAX_PREFILTERS = 32
"""Prefilters kept per registry for sets of categories (each costs about 0.1 s to compile)."""


class Registry:
    """An ordered set of recognisers by name, and the subset that a scan needs."""

    def __init__(self, recognizers: Iterable[Recognizer] = ()) -> None:
        self._by_name: dict[str, Recognizer] = {}
        self._selected: dict[tuple[frozenset[str] | None, frozenset[str]], tuple[Recognizer, ...]]
        self._selected = {}
        self._plans: dict[tuple[frozenset[str] | None, frozenset[str]], Plan] = {}
        # the categories of the last plan, and the plans for them by languages
        self._last_plans: tuple[frozenset[str] | None, dict[frozenset[str], Plan]] = (None, {})
        self._prefilters: dict[tuple[frozenset[str] | None, str | None], Anchors | None] = {}
        self._parts: tuple[Registry, tuple[BatchRecognizer, ...]] | bool | None = False
        self.version = 0
        """Counts the changes (`add`, `remove`): what was derived from the recognisers is stale
        when it has moved."""
        for r in recognizers:
            self.add(r)

    def _changed(self) -> None:
        self.version += 1
        self._selected.clear()
        self._plans.clear()
        self._last_plans = (None, {})
        self._prefilters.clear()
        self._parts = False

    def add(self, recognizer: Recognizer, *, replace: bool = False) -> None:
        """Add a recogniser; a name already present is an error unless `replace`."""
        if not isinstance(recognizer, Recognizer):
            raise TypeError(f"{recognizer!r} does not implement the Recognizer protocol")
        if recognizer.name in self._by_name and not replace:
            raise ValueError(f"a recogniser named {recognizer.name!r} is already registered")
        self._by_name[recognizer.name] = recognizer
        self._changed()

    def remove(self, name: str) -> Recognizer:
        """Remove and return the recogniser called `name`."""
        try:
            recognizer = self._by_name.pop(name)
        except KeyError:
            raise KeyError(f"no recogniser named {name!r}") from None
        self._changed()
        return recognizer

    def get(self, name: str) -> Recognizer:
        """The recogniser called `name`."""
        return self._by_name[name]

    @property
    def batch_safe(self) -> bool:
        """Whether every recogniser may read many texts joined by NUL runs (see `scan_many`)."""
        return all(getattr(r, "batch_safe", False) is True for r in self._by_name.values())

    def batch_parts(self) -> tuple[Registry, tuple[BatchRecognizer, ...]] | None:
        """How `scan_many` can scan many texts at once: a registry of the recognisers that may
        read texts joined by NUL runs (batch-safe, for any language), and the other recognisers,
        which take many texts through ``find_many``; None if a recogniser can do neither."""
        if self._parts is False:
            safe: list[Recognizer] = []
            batched: list[BatchRecognizer] = []
            for r in self._by_name.values():
                if getattr(r, "batch_safe", False) is True and not r.languages:
                    safe.append(r)
                elif isinstance(r, BatchRecognizer):
                    batched.append(r)
                else:
                    self._parts = None
                    return None
            # the registry itself when every recogniser is batch-safe: its caches are shared
            self._parts = (self if not batched else Registry(safe), tuple(batched))
        assert self._parts is not True
        return self._parts

    def prefilter(self, categories: frozenset[str] | None, lang: str | None) -> Anchors | None:
        """`Plan.prefilter` of the recognisers a scan of `categories` may run on text of the
        language `lang` (None: any)."""
        key = (categories, lang)
        try:
            return self._prefilters[key]
        except KeyError:
            pass
        if categories is not None and len(self._prefilters) >= _MAX_PREFILTERS:
            # compiling one costs about 0.1 s: past a few category sets, use the one for all
            # categories (it finds a superset of the texts)
            return self.prefilter(None, lang)
        languages = frozenset(("zh", "en")) if lang is None else frozenset((lang,))
        found = self.plan(categories, languages).prefilter
        self._prefilters[key] = found
        return found

    @property
    def categories(self) -> frozenset[str]:
        """Every category some registered recogniser may report."""
        return frozenset(c for r in self._by_name.values() for c in r.categories)

    def select(
        self, categories: Collection[str] | None, languages: frozenset[str]
    ) -> tuple[Recognizer, ...]:
        """The recognisers that can report one of `categories` (None: all) in `languages`."""
        cats = None if categories is None else frozenset(categories)
        key = (cats, languages)
        found = self._selected.get(key)
        if found is None:
            found = tuple(
                r
                for r in self._by_name.values()
                if (cats is None or r.categories & cats)
                and (not r.languages or r.languages & languages)
            )
            self._selected[key] = found
        return found

    def plan(self, categories: Collection[str] | None, languages: frozenset[str]) -> Plan:
        """`select` with a cheap per-text test of the recognisers' trigger characters."""
        last, plans = self._last_plans  # scans ask again and again about the same categories
        if categories is last:
            plan = plans.get(languages)
            if plan is not None:
                return plan
        cats = None if categories is None else frozenset(categories)
        key = (cats, languages)
        plan = self._plans.get(key)
        if plan is None:
            plan = Plan(self.select(cats, languages))
            self._plans[key] = plan
        if categories is None or isinstance(categories, frozenset):  # (not a mutable one)
            if categories is not last:
                plans = {}
                self._last_plans = (categories, plans)  # one assignment: no thread sees a mix
            plans[languages] = plan
        return plan

    def __iter__(self) -> Iterator[Recognizer]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __repr__(self) -> str:
        return f"Registry({list(self._by_name)})"


@cache
def default_minor_age() -> int:
    """The age below which a person is a minor: ``age.minor_below`` of the ``cn`` policy pack."""
    from qinglang.policy import load_pack

    value = load_pack("cn").require("age.minor_below").value
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"age.minor_below should be an integer, got {value!r}")
    return value


def default_registry(*, minor_below: int | None = None, model: bool = False) -> Registry:
    """A new registry of the built-in recognisers: the fast path (patterns, checksums, context)
    and, with `model`, the statistical model for names, addresses and schools.

    The model is opt-in while its accuracy is below the project's bar (docs/model_card_ner.md):
    its false positives would otherwise flag ordinary text.
    """
    from qinglang.detect.recognisers import builtin_recognisers
    from qinglang.detect.recognisers.model import ModelRecognizer

    limit = default_minor_age() if minor_below is None else minor_below
    recognisers: list[Recognizer] = list(builtin_recognisers(minor_below=limit))
    if model:
        recognisers.append(ModelRecognizer())
    return Registry(recognisers)
