"""Prometheus metrics of the service, in their own registry (not the process-global one).

Counters are fed by the job manager at the points where a job changes status, so what
Prometheus sees matches the store; queue gauges are read from the store when scraped.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .states import STATUSES

REGISTRY = CollectorRegistry(auto_describe=True)

JOBS_SUBMITTED = Counter("notebook_jobs_submitted", "Jobs accepted", ["kind"], registry=REGISTRY)
JOBS_ENDED = Counter("notebook_jobs_ended", "Jobs that ended, by status and reason", ["status", "reason"],
                     registry=REGISTRY)
JOB_WAIT = Histogram("notebook_jobs_queue_wait_seconds", "Time from submit to start", registry=REGISTRY,
                     buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600))
JOB_RUNTIME = Histogram("notebook_jobs_runtime_seconds", "Wall time of a run", registry=REGISTRY,
                        buckets=(1, 2, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600))
JOB_STATUS = Gauge("notebook_jobs_status", "Jobs by current status", ["status"], registry=REGISTRY)


def record_end(job) -> None:
    """Count one ended job (called once per job, after its one transition)."""
    JOBS_ENDED.labels(job.status, job.error_reason or "").inc()
    if job.started and job.finished:
        JOB_RUNTIME.observe((job.finished - job.started).total_seconds())


def record_start(job) -> None:
    """Observe one job's wait in the queue (called when it starts)."""
    if job.started:
        JOB_WAIT.observe(max(0.0, (job.started - job.created).total_seconds()))


def exposition(status_counts: dict) -> bytes:
    """The text exposition, with status gauges refreshed from the store."""
    for status in STATUSES:
        JOB_STATUS.labels(status).set(status_counts.get(status, 0))
    return generate_latest(REGISTRY)


MAIL_SENT = Counter("notebook_jobs_mail_sent", "Mails about ended jobs handed to the SMTP server", registry=REGISTRY)
MAIL_FAILED = Counter("notebook_jobs_mail_failed", "Mails about ended jobs that could not be sent, by error",
                      ["error"], registry=REGISTRY)
