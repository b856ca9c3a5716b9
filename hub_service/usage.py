"""The admin's usage report: who ran what over a period, in the units people bill and plan in.

The store sums per user in one SQL query (:meth:`Store.usage_by_user`); this module reads
the period an admin asks for and turns the sums into hours, cpu-hours and GiB-hours.
Pure functions, so they are tested without a service.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional

from .intake import IntakeError

GIB = 1 << 30
#: the period a report covers when the admin names none
DEFAULT_PERIOD = timedelta(hours=24)
#: the longest period one report may cover (a typo of a year must not scan the whole table twice over)
MAX_PERIOD = timedelta(days=3660)


def parse_time(value: str, name: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime; a naive one is taken as UTC."""
    try:
        when = datetime.fromisoformat(value.strip())
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        when = when.astimezone(timezone.utc)
        when.timestamp()
        return when
    except (ValueError, OverflowError):  # not ISO 8601; or past year 1..9999 once in UTC
        raise IntakeError(f"{name} must be an ISO 8601 date or date-time such as 2026-12-01T17:00:00Z, "
                          f"not {value!r}") from None


def parse_period(since: Optional[str], until: Optional[str], now: datetime) -> tuple:
    """(since, until) as UTC datetimes: ``until`` defaults to now, ``since`` to a day before it."""
    end = parse_time(until, "until") if until else now
    try:
        start = parse_time(since, "since") if since else end - DEFAULT_PERIOD
    except OverflowError:  # until at the very start of year 1
        raise IntakeError(f"until {until!r} leaves no room for the default period before it") from None
    if start >= end:
        raise IntakeError(f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
    if end - start > MAX_PERIOD:
        raise IntakeError(f"the period from since to until is longer than {MAX_PERIOD.days} days")
    return start, end


#: what the store sums per user
_SUMS = ("user", "jobs", "succeeded", "failed", "cancelled", "active", "run_seconds", "cpu_seconds_allocated",
         "cpu_seconds_used", "memory_byte_seconds", "peak_memory_byte_seconds")


def user_usage(row: dict) -> dict:
    """One user's sums from the store, in hours, cpu-hours and GiB-hours."""
    return {
        "user": row["user"],
        "jobs": int(row["jobs"]),
        "succeeded": int(row["succeeded"]),
        "failed": int(row["failed"]),
        "cancelled": int(row["cancelled"]),
        "active": int(row["active"]),
        "run_hours": round(row["run_seconds"] / 3600, 6),
        "cpu_hours_allocated": round(row["cpu_seconds_allocated"] / 3600, 6),
        "cpu_hours_used": round(row["cpu_seconds_used"] / 3600, 6),
        "gib_hours_allocated": round(row["memory_byte_seconds"] / GIB / 3600, 6),
        "gib_hours_peak": round(row["peak_memory_byte_seconds"] / GIB / 3600, 6),
    }


def usage_report(rows: list, since: datetime, until: datetime) -> dict:
    """The report: the period, one entry per user (by name), and the totals."""
    users = [user_usage(r) for r in rows]
    sums = {k: sum(r[k] for r in rows) for k in _SUMS if k != "user"}
    return {
        "since": since.isoformat().replace("+00:00", "Z"),
        "until": until.isoformat().replace("+00:00", "Z"),
        "users": users,
        "totals": {k: v for k, v in user_usage(dict(sums, user="")).items() if k != "user"},
    }


def hourly_counts(times: list, start: float, hours: int) -> list:
    """How many of ``times`` (epoch seconds) fall in each of ``hours`` hours from ``start``."""
    counts = [0] * hours
    for t in times:
        i = int((t - start) // 3600)
        if 0 <= i < hours:
            counts[i] += 1
    return counts
