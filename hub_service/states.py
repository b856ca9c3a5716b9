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
    ENVIRONMENT_ERROR = "environment_error"

    def __str__(self) -> str:
        return self.value


#: Every status, in the order a job meets them.
STATUSES = tuple(s.value for s in Status)
#: Statuses a job never leaves.
TERMINAL = frozenset({Status.SUCCEEDED.value, Status.FAILED.value, Status.CANCELLED.value})
#: Statuses of a job still to end (it can be cancelled).
ACTIVE = frozenset({Status.QUEUED.value, Status.RUNNING.value})
#: Every error reason.
REASONS = tuple(r.value for r in Reason)
#: Reasons of a run stopped before it finished: a notebook it left is partial (cells after the stop never ran).
#: (A cell error ends a run too, but as papermill ends it: the notebook is complete up to the failing cell.)
STOPPED = frozenset({Reason.CANCELLED.value, Reason.TIMEOUT.value, Reason.OOM_KILLED.value,
                     Reason.INFRASTRUCTURE.value})
#: The formats an output notebook can be fetched in (renders are made on request).
OUTPUT_FORMATS = ("ipynb", "html", "md")

_SUMMARIES = {
    Reason.CELL_ERROR.value: "A cell raised an error",
    Reason.OOM_KILLED.value: "Ran out of memory",
    Reason.TIMEOUT.value: "Ran past its time limit",
    Reason.CANCELLED.value: "Cancelled",
    Reason.INVALID_INPUT.value: "The input could not be run",
    Reason.INFRASTRUCTURE.value: "The service could not run it",
    Reason.ENVIRONMENT_ERROR.value: "Its requirements could not be installed",
}


def reason_summary(reason, cancelled_by=None) -> str:
    """Why a job did not succeed, in plain words (``error.summary``): the one place the pages, the
    mails and the API take them from; ``reason`` (``error.reason``) stays the code for machines."""
    if reason == Reason.CANCELLED and cancelled_by:
        return f"Cancelled by {cancelled_by}"
    return _SUMMARIES.get(str(reason), str(reason).replace("_", " ").capitalize())
