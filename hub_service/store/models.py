"""SQLAlchemy models: the job table is the single source of truth for every job's state."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..states import TERMINAL, Status  # noqa: F401 - the store's name for it (hub_service.store.TERMINAL)
from ..states import OUTPUT_FORMATS, STOPPED, reason_summary


def utcnow() -> datetime:
    """Naive UTC now: SQLite has no time zones, so everything stored is UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Job(Base):
    """One submitted notebook run, from intake to its one ending."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(16), default=Status.QUEUED.value, index=True)

    # what was submitted
    input_hash: Mapped[str] = mapped_column(String(64))
    input_kind: Mapped[str] = mapped_column(String(8))  # ipynb | py | zip
    input_name: Mapped[str] = mapped_column(String(255), default="")
    path: Mapped[Optional[str]] = mapped_column(Text, nullable=True)  # workspace path, if any
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    output_formats: Mapped[list] = mapped_column(JSON, default=list)
    callback_url: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    notify: Mapped[str] = mapped_column(String(16), default="never")  # when to mail the owner
    idempotency_key: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    schedule_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True, index=True)
    rerun_of: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    sweep_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True, index=True)
    features: Mapped[dict] = mapped_column(JSON, default=dict)  # demand model inputs
    environment: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)  # the admin's, named at submit
    # the build of its environment when it brings requirements: {requirements, key, image, status, cached,
    # seconds, phases, size}; None: it brings none
    build: Mapped[Optional[dict]] = mapped_column(JSON, nullable=True)

    # sizing: what the user asked, what the model proposed, what the job got, what it used
    requested: Mapped[dict] = mapped_column(JSON, default=dict)
    predicted: Mapped[dict] = mapped_column(JSON, default=dict)
    allocated: Mapped[dict] = mapped_column(JSON, default=dict)
    used: Mapped[dict] = mapped_column(JSON, default=dict)

    # progress and outcome
    cells_done: Mapped[int] = mapped_column(Integer, default=0)
    cells_total: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    error_reason: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    error_message: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    error_cell: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    # who cancelled it (a Hub user name; None: not cancelled, or by the service or a schedule)
    cancelled_by: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    # whether an output notebook was left (looked at once, when the job ended: a listing stats nothing)
    has_output: Mapped[bool] = mapped_column(Boolean, default=False)
    exit_code: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    # the last value of each metric the notebook reported ({name: value}); the series are JobMetric rows
    metrics: Mapped[Optional[dict]] = mapped_column(JSON, nullable=True)
    backend: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)

    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    finished: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    # a float copy of `created` with microseconds, for a stable keyset order
    created_ts: Mapped[float] = mapped_column(Float, index=True)

    __table_args__ = (
        UniqueConstraint("user", "idempotency_key", name="uq_jobs_user_idempotency_key"),
        Index("ix_jobs_user_created", "user", "created_ts", "id"),
        Index("ix_jobs_status_created", "status", "created_ts"),
        # a user's queued jobs, oldest first: where a dispatch pass finds each user's head (Store.queue_heads)
        Index("ix_jobs_status_user_created", "status", "user", "created_ts", "id"),
    )


class JobMetric(Base):
    """One point of a metric a running notebook reported: its name, step and value (a finite number)."""

    __tablename__ = "job_metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    step: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float] = mapped_column(Float)
    time: Mapped[float] = mapped_column(Float)  # epoch seconds, when the runner read it

    __table_args__ = (Index("ix_job_metrics_series", "job_id", "name", "step"),)


class Sweep(Base):
    """A parameter sweep: one job per combination of values, all made at once (its runs are the jobs that
    name it); its state is its runs'."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    # as submitted: {"parameters": {name: [values]}} (a grid) or {"runs": [{name: value}, …]}
    grid: Mapped[dict] = mapped_column(JSON)
    size: Mapped[int] = mapped_column(Integer)  # runs it was made with
    idempotency_key: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    schedule_id: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    created_ts: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("user", "idempotency_key", name="uq_sweeps_user_idempotency_key"),
        Index("ix_sweeps_user_created", "user", "created_ts", "id"),
    )


