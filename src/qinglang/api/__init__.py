"""HTTP API (FastAPI): platforms and keys, accounts, relationships and content flags, decisions."""

from qinglang.api.app import app_from_env, create_app
from qinglang.api.service import Settings

__all__ = ["Settings", "app_from_env", "create_app"]
