"""One-time guardian link codes.

A guardian who links a child in the console must prove access to the child's account, or
anyone who knows an account id could claim the child. The platform asks qinglang for a code
(`POST /v1/accounts/{account}/guardian-link-codes`) and shows it in the child's own app; the
guardian types it into the console's link form. A code is random (50 bits), works once, for one
account, for `CODE_TTL`; only a keyed digest is stored.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from qinglang.store.crypto import DataKey, KeyRing, id_number_digest
from qinglang.store.models import Account, GuardianLinkCode

CODE_TTL = timedelta(minutes=30)
"""How long a link code works (a qinglang setting, not a legal value)."""
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
"""No 0/O, 1/I/L: codes are read off a screen and typed."""
LENGTH = 10


def normalise(code: str) -> str:
    """The code as stored: upper case, without spaces or dashes."""
    return "".join(ch for ch in code.upper() if ch not in " -")


def _digest(keys: DataKey | KeyRing, code: str) -> str:
    return id_number_digest(keys, "link-code:" + normalise(code))


def issue(
    session: Session, keys: DataKey | KeyRing, account: Account, at: datetime
) -> tuple[str, datetime]:
    """A new code for this account and when it expires (earlier unused codes stay valid)."""
    code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    expires = at + CODE_TTL
    session.add(
        GuardianLinkCode(
            platform_id=account.platform_id,
            account_id=account.id,
            code_hash=_digest(keys, code),
            expires_at=expires,
        )
    )
    session.flush()
    return f"{code[:5]}-{code[5:]}", expires


def redeem(
    session: Session, keys: DataKey | KeyRing, account: Account, code: str, at: datetime
) -> bool:
    """Use a code for this account: True once if it is valid, unused and unexpired."""
    if not code.strip():
        return False
    row = session.scalar(
        select(GuardianLinkCode)
        .where(GuardianLinkCode.code_hash == _digest(keys, code))
        .with_for_update()
    )
    if (
        row is None
        or row.account_id != account.id
        or row.used_at is not None
        or row.expires_at <= at
    ):
        return False
    row.used_at = at
    session.flush()
    return True
