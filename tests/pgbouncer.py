"""PgBouncer in transaction pooling mode: the stand-in for RDS Proxy in the tests.

RDS Proxy hands a client's transactions to whichever server connection is free; anything a
client leaves on a session (a prepared statement, a plain ``SET``, a session advisory lock, a
``LISTEN``, a temporary table) pins it to one connection, or, behind PgBouncer, leaks to the
next client of that connection or goes missing. With ``KONTEX_TEST_PGBOUNCER=1`` every
PostgreSQL test fixture (``tests/conftest.py``) connects through one of these instead of the
server, so the contract and end-to-end suites run on the production database path.

One PgBouncer per test process (pytest-xdist workers each start their own), on a free port,
from a temp config; started on first use, stopped at exit. A test's schema cannot travel as a
startup ``options=-csearch_path=...`` (PgBouncer keeps no per-client session state in
transaction mode), so each schema gets a database alias whose server connections set its
search_path once, when PgBouncer opens them (``connect_query``): test scaffolding, not
something Kontex does.

Debian's ``pgbouncer`` package (``apt-get install pgbouncer``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

ENV = "KONTEX_TEST_PGBOUNCER"
BINARY = os.environ.get("KONTEX_PGBOUNCER", shutil.which("pgbouncer") or "/usr/sbin/pgbouncer")
POOL_SIZE = 2  # server connections per schema: fewer than a store's pool, so clients share them


def enabled() -> bool:
    return os.environ.get(ENV, "") not in ("", "0", "false")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgBouncer:
    """One PgBouncer process in front of the server named by ``server_url``."""

    def __init__(self, server_url: str) -> None:
        parts = urlsplit(server_url)
        self.server_host = parts.hostname or "127.0.0.1"
        self.server_port = parts.port or 5432
        self.server_db = (parts.path or "/postgres").lstrip("/") or "postgres"
        self.user = parts.username or "postgres"
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="kontex-pgbouncer-"))
        self.dir.chmod(0o755)  # as root, PgBouncer runs as nobody and reads its config here
        self.config = self.dir / "pgbouncer.ini"
        (self.dir / "users.txt").write_text(f'"{self.user}" ""\n')
        self.databases: list[str] = []
        self._write()
        args = [BINARY, str(self.config)]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            args[1:1] = ["-u", "nobody"]
        self.log = (self.dir / "pgbouncer.log").open("wb")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        atexit.register(self.stop)
        deadline = time.monotonic() + 10
        while True:
            try:
                with self.admin():
                    break
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"PgBouncer did not start: {self.log_text()}") from None
                time.sleep(0.05)

    def _write(self) -> None:
        lines = [
            "[databases]",
            *self.databases,
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {self.dir / 'users.txt'}",
            f"admin_users = {self.user}",
            "pool_mode = transaction",
            f"default_pool_size = {POOL_SIZE}",
            "max_client_conn = 500",
            "server_lifetime = 3600",
            # a client waiting for a server connection fails after 20 s instead of hanging
            "query_wait_timeout = 20",
            "ignore_startup_parameters = extra_float_digits",
        ]
        self.config.write_text("\n".join(lines) + "\n")
        self.config.chmod(0o644)

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """The admin console (the ``pgbouncer`` database: simple queries only)."""
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            dbname="pgbouncer",
            autocommit=True,
            connect_timeout=5,
        )

    def url_for(self, schema: str, pool_size: int = POOL_SIZE) -> str:
        """A URL through PgBouncer to ``schema`` (an alias of the server's database whose
        server connections use that schema)."""
        entry = (
            f"{schema} = host={self.server_host} port={self.server_port} dbname={self.server_db}"
            f" user={self.user} pool_size={pool_size}"
            f" connect_query='SET search_path TO {schema}'"
        )
        self.databases.append(entry)
        self._write()
        with self.admin() as console:
            console.pgconn.exec_(b"RELOAD")  # the admin console speaks the simple protocol
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{schema}"

    def forget(self, schema: str) -> None:
        self.databases = [d for d in self.databases if not d.startswith(f"{schema} =")]
        self._write()
        with self.admin() as console:
            console.pgconn.exec_(f"KILL {schema}".encode())  # close its server connections
            console.pgconn.exec_(b"RELOAD")

    def log_text(self) -> str:
        self.log.flush()
        return (self.dir / "pgbouncer.log").read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


_instance: PgBouncer | None = None


def instance(server_url: str) -> PgBouncer:
    """This process's PgBouncer, started on first use."""
    global _instance
    if _instance is None or _instance.process.poll() is not None:
        if not Path(BINARY).exists():
            raise RuntimeError(
                f"{ENV} is set but there is no pgbouncer at {BINARY}: apt-get install pgbouncer"
            )
        _instance = PgBouncer(server_url)
    return _instance
