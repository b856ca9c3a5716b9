"""One service per database: the lease a service holds for as long as it runs.

Two services on one database would each recover the other's running jobs at start (the
local executor's as lost, so re-queued and run twice; the docker executor's reattached and
followed twice). So a service takes the database's lease before it touches the store, and
holds it until its process ends: a PostgreSQL session-level advisory lock on a connection of
its own, or an ``flock`` on a file beside a SQLite database. Both are freed by the operating
system or the server when the process dies, however it dies, so a restarted service (or a
standby started with a restart policy) takes over without anyone clearing a stale lock.

A PostgreSQL lease can also end while the process lives: the server restarts, or an admin
terminates its session. The service then no longer holds what keeps a second service from
recovering its jobs, so it checks (:meth:`Lease.held`) and stops when the lease is gone.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from typing import Optional

from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

#: the advisory lock of the lease ("nbjobs" in ASCII, plus one: the migrations hold the number itself)
LEASE_LOCK = 0x6E626A6F6273 + 1
#: the rows of ``pg_locks l`` that are the lease granted on this database (its key split in two halves)
LEASE_ROWS = ("l.locktype = 'advisory' AND l.granted AND l.database = "
              "(SELECT oid FROM pg_database WHERE datname = current_database()) "
              "AND ((l.classid::bigint << 32) | l.objid::bigint) = :key")


class LeaseHeld(Exception):
    """Another live service holds the database's lease."""


def holder_name() -> str:
    """Who holds a lease, as the next service to ask is told: this host and process."""
    return f"notebook-jobs on {socket.gethostname()}, pid {os.getpid()}"


class Lease:
    """The database's lease: :meth:`acquire` (waiting up to ``wait`` seconds), held until
    :meth:`release` or the end of the process. A database in memory needs none."""

    def __init__(self, url: str):
        self.url = make_url(url)
        self._file = None  # SQLite: the locked file
        self._connection = None  # PostgreSQL: the session holding the lock

    def acquire(self, wait: float = 0.0, poll: float = 0.5) -> None:
        """Take the lease, or raise :class:`LeaseHeld` naming its holder after ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while not self._try():
            if time.monotonic() >= deadline:
                raise LeaseHeld(f"another service uses this database ({self.holder() or 'holder unknown'}); "
                                "one service per database: stop it, or give this one a db_url of its own")
            time.sleep(poll)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # (closing the file releases its flock)
            self._file = None
        if self._connection is not None:
            self._connection.close()
            self._connection.engine.dispose()
            self._connection = None

    def held(self) -> bool:
        """Whether this process still holds the lease (a flock lasts as long as its file is open;
        an advisory lock as long as its session, which the server may end)."""
        if self.url.get_backend_name() == "sqlite":
            return self._file is not None or self._lock_path() is None  # (a database in memory needs none)
        if self._connection is None:
            return False
        try:
            return bool(self._connection.execute(text(
                f"SELECT count(*) FROM pg_locks l WHERE {LEASE_ROWS} AND l.pid = pg_backend_pid()"),
                {"key": LEASE_LOCK}).scalar())
        except DBAPIError:
            self.release()  # the session is gone, and its lock with it
            return False

    def holder(self) -> Optional[str]:
        """Who holds the lease now, as they wrote it (None when unknown or free)."""
        if self.url.get_backend_name() == "sqlite":
            path = self._lock_path()
            try:
                with open(path or os.devnull) as f:
                    fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)  # (taken: nobody holds it; closing frees it)
                    return None
            except BlockingIOError:
                with open(path) as f:
                    return f.read().strip() or None
            except OSError:
                return None
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as c:
                return c.execute(text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    f"WHERE {LEASE_ROWS}"), {"key": LEASE_LOCK}).scalar()
        finally:
            engine.dispose()

    # -- one attempt ----------------------------------------------------------------

    def _try(self) -> bool:
        if self._file is not None or self._connection is not None:
            return True
        if self.url.get_backend_name() == "sqlite":
            return self._try_file()
        return self._try_advisory()

    def _lock_path(self) -> Optional[str]:
        database = self.url.database
        if not database or database == ":memory:" or database.startswith("file::memory:"):
            return None
        return database + ".lease"

    def _try_file(self) -> bool:
        path = self._lock_path()
        if path is None:
            return True  # a database in memory is this process's alone
        f = open(path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(holder_name() + "\n")
        f.flush()
        self._file = f
        return True

    def _try_advisory(self) -> bool:
        # its own engine and session, out of the store's pool, in autocommit: a session-level
        # lock needs no transaction, and an idle open one would hold back vacuum for the service's life
        # TCP keepalives, so a server that vanished without closing the session is noticed too
        engine = create_engine(self.url, poolclass=NullPool,
                               connect_args={"application_name": holder_name()[:63], "keepalives": 1,
                                             "keepalives_idle": 10, "keepalives_interval": 5,
                                             "keepalives_count": 3})
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": LEASE_LOCK}).scalar():
            self._connection = connection
            return True
        connection.close()
        engine.dispose()
        return False
