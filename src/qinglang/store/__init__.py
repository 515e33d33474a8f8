"""Persistence for qinglang: SQLAlchemy models, Alembic migrations, repositories, encryption.

The core engine (policy, age, guard, ...) never imports this package; it is a shell around
the core. Typical use::

    from qinglang.store import make_engine, session_factory, transaction, upgrade
    from qinglang.store import repo

    engine = make_engine("sqlite:///./qinglang.db")   # or postgresql+psycopg://...
    upgrade(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        platform = repo.create_platform(session, "demo", "Demo")
"""

from qinglang.store.crypto import DataKey, DataKeyError, KeyRing, id_number_digest
from qinglang.store.db import (
    DEFAULT_URL,
    downgrade,
    make_engine,
    session_factory,
    transaction,
    upgrade,
    writer,
)

__all__ = [
    "DEFAULT_URL",
    "DataKey",
    "DataKeyError",
    "KeyRing",
    "downgrade",
    "id_number_digest",
    "make_engine",
    "session_factory",
    "transaction",
    "upgrade",
    "writer",
]
