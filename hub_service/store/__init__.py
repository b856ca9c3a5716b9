"""Persistence of jobs and schedules: models, queries and alembic migrations."""

from .models import TERMINAL, Job, JobMetric, Schedule, Sweep, job_model, listed_model
from .queries import BadCursor, DuplicateKey, InvalidTransition, Store
from .sweep_queries import DuplicateSweep, SweepGone

__all__ = ["TERMINAL", "Job", "JobMetric", "Schedule", "Sweep", "DuplicateSweep", "SweepGone", "job_model", "listed_model", "BadCursor", "DuplicateKey", "InvalidTransition", "Store"]
