"""Console route modules: each defines ``router`` (an APIRouter with full ``/console/…`` paths)."""

from __future__ import annotations

from typing import Final

#: Modules of this package that :func:`qinglang.web.mount` includes, in order.
ROUTERS: Final[list[str]] = ["auth", "admin", "guardian", "reviewer", "compliance"]
