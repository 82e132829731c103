"""The embedded Postgres takes a password on every login, TCP and unix socket alike."""

from __future__ import annotations

import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tierroute.devstack.embedded import EmbeddedPostgres

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
PASSWORD_FILE = "postgres.password"  # in the data dir


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Outside pytest's tmp root (see test_embedded.py); no ambient libpq password.
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    path = Path(tempfile.mkdtemp(prefix="tierroute-embedded-auth-"))
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def _refused(**params: object) -> str:
    """The error a login with `params` gets; fails the test if the login succeeds."""
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(**params, dbname="tierroute", user="postgres", connect_timeout=5)  # type: ignore[arg-type]
    return str(refused.value)


def _assert_password_required(pg: EmbeddedPostgres) -> None:
    assert "password" in _refused(host="127.0.0.1", port=pg.port)
    assert "password authentication failed" in _refused(
        host="127.0.0.1", port=pg.port, password="not-the-password"
    )
    # Every local user can reach the socket dir's path; the socket too asks for it.
    assert "password" in _refused(host=str(pg._socket_dir), port=pg.port)
    assert pg.url is not None
    url = pg.url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)


def test_logins_without_the_password_are_refused(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir)
    with pg:
        secret = data_dir / PASSWORD_FILE
        password = secret.read_text().strip()
        assert len(password) >= 32 and f":{password}@" in str(pg.url)
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        _assert_password_required(pg)
    with pg:  # the reused cluster keeps its password
        assert secret.read_text().strip() == password
        _assert_password_required(pg)


def test_a_cluster_made_with_trust_gets_a_password(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir)
    with pg:
        old = (data_dir / PASSWORD_FILE).read_text().strip()
    # What an earlier tierroute left: `trust` for everyone and no password file.
    (data_dir / PASSWORD_FILE).unlink()
    hba = data_dir / "postgres" / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    with pg:
        new = (data_dir / PASSWORD_FILE).read_text().strip()
        assert new != old
        _assert_password_required(pg)
