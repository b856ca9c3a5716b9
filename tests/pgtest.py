"""A throwaway PostgreSQL server for the store's tests: initdb in a temporary directory, a Unix socket there.

One server per test session (a few seconds to initdb and start); each test gets its own database, made
from ``template0`` and dropped after it (tens of milliseconds). Nothing listens on TCP.

As root the server runs as the ``postgres`` system user (made with ``useradd`` when missing; Debian's
``postgresql`` package makes it): PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

#: the system user the server runs as when the tests run as root
SERVER_USER = "postgres"
#: the servers' directories, in the temporary directory; each holds the pid of the test run that made it
PREFIX, OWNER = "nbjobs-pg-", "owner.pid"


def find_bindir() -> Optional[Path]:
    """The directory of ``initdb``, ``pg_ctl`` and ``postgres``: $NOTEBOOK_JOBS_PG_BINDIR, the PATH, or Debian's
    /usr/lib/postgresql/<newest>/bin; None when PostgreSQL is not installed."""
    candidates = []
    if os.environ.get("NOTEBOOK_JOBS_PG_BINDIR"):
        candidates.append(os.environ["NOTEBOOK_JOBS_PG_BINDIR"])
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(os.path.dirname(on_path))

    def version(path):
        m = re.search(r"/postgresql/(\d+)", path)
        return int(m.group(1)) if m else 0

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    candidates += ["/usr/local/pgsql/bin"]
    for directory in candidates:
        d = Path(directory)
        if all((d / tool).is_file() and os.access(d / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return d
    return None


class PostgresServer:
    """A PostgreSQL server of its own in ``root`` (made with mkdtemp when None); :meth:`start`, then
    :meth:`create_database` per test, then :meth:`stop` (which removes the directory)."""

    def __init__(self, bindir: Path, root: Optional[Path] = None):
        self.bindir = Path(bindir)
        clean_stale(self.bindir)
        self.root = Path(root or tempfile.mkdtemp(prefix=PREFIX))
        (self.root / OWNER).write_text(str(os.getpid()))
        self.data = self.root / "data"
        self.socket_dir = self.root  # short: a Unix socket path holds at most 107 bytes
        self.log = self.root / "server.log"
        self.running = False
        self._names = itertools.count(1)
        self._as = []  # the command prefix that runs a tool as the server's user
        if os.geteuid() == 0:
            _ensure_user(SERVER_USER)
            self._as = ["runuser", "-u", SERVER_USER, "--"]
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chmod(self.root, 0o700)

    def _run(self, *args: str, timeout: float = 120) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=timeout,
                              cwd=str(self.root))
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}\n{log}")

    def start(self) -> "PostgresServer":
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        # a test server: durability off (it is deleted after the session), enough connections for the
        # concurrency tests' pools, a socket only in its own directory
        options = ("-c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   f"-c max_connections=200 -c shared_buffers=32MB -k {self.socket_dir}")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")
        self.running = True
        return self

    def _admin(self):
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), dbname="postgres", user="postgres", autocommit=True)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server (psycopg 3, over the Unix socket)."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"{prefix}_{next(self._names)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (connections still open to it are ended)."""
        name = url.split("/")[-1].split("?")[0]
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        try:
            if self.running:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
                self.running = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)


def clean_stale(bindir: Path) -> None:
    """Stop and remove the servers of test runs that were killed before they could (their owner is gone)."""
    for root in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            os.kill(int((root / OWNER).read_text()), 0)
            continue  # its run goes on
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue  # not ours to judge (no owner file yet, or another user's)
        if (root / "data" / "postmaster.pid").exists():
            as_user = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "-w",
                            "stop"], capture_output=True, timeout=60, cwd=str(root))
        shutil.rmtree(root, ignore_errors=True)
