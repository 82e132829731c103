"""`tierroute keys revoke`: by id or prefix, a clear line for an unknown key, and a
revoked key gets 401 from the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from tests.conftest import Services
from tierroute.cli.main import main
from tierroute.config import get_settings
from tierroute.store.engine import init_engine, session_scope
from tierroute.store.keys import create_api_key
from tierroute.store.models import ApiKey

pytestmark = pytest.mark.integration


@pytest.fixture
def db(clean_db: Services) -> Services:
    init_engine(get_settings())
    return clean_db


def new_key(name: str) -> tuple[ApiKey, str]:
    with session_scope() as session:
        key, raw = create_api_key(session, name)
        session.expunge(key)
    return key, raw


def revoked_at(key_id: uuid.UUID) -> object:
    with session_scope() as session:
        return session.scalars(select(ApiKey.revoked_at).where(ApiKey.id == key_id)).one()


def revoke(ident: str) -> Result:
    return CliRunner().invoke(main, ["keys", "revoke", ident])


@pytest.fixture
def client(db: Services) -> Iterator[TestClient]:
    with TestClient(create_app()) as test_client:
        yield test_client


def test_revoke_by_prefix_then_the_key_is_401_and_others_still_work(client: TestClient) -> None:
    key, raw = new_key("ci")
    other, other_raw = new_key("ci-other")
    for secret in (raw, other_raw):
        assert client.get("/v1/report", headers={"Authorization": f"Bearer {secret}"}).is_success
    # As `keys create` shows it, ellipsis included.
    result = revoke(f"{key.prefix}…")
    assert result.exit_code == 0, result.output
    assert f"revoked key {key.prefix}" in result.output and str(key.id) in result.output
    assert revoked_at(key.id) is not None and revoked_at(other.id) is None
    # A fresh app: nothing cached, so the revocation shows at once.
    with TestClient(create_app()) as fresh:
        refused = fresh.get("/v1/report", headers={"Authorization": f"Bearer {raw}"})
        kept = fresh.get("/v1/report", headers={"Authorization": f"Bearer {other_raw}"})
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    assert kept.status_code == 200


def test_revoke_by_id_and_again(db: Services) -> None:
    key, _ = new_key("by-id")
    first = revoke(str(key.id))
    assert first.exit_code == 0, first.output
    assert revoked_at(key.id) is not None
    again = revoke(str(key.id))
    assert again.exit_code == 0 and "already revoked" in again.output


def test_unknown_short_or_ambiguous_names_are_one_line_errors(db: Services) -> None:
    key, _ = new_key("a")
    for ident in (str(uuid.uuid4()), "trk_nothing1", "trk_", "", "nonsense"):
        result = revoke(ident)
        assert result.exit_code == 1, (ident, result.output)
        assert "no API key has the id or prefix" in result.output
        assert "Traceback" not in result.output and result.exception is not None
        assert isinstance(result.exception, SystemExit)
    assert revoked_at(key.id) is None
    # Two active keys that share the typed prefix: neither is revoked.
    with session_scope() as session:
        session.add(ApiKey(name="twin", prefix=key.prefix, key_hash="0" * 64))
    ambiguous = revoke(key.prefix)
    assert ambiguous.exit_code == 1 and "matches 2 keys" in ambiguous.output
    assert revoked_at(key.id) is None
