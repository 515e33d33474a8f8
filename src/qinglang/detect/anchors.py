"""Anchors: a cheap test that a text may hold what a recogniser looks for, or need normalising.

An anchor is a triple ``(chars, follow, rest)``: a character of `chars` (a plain string of
characters), right after it a character of `follow` (the body of a regex character class, such
as ``"0-9"`` or ``"\\s:="``; empty: no such character), then a match of the regular expression
`rest` (which may look behind at the characters before it). ``(chars, "", "")`` is the
character on its own. A recogniser that declares ``anchors`` promises that it reports nothing
on a normalised text where none of them matches; the normaliser declares anchors for its own
work (`normalise.work_anchors`), so that one search can show that a text needs no normalising
and that no recogniser can report anything in it (`Plan.prefilter`).

`Anchors` compiles a set of anchors into two patterns. In one, each anchor character has a
branch that starts with it: `re` then scans for the set of anchor characters in C and, at one
of them, skips the other branches with one comparison each; inside a branch the `follow`
classes are tested the same way, so a candidate character costs little unless the character
after it fits. The other pattern takes the characters that are enough on their own (thousands
of traditional characters, say) and the groups of characters that share what may follow them
(the digits, the province characters …): it starts with the class of all of them, then looks
behind at which group the character belongs to.

>>> a = Anchors([("0123456789", "0-9", "[0-9]{5}"), ("@", "", ""), ("岁", "", "")])
>>> a.search("电话13812345678"), a.search("a@b"), a.search("我12岁"), a.search("电话13812")
(True, True, True, False)
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

__all__ = ["Anchor", "Anchors", "class_of"]

Anchor: TypeAlias = tuple[str, str, str]
"""(characters, class of the next character, pattern after it); see the module docstring."""

_MAX_KEY_CHARS = 256
"""Anchors with more characters than this must be characters alone (they become one class)."""
_GROUP = 4
"""Key characters that share what may follow them get a pattern of their own from this many."""


def class_of(codes: Iterable[int]) -> str:
    """A regex character class body for code points, as ranges."""
    ranges: list[list[int]] = []
    for k in sorted(set(codes)):
        if ranges and ranges[-1][1] == k - 1:
            ranges[-1][1] = k
        else:
            ranges.append([k, k])
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


def _class(codes: set[int]) -> str:
    """A class body for `codes`, widened to every astral character if it has one: `re` tests the
    BMP part of a class with a bitmap but the rest range by range."""
    bmp = class_of(k for k in codes if k < 0x10000)
    return bmp + ("\\U00010000-\\U0010ffff" if codes and max(codes) >= 0x10000 else "")


def _order(c: str) -> tuple[int, str]:
    """Digits, Latin letters, other characters, then ASCII punctuation: `re` tries the branches
    in order, so the frequent candidates come first."""
    if "0" <= c <= "9":
        return 0, c
    if c.isascii():
        return (1 if c.isalpha() else 3), c
    return 2, c


class Anchors:
    """A set of anchors, compiled: ``search(text)`` tells whether one of them matches `text`.

    With `unfolded` (a map from ASCII characters to the full-width forms that fold to them),
    the anchors also match a text that still has those forms: wherever they match the folded
    text, they match the text before folding. ``folds`` is then False, unless this Python's
    `re` internals are not the expected ones; then the caller must fold the text first.
    """

    __slots__ = ("_first", "_second", "anchors", "folds", "searches")

    def __init__(
        self, anchors: Iterable[Anchor], unfolded: Mapping[str, str] | None = None
    ) -> None:
        self.anchors = tuple(anchors)
        alone: set[int] = set()
        keyed: dict[str, dict[str, list[str]]] = {}  # key character -> follow -> rests
        for chars, follow, rest in self.anchors:
            if not chars:
                raise ValueError(f"anchor {(chars, follow, rest)!r}: no characters")
            if not follow and not rest and len(chars) > _MAX_KEY_CHARS:
                alone.update(map(ord, chars))
                continue
            if len(chars) > _MAX_KEY_CHARS:
                raise ValueError(f"anchor {(chars, follow, rest)!r}: too many characters")
            for c in chars:
                rests = keyed.setdefault(c, {}).setdefault(follow, [])
                if rest not in rests:
                    rests.append(rest)
        for c, forms in (unfolded or {}).items():  # the forms that fold to a key are keys too
            if ord(c) in alone:
                alone.update(map(ord, forms))
            if c in keyed:
                for f in forms:
                    keyed[f] = keyed[c]
        # what may follow each key character ("" for nothing); the keys that share it (the
        # digits, say) are one group
        inners: dict[str, str] = {}
        for c, follows in keyed.items():
            alts: list[str] = []
            for follow, rests in follows.items():
                if "" in rests:
                    alts.append(f"[{follow}]" if follow else "")
                    continue
                body = "|".join(f"(?:{r})" for r in rests)
                alts.append(f"[{follow}](?:{body})" if follow else f"(?:{body})")
            inners[c] = "" if "" in alts else alts[0] if len(alts) == 1 else f"(?:{'|'.join(alts)})"
        sharing: dict[str, list[str]] = {}
        for c, inner in inners.items():
            sharing.setdefault(inner, []).append(c)
        # one pattern for the characters alone and the groups: their class, then a look-behind
        # at which group it was (there are few); one for the other keys, a branch each starting
        # with its key (so that `re` still scans for the keys in C and skips the other branches
        # at a glance)
        groups: list[tuple[set[int], str]] = [(alone, "")] if alone else []
        branches: list[str] = []
        for shared, keys in sorted(sharing.items(), key=lambda kv: _order(min(kv[1], key=_order))):
            if shared and len(keys) >= _GROUP:
                groups.append((set(map(ord, keys)), shared))
            else:
                branches.extend(keys)
        sources: list[str] = []
        if groups:
            union: set[int] = set().union(*(codes for codes, _ in groups))
            dispatch = "|".join(f"(?<=[{_class(codes)}]){after}" for codes, after in groups)
            sources.append(f"[{_class(union)}](?:{dispatch})")
        if branches:
            sources.append("|".join(re.escape(c) + inners[c] for c in sorted(branches, key=_order)))
        self.folds = False
        patterns: list[re.Pattern[str]] = []
        for source in sources:
            widened = _widened(source, unfolded) if unfolded else re.compile(source)
            if widened is None:  # pragma: no cover - other `re` internals: fold the text first
                self.folds = True
                patterns = [re.compile(source) for source in sources]
                break
            patterns.append(widened)
        never = re.compile("(?!)")
        self._first = patterns[0] if patterns else never
        self._second = patterns[1] if len(patterns) > 1 else never
        self.searches = (self._first.search, self._second.search)
        """The two searches: the anchors match where one of them finds something."""

    def search(self, text: str) -> bool:
        """Whether one of the anchors matches somewhere in `text`."""
        return self._first.search(text) is not None or self._second.search(text) is not None

    def __repr__(self) -> str:
        return f"Anchors({len(self.anchors)} anchors)"


def _widened(source: str, unfolded: Mapping[str, str]) -> re.Pattern[str] | None:
    """`source` compiled so that each of the characters in `unfolded` that it matches also
    matches the forms it maps to; None if `re` has not the internals this relies on.

    The parsed pattern is rewritten: a literal becomes a class of it and its forms, a class
    that holds one of the characters also holds its forms (a negated one excludes them too).
    That is exact for patterns without back-references; the anchors have none. The key
    character that starts each branch is left alone (the forms have branches of their own),
    so that the pattern still starts with literals only, which `re` scans for quickly.
    """
    try:
        parser: Any = importlib.import_module("re._parser")
        compiler: Any = importlib.import_module("re._compiler")
        k: Any = importlib.import_module("re._constants")
        tree = parser.parse(source)
    except (ImportError, AttributeError):  # pragma: no cover - another Python's internals
        return None
    forms = {ord(a): [ord(f) for f in b] for a, b in unfolded.items()}

    def contains(items: list[tuple[Any, Any]], c: int) -> bool:
        for op, av in items:
            if (op is k.LITERAL and av == c) or (op is k.RANGE and av[0] <= c <= av[1]):
                return True
        return False

    def widen(items: Any, start: int = 0) -> None:
        for i in range(start, len(items)):
            op, av = items[i]
            if op is k.LITERAL and av in forms:
                items[i] = (k.IN, [(k.LITERAL, av)] + [(k.LITERAL, f) for f in forms[av]])
            elif op is k.NOT_LITERAL and av in forms:
                lits = [(k.LITERAL, av)] + [(k.LITERAL, f) for f in forms[av]]
                items[i] = (k.IN, [(k.NEGATE, None), *lits])
            elif op is k.IN:
                extra = [(k.LITERAL, f) for c, fs in forms.items() if contains(av, c) for f in fs]
                av.extend(extra)
            elif op in (k.MAX_REPEAT, k.MIN_REPEAT, k.POSSESSIVE_REPEAT):
                widen(av[2])
            elif op is k.SUBPATTERN:
                widen(av[3])
            elif op is k.BRANCH:
                for branch in av[1]:
                    widen(branch)
            elif op in (k.ASSERT, k.ASSERT_NOT):
                widen(av[1])
            elif op is k.ATOMIC_GROUP:
                widen(av)
            elif op in (k.GROUPREF, k.GROUPREF_EXISTS):
                raise ValueError("anchors with back-references cannot be widened")

    try:
        if len(tree.data) == 1 and tree.data[0][0] is k.BRANCH:
            for branch in tree.data[0][1][1]:
                widen(branch.data, 1 if branch.data[0][0] is k.LITERAL else 0)
        elif tree.data and tree.data[0][0] is k.LITERAL:  # one key
            widen(tree.data, 1)
        else:
            widen(tree.data)
        compiled: re.Pattern[str] = compiler.compile(tree)
    except (AttributeError, TypeError, IndexError):  # pragma: no cover - other internals
        return None
    return compiled
