"""API keys: random secrets shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tierroute.domain.errors import Conflict, NotFound
from tierroute.store.engine import make_engine
from tierroute.store.models import ApiKey

KEY_PREFIX = "trk_"
# Characters of a key kept in clear (`api_keys.prefix`), so people can tell keys apart.
SHOWN_PREFIX_LEN = len(KEY_PREFIX) + 8
# The shortest prefix `find_key` accepts: a few characters past "trk_", so a typo like
# "trk_" alone cannot name (and revoke) whichever key happens to be the only one.
MIN_PREFIX_MATCH = len(KEY_PREFIX) + 4


def hash_key(raw: str) -> str:
    """The SHA-256 hex digest under which a key is stored and looked up."""
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_key(
    session: Session, name: str, daily_budget_usd: Decimal | None = None
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw secret, which is never stored."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        prefix=raw[:SHOWN_PREFIX_LEN],
        key_hash=hash_key(raw),
        daily_budget_usd=daily_budget_usd,
    )
    session.add(key)
    session.flush()
    return key, raw


def active_key_id(session: Session, key_hash: str) -> uuid.UUID | None:
    """The id of the unrevoked key with this hash, or None."""
    return session.scalars(
        select(ApiKey.id).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    ).first()


def set_daily_budget(session: Session, name: str, daily_budget_usd: Decimal | None) -> int:
    """Set (or with None, remove) the daily budget of the active keys named `name`."""
    rows = session.execute(
        update(ApiKey)
        .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        .values(daily_budget_usd=daily_budget_usd)
        .returning(ApiKey.id)
    ).all()
    return len(rows)


def revoke_api_key(session: Session, key_id: uuid.UUID) -> bool:
    """Mark a key revoked; False if it does not exist or already was."""
    revoked = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(ApiKey.id)
    ).first()
    return revoked is not None


def find_key(session: Session, ident: str) -> ApiKey:
    """The one key that `ident` names: its id, its secret, or the start of its prefix.

    An active key wins over revoked ones with the same prefix; NotFound when none
    matches, Conflict when several active (or, with none active, several revoked) do.
    """
    # The CLI shows a prefix as "trk_AbCdEfGh…": a copy of it may carry the ellipsis.
    ident = ident.strip().rstrip("…")
    try:
        by_id = session.get(ApiKey, uuid.UUID(ident))
    except ValueError:
        by_id = None
    if by_id is not None:
        return by_id
    named_by = ApiKey.key_hash == hash_key(ident)
    if MIN_PREFIX_MATCH <= len(ident) <= SHOWN_PREFIX_LEN:
        named_by = named_by | ApiKey.prefix.startswith(ident, autoescape=True)
    matches = list(session.scalars(select(ApiKey).where(named_by).order_by(ApiKey.created_at)))
    active = [key for key in matches if key.revoked_at is None]
    candidates = active or matches
    if not candidates:
        raise NotFound(f"no API key has the id or prefix {ident!r}")
    if len(candidates) > 1:
        named = ", ".join(f"{key.prefix}… ({key.name!r}, id {key.id})" for key in candidates)
        raise Conflict(f"{ident!r} matches {len(candidates)} keys: {named}; give the key id")
    return candidates[0]


def issue_key(database_url: str, name: str) -> str:
    """Create and commit a key on a database this process has no engine for; returns it."""
    # The stack and the benchmarks run in a parent process that never calls
    # init_engine, so they get a short-lived engine of their own.
    engine = make_engine(database_url, pool_size=1)
    try:
        with sessionmaker(engine).begin() as session:
            _, raw = create_api_key(session, name)
        return raw
    finally:
        engine.dispose()
