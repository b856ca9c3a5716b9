"""A job's statuses and the reasons a job fails: the one list every part names them from.

Both are ``str`` enums, so a member equals its plain string (what the store keeps and the
REST API and the runner's events say) and serialises as it.
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """Where a job is: queued -> running -> one of the three ends (or queued -> cancelled)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


class Reason(str, Enum):
    """Why a job did not succeed (``error.reason``)."""

    CELL_ERROR = "cell_error"
    OOM_KILLED = "oom_killed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    INVALID_INPUT = "invalid_input"
    INFRASTRUCTURE = "infrastructure"

    def __str__(self) -> str:
        return self.value


#: Every status, in the order a job meets them.
STATUSES = tuple(s.value for s in Status)
#: Statuses a job never leaves.
TERMINAL = frozenset({Status.SUCCEEDED.value, Status.FAILED.value, Status.CANCELLED.value})
#: Statuses of a job still to end (it can be cancelled).
ACTIVE = frozenset({Status.QUEUED.value, Status.RUNNING.value})
#: Statuses of a job with an executed notebook to show (a cancelled run keeps none).
WITH_OUTPUT = frozenset({Status.SUCCEEDED.value, Status.FAILED.value})
#: Every error reason.
REASONS = tuple(r.value for r in Reason)
