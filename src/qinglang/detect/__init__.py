"""Personal information in text, Chinese and English, robust to evasion: the detector.

``scan(text)`` normalises the text once (full-width forms, Chinese/financial/circled numerals,
separators and emoji between digits, zero-width characters, contact-app aliases, traditional
characters, pinyin annotations), runs the registered recognisers and returns `Finding` objects
with offsets in the ORIGINAL text, a category from `CATEGORIES`, a normalised value, a
confidence and a `MinorSignal` when the finding reveals or suggests a minor. ``redact`` masks
findings by category. Recognisers follow one protocol (`Recognizer`) and are assembled by a
`Registry`; the statistical model for names, addresses and schools plugs in the same way.

The package is pure: it imports nothing from storage, the API or the CLI.
"""

from qinglang.detect.findings import (
    CATEGORIES,
    MODEL_CATEGORIES,
    STRUCTURED_CATEGORIES,
    Category,
    Finding,
    MinorSignal,
)
from qinglang.detect.normalise import Normalised, detect_languages, normalise
from qinglang.detect.redact import PLACEHOLDERS, RedactionPolicy, redact
from qinglang.detect.registry import Recognizer, Registry, default_minor_age, default_registry
from qinglang.detect.scan import LANGUAGES, resolve_overlaps, scan, scan_many

__all__ = [
    "CATEGORIES",
    "LANGUAGES",
    "MODEL_CATEGORIES",
    "PLACEHOLDERS",
    "STRUCTURED_CATEGORIES",
    "Category",
    "Finding",
    "MinorSignal",
    "Normalised",
    "Recognizer",
    "RedactionPolicy",
    "Registry",
    "default_minor_age",
    "default_registry",
    "detect_languages",
    "normalise",
    "redact",
    "resolve_overlaps",
    "scan",
    "scan_many",
]
