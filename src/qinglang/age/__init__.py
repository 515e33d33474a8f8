"""Age assurance core: resident identity numbers, ages, age bands and age sources.

Pure functions and values only: no I/O beyond reading packaged data, no imports from other
qinglang packages.
"""

from qinglang.age.ages import SHANGHAI, age_at, age_on
from qinglang.age.bands import MAX_INDEXED_AGE, BandIndex, BandLike, band_for
from qinglang.age.regions import region_name
from qinglang.age.ric import (
    InvalidCharacters,
    InvalidChecksum,
    InvalidDate,
    InvalidIdentityNumber,
    InvalidLength,
    InvalidRegion,
    Reason,
    ResidentId,
    compact,
    is_valid,
    to_18,
    validate,
)
from qinglang.age.sources import AgeClaim, AgeSource, best_claim

__all__ = [
    "MAX_INDEXED_AGE",
    "SHANGHAI",
    "AgeClaim",
    "AgeSource",
    "BandIndex",
    "BandLike",
    "InvalidCharacters",
    "InvalidChecksum",
    "InvalidDate",
    "InvalidIdentityNumber",
    "InvalidLength",
    "InvalidRegion",
    "Reason",
    "ResidentId",
    "age_at",
    "age_on",
    "band_for",
    "best_claim",
    "compact",
    "is_valid",
    "region_name",
    "to_18",
    "validate",
]