class Setting(Base):
    """One setting of this deployment that must outlive restarts (its instance id)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Schedule(Base):
    """A notebook run on a cron: what to run, when, and what happened at its last fire."""

    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    cron: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    overlap: Mapped[str] = mapped_column(String(8), default="skip")  # skip | queue
    missed: Mapped[str] = mapped_column(String(8), default="skip")  # skip | run_once
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    sweep: Mapped[bool] = mapped_column(Boolean, default=False)  # each fire a sweep of its parameters' lists

    # what runs: a workspace path read again at each fire, or a stored input (by hash)
    source_kind: Mapped[str] = mapped_column(String(8))  # path | snapshot
    path: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    input_hash: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    input_kind: Mapped[str] = mapped_column(String(8))
    input_name: Mapped[str] = mapped_column(String(255), default="")
    parameters: Mapped[dict] = mapped_column(JSON, default=dict)
    requested: Mapped[dict] = mapped_column(JSON, default=dict)
    output_formats: Mapped[list] = mapped_column(JSON, default=list)
    callback_url: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    notify: Mapped[str] = mapped_column(String(16), default="never")
    environment: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)  # None: the admin's default

    # firing: the next due time (None while paused), the last fire, and the job id a fire
    # promised but has not made yet (set in the same transaction that advances next_run)
    next_run: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    last_fire: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    pending_job: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    last_skip: Mapped[Optional[datetime]] = mapped_column(DateTime, nullable=True)
    last_error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)

    created: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_schedules_due", "paused", "next_run"),)


class ScheduleCount(Base):
    """How many schedules a user keeps: the row creates and deletes serialise on, so the per-user limit holds
    however many creates run at once (a conditional ``UPDATE … SET n = n + 1 WHERE n < limit`` in the insert's
    own transaction; see :meth:`ScheduleQueries.create_schedule`)."""

    __tablename__ = "schedule_counts"

    user: Mapped[str] = mapped_column(String(255), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


def isoformat(dt: Optional[datetime]) -> Optional[str]:
    """ISO 8601 with an explicit UTC offset, or None."""
    return dt.replace(tzinfo=timezone.utc).isoformat() if dt else None




def job_model(job: Job) -> dict:
    """The REST representation of a job (the contract served at ``…/api/openapi.json``)."""
    error = None
    if job.error_reason:
        error = {"reason": job.error_reason, "summary": reason_summary(job.error_reason, job.cancelled_by),
                 "message": job.error_message or "", "cell": job.error_cell}
    has_output = bool(job.has_output)
    outputs = list(OUTPUT_FORMATS) if has_output else []
    if job.metrics and job.status in TERMINAL:  # metrics.json, of what it reported (GET …/output?format=metrics)
        outputs.append("metrics")
    return {
        "id": job.id,
        "user": job.user,
        "name": job.name,
        "status": job.status,
        "input": {"kind": job.input_kind, "name": job.input_name, "path": job.path, "sha256": job.input_hash},
        "parameters": job.parameters,
        "progress": {"cells_done": job.cells_done, "cells_total": job.cells_total,
                     # what it waits for before its first cell, in words (None: nothing, or it ended)
                     "phase": "building environment" if job.status == Status.RUNNING
                     and (job.build or {}).get("status") == "building" else None},
        "environment": job.environment,
        "build": job.build,
        "resources": {
            "requested": job.requested,
            "predicted": job.predicted,
            "allocated": job.allocated,
            "used": job.used,
        },
        "timeout": job.allocated.get("timeout"),
        "output_formats": job.output_formats,
        "callback_url": job.callback_url,
        "notify": job.notify,
        "schedule_id": job.schedule_id,
        "rerun_of": job.rerun_of,
        "sweep_id": job.sweep_id,
        "backend": job.backend,
        "exit_code": job.exit_code,
        "metrics": job.metrics or {},
        "error": error,
        "cancelled_by": job.cancelled_by,
        # what the job left: an output notebook, in which formats, and whether its run was stopped part-way
        "has_output": has_output,
        "outputs": outputs,
        "partial": has_output and (job.status == Status.CANCELLED or job.error_reason in STOPPED),
        "created": isoformat(job.created),
        "started": isoformat(job.started),
        "finished": isoformat(job.finished),
    }


#: in a list of jobs (and the event stream), a parameter's value is shown whole up to this many
#: characters of JSON; a longer one becomes a string of its first characters, and the job's
#: ``parameters_cut`` names it (``GET /jobs/{id}`` has every value whole)
LISTED_VALUE_LIMIT = 200


def listed_model(job: Job) -> dict:
    """A job as a list of jobs shows it: :func:`job_model` with long parameter values cut short.

    A listing of 200 jobs should not carry 200 copies of a megabyte of parameters, nor a
    row in a page grow as tall as one value.
    """
    model = job_model(job)
    params, cut = {}, []
    for name, value in (model["parameters"] or {}).items():
        text = value if isinstance(value, str) else json.dumps(value)
        if len(text) > LISTED_VALUE_LIMIT:
            value = text[:LISTED_VALUE_LIMIT] + "…"
            cut.append(name)
        params[name] = value
    model["parameters"], model["parameters_cut"] = params, cut
    return model
