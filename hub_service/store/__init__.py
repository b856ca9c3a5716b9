"""Persistence of jobs and schedules: models, queries and alembic migrations."""

from .models import TERMINAL, Job, JobMetric, Schedule, job_model, listed_model
from .queries import BadCursor, DuplicateKey, InvalidTransition, Store

__all__ = ["TERMINAL", "Job", "JobMetric", "Schedule", "job_model", "listed_model", "BadCursor", "DuplicateKey", "InvalidTransition", "Store"]
