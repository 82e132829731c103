"""API keys: random secrets shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.orm import Session

from tierroute.models import ApiKey

KEY_PREFIX = "trk_"


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_key(session: Session, name: str) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw secret, which is never stored."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=raw[:12], key_hash=hash_key(raw))
    session.add(key)
    session.flush()
    return key, raw
