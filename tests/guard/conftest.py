"""Shared fixtures for guard tests: the cn pack and profiles at a fixed instant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from qinglang.guard import Profile, build_profile
from qinglang.policy import Policy, RuleValue, load_pack

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 9, 12, 0, tzinfo=SH)


@pytest.fixture(scope="session")
def cn() -> Policy:
    return load_pack("cn")


MakeProfile = Callable[..., Profile]


@pytest.fixture(scope="session")
def person(cn: Policy) -> MakeProfile:
    def make(
        name: str, age: int | None, settings: dict[str, RuleValue] | None = None, **kw: object
    ) -> Profile:
        birth = None if age is None else date(NOW.year - age - 1, 12, 31)
        return build_profile(cn, name, birth, kw.get("source", "verified"), NOW, settings)  # type: ignore[arg-type]

    return make
